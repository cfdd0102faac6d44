"""Forward+backward time of every DFTopK threshold path against a fair top_k, the sigmoid floor and
the peers.

One pass is ``p = operator(scores, k)`` and the gradient of ``<p, g>`` wrt the scores, for a fixed
random upstream g, inside one ``tf.function``. Every operator is timed in the same process on
scores [batch, n], its repeats interleaved with the others' (round-robin), so that load from
other processes hits all of them alike, each repeat on a new input (``benchmarks.timing``); the
table gives the median milliseconds.

DFTopK's threshold paths, each with and without XLA (``jit_compile``): ``selection="radix"``
(the O(n) radix select), ``"bracket"`` and ``"top_k"`` (``tf.math.top_k``; without XLA this is
the official DFTopK code's formula, TF's own top_k kernel). "dftopk" is the default
(``selection="auto"`` under XLA: the path ``resolve_selection`` picks; where its rule is
uncertain, the winner of ``dftopk_tf.selection_autotune``'s one-time timing, which one eager
call of the default triggers before any contender's warm-up: a one-time cost, kept out of the
steady state that the table times). The table names the path the default took and
why ("timed", or "rule": the timing-free rule), the fastest threshold path per row (the winner),
and the default's time over the fastest top_k path (at most 1.0x is the goal) and over the
sigmoid floor (the faster of a plain and an XLA-compiled sigmoid: one pass over the row); a line
after it says whether the default was within 10% of the fastest top_k path in every row.
"dftopk spread" is the default with ``threshold_gradient="spread"`` (``dftopk_tf.ops``). k takes
the values of ``--ks`` (default 10 and n/2).

The permutation-matrix peers (LCRON NeuralSort / SoftSort: O(n^2) memory; DiffSort: O(n^3) time)
are skipped beyond ``--matrix-memory-gb`` / ``--cubic-work`` and the table says so; ``--no-peers``
leaves every peer out.

Usage:
    python -m benchmarks.bench_ops --quick
    python -m benchmarks.bench_ops --no-peers    # the threshold table: n = 100 .. 1,000,000
    python -m benchmarks.bench_ops --no-peers --ks 10 100 1000 half  # where auto's rule comes from
    python -m benchmarks.bench_ops --sizes 1000 10000 --batch-size 256 --repeats 9

The timing itself is ``benchmarks.timing``; the machine line is ``benchmarks.machine`` (it names
the environment variables that cap the instruction sets, e.g. ``XLA_FLAGS=--xla_cpu_max_isa=AVX2
ONEDNN_MAX_CPU_ISA=AVX2`` to emulate an AVX2 CPU). Set ``DFTOPK_TF_CACHE_DIR`` to a new folder for
a default that is timed afresh.
"""

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models import tables

from benchmarks.machine import machine_description
from benchmarks.timing import MATRIX_COPIES, Probabilities, time_side_by_side
from dftopk_tf import peers, selection_autotune
from dftopk_tf.ops import dftopk
from dftopk_tf.selection import resolve_selection

