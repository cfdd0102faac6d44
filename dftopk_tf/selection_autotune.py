"""``selection="auto"``'s one-time calibration: time the paths once per shape bucket, cache it.

Where ``dftopk_tf.selection.resolve_selection``'s timing-free rule is uncertain (on a CPU, XLA
allowed, a k <= ``AUTOTUNE_MAX_K`` and rows of n >= ``AUTOTUNE_MIN_N`` items, both known while the
graph is built) the fastest path depends on the CPU, not only on its instruction set: two
measurements on AVX2 machines of one family disagreed on whether XLA's top_k or TF's top_k kernel
without XLA is the faster at k = 10 (CHANGELOG.md, 2026-12-03). So the first call in such an
(n, k) bucket times the candidates, as autotuners do, and every later call takes the winner:

- Candidates (``candidates``): XLA's top_k, TF's top_k kernel without XLA, and the linear path the
  rule takes otherwise (the sample bracket under XLA in rows of ``AUTO_BRACKET_MIN_N`` items or
  more, else the radix select under XLA). Every path gives the same values and gradients, so the
  choice changes the speed only.
- What is timed (``time_candidates``): ``dftopk``'s forward and backward pass, as training runs
  it, on random normal scores of the bucket's shape (``Bucket``): warm-up passes first (tracing,
  XLA compilation), then repeats interleaved round-robin over the candidates, each round on a new
  input, so that load from other processes hits every candidate alike (the loop is
  ``dftopk_tf.pass_timing``'s, which the operator benchmarks use too). The winner has the
  smallest median, except that the path the timing-free rule takes stays unless another is
  faster by more than ``AUTOTUNE_MARGIN`` (two timings of one program differ by several percent
  on a busy 2-core machine: a near tie is noise, not a reason to leave the rule). The cost is a
  few seconds per bucket, once per machine: three XLA compilations and a few dozen passes over
  about 4 million scores. It runs eagerly in a thread of
  its own, so that a caller tracing a ``tf.function``, recording a gradient tape or running a
  ``tf.distribute`` replica changes nothing (``tf.init_scope`` would give eager execution too, but
  it pauses gradient tapes, and the timed backward pass needs one).
- Buckets (``bucket_of``): n by half-decades (10,000, 31,623, 100,000, 316,228, ...), k by powers
  of 2 (1, 2, 4, ..., 256): the rule's own thresholds lie on these grids
  (``dftopk_tf.selection.AUTO_XLA_TOP_K``), and they give two buckets per decade of n and at most
  nine of k. A bucket is timed at its smallest n and its largest k: the top_k paths gain on the
  linear ones as n grows and lose as k grows, so a top_k path that wins there wins in the whole
  bucket.
- Cache: in memory per process, and on disk in ``selection_autotune.json`` under
  ``$DFTOPK_TF_CACHE_DIR``, else ``$XDG_CACHE_HOME/dftopk_tf``, else ``~/.cache/dftopk_tf``
  (``cache_path``), keyed by the machine (``machine_signature``: CPU model, a hash of its flags,
  its usable cores, the TensorFlow version, ``XLA_FLAGS``, ``ONEDNN_MAX_CPU_ISA``,
  ``TF_ENABLE_ONEDNN_OPTS``) and the bucket. The file is written to a temporary name and renamed,
  merged with what other processes wrote before (two processes writing at the same instant may
  drop one entry, which is timed again later). An unreadable or foreign file is ignored with one
  warning and replaced; a cache folder that cannot be written means no disk cache.
- Switch: ``DFTOPK_TF_AUTOTUNE=1`` (default) times each bucket once and caches it;
  ``DFTOPK_TF_AUTOTUNE=0`` never times: ``"auto"`` takes the timing-free rule. Where timing fails
  for any reason, a warning names the reason and the rule decides that bucket.
- Logging: one INFO line on the ``dftopk_tf.selection_autotune`` logger per bucket timed, with the
  medians and the winner (``logging.basicConfig(level=logging.INFO)`` shows it).
- Command line: ``python -m dftopk_tf.selection_autotune --sizes 10000 100000 1000000 --ks 10
  100`` times those buckets now and prints their medians, winners and the cache file;
  ``--clear`` deletes the cache file.

Example:
    >>> bucket_of(150_000, 10)
    Bucket(n=100000, k=16)
    >>> [candidate_name(path) for path in candidates(bucket_of(150_000, 10))]
    ['top_k xla', 'top_k', 'bracket xla']
"""

