"""Descending sort of ``[batch, n]`` rows with the padded items moved behind every real item.

The sort-based peers (LapSum, sparse top-k, SoftSort) solve on the sorted real prefix of each row;
padded items sort last whatever their score, so they never change the real prefix.

Example:
    >>> values, mask, order = sort_real_first(
    ...     tf.constant([[1.0, 9.0, 3.0]]), tf.constant([[True, False, True]]))
    >>> values.numpy().tolist(), mask.numpy().tolist(), order.numpy().tolist()
    ([[3.0, 1.0, 9.0]], [[True, True, False]], [[2, 0, 1]])
"""

import tensorflow as tf


def sort_real_first(values: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Sorts each row descending, real items first; ties keep the lower index first.

    Returns the sorted values (differentiable), the sorted mask and the order (sorted position ->
    original index).

    Example:
        >>> sort_real_first(tf.constant([[2.0, 5.0]]), tf.constant([[True, True]]))[2].numpy()
        array([[1, 0]], dtype=int32)
    """
    keys = tf.where(mask, values, tf.fill(tf.shape(values), float("-inf")))
    order = tf.argsort(keys, axis=-1, direction="DESCENDING", stable=True)
    return (
        tf.gather(values, order, batch_dims=1),
        tf.gather(mask, order, batch_dims=1),
        order,
    )
