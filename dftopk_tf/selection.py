"""Linear-time selection: the k-th and (k+1)-th largest value of every row, without a sort.

DFTopK needs only two order statistics per row. ``tf.math.top_k(x, k + 1)`` finds them in
O(n log k) (a heap on CPU); this module finds them in O(n) with a radix bisection over an
order-preserving integer view of the floats:

1. ``order_keys`` maps each float32 to an int32 whose signed order is the float order
   (-0.0 and +0.0 share one key; padded items and NaN get ``ABSENT_KEY``, below every real key).
2. The k-th largest key is the largest t with ``count(keys >= t) >= k``. It is built bit by bit
   from the sign bit down (``key_passes.radix_kth_key``): 32 counting passes over the row, each a
   compare and a row count, with no data-dependent control flow.
3. One more pass gives the (k+1)-th largest: it equals the k-th when ``count(keys >= kth) > k``
   (a tie), else it is ``max(keys < kth)``.

``selection="bracket"`` (``dftopk_tf.bracket_select``) finds the same keys with fewer passes over
long rows: a sorted sample of each row brackets the k-th key, bisection over the sample's
positions narrows the bracket to two adjacent sample keys, and the few keys between them are
gathered and radix-selected; rows under ``BRACKET_MIN_N`` items and batches where a bracket
overflows its buffer take the radix select.

``selection="auto"``, the default of the public functions, takes ``tf.math.top_k`` instead where
it measured faster: a k bounded by a constant in long rows (``resolve_selection``), which keeps
the search O(n). Whether XLA's top_k or TF's own top_k kernel is the faster one depends on the
CPU: XLA's won on a CPU with AVX-512, and on AVX2 measurements disagreed, so under XLA on a CPU
``"auto"`` times the candidates once per shape bucket and takes the fastest
(``dftopk_tf.selection_autotune``), with the rule as its fallback.

The public functions compile their row computation with XLA by default (``jit_compile=True``),
which fuses each pass into one loop; pass ``jit_compile=False`` for graphs that must run where XLA
is unavailable (a stock TF Serving model server, for instance). TensorFlow's CPU kernels flush
subnormal floats to zero, so subnormal scores rank as 0.

Example:
    >>> scores = tf.constant([[0.1, 0.9, 0.5, 0.7]])
    >>> kth, next_kth = kth_largest_pair(scores, k=2)
    >>> kth.numpy().tolist(), next_kth.numpy().tolist()
    ([0.699999988079071], [0.5])
"""

import numpy as np
import tensorflow as tf

from dftopk_tf.bracket_select import bracket_kth_key_pair
from dftopk_tf.key_passes import (
    ABSENT_KEY,
    MAX_KEY,
    first_true_index,
    order_keys,
    radix_kth_key_pair,
    row_count,
    values_of_keys,
)
from dftopk_tf.masking import resolve_mask

#: Threshold searches accepted by ``selection=``: the fastest path for the call
#: (``resolve_selection``), the linear radix select, the sample-bracket search (linear, radix
#: fallback) and ``tf.math.top_k``.
SELECTIONS: tuple[str, ...] = ("auto", "radix", "bracket", "top_k")
#: ``selection="auto"`` with XLA: XLA's top_k for rows of at least ``n`` items and k <= ``max_k``,
#: as (n, max_k) pairs, else the radix select (``resolve_selection``).
AUTO_XLA_TOP_K: tuple[tuple[int, int], ...] = ((10_000, 16), (30_000, 128), (100_000, 256))
#: ``selection="auto"`` without XLA: TF's top_k kernel for k up to this, else the radix select.
AUTO_KERNEL_MAX_K: int = 64
#: ``selection="auto"``: where it takes no top_k, the sample bracket in rows of at least this many
#: items (it beat the radix select in 9 of 10 such rows measured), else the radix select.
AUTO_BRACKET_MIN_N: int = 100_000