import argparse
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import tensorflow as tf

from dftopk_tf.instruction_sets import (
    KERNEL_SETTINGS_ENV,
    cpu_flags,
    cpu_model,
    usable_cpu_count,
)
from dftopk_tf.ops import dftopk
from dftopk_tf.pass_timing import forward_backward_step, median_milliseconds
from dftopk_tf.selection import AUTO_BRACKET_MIN_N

#: A threshold path: (selection, jit_compile), as ``resolve_selection`` returns it.
Path = tuple[str, bool]
#: A timer: (bucket, candidate paths) -> median milliseconds per path.
Measure = Callable[["Bucket", Sequence[Path]], dict[Path, float]]

#: Environment variable switching the timing on (``1``, default) or off (``0``).
AUTOTUNE_ENV = "DFTOPK_TF_AUTOTUNE"
#: Environment variable naming the cache folder.
CACHE_DIR_ENV = "DFTOPK_TF_CACHE_DIR"
#: The cache file's name in the cache folder.
CACHE_FILE_NAME = "selection_autotune.json"
#: Rows of at least this many items are timed (in shorter rows the rule's radix select won).
AUTOTUNE_MIN_N = 10_000
#: k up to this is timed (beyond it a top_k path never won, and k is no longer small).
AUTOTUNE_MAX_K = 256
#: A timed pass scores about this many items (``benchmarks.bench_ops``' default work per pass),
#: in at most ``AUTOTUNE_MAX_ROWS`` rows.
AUTOTUNE_WORK = 4_000_000
AUTOTUNE_MAX_ROWS = 256
#: Timed passes per candidate (the median is kept) and untimed passes before them.
AUTOTUNE_REPEATS = 9
AUTOTUNE_WARMUP = 2
#: Another path replaces the rule's only when its median is this much (relative) smaller.
AUTOTUNE_MARGIN = 0.10
#: What the cache file's ``format`` and ``version`` fields hold.
CACHE_FORMAT = "dftopk_tf.selection_autotune"
CACHE_VERSION = 1

logger = logging.getLogger(__name__)

# One timing at a time per process (a distribution strategy traces its replicas in threads), and
# a thread that is timing never times again (no recursion through "auto").
_TIMING_LOCK = threading.Lock()
_THREAD = threading.local()


def autotune_enabled() -> bool:
    """Whether ``"auto"`` may time paths: ``DFTOPK_TF_AUTOTUNE`` is ``1`` or unset (not ``0``).

    Example:
        >>> autotune_enabled() in (True, False)
        True
    """
    value = os.environ.get(AUTOTUNE_ENV, "1").strip()
    if value not in ("0", "1", ""):
        raise ValueError(
            f"{AUTOTUNE_ENV}={value!r}: set it to 1 (time selection paths once per shape, "
            "cached) or 0 (never time: the timing-free rule)"
        )
    return value != "0"


def is_autotuned(n: int, k: int) -> bool:
    """Whether rows of n items with this k are in the range the autotuner times.

    Example:
        >>> is_autotuned(100_000, 10), is_autotuned(1_000, 10), is_autotuned(100_000, 1_000)
        (True, False, False)
    """
    return n >= AUTOTUNE_MIN_N and 1 <= k <= AUTOTUNE_MAX_K


def candidate_name(path: Path) -> str:
    """A path's name as ``benchmarks.bench_ops`` writes it: the selection, plus " xla" if compiled.

    Example:
        >>> candidate_name(("top_k", True)), candidate_name(("top_k", False))
        ('top_k xla', 'top_k')
    """
    selection, jit_compile = path
    return f"{selection} xla" if jit_compile else selection


def _half_decade(index: int) -> int:
    return round(10 ** (index / 2))