#: The sizes of the full run and of ``--quick``.
FULL_SIZES: tuple[int, ...] = (100, 1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES: tuple[int, ...] = (100, 1_000, 10_000)
#: Default cap on batch * n: about the same work per pass from n = 10,000 up (256 x 10,000,
#: 40 x 100,000, 4 x 1,000,000); the sorting peers keep about 20 [batch, 2n] tensors at once.
DEFAULT_MAX_ELEMENTS = 4_000_000

DFTOPK = "dftopk"
DFTOPK_SPREAD = "dftopk spread"
RADIX_XLA = "radix xla"
RADIX = "radix"
BRACKET_XLA = "bracket xla"
BRACKET = "bracket"
TOP_K_XLA = "top_k xla"
TOP_K = "top_k"
SIGMOID = "sigmoid"
SIGMOID_XLA = "sigmoid xla"
#: DFTopK's threshold paths, (selection, jit_compile) by column name; the winner is one of these.
THRESHOLD_PATHS: dict[str, tuple[str, bool]] = {
    RADIX_XLA: ("radix", True),
    RADIX: ("radix", False),
    BRACKET_XLA: ("bracket", True),
    BRACKET: ("bracket", False),
    TOP_K_XLA: ("top_k", True),
    TOP_K: ("top_k", False),
}
#: The top_k paths the default must not be slower than.
TOP_K_PATHS: tuple[str, ...] = (TOP_K_XLA, TOP_K)
#: The default may take up to this much more time than the fastest top_k path (the goal's slack).
DEFAULT_SLACK = 0.10


@dataclass(frozen=True)
class Contender:
    """An operator in the table: how to build it for k, XLA for the whole pass, when to skip.

    Example:
        >>> Contender("sigmoid", lambda k: tf.sigmoid).skip_reason(256, 10**6, 2.0, 1e9) is None
        True
    """

    name: str
    build: Callable[[int], Probabilities]
    jit_compile: bool = False
    cost: str = "O(n)"
    peer: bool = False

    def skip_reason(
        self, batch: int, n: int, matrix_memory_gb: float, cubic_work: float
    ) -> str | None:
        """Why this contender is not run at this size (None when it is run)."""
        if self.cost in ("O(n^2)", "O(n^3)"):
            matrix_bytes = 4 * MATRIX_COPIES * batch * n * n
            if matrix_bytes > matrix_memory_gb * 2**30:
                return "skipped (O(n^2) memory)"
        if self.cost == "O(n^3)" and batch * n**3 > cubic_work:
            return "skipped (O(n^3) time)"
        return None


def _threshold_path(selection: str, jit_compile: bool) -> Callable[[int], Probabilities]:
    return lambda k: lambda s: dftopk(s, k, selection=selection, jit_compile=jit_compile)


CONTENDERS: tuple[Contender, ...] = (
    Contender(DFTOPK, lambda k: lambda s: dftopk(s, k)),
    *(
        Contender(name, _threshold_path(selection, jit_compile))
        for name, (selection, jit_compile) in THRESHOLD_PATHS.items()
    ),
    Contender(DFTOPK_SPREAD, lambda k: lambda s: dftopk(s, k, threshold_gradient="spread")),
    Contender(SIGMOID, lambda k: tf.sigmoid),
    Contender(SIGMOID_XLA, lambda k: tf.sigmoid, jit_compile=True),
    Contender("lapsum", lambda k: lambda s: peers.lapsum(s, k), cost="O(n log n)", peer=True),
    Contender(
        "sparse_topk", lambda k: lambda s: peers.sparse_topk(s, k), cost="O(n log n)", peer=True
    ),
    Contender(
        "lcron_neuralsort",
        lambda k: lambda s: peers.lcron_neuralsort(s, k),
        cost="O(n^2)",
        peer=True,
    ),
    Contender(
        "lcron_softsort", lambda k: lambda s: peers.lcron_softsort(s, k), cost="O(n^2)", peer=True
    ),
    Contender(
        "lcron_diffsort", lambda k: lambda s: peers.lcron_diffsort(s, k), cost="O(n^3)", peer=True
    ),
)


@dataclass(frozen=True)
class TableRow:
    """One (n, k) row of the table: batch and, per contender, median ms or a skip reason.

    ``default_path`` is the path the default took (the function ``default_path``), "-" where
    the default was not run.

    Example:
        >>> TableRow(100, 10, 256, {"sigmoid": 0.1}).cells["sigmoid"]
        0.1
    """

    n: int
    k: int
    batch: int
    cells: dict[str, float | str]
    default_path: str = "-"

    def ratio(self, numerator: str, denominator: str) -> str:
        """``numerator / denominator`` to two decimals, or "-" when either was skipped.

        Either name may be a tuple of columns: the fastest of them is used.
        """
        value = self.time_ratio(numerator, denominator)
        return "-" if value is None else f"{value:.2f}x"

    def time_ratio(
        self, numerator: str | Sequence[str], denominator: str | Sequence[str]
    ) -> float | None:
        """``numerator / denominator`` (fastest of each group), None when either was skipped."""
        top, bottom = self.fastest(numerator), self.fastest(denominator)
        if top is None or bottom is None:
            return None
        return self.cells[top] / self.cells[bottom]

    def fastest(self, names: str | Sequence[str]) -> str | None:
        """The column among ``names`` with the smallest time (None when none was timed)."""
        names = (names,) if isinstance(names, str) else names
        timed = [name for name in names if isinstance(self.cells.get(name), float)]
        return min(timed, key=lambda name: self.cells[name], default=None)


def batch_for(n: int, batch: int, max_elements: int) -> int:
    """The batch for rows of n items: ``batch``, reduced so that batch * n <= ``max_elements``.

    Example:
        >>> batch_for(100_000, 256, 10_000_000)
        100
    """
    return max(1, min(batch, max_elements // n))


def default_path(n: int, k: int) -> str:
    """The path the default took for rows of n items and this k, and why: "timed" or "rule".

    "timed": the autotuner's cached winner (``dftopk_tf.selection_autotune``); "rule": the
    timing-free rule (outside the timed range, ``DFTOPK_TF_AUTOTUNE=0``, or timing failed).

    Example:
        >>> default_path(100, 10)
        'radix xla (rule)'
    """
    path = resolve_selection("auto", n, k, jit_compile=True)
    timed = (
        selection_autotune.is_autotuned(n, k)
        and selection_autotune.autotune_enabled()
        and selection_autotune.cached_winner(n, k) == path
    )
    return f"{selection_autotune.candidate_name(path)} ({'timed' if timed else 'rule'})"


#: ``--ks`` value standing for k = n / 2.
HALF = "half"


def k_values(n: int, ks: Sequence[int | str]) -> list[int]:
    """The k of each row for rows of n items: each of ``ks`` below n, and n // 2 for "half".

    Example:
        >>> k_values(100, [10, 1000, "half"])
        [10, 50]
    """
    chosen = {n // 2 if k == HALF else k for k in ks}
    return sorted(k for k in chosen if 1 <= k < n) or [n - 1]


def run_benchmark(
    sizes: Sequence[int],
    batch: int,
    repeats: int,
    warmup: int,
    max_elements: int,
    matrix_memory_gb: float,
    cubic_work: float,
    report: Callable[[str], None] = print,
    with_peers: bool = True,
    ks: Sequence[int | str] = (10, HALF),
) -> list[TableRow]:
    """Times every contender for each n in ``sizes`` and k in ``k_values(n, ks)``; the rows.

    Example:
        >>> rows = run_benchmark([20], 4, 1, 0, 10**6, 1.0, 1e9, report=lambda line: None)
        >>> [(row.n, row.k) for row in rows]
        [(20, 10)]
    """
    contenders = [c for c in CONTENDERS if with_peers or not c.peer]
    rows = []
    for n in sizes:
        row_batch = batch_for(n, batch, max_elements)
        scores = tf.random.stateless_normal([row_batch, n], seed=[n, 0])
        for k in k_values(n, ks):
            skipped = {
                contender.name: reason
                for contender in contenders
                if (reason := contender.skip_reason(row_batch, n, matrix_memory_gb, cubic_work))
            }
            operators = {
                contender.name: (contender.build(k), contender.jit_compile)
                for contender in contenders
                if contender.name not in skipped
            }
            report(f"n={n} k={k} batch={row_batch}: timing {', '.join(operators)}")
            if DFTOPK in operators:  # the default's one-time autotuning, before any warm-up
                operators[DFTOPK][0](scores).numpy()
            cells: dict[str, float | str] = dict(skipped)
            cells.update(time_side_by_side(operators, scores, repeats, warmup))
            path = default_path(n, k) if DFTOPK in operators else "-"
            rows.append(TableRow(n, k, row_batch, cells, path))
    return rows


def timing_table(rows: Sequence[TableRow]) -> str:
    """The rows as a markdown table: medians (ms), the winner and the default's ratios.

    "default path" is the path the default took (``default_path``); "winner" is the fastest
    threshold path; "dftopk / best top_k" divides the default by the faster top_k path (with or
    without XLA); "dftopk / sigmoid" divides the default by the faster sigmoid.

    Example:
        >>> print(timing_table([]).splitlines()[0][:24])
        | n | k | batch | dftopk
    """
    names = list(dict.fromkeys(name for row in rows for name in row.cells)) or [
        contender.name for contender in CONTENDERS
    ]
    header = [
        "n",
        "k",
        "batch",
        *names,
        "default path",
        "winner",
        "dftopk / best top_k",
        "dftopk / sigmoid",
    ]
    table = []
    for row in rows:
        cells = [
            f"{value:.2f}" if isinstance(value, float) else value
            for value in (row.cells[name] for name in names)
        ]
        summary = [
            row.default_path,
            row.fastest(tuple(THRESHOLD_PATHS)) or "-",
            row.ratio(DFTOPK, TOP_K_PATHS),
            row.ratio(DFTOPK, (SIGMOID, SIGMOID_XLA)),
        ]
        table.append([str(row.n), str(row.k), str(row.batch), *cells, *summary])
    return tables.markdown_table(header, table)


def default_check(rows: Sequence[TableRow], slack: float = DEFAULT_SLACK) -> str:
    """One line: is the default within ``slack`` of the fastest top_k path in every row?

    Example:
        >>> cells = {DFTOPK: 1.05, TOP_K_XLA: 1.0, TOP_K: 2.0}
        >>> default_check([TableRow(10_000, 10, 4, cells)])
        'default / best top_k path <= 1.10x in every row (1 rows): yes'
    """
    ratios = [(row, row.time_ratio(DFTOPK, TOP_K_PATHS)) for row in rows]
    timed = [(row, ratio) for row, ratio in ratios if ratio is not None]
    slower = [f"n={row.n} k={row.k} {ratio:.2f}x" for row, ratio in timed if ratio > 1 + slack]
    verdict = f"no: {', '.join(slower)}" if slower else "yes"
    return (
        f"default / best top_k path <= {1 + slack:.2f}x in every row ({len(timed)} rows): {verdict}"
    )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_ops",
        description="Forward+backward time of DFTopK's threshold paths (radix, bracket and top_k, "
        "with and without XLA, and the default selection='auto'), a plain sigmoid and the peer "
        "operators, for k in --ks; prints a markdown table of medians, the winner and ratios.",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help=f"row lengths n (default {list(FULL_SIZES)}; with --quick {list(QUICK_SIZES)})",
    )
    parser.add_argument(
        "--ks",
        nargs="+",
        default=["10", HALF],
        help=f"values of k: integers, or '{HALF}' for n/2; values >= n are left out (default "
        f"10 {HALF})",
    )
    parser.add_argument(
        "--batch-size", type=int, default=256, help="rows per pass, at most (default 256)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed passes per operator, median reported (default 7; with --quick 3)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed passes per operator first: tracing and XLA compilation (default 2)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: sizes up to 10,000 and 3 repeats (explicit flags still win)",
    )
    parser.add_argument(
        "--max-elements",
        type=int,
        default=DEFAULT_MAX_ELEMENTS,
        help="cap on batch * n: the batch is reduced for large n, for about the same work per "
        f"pass (default {DEFAULT_MAX_ELEMENTS:,}: batch 40 at n = 100,000, 4 at 1,000,000)",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="time only DFTopK's paths and the sigmoid floor (leave out the peer operators)",
    )
    parser.add_argument(
        "--matrix-memory-gb",
        type=float,
        default=2.0,
        help="skip the O(n^2) peers when their n x n matrices would need more (default 2.0)",
    )
    parser.add_argument(
        "--cubic-work",
        type=float,
        default=3e8,
        help="skip DiffSort (O(n^3) time) when batch * n^3 exceeds this (default 3e8)",
    )
    args = add_entry_flags(parser).parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if min(args.sizes) < 2 or args.batch_size < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("need every size >= 2, --batch-size >= 1, --repeats >= 1 and --warmup >= 0")
    if any(k != HALF and not (k.isdigit() and int(k) >= 1) for k in args.ks):
        parser.error(f"--ks takes integers >= 1 or '{HALF}', got {' '.join(args.ks)}")
    args.ks = [k if k == HALF else int(k) for k in args.ks]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m benchmarks.bench_ops --help``."""
    args = _parse_args(argv)
    print(machine_description())
    autotune = os.environ.get(selection_autotune.AUTOTUNE_ENV, "1 (unset)")
    print(
        f"{selection_autotune.AUTOTUNE_ENV}={autotune}, autotune cache file "
        f"{selection_autotune.cache_path()}"
    )
    print(
        f"sizes n={args.sizes}, k in {args.ks} (half: n/2), batch {args.batch_size} (at most "
        f"{args.max_elements:,} scores per pass), median of {args.repeats} after "
        f"{args.warmup} warm-up passes"
    )
    rows = run_benchmark(
        args.sizes,
        args.batch_size,
        args.repeats,
        args.warmup,
        args.max_elements,
        args.matrix_memory_gb,
        args.cubic_work,
        with_peers=not args.no_peers,
        ks=args.ks,
    )
    print()
    print(timing_table(rows))
    print()
    print(default_check(rows))
    print(f"load average after the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.bench_ops")
