"""Order-preserving int32 keys of float32 scores, and the counting radix select over them.

``order_keys`` maps each float32 to an int32 whose signed order is the float order (-0.0 and +0.0
share one key); padded items and NaN get ``ABSENT_KEY``, below every real key. The k-th largest key
of a row is the largest t with ``count(keys >= t) >= k``; ``radix_kth_key`` builds it bit by bit
from the top: one counting pass over the row per bit, with no data-dependent control flow.

Every pass here is written for XLA on CPU, whose int32 row reductions are slow: counts are float32
products of the 0/1 row with a column of ones (a vectorized matrix-vector kernel), and maxima,
minima and first positions reduce float32 values. float32 holds these sums and positions exactly
below 2**24 items per row; rows of unknown or larger width use integer reductions.

Example:
    >>> keys = order_keys(tf.constant([[0.5, -2.0, 3.0]]))
    >>> values_of_keys(radix_kth_key(keys, tf.constant([2]))[0]).numpy().tolist()
    [0.5]
"""

import tensorflow as tf

#: Key of padded items and NaN scores: below the key of every real float, -inf included.
ABSENT_KEY: int = -(2**31)
#: The largest int32: above every key.
MAX_KEY: int = 2**31 - 1
_LOW_31_BITS: int = 0x7FFFFFFF
#: Rows narrower than this are counted and indexed in float32 (exact below 2**24).
_MATMUL_COUNT_LIMIT: int = 2**24


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


def row_count(indicator: tf.Tensor) -> tf.Tensor:
    """Number of True entries in each row of a bool [rows, n] tensor, as int32 [rows].

    Counts with a matrix product of the 0/1 matrix and a column of ones, which XLA hands to a
    vectorized matrix-vector kernel (on CPU about twice the speed of its own row reduction);
    float32 sums of 0/1 are exact below 2**24, so rows of unknown or larger width use an integer
    reduction.

    Example:
        >>> row_count(tf.constant([[True, False, True], [False, False, False]])).numpy().tolist()
        [2, 0]
    """
    width = indicator.shape[-1]
    if width is None or width >= _MATMUL_COUNT_LIMIT:
        return tf.reduce_sum(tf.cast(indicator, tf.int32), axis=-1)
    ones = tf.ones([width, 1], tf.float32)
    return tf.cast(tf.matmul(tf.cast(indicator, tf.float32), ones)[:, 0], tf.int32)


def max_key(keys: tf.Tensor, selected: tf.Tensor) -> tf.Tensor:
    """The largest of the selected keys of each row of int32 [rows, n] ``keys``, as int32 [rows].

    Reduces the keys' float32 values (XLA on CPU reduces float32 several times faster than int32)
    and maps the maximum back to its key, which is exact because the map is monotone. Selected
    keys must be real (not ``ABSENT_KEY``); a row with nothing selected gets the key of -inf.

    Example:
        >>> keys = order_keys(tf.constant([[0.5, -2.0, 3.0]]))
        >>> values_of_keys(max_key(keys, keys < order_keys(3.0))).numpy().tolist()
        [0.5]
    """
    values = tf.where(selected, values_of_keys(keys), float("-inf"))
    return order_keys(tf.reduce_max(values, axis=-1))


def min_key(keys: tf.Tensor, selected: tf.Tensor) -> tf.Tensor:
    """The smallest of the selected keys of each row (as ``max_key``; +inf's key where none).

    Example:
        >>> keys = order_keys(tf.constant([[0.5, -2.0, 3.0]]))
        >>> values_of_keys(min_key(keys, keys > order_keys(-2.0))).numpy().tolist()
        [0.5]
    """
    values = tf.where(selected, values_of_keys(keys), float("inf"))
    return order_keys(tf.reduce_min(values, axis=-1))


def first_true_index(indicator: tf.Tensor) -> tf.Tensor:
    """Index of the first True in each row of a bool [rows, n] tensor; n where there is none.

    Reduces float32 positions (exact below 2**24; wider or unknown widths reduce int32).

    Example:
        >>> first_true_index(tf.constant([[False, True, True], [False, False, False]])).numpy()
        array([1, 3], dtype=int32)
    """
    width = indicator.shape[-1]
    if width is None or width >= _MATMUL_COUNT_LIMIT:
        n = tf.shape(indicator)[-1]
        return tf.reduce_min(tf.where(indicator, tf.range(n), n), axis=-1)
    positions = tf.range(width, dtype=tf.float32)
    return tf.cast(tf.reduce_min(tf.where(indicator, positions, float(width)), axis=-1), tf.int32)


def count_at_least(keys: tf.Tensor, threshold: tf.Tensor) -> tf.Tensor:
    """Per row of int [rows, n] ``keys``, how many are >= that row's ``threshold`` [rows].

    Example:
        >>> count_at_least(tf.constant([[3, 1, 2]]), tf.constant([2])).numpy().tolist()
        [2]
    """
    return row_count(keys >= threshold[:, tf.newaxis])


def radix_kth_key(keys: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The k-th largest key of every row of int32 [rows, n] ``keys``, one counting pass per bit.

    The sign bit first, then bits 30 down to 0: 32 passes. Needs 1 <= k <= the row's count of
    keys that can be selected. Returns the k-th key and the row's count of keys >= it (more than
    k when the k-th key is tied), both int32 [rows]; the count comes from the pass that settled
    the key, so it costs nothing extra.

    Example:
        >>> kth, at_least = radix_kth_key(tf.constant([[5, 9, 5, -7]]), tf.constant([2]))
        >>> kth.numpy().tolist(), at_least.numpy().tolist()
        ([5], [3])
    """

    def settle(
        candidate: tf.Tensor, kth: tf.Tensor, at_least: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        count = count_at_least(keys, candidate)
        accepted = count >= k
        return tf.where(accepted, candidate, kth), tf.where(accepted, count, at_least)

    # Every key is >= the smallest possible key, where the search starts.
    at_least = tf.fill(tf.shape(k), tf.shape(keys)[-1])
    kth = tf.fill(tf.shape(k), tf.constant(ABSENT_KEY, tf.int32))
    # The sign bit first: is the k-th largest key non-negative?
    kth, at_least = settle(tf.zeros_like(kth), kth, at_least)
    for bit in range(30, -1, -1):
        candidate = tf.bitwise.bitwise_or(kth, tf.constant(1 << bit, tf.int32))
        kth, at_least = settle(candidate, kth, at_least)
    return kth, at_least


def radix_kth_key_pair(keys: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The k-th and (k+1)-th largest key of every row: ``radix_kth_key`` and one more pass.

    The (k+1)-th equals the k-th when the k-th is tied (more than k keys >= it), else it is the
    largest real key below the k-th. Needs 1 <= k <= the row's count of real keys; where k equals
    that count the second key is meaningless (callers mask it).

    Example:
        >>> keys = order_keys(tf.constant([[0.5, 0.25, 0.5, -0.75]]))
        >>> kth, next_kth = radix_kth_key_pair(keys, tf.constant([1]))
        >>> values_of_keys(kth).numpy().tolist(), values_of_keys(next_kth).numpy().tolist()
        ([0.5], [0.5])
        >>> kth, next_kth = radix_kth_key_pair(keys, tf.constant([2]))
        >>> values_of_keys(next_kth).numpy().tolist()
        [0.25]
    """
    kth, at_least_kth = radix_kth_key(keys, k)
    below_kth = max_key(keys, tf.logical_and(keys < kth[:, tf.newaxis], keys > ABSENT_KEY))
    return kth, tf.where(at_least_kth > k, kth, below_kth)
