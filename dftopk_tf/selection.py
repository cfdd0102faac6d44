"""Linear-time selection: the k-th and (k+1)-th largest value of every row, without a sort.

DFTopK needs only two order statistics per row. ``tf.math.top_k(x, k + 1)`` finds them in
O(n log k) (a heap on CPU); this module finds them in O(n) with a radix bisection over an
order-preserving integer view of the floats:

1. ``order_keys`` maps each float32 to an int32 whose signed order is the float order
   (-0.0 and +0.0 share one key; padded items and NaN get ``ABSENT_KEY``, below every real key).
2. The k-th largest key is the largest t with ``count(keys >= t) >= k``. It is built bit by bit
   from the sign bit down: 32 counting passes over the row, each a compare and a sum that XLA
   fuses into one loop, with no data-dependent control flow.
3. One more pass gives the (k+1)-th largest: it equals the k-th when ``count(keys >= kth) > k``
   (a tie), else it is ``max(keys < kth)``.

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

from collections.abc import Callable

import tensorflow as tf

from dftopk_tf.masking import resolve_mask

#: Key of padded items and NaN scores: below the key of every real float, -inf included.
ABSENT_KEY: int = -(2**31)
_MAX_KEY: int = 2**31 - 1
_LOW_31_BITS: int = 0x7FFFFFFF

#: Names accepted by ``method=``: the linear radix select and the ``tf.math.top_k`` reference.
SELECTION_METHODS: tuple[str, ...] = ("radix", "top_k")


def order_keys(values: tf.Tensor) -> tf.Tensor:
    """Maps float32 values to int32 keys with the same order (-0.0 and +0.0 get the same key).

    Example:
        >>> keys = order_keys(tf.constant([-2.0, -0.0, 0.0, 1.5]))
        >>> bool(tf.reduce_all(keys[1:] >= keys[:-1]))
        True
    """
    values = tf.where(tf.equal(values, 0.0), tf.zeros_like(values), values)
    bits = tf.bitcast(values, tf.int32)
    return tf.where(bits < 0, tf.bitwise.bitwise_xor(bits, _LOW_31_BITS), bits)


def values_of_keys(keys: tf.Tensor) -> tf.Tensor:
    """Inverts ``order_keys``: int32 keys back to their float32 values.

    Example:
        >>> values_of_keys(order_keys(tf.constant([-1.5, 2.0]))).numpy().tolist()
        [-1.5, 2.0]
    """
    bits = tf.where(keys < 0, tf.bitwise.bitwise_xor(keys, _LOW_31_BITS), keys)
    return tf.bitcast(bits, tf.float32)


def _count_at_least(keys: tf.Tensor, threshold: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(keys >= threshold[:, tf.newaxis], tf.int32), axis=-1)


def _radix_kth_key_pair(keys: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """k-th and (k+1)-th largest key per row of ``keys`` [rows, n]; needs 1 <= k <= real count."""
    kth = tf.fill(tf.shape(k), tf.constant(ABSENT_KEY, tf.int32))
    # The sign bit first: is the k-th largest key non-negative?
    candidate = tf.zeros_like(kth)
    kth = tf.where(_count_at_least(keys, candidate) >= k, candidate, kth)
    for bit in range(30, -1, -1):
        candidate = tf.bitwise.bitwise_or(kth, tf.constant(1 << bit, tf.int32))
        kth = tf.where(_count_at_least(keys, candidate) >= k, candidate, kth)
    at_least_kth = keys >= kth[:, tf.newaxis]
    tied_beyond_k = tf.reduce_sum(tf.cast(at_least_kth, tf.int32), axis=-1) > k
    below_kth = tf.reduce_max(tf.where(at_least_kth, ABSENT_KEY, keys), axis=-1)
    return kth, tf.where(tied_beyond_k, kth, below_kth)


def _top_k_kth_key_pair(keys: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reference: the same pair through ``tf.math.top_k`` (O(n log k))."""
    n = tf.shape(keys)[-1]
    width = tf.minimum(tf.reduce_max(k) + 1, n)
    top = tf.math.top_k(keys, k=width, sorted=True).values
    kth = tf.gather(top, tf.maximum(k - 1, 0), batch_dims=1)
    next_index = tf.minimum(k, width - 1)
    next_kth = tf.where(k < n, tf.gather(top, next_index, batch_dims=1), ABSENT_KEY)
    return kth, next_kth


_KEY_PAIR_FUNCTIONS: dict[str, Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]] = {
    "radix": _radix_kth_key_pair,
    "top_k": _top_k_kth_key_pair,
}


def check_method(method: str) -> None:
    """Raises ``ValueError`` unless ``method`` is one of ``SELECTION_METHODS``.

    Example:
        >>> check_method("radix")
    """
    if method not in _KEY_PAIR_FUNCTIONS:
        raise ValueError(
            f"unknown selection method {method!r}; expected one of {SELECTION_METHODS}"
        )