def _top_k_kth_key_pair(
    keys: tf.Tensor, k: tf.Tensor, requested_k: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """The same pair through ``tf.math.top_k`` (O(n log k)) on the keys' float values.

    Two things keep XLA's CPU top_k a fast partial selection that compiles in milliseconds: its
    width comes from ``requested_k`` (the caller's k, not ``k``, which is clipped to each row's
    real count: a width that depends on the data costs minutes of constant folding at
    n = 10,000), and it runs on float32 (on int32 it sorts the row). Absent items become -inf,
    which never displaces a real item's value (``k`` <= the real count), and ``order_keys`` maps
    the values found back to the same keys (it merges -0.0 and +0.0, as the keys do).
    """
    n = tf.shape(keys)[-1]
    width = tf.minimum(tf.maximum(tf.reduce_max(requested_k), 1) + 1, n)
    values = tf.where(keys > ABSENT_KEY, values_of_keys(keys), float("-inf"))
    top = order_keys(tf.math.top_k(values, k=width, sorted=True).values)
    kth = tf.gather(top, tf.maximum(k - 1, 0), batch_dims=1)
    next_index = tf.minimum(k, width - 1)
    next_kth = tf.where(k < n, tf.gather(top, next_index, batch_dims=1), ABSENT_KEY)
    return kth, next_kth


def _key_pair(
    selection: str, keys: tf.Tensor, k: tf.Tensor, key_count: tf.Tensor, requested_k: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Dispatches the search (``k`` clipped to the key count); ``"bracket"`` may fall back."""
    if selection == "bracket":
        return bracket_kth_key_pair(keys, k, key_count)
    if selection == "top_k":
        return _top_k_kth_key_pair(keys, k, requested_k)
    return radix_kth_key_pair(keys, k)


def check_selection(selection: str) -> str:
    """Returns ``selection`` if it is one of ``SELECTIONS``, else raises ``ValueError``.

    Example:
        >>> check_selection("radix")
        'radix'
    """
    if selection not in SELECTIONS:
        raise ValueError(
            f"unknown selection method {selection!r} (threshold search); expected one of "
            f"{SELECTIONS}"
        )
    return selection


def renamed_selection(config: dict) -> dict:
    """A copy of a layer's config with the earlier key ``method`` (the threshold search) renamed.

    Keras files and SavedModels saved by earlier versions store ``"method": "radix"``;
    ``from_config`` passes their config through this so that they still load.

    Example:
        >>> renamed_selection({"k": 2, "method": "top_k"})
        {'k': 2, 'selection': 'top_k'}
    """
    config = dict(config)
    if "method" in config:
        config.setdefault("selection", config.pop("method"))
    return config


def resolve_selection(
    selection: str,
    n: int | None,
    k: int | None,
    jit_compile: bool,
    device: str = "CPU",
    autotune: bool = True,
) -> tuple[str, bool]:
    """The (selection, jit_compile) that runs: ``selection`` itself, or for ``"auto"`` the fastest.

    The timing-free rule for ``"auto"`` comes from ``python -m benchmarks.bench_ops --no-peers
    --ks 10 100 1000 half`` (CHANGELOG.md, "Threshold paths" and "Portability"), forward+backward
    on CPU, n = 100 .. 1,000,000:

    - with XLA (``jit_compile``): XLA's top_k for k <= 16 in rows of n >= 10,000 items, k <= 128
      from n = 30,000 and k <= 256 from n = 100,000 (``AUTO_XLA_TOP_K``). XLA's CPU top_k is a
      partial selection that costs more as k grows (at k = n/2 it took several times the radix
      select's time), and it lost to the radix select at every k for n <= 1,000. It won on a CPU
      with AVX-512. On AVX2 CPUs, runs at k = 10 disagreed on whether it or TF's top_k kernel
      without XLA is the faster (issue 28's table; CHANGELOG.md, 2026-12-03, the idle AVX2 run
      and the autotuner's runs): XLA's top_k is the rule on every CPU because over all those runs
      its worst case (where TF's kernel won) is milder than the kernel's (where XLA's won);
    - without XLA: TF's top_k kernel for k <= ``AUTO_KERNEL_MAX_K`` (it won at k = 10 at every
      n; at k = n/2 it sorts the row, several times slower than the radix select);
    - otherwise the sample bracket (``"bracket"``) in rows of n >= ``AUTO_BRACKET_MIN_N``, else
      the radix select.

    Both top_k branches have k bounded by a constant, so ``"auto"`` stays O(n) per row. n or k
    unknown while the graph is built (None) count as short rows and large k; a per-row k counts
    by its largest value. On a GPU (``device`` "GPU", not measured here) ``"auto"`` takes
    ``("top_k", jit_compile)`` for a known k: TF's and XLA's GPU top_k are radix selects
    already. Every path gives the same values and gradients.

    Where the rule is uncertain, it is the fallback of a one-time timing
    (``dftopk_tf.selection_autotune``): on a CPU, with ``jit_compile``, for a known k <= 256 in
    rows of a known n >= 10,000, the first call per (n, k) bucket times XLA's top_k, TF's top_k
    kernel without XLA and the linear path above, and every call takes the fastest; the winner
    is cached in memory and on disk per machine. ``DFTOPK_TF_AUTOTUNE=0`` switches the timing
    off, and so does ``autotune=False`` (tests pin the rule with it): the rule alone decides.
    Where timing fails, a warning says why and the rule decides.

    Example:
        >>> resolve_selection("auto", 1_000_000, 10, jit_compile=True, autotune=False)
        ('top_k', True)
        >>> resolve_selection("auto", 200, 10, jit_compile=True)
        ('radix', True)
        >>> resolve_selection("auto", 1_000_000, 500_000, jit_compile=False)
        ('bracket', False)
    """
    check_selection(selection)
    if selection != "auto":
        return selection, jit_compile
    on_cpu = device.upper() != "GPU"
    rule = _auto_rule(n, k, jit_compile, on_cpu)
    if autotune and jit_compile and on_cpu and n is not None and k is not None:
        # Imported here: the autotuner times dftopk_tf.ops, which imports this module.
        from dftopk_tf.selection_autotune import autotuned_selection

        return autotuned_selection(n, k, rule)
    return rule


def _auto_rule(n: int | None, k: int | None, jit_compile: bool, on_cpu: bool) -> tuple[str, bool]:
    """``resolve_selection``'s timing-free rule for ``"auto"``."""
    if k is not None:
        if not on_cpu:
            return "top_k", jit_compile
        if not jit_compile and k <= AUTO_KERNEL_MAX_K:
            return "top_k", False
        if jit_compile and n is not None:
            if any(n >= min_n and k <= top for min_n, top in AUTO_XLA_TOP_K):
                return "top_k", True
    long_rows = n is not None and n >= AUTO_BRACKET_MIN_N
    return ("bracket" if long_rows else "radix"), jit_compile


def static_k(k: int | tf.Tensor) -> int | None:
    """The largest k as a Python int when it is known while the graph is built, else None.

    Example:
        >>> static_k(3), static_k(tf.constant([2, 5]))
        (3, 5)
    """
    if isinstance(k, int):
        return k
    value = tf.get_static_value(k)
    return None if value is None or np.size(value) == 0 else int(np.max(value))


def placement(tensor: tf.Tensor) -> str:
    """``"GPU"`` where ``tensor`` lives (or, when unplaced, will run) on a GPU, else ``"CPU"``.

    Example:
        >>> placement(tf.zeros([2])) in ("CPU", "GPU")
        True
    """
    device = getattr(tensor, "device", "") or ""
    if device:
        return "GPU" if "GPU" in device.upper() else "CPU"
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def flatten_rows(scores: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reshapes [..., n] scores to [rows, n]; returns them and the batch shape [...] to undo it.

    Example:
        >>> rows, batch_shape = flatten_rows(tf.zeros([2, 3, 5]))
        >>> rows.shape.as_list(), batch_shape.numpy().tolist()
        ([6, 5], [2, 3])
    """
    batch_shape = tf.shape(scores)[:-1]
    return tf.reshape(scores, [-1, tf.shape(scores)[-1]]), batch_shape


def row_keys(
    scores: tf.Tensor, mask: tf.Tensor | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Keys of real items (``ABSENT_KEY`` elsewhere), real-item counts, NaN flags, key counts.

    ``scores`` and ``mask`` are [rows, n] (``mask`` None: every item is real); a NaN on a real
    item sets the row's flag. The last output counts each row's keys (its real, non-NaN items),
    for ``kth_key_pair``.

    Example:
        >>> scores = tf.constant([[1.0, 2.0, float("nan")]])
        >>> keys, real, has_nan, key_count = row_keys(scores, tf.constant([[True, False, True]]))
        >>> real.numpy().tolist(), has_nan.numpy().tolist(), key_count.numpy().tolist()
        ([2], [True], [1])
    """
    present = tf.logical_not(tf.math.is_nan(scores))
    if mask is not None:
        present = tf.logical_and(mask, present)
    keys = tf.where(present, order_keys(scores), ABSENT_KEY)
    if mask is None:
        real_count = tf.fill(tf.shape(scores)[:1], tf.shape(scores)[1])
    else:
        real_count = row_count(mask)
    key_count = row_count(keys > ABSENT_KEY)
    return keys, real_count, key_count < real_count, key_count


def rows_k(k: int | tf.Tensor, batch_shape: tf.Tensor) -> tf.Tensor:
    """Broadcasts k (a Python int or an int tensor of the batch shape) to one int32 per row.

    Example:
        >>> rows_k(2, tf.constant([3])).numpy().tolist()
        [2, 2, 2]
    """
    k = tf.convert_to_tensor(k)
    if not k.dtype.is_integer:
        raise TypeError(f"k must be an integer or an integer tensor, got dtype {k.dtype.name}")
    # Clip before narrowing: a k beyond int32 selects everything, like any k >= n.
    k = tf.cast(tf.minimum(tf.cast(k, tf.int64), MAX_KEY), tf.int32)
    return tf.reshape(tf.broadcast_to(k, batch_shape), [-1])


def kth_key_pair(
    keys: tf.Tensor, k: tf.Tensor, selection: str = "radix", key_count: tf.Tensor | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """k-th and (k+1)-th largest key per row of ``keys`` [rows, n] (``ABSENT_KEY`` where missing).

    ``selection="auto"`` here (inside a computation that is already compiled or not) takes
    ``resolve_selection``'s rule for a k unknown while the graph is built: the sample bracket in
    rows of ``AUTO_BRACKET_MIN_N`` items or more, else the radix select.

    ``k`` is [rows] (k >= 1); where a row has fewer than k (k+1) real items the k-th ((k+1)-th)
    key is ``ABSENT_KEY``. ``key_count`` [rows], each row's count of keys above ``ABSENT_KEY``,
    saves a pass where the caller has it already.

    Example:
        >>> keys = order_keys(tf.constant([[3.0, 1.0, 2.0]]))
        >>> kth, nxt = kth_key_pair(keys, tf.constant([1]))
        >>> values_of_keys(kth).numpy().tolist(), values_of_keys(nxt).numpy().tolist()
        ([3.0], [2.0])
    """
    selection, _ = resolve_selection(selection, keys.shape[-1], None, jit_compile=False)
    real_count = row_count(keys > ABSENT_KEY) if key_count is None else key_count
    safe_k = tf.clip_by_value(k, 1, tf.maximum(real_count, 1))
    kth, next_kth = _key_pair(selection, keys, safe_k, real_count, k)
    kth = tf.where(tf.logical_and(k >= 1, k <= real_count), kth, ABSENT_KEY)
    next_kth = tf.where(tf.logical_and(k >= 1, k < real_count), next_kth, ABSENT_KEY)
    return kth, next_kth


def kth_largest_pair(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None = None,
    selection: str = "auto",
    jit_compile: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The k-th and (k+1)-th largest real score of every row, in O(n) per row.

    Args:
        scores: float tensor [..., n] (computed in float32).
        k: Python int >= 1, or an int tensor of shape [...] (one k per row).
        mask: optional bool [..., n], True for real items; padded items take no part.
        selection: threshold search: ``"auto"`` (default: the fastest path,
            ``resolve_selection``), ``"radix"`` (linear), ``"bracket"`` (linear: a sample
            bracket, then the radix select on the few keys inside it) or ``"top_k"``
            (``tf.math.top_k``).
        jit_compile: allow XLA: compile the row computation (``"auto"`` may decline).

    Returns:
        Two float32 tensors of shape [...]. Where a row has fewer than k (k+1) real items the
        k-th ((k+1)-th) value is -inf; a row with a NaN real score gets NaN for both.

    Example:
        >>> kth, nxt = kth_largest_pair(tf.constant([[4.0, 1.0, 3.0, 2.0]]), k=3)
        >>> kth.numpy().tolist(), nxt.numpy().tolist()
        ([2.0], [1.0])
    """
    scores = tf.cast(tf.convert_to_tensor(scores), tf.float32)
    selection, jit_compile = resolve_selection(
        selection, scores.shape[-1], static_k(k), jit_compile, placement(scores)
    )
    mask = resolve_mask(scores, mask)
    flat_scores, batch_shape = flatten_rows(scores)
    flat_mask = tf.reshape(mask, tf.shape(flat_scores))
    rows = _COMPILED_PAIR_ROWS if jit_compile else _kth_largest_pair_rows
    kth, next_kth = rows(flat_scores, flat_mask, rows_k(k, batch_shape), selection)
    return tf.reshape(kth, batch_shape), tf.reshape(next_kth, batch_shape)


def _kth_largest_pair_rows(
    scores: tf.Tensor, mask: tf.Tensor, k: tf.Tensor, selection: str
) -> tuple[tf.Tensor, tf.Tensor]:
    keys, _, has_nan, key_count = row_keys(scores, mask)
    pair = []
    for key in kth_key_pair(keys, k, selection, key_count):
        value = tf.where(key > ABSENT_KEY, values_of_keys(key), float("-inf"))
        pair.append(tf.where(has_nan, float("nan"), value))
    return pair[0], pair[1]


_COMPILED_PAIR_ROWS = tf.function(_kth_largest_pair_rows, jit_compile=True, autograph=False)


def occurrence_index(keys: tf.Tensor, target: tf.Tensor, occurrence: tf.Tensor) -> tf.Tensor:
    """Index of the ``occurrence``-th (1-based, by position) item whose key equals ``target``.

    Rows: ``keys`` [rows, n], ``target`` and ``occurrence`` [rows]. Rows where the occurrence does
    not exist get index n. The cheap first-occurrence path is taken unless some row needs a later
    occurrence (ties), which needs a cumulative count.

    Example:
        >>> keys = tf.constant([[5, 7, 5, 5]])
        >>> occurrence_index(keys, tf.constant([5]), tf.constant([2])).numpy().tolist()
        [2]
    """
    n = tf.shape(keys)[-1]
    equal = tf.equal(keys, target[:, tf.newaxis])

    def first() -> tf.Tensor:
        return tf.where(occurrence == 1, first_true_index(equal), n)

    def any_occurrence() -> tf.Tensor:
        running = tf.cumsum(tf.cast(equal, tf.int32), axis=-1)
        return first_true_index(tf.logical_and(equal, tf.equal(running, occurrence[:, tf.newaxis])))

    return tf.cond(tf.reduce_any(occurrence > 1), any_occurrence, first)


def topk_mask_of_keys(keys: tf.Tensor, k: tf.Tensor, kth_key: tf.Tensor) -> tf.Tensor:
    """Exact top-k mask of [rows, n] keys given each row's k-th key; ties to the lower index.

    Example:
        >>> keys = tf.constant([[1, 3, 3, 2]])
        >>> topk_mask_of_keys(keys, tf.constant([2]), tf.constant([3])).numpy().tolist()
        [[False, True, True, False]]
    """
    present = keys > ABSENT_KEY
    above = tf.logical_and(keys > kth_key[:, tf.newaxis], present)
    at_kth = tf.logical_and(tf.equal(keys, kth_key[:, tf.newaxis]), present)
    room_at_kth = k - row_count(above)

    def keep_all_ties() -> tf.Tensor:
        return tf.logical_or(above, at_kth)

    def keep_first_ties() -> tf.Tensor:
        running = tf.cumsum(tf.cast(at_kth, tf.int32), axis=-1)
        kept_ties = tf.logical_and(at_kth, running <= room_at_kth[:, tf.newaxis])
        return tf.logical_or(above, kept_ties)

    too_many_ties = row_count(at_kth) > room_at_kth
    return tf.cond(tf.reduce_any(too_many_ties), keep_first_ties, keep_all_ties)


def topk_mask(
    values: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None = None,
    jit_compile: bool = True,
) -> tf.Tensor:
    """Boolean mask of the k largest real values of each row (ties broken by the lower index).

    Selects exactly ``min(k, real count)`` real items per row, the same items as
    ``tf.math.top_k``, in O(n). NaN values are never selected.

    Args:
        values: float tensor [..., n].
        k: Python int >= 1, or an int tensor of shape [...].
        mask: optional bool [..., n], True for real items.
        jit_compile: compile the row computation with XLA.

    Example:
        >>> topk_mask(tf.constant([[0.2, 0.9, 0.9, 0.1]]), k=2).numpy().tolist()
        [[False, True, True, False]]
    """
    values = tf.cast(tf.convert_to_tensor(values), tf.float32)
    mask = resolve_mask(values, mask)
    flat_values, batch_shape = flatten_rows(values)
    flat_mask = tf.reshape(mask, tf.shape(flat_values))
    rows = _COMPILED_TOPK_MASK_ROWS if jit_compile else _topk_mask_rows
    selected = rows(flat_values, flat_mask, rows_k(k, batch_shape))
    return tf.reshape(selected, tf.shape(values))


def _topk_mask_rows(values: tf.Tensor, mask: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    keys, _, _, key_count = row_keys(values, mask)
    k = tf.minimum(k, key_count)
    kth_key, _ = kth_key_pair(keys, k, key_count=key_count)
    return topk_mask_of_keys(keys, k, kth_key)


_COMPILED_TOPK_MASK_ROWS = tf.function(_topk_mask_rows, jit_compile=True, autograph=False)
