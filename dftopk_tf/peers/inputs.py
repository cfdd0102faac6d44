"""Checked, flattened inputs shared by the peer operators: scores, padding mask and k.

Every peer has the signature ``peer(scores, k, mask=None, **params)`` with scores ``[..., n]`` and k
a Python int or an int tensor of shape ``[...]``. The peers work on ``[batch, n]`` rows: these
helpers check the inputs once, flatten the leading dimensions and restore them on the way out.
Padded scores are replaced by 0 so that huge, infinite or NaN padded scores never enter any
computation (nor its gradient).

Example:
    >>> rows = flatten_scores(tf.zeros([2, 3, 4]), mask=None)
    >>> rows.scores.shape.as_list(), rows.real_count.numpy().tolist()
    ([6, 4], [4, 4, 4, 4, 4, 4])
    >>> flatten_k(2, rows).numpy().tolist()
    [2, 2, 2, 2, 2, 2]
"""

from typing import NamedTuple

import tensorflow as tf

from dftopk_tf.masking import resolve_mask
from dftopk_tf.selection import rows_k
from dftopk_tf.validation import check_k, check_scores


class PeerRows(NamedTuple):
    """Scores as ``[batch, n]`` float32 rows (0 on padded items), their mask and original shape.

    Example:
        >>> flatten_scores(tf.ones([3]), mask=[True, False, True]).scores.numpy().tolist()
        [[1.0, 0.0, 1.0]]
    """

    scores: tf.Tensor
    mask: tf.Tensor
    real_count: tf.Tensor
    shape: tf.Tensor
    static_shape: tf.TensorShape


def flatten_scores(scores: tf.Tensor, mask: tf.Tensor | None) -> PeerRows:
    """Checks scores and mask and returns them as float32 ``[batch, n]`` rows.

    Raises ``TypeError`` for non-floating scores and ``ValueError`` for rank-0 scores or a mask
    whose shape differs from the scores' (``InvalidArgumentError`` when only known at run time).

    Example:
        >>> flatten_scores(tf.constant([[1.0, 2.0]]), None).real_count.numpy().tolist()
        [2]
    """
    scores = check_scores(scores)
    mask = resolve_mask(scores, mask)
    shape = tf.shape(scores)
    n = shape[-1]
    flat_mask = tf.reshape(mask, [-1, n])
    flat_scores = tf.reshape(tf.cast(scores, tf.float32), [-1, n])
    flat_scores = tf.where(flat_mask, flat_scores, tf.zeros_like(flat_scores))
    real_count = tf.reduce_sum(tf.cast(flat_mask, tf.int32), axis=-1)
    return PeerRows(flat_scores, flat_mask, real_count, shape, scores.shape)


def flatten_k(k: int | tf.Tensor, rows: PeerRows) -> tf.Tensor:
    """Checks k (int >= 1, or int tensor of shape ``[...]`` or ``[]``); returns int32 ``[batch]``.

    Raises ``TypeError`` for a non-integer k and ``ValueError`` (or ``InvalidArgumentError`` for a
    tensor checked at run time) for k < 1 or a shape that does not match the scores' leading dims.

    Example:
        >>> rows = flatten_scores(tf.zeros([2, 5]), None)
        >>> flatten_k(tf.constant([1, 3]), rows).numpy().tolist()
        [1, 3]
    """
    return rows_k(check_k(k, rows.static_shape), rows.shape[:-1])


def restore_shape(values: tf.Tensor, rows: PeerRows, extra_dims: int = 0) -> tf.Tensor:
    """Reshapes ``[batch, n, ...]`` results back to the scores' leading shape.

    ``extra_dims`` counts trailing dimensions of size n beyond the first (1 for ``[..., n, n]``).

    Example:
        >>> rows = flatten_scores(tf.zeros([2, 3, 4]), None)
        >>> restore_shape(rows.scores, rows).shape.as_list()
        [2, 3, 4]
    """
    n = rows.shape[-1:]
    shape = tf.concat([rows.shape] + [n] * extra_dims, axis=0)
    restored = tf.reshape(values, shape)
    if rows.static_shape.rank is not None:
        n_static = rows.static_shape[-1]
        restored.set_shape(rows.static_shape.concatenate([n_static] * extra_dims))
    return restored
