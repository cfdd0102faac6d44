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

import numpy as np
import tensorflow as tf

from dftopk_tf.masking import resolve_mask

_INT32_MAX = np.iinfo(np.int32).max


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
    scores = tf.convert_to_tensor(scores)
    if not scores.dtype.is_floating:
        raise TypeError(f"scores must be a floating-point tensor, got dtype {scores.dtype.name}.")
    if scores.shape.rank == 0:
        raise ValueError("scores must have rank >= 1 (shape [..., n]), got a scalar.")
    if scores.shape.rank is None:
        check = tf.debugging.assert_rank_at_least(scores, 1, message="scores must have rank >= 1")
        with tf.control_dependencies([check]):
            scores = tf.identity(scores)
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
    batch_shape = rows.shape[:-1]
    if isinstance(k, bool) or isinstance(k, float | np.floating):
        raise TypeError(f"k must be an integer or an integer tensor, got {k!r}.")
    if isinstance(k, int | np.integer):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}.")
        return tf.fill([tf.reduce_prod(batch_shape)], tf.constant(min(int(k), _INT32_MAX)))
    k = tf.convert_to_tensor(k)
    if not k.dtype.is_integer:
        raise TypeError(f"k must be an integer tensor, got dtype {k.dtype.name}.")
    static_batch = rows.static_shape[:-1]
    if k.shape.rank not in (None, 0) and not k.shape.is_compatible_with(static_batch):
        raise ValueError(
            f"k must be a scalar or have the scores' leading shape {static_batch}, got {k.shape}."
        )
    k = tf.cast(tf.minimum(tf.cast(k, tf.int64), _INT32_MAX), tf.int32)
    check = tf.debugging.assert_greater_equal(k, 1, message="k must be >= 1")
    with tf.control_dependencies([check]):
        return tf.reshape(tf.broadcast_to(k, batch_shape), [-1])


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


def positive_float(name: str, value: float) -> float:
    """Returns ``value`` as a Python float, raising ``ValueError`` unless it is finite and > 0.

    Example:
        >>> positive_float("tau", 50)
        50.0
    """
    number = float(value)
    if not np.isfinite(number) or number <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return number
