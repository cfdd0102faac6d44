"""Pieces shared by the relaxed permutation matrices (NeuralSort, SoftSort, DiffSort) under padding.

A relaxed permutation matrix P ``[batch, n, n]`` has row r = a soft one-hot over the items of the
item at rank r. With padding, only the first ``real_count`` rows (ranks among real items) and the
real columns are used; every other entry is exactly 0, so padded items change nothing.

Example:
    >>> real_rank_rows(tf.constant([2]), 3).numpy().tolist()
    [[True, True, False]]
"""

import tensorflow as tf


def real_rank_rows(real_count: tf.Tensor, n: int | tf.Tensor) -> tf.Tensor:
    """Bool ``[batch, n]``: True for the ranks 0 .. real_count - 1 that real items occupy.

    Example:
        >>> real_rank_rows(tf.constant([0, 1]), 2).numpy().tolist()
        [[False, False], [True, False]]
    """
    return tf.range(n)[None, :] < real_count[:, None]


def softmax_over_real_items(logits: tf.Tensor, item_mask: tf.Tensor) -> tf.Tensor:
    """Softmax over the last axis restricted to real items (``item_mask`` True), 0 on the others.

    Padded logits are replaced by the lowest float, not -inf, so rows without any real item stay
    finite (they come out as 0).

    Example:
        >>> softmax_over_real_items(tf.constant([[0.0, 5.0, 0.0]]),
        ...                         tf.constant([[True, False, True]])).numpy().tolist()
        [[0.5, 0.0, 0.5]]
    """
    item_mask = tf.broadcast_to(item_mask, tf.shape(logits))
    lowest = tf.fill(tf.shape(logits), logits.dtype.min)
    weights = tf.nn.softmax(tf.where(item_mask, logits, lowest), axis=-1)
    return tf.where(item_mask, weights, tf.zeros_like(weights))
