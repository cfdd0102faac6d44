"""NeuralSort (Grover et al., 2019): a relaxed permutation matrix from the scores' pairwise gaps.

Row r (rank r + 1 = i, 1-based, the i-th largest) is

    P[i, :] = softmax(((n + 1 - 2 i) s - A_s 1) / tau),   (A_s)_jl = |s_j - s_l|,

which tends to the hard descending sort as tau -> 0. Rows sum to 1; columns need not. With padding,
n is the row's real count, the sums run over real items only, rows beyond the real count and padded
columns are 0.

Example:
    >>> p = neuralsort(tf.constant([1.0, 3.0, 2.0]), tau=0.01)
    >>> p.numpy().round(2).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
"""

import tensorflow as tf

from dftopk_tf.peers.inputs import PeerRows, flatten_scores, restore_shape
from dftopk_tf.peers.relaxed_permutation import real_rank_rows, softmax_over_real_items
from dftopk_tf.validation import check_positive


def neuralsort(scores: tf.Tensor, mask: tf.Tensor | None = None, tau: float = 50.0) -> tf.Tensor:
    """NeuralSort relaxed permutation matrix ``[..., n, n]`` (row r: soft one-hot of rank r).

    Args:
        scores: float tensor ``[..., n]`` (computed in float32).
        mask: optional bool ``[..., n]``, True on real items.
        tau: temperature (> 0); smaller is closer to the hard sort. 50 in the public RecFlow runs.

    Example:
        >>> neuralsort(tf.constant([[0.0, 1.0]]), tau=1.0).numpy().sum(axis=-1).round(4).tolist()
        [[1.0, 1.0]]
    """
    rows = flatten_scores(scores, mask)
    return restore_shape(neuralsort_rows(rows, check_positive("tau", tau)), rows, extra_dims=1)


def neuralsort_rows(rows: PeerRows, tau: float) -> tf.Tensor:
    """NeuralSort on checked ``[batch, n]`` rows; returns ``[batch, n, n]``.

    Example:
        >>> neuralsort_rows(flatten_scores(tf.constant([2.0, 1.0]), None), 1.0).shape.as_list()
        [1, 2, 2]
    """
    s = rows.scores
    real = tf.cast(rows.mask, tf.float32)
    n = tf.shape(s)[1]
    gap_sums = tf.reduce_sum(tf.abs(s[:, :, None] - s[:, None, :]) * real[:, None, :], axis=2)
    rank = tf.cast(tf.range(1, n + 1), tf.float32)[None, :]
    coefficient = tf.cast(rows.real_count, tf.float32)[:, None] + 1.0 - 2.0 * rank
    logits = (coefficient[:, :, None] * s[:, None, :] - gap_sums[:, None, :]) / tau
    weights = softmax_over_real_items(logits, rows.mask[:, None, :])
    row_mask = real_rank_rows(rows.real_count, n)[:, :, None]
    return tf.where(row_mask, weights, tf.zeros_like(weights))