@dataclass(frozen=True)
class Bucket:
    """The shape the autotuner times for every (n, k) of one bucket (``bucket_of``).

    Attributes:
        n: the bucket's smallest row length, a half-decade (10,000, 31,623, 100,000, ...).
        k: the bucket's largest k, a power of 2.

    Example:
        >>> Bucket(100_000, 16).rows, Bucket(100_000, 16).key
        (40, 'n=100000 k=16')
    """

    n: int
    k: int

    @property
    def rows(self) -> int:
        """Rows of a timed pass: about ``AUTOTUNE_WORK`` scores, at most ``AUTOTUNE_MAX_ROWS``."""
        return max(1, min(AUTOTUNE_MAX_ROWS, AUTOTUNE_WORK // self.n))

    @property
    def key(self) -> str:
        """The bucket's key in the cache file."""
        return f"n={self.n} k={self.k}"


def bucket_of(n: int, k: int) -> Bucket:
    """The bucket of rows of n items and this k: n down to a half-decade, k up to a power of 2.

    Example:
        >>> bucket_of(10_000, 10), bucket_of(40_000, 16), bucket_of(1_000_000, 100)
        (Bucket(n=10000, k=16), Bucket(n=31623, k=16), Bucket(n=1000000, k=128))
    """
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 and k >= 1, got n={n}, k={k}")
    index = math.floor(2 * math.log10(n))
    while _half_decade(index + 1) <= n:
        index += 1
    while _half_decade(index) > n:
        index -= 1
    return Bucket(_half_decade(index), 1 << (k - 1).bit_length())


def candidates(bucket: Bucket) -> tuple[Path, ...]:
    """The paths timed for ``bucket``: XLA's top_k, TF's top_k kernel, the rule's linear path.

    Example:
        >>> candidates(Bucket(10_000, 16))
        (('top_k', True), ('top_k', False), ('radix', True))
    """
    linear = "bracket" if bucket.n >= AUTO_BRACKET_MIN_N else "radix"
    return ("top_k", True), ("top_k", False), (linear, True)


def _median_milliseconds(
    bucket: Bucket, paths: Sequence[Path], repeats: int, warmup: int
) -> dict[Path, float]:
    """The timing itself, eagerly (see ``time_candidates``)."""
    if not tf.executing_eagerly():
        raise RuntimeError("TensorFlow runs in graph mode (TF1): the autotuner times eagerly")
    shape = [bucket.rows, bucket.n]
    scores = tf.random.stateless_normal(shape, seed=[bucket.n, bucket.k])
    upstream = tf.random.stateless_normal(shape, seed=[bucket.k, bucket.n])
    steps = {
        # dftopk compiles its own path (jit_compile=...), as training runs it: the pass is not.
        path: forward_backward_step(
            functools.partial(dftopk, k=bucket.k, selection=path[0], jit_compile=path[1]),
            upstream,
        )
        for path in paths
    }
    return median_milliseconds(steps, scores, repeats, warmup)


def time_candidates(
    bucket: Bucket,
    paths: Sequence[Path],
    repeats: int = AUTOTUNE_REPEATS,
    warmup: int = AUTOTUNE_WARMUP,
) -> dict[Path, float]:
    """Median ms of ``dftopk``'s forward+backward pass on each path, on the bucket's shape.

    Random normal scores [``bucket.rows``, ``bucket.n``], k = ``bucket.k``; ``warmup`` untimed
    passes per path first, then ``repeats`` rounds over the paths, each on a new input. It runs
    in a thread of its own, so a caller that is tracing a ``tf.function``, recording a gradient
    tape or running a ``tf.distribute`` replica does not change what is timed.

    Example:
        >>> medians = time_candidates(Bucket(16, 2), [("radix", False)], repeats=1, warmup=0)
        >>> list(medians) == [("radix", False)] and medians[("radix", False)] > 0
        True
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        _THREAD.timing = True  # a timed path that asked for "auto" gets the rule, not a timing
        try:
            outcome["medians"] = _median_milliseconds(bucket, paths, repeats, warmup)
        except Exception as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="dftopk_tf selection autotune")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["medians"]


@functools.lru_cache(maxsize=1)
def machine_signature() -> dict[str, str]:
    """What makes one machine's timings differ from another's (read once per process).

    The CPU model, a hash of its feature flags, its usable cores, the TensorFlow version and the
    environment variables that select kernels (``instruction_sets.KERNEL_SETTINGS_ENV``; XLA
    reads ``XLA_FLAGS`` once per process too).

    Example:
        >>> sorted(machine_signature())[:3]
        ['ONEDNN_MAX_CPU_ISA', 'TF_ENABLE_ONEDNN_OPTS', 'XLA_FLAGS']
    """
    flags = " ".join(sorted(cpu_flags()))
    return {
        "cpu": cpu_model(),
        "cpu_flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16],
        "cores": str(usable_cpu_count()),
        "tensorflow": tf.__version__,
        **{name: os.environ.get(name, "") for name in KERNEL_SETTINGS_ENV},
    }


def signature_key(signature: Mapping[str, str]) -> str:
    """The cache file's key for a machine signature: a hash of all its fields.

    Example:
        >>> len(signature_key({"cpu": "x"})), signature_key({"cpu": "x"}) == signature_key({})
        (16, False)
    """
    text = json.dumps(dict(signature), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path() -> str:
    """The cache file: ``$DFTOPK_TF_CACHE_DIR``, ``$XDG_CACHE_HOME/dftopk_tf`` or ``~/.cache/...``.

    Example:
        >>> os.path.basename(cache_path())
        'selection_autotune.json'
    """
    folder = os.environ.get(CACHE_DIR_ENV)
    if not folder:
        cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        folder = os.path.join(cache_home, "dftopk_tf")
    return os.path.join(os.path.expanduser(folder), CACHE_FILE_NAME)


def _empty_document() -> dict:
    return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "machines": {}}


def read_cache_document(path: str) -> dict:
    """The cache file's content (empty where it is missing); ``ValueError`` where it is foreign.

    Example:
        >>> read_cache_document("/nonexistent/selection_autotune.json")["machines"]
        {}
    """
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (FileNotFoundError, NotADirectoryError):
        return _empty_document()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from error
    if not (
        isinstance(document, dict)
        and document.get("format") == CACHE_FORMAT
        and document.get("version") == CACHE_VERSION
        and isinstance(document.get("machines"), dict)
    ):
        raise ValueError(f"{path}: not a {CACHE_FORMAT} cache of version {CACHE_VERSION}")
    return document


def write_cache_document(path: str, document: dict) -> None:
    """Writes ``document`` to ``path`` whole or not at all: a temporary file, then a rename.

    Example:
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "new folder", CACHE_FILE_NAME)
        ...     write_cache_document(path, {"format": CACHE_FORMAT, "version": 1, "machines": {}})
        ...     read_cache_document(path)["machines"]
        {}
    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".selection_autotune.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=1, sort_keys=True)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class SelectionAutotuner:
    """The winners per bucket for one machine: remembered in memory, on disk, or timed now.

    Args:
        path: the cache file (None: memory only).
        measure: the timer, ``time_candidates`` by default (tests pass a fake one).
        signature: the machine's signature (default ``machine_signature()``).

    Example:
        >>> def measure(bucket, paths):
        ...     return {("top_k", True): 3.0, ("top_k", False): 2.0, ("bracket", True): 5.0}
        >>> autotuner = SelectionAutotuner(path=None, measure=measure)
        >>> autotuner.choose(100_000, 10, rule=("bracket", True))
        ('top_k', False)
    """

    def __init__(
        self,
        path: str | None = None,
        measure: Measure | None = None,
        signature: Mapping[str, str] | None = None,
    ):
        self.path = path
        self._measure = measure or time_candidates
        self._signature = dict(machine_signature() if signature is None else signature)
        self._machine = signature_key(self._signature)
        self._winners: dict[Bucket, Path] = {}
        self._failed: set[Bucket] = set()
        self._warned_foreign = False
        self._told_no_disk = False

    def choose(self, n: int, k: int, rule: Path) -> Path:
        """The winner of (n, k)'s bucket, timed on first use; ``rule`` where timing fails.

        A failure is logged once as a warning, and the bucket keeps the rule for the rest of
        the process. A call made while this thread is timing (a timer that calls ``"auto"``)
        gets the rule.
        """
        bucket = bucket_of(n, k)
        if bucket in self._failed or getattr(_THREAD, "timing", False):
            return rule
        try:
            return self.winner(bucket, rule)
        except Exception as error:  # any failure: the rule still gives a correct path
            self._failed.add(bucket)
            logger.warning(
                "dftopk_tf selection autotune: timing bucket %s failed (%s: %s); using the "
                "timing-free rule's %s",
                bucket.key,
                type(error).__name__,
                error,
                candidate_name(rule),
            )
            return rule

    def winner(self, bucket: Bucket, rule: Path | None = None) -> Path:
        """The bucket's winner: from memory, else from the cache file, else timed now (``rule``:
        the timing-free rule's path, kept unless another beats it by ``AUTOTUNE_MARGIN``)."""
        cached = self.cached(bucket)
        if cached is not None:
            return cached
        with _TIMING_LOCK:
            cached = self.cached(bucket)  # another thread may have timed it meanwhile
            return cached if cached is not None else self.tune(bucket, rule)[0]

    def cached(self, bucket: Bucket) -> Path | None:
        """The bucket's winner from memory or the cache file, without timing (None: not known)."""
        if bucket not in self._winners and self.path is not None:
            entry = self._read_buckets().get(bucket.key)
            names = {candidate_name(path): path for path in candidates(bucket)}
            if isinstance(entry, dict) and entry.get("winner") in names:
                self._winners[bucket] = names[entry["winner"]]
        return self._winners.get(bucket)

    def tune(self, bucket: Bucket, rule: Path | None = None) -> tuple[Path, dict[Path, float]]:
        """Times the bucket's candidates now; remembers, stores and logs the winner.

        The winner is the fastest path, or ``rule`` (the timing-free rule's path) where no path
        is faster than it by more than ``AUTOTUNE_MARGIN``.

        Returns the winner and every candidate's median milliseconds.
        """
        paths = candidates(bucket)
        _THREAD.timing = True
        try:
            medians = self._measure(bucket, paths)
        finally:
            _THREAD.timing = False
        if set(medians) != set(paths) or not all(math.isfinite(ms) for ms in medians.values()):
            raise ValueError(f"the timer returned {medians}, not a finite time for each of {paths}")
        winner = min(paths, key=lambda path: medians[path])
        if rule in medians and medians[winner] > (1.0 - AUTOTUNE_MARGIN) * medians[rule]:
            winner = rule
        self._winners[bucket] = winner
        self._store(bucket, winner, medians)
        logger.info(
            "dftopk_tf selection autotune: bucket %s (%d rows): %s (median ms); winner %s",
            bucket.key,
            bucket.rows,
            ", ".join(f"{candidate_name(path)} {medians[path]:.2f}" for path in paths),
            candidate_name(winner),
        )
        return winner, medians

    def _read_document(self) -> dict:
        """The cache file's content; a foreign file counts as empty, with one warning."""
        try:
            return read_cache_document(self.path)
        except ValueError as error:
            if not self._warned_foreign:
                self._warned_foreign = True
                logger.warning(
                    "dftopk_tf selection autotune: ignoring the cache file, %s; it is replaced "
                    "when a bucket is next timed",
                    error,
                )
            return _empty_document()

    def _read_buckets(self) -> dict:
        return self._buckets_in(self._read_document())

    def _buckets_in(self, document: dict) -> dict:
        """This machine's bucket entries in a cache document (empty where it has none)."""
        machine = document["machines"].get(self._machine)
        buckets = machine.get("buckets") if isinstance(machine, dict) else None
        return buckets if isinstance(buckets, dict) else {}

    def _store(self, bucket: Bucket, winner: Path, medians: Mapping[Path, float]) -> None:
        """Merges the bucket's entry into the cache file as it is now, and writes it atomically."""
        if self.path is None:
            return
        document = self._read_document()
        buckets = self._buckets_in(document)
        buckets[bucket.key] = {
            "winner": candidate_name(winner),
            "rows": bucket.rows,
            "medians_ms": {candidate_name(path): ms for path, ms in medians.items()},
        }
        document["machines"][self._machine] = {"signature": self._signature, "buckets": buckets}
        try:
            write_cache_document(self.path, document)
        except OSError as error:
            if not self._told_no_disk:
                self._told_no_disk = True
                logger.info("dftopk_tf selection autotune: no disk cache (%s)", error)


@functools.cache
def _autotuner_at(path: str) -> SelectionAutotuner:
    return SelectionAutotuner(path)


def default_autotuner() -> SelectionAutotuner:
    """The process's autotuner for the cache file ``cache_path()`` names now.

    Example:
        >>> default_autotuner().path == cache_path()
        True
    """
    return _autotuner_at(cache_path())


@tf.autograph.experimental.do_not_convert
def autotuned_selection(n: int, k: int, rule: Path) -> Path:
    """``resolve_selection``'s path for ``"auto"`` under XLA on a CPU: timed, or the ``rule``.

    The rule's path is kept where (n, k) is outside the timed range (``is_autotuned``), where
    ``DFTOPK_TF_AUTOTUNE=0``, and where timing fails. AutoGraph leaves it as it is when a Keras
    step is traced (it is plain Python: file access and timing, no tensors).

    Example:
        >>> autotuned_selection(1_000, 10, rule=("radix", True))
        ('radix', True)
    """
    if not is_autotuned(n, k) or not autotune_enabled():
        return rule
    return default_autotuner().choose(n, k, rule)


def cached_winner(n: int, k: int) -> Path | None:
    """The cached winner of (n, k)'s bucket on this machine, without timing (None: not timed).

    Example:
        >>> cached_winner(1_000, 10) is None  # shorter rows than the autotuner times
        True
    """
    if not is_autotuned(n, k):
        return None
    return default_autotuner().cached(bucket_of(n, k))


def _table(results: Sequence[tuple[int, int, Bucket, Path, Mapping[Path, float]]]) -> str:
    header = ["n", "k", "bucket n", "bucket k", "rows", "candidates (median ms)", "winner"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n, k, bucket, winner, medians in results:
        times = ", ".join(f"{candidate_name(path)} {ms:.2f}" for path, ms in medians.items())
        cells = [n, k, bucket.n, bucket.k, bucket.rows, times, candidate_name(winner)]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_tf.selection_autotune",
        description="Time selection='auto''s candidate paths (XLA's top_k, TF's top_k kernel "
        "without XLA, the linear path) now for the buckets of --sizes x --ks, store the winners "
        "in the cache file and print a table of medians and winners.",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help=f"row lengths n, each >= {AUTOTUNE_MIN_N:,} (default 10000 100000 1000000)",
    )
    parser.add_argument(
        "--ks",
        type=int,
        nargs="+",
        default=[10],
        help=f"values of k, 1 .. {AUTOTUNE_MAX_K} (default 10)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=AUTOTUNE_REPEATS,
        help=f"timed passes per path, median kept (default {AUTOTUNE_REPEATS})",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=AUTOTUNE_WARMUP,
        help=f"untimed passes per path first (default {AUTOTUNE_WARMUP})",
    )
    parser.add_argument(
        "--clear", action="store_true", help="delete the cache file, then time nothing"
    )
    args = parser.parse_args(argv)
    if min(args.sizes) < AUTOTUNE_MIN_N:
        parser.error(f"--sizes: rows under {AUTOTUNE_MIN_N:,} items are not timed (the rule)")
    if not all(1 <= k <= AUTOTUNE_MAX_K for k in args.ks):
        parser.error(f"--ks: k must be 1 .. {AUTOTUNE_MAX_K} (larger k is not timed)")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("need --repeats >= 1 and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m dftopk_tf.selection_autotune --help``."""
    args = _parse_args(argv)
    path = cache_path()
    if args.clear:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        print(f"deleted the cache file {path}")
        return
    measure = functools.partial(time_candidates, repeats=args.repeats, warmup=args.warmup)
    autotuner = SelectionAutotuner(path, measure)
    results = []
    for bucket, (n, k) in {bucket_of(n, k): (n, k) for n in args.sizes for k in args.ks}.items():
        print(f"timing bucket {bucket.key} ({bucket.rows} rows) for n={n}, k={k}", flush=True)
        winner, medians = autotuner.tune(bucket)
        results.append((n, k, bucket, winner, medians))
    print(_table(results))
    print(f"cache file: {path}")


if __name__ == "__main__":
    main()