def flatten_rows(scores: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Reshapes [..., n] scores to [rows, n]; returns them and the batch shape [...] to undo it.

    Example:
        >>> rows, batch_shape = flatten_rows(tf.zeros([2, 3, 5]))
        >>> rows.shape.as_list(), batch_shape.numpy().tolist()
        ([6, 5], [2, 3])
    """
    batch_shape = tf.shape(scores)[:-1]
    return tf.reshape(scores, [-1, tf.shape(scores)[-1]]), batch_shape


def row_keys(scores: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Keys of real items (``ABSENT_KEY`` elsewhere), real-item counts and NaN flags, per row.

    ``scores`` and ``mask`` are [rows, n]; a NaN on a real item sets the row's flag.

    Example:
        >>> keys, real, has_nan = row_keys(tf.constant([[1.0, 2.0]]), tf.constant([[True, False]]))
        >>> real.numpy().tolist(), has_nan.numpy().tolist()
        ([1], [False])
    """
    is_nan = tf.math.is_nan(scores)
    present = tf.logical_and(mask, tf.logical_not(is_nan))
    keys = tf.where(present, order_keys(scores), ABSENT_KEY)
    real_count = tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)
    has_nan = tf.reduce_any(tf.logical_and(mask, is_nan), axis=-1)
    return keys, real_count, has_nan


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
    k = tf.cast(tf.minimum(tf.cast(k, tf.int64), _MAX_KEY), tf.int32)
    return tf.reshape(tf.broadcast_to(k, batch_shape), [-1])


def kth_key_pair(
    keys: tf.Tensor, k: tf.Tensor, method: str = "radix"
) -> tuple[tf.Tensor, tf.Tensor]:
    """k-th and (k+1)-th largest key per row of ``keys`` [rows, n] (``ABSENT_KEY`` where missing).

    ``k`` is [rows] (k >= 1); where a row has fewer than k (k+1) real items the k-th ((k+1)-th)
    key is ``ABSENT_KEY``.

    Example:
        >>> keys = order_keys(tf.constant([[3.0, 1.0, 2.0]]))
        >>> kth, nxt = kth_key_pair(keys, tf.constant([1]))
        >>> values_of_keys(kth).numpy().tolist(), values_of_keys(nxt).numpy().tolist()
        ([3.0], [2.0])
    """
    check_method(method)
    real_count = tf.reduce_sum(tf.cast(keys > ABSENT_KEY, tf.int32), axis=-1)
    safe_k = tf.clip_by_value(k, 1, tf.maximum(real_count, 1))
    kth, next_kth = _KEY_PAIR_FUNCTIONS[method](keys, safe_k)
    kth = tf.where(tf.logical_and(k >= 1, k <= real_count), kth, ABSENT_KEY)
    next_kth = tf.where(tf.logical_and(k >= 1, k < real_count), next_kth, ABSENT_KEY)
    return kth, next_kth


def kth_largest_pair(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None = None,
    method: str = "radix",
    jit_compile: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The k-th and (k+1)-th largest real score of every row, in O(n) per row.

    Args:
        scores: float tensor [..., n] (computed in float32).
        k: Python int >= 1, or an int tensor of shape [...] (one k per row).
        mask: optional bool [..., n], True for real items; padded items take no part.
        method: ``"radix"`` (linear, default) or ``"top_k"`` (the ``tf.math.top_k`` reference).
        jit_compile: compile the row computation with XLA.

    Returns:
        Two float32 tensors of shape [...]. Where a row has fewer than k (k+1) real items the
        k-th ((k+1)-th) value is -inf; a row with a NaN real score gets NaN for both.

    Example:
        >>> kth, nxt = kth_largest_pair(tf.constant([[4.0, 1.0, 3.0, 2.0]]), k=3)
        >>> kth.numpy().tolist(), nxt.numpy().tolist()
        ([2.0], [1.0])
    """
    scores = tf.cast(tf.convert_to_tensor(scores), tf.float32)
    check_method(method)
    mask = resolve_mask(scores, mask)
    flat_scores, batch_shape = flatten_rows(scores)
    flat_mask = tf.reshape(mask, tf.shape(flat_scores))
    rows = _COMPILED_PAIR_ROWS if jit_compile else _kth_largest_pair_rows
    kth, next_kth = rows(flat_scores, flat_mask, rows_k(k, batch_shape), method)
    return tf.reshape(kth, batch_shape), tf.reshape(next_kth, batch_shape)


def _kth_largest_pair_rows(
    scores: tf.Tensor, mask: tf.Tensor, k: tf.Tensor, method: str
) -> tuple[tf.Tensor, tf.Tensor]:
    keys, _, has_nan = row_keys(scores, mask)
    pair = []
    for key in kth_key_pair(keys, k, method):
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
    positions = tf.broadcast_to(tf.range(n), tf.shape(keys))

    def first() -> tf.Tensor:
        found = tf.reduce_min(tf.where(equal, positions, n), axis=-1)
        return tf.where(occurrence == 1, found, n)

    def any_occurrence() -> tf.Tensor:
        running = tf.cumsum(tf.cast(equal, tf.int32), axis=-1)
        hit = tf.logical_and(equal, tf.equal(running, occurrence[:, tf.newaxis]))
        return tf.reduce_min(tf.where(hit, positions, n), axis=-1)

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
    room_at_kth = k - tf.reduce_sum(tf.cast(above, tf.int32), axis=-1)

    def keep_all_ties() -> tf.Tensor:
        return tf.logical_or(above, at_kth)

    def keep_first_ties() -> tf.Tensor:
        running = tf.cumsum(tf.cast(at_kth, tf.int32), axis=-1)
        kept_ties = tf.logical_and(at_kth, running <= room_at_kth[:, tf.newaxis])
        return tf.logical_or(above, kept_ties)

    too_many_ties = tf.reduce_sum(tf.cast(at_kth, tf.int32), axis=-1) > room_at_kth
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
    keys, real_count, _ = row_keys(values, mask)
    k = tf.minimum(k, real_count)
    kth_key, _ = kth_key_pair(keys, k)
    return topk_mask_of_keys(keys, k, kth_key)


_COMPILED_TOPK_MASK_ROWS = tf.function(_topk_mask_rows, jit_compile=True, autograph=False)
