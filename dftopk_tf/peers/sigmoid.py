"""The pointwise baseline: ``sigmoid(x / tau)`` per item, with no top-k coupling at all.

Trained with BCE against the top-k mask this is plain pointwise classification (the ``bce`` method).
k is accepted only so the function shares the peers' signature; it is checked but not used.

Example:
    >>> sigmoid_selection(tf.constant([0.0, 2.0]), k=1, mask=[True, False]).numpy().tolist()
    [0.5, 0.0]
"""

import tensorflow as tf

from dftopk_tf.peers.inputs import flatten_k, flatten_scores, restore_shape
from dftopk_tf.validation import check_positive


def sigmoid_selection(
    scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None = None, tau: float = 1.0
) -> tf.Tensor:
    """``sigmoid(scores / tau)`` on real items, 0 on padded items; ``k`` is checked and ignored.

    Args:
        scores: float tensor ``[..., n]`` (computed in float32).
        k: a Python int or int tensor of shape ``[...]``, >= 1; it does not change the output.
        mask: optional bool ``[..., n]``, True on real items.
        tau: temperature (> 0).

    Example:
        >>> sigmoid_selection(tf.constant([[0.0]]), k=1).numpy().tolist()
        [[0.5]]
    """
    rows = flatten_scores(scores, mask)
    flatten_k(k, rows)
    probability = tf.sigmoid(rows.scores / check_positive("tau", tau))
    return restore_shape(tf.where(rows.mask, probability, tf.zeros_like(probability)), rows)
