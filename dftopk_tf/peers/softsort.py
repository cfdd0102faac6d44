"""SoftSort (Prillo & Eisenschlos, 2020): a relaxed permutation matrix from distances to the sort.

Row r is ``softmax(-|sort(s)_r - s| / tau)`` over the items, with sort(s) descending: the soft
one-hot of the item whose score is closest to the r-th largest score; it tends to the hard sort as
tau -> 0. Rows sum to 1. With padding, rows beyond the real count and padded columns are 0 and
padded items never enter the sort.

Example:
    >>> softsort(tf.constant([1.0, 3.0, 2.0]), tau=0.01).numpy().round(2).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
"""

import tensorflow as tf

from dftopk_tf.peers.inputs import PeerRows, flatten_scores, restore_shape
from dftopk_tf.peers.relaxed_permutation import softmax_over_real_items
from dftopk_tf.peers.sorting import sort_real_first
from dftopk_tf.validation import check_positive


def softsort(scores: tf.Tensor, mask: tf.Tensor | None = None, tau: float = 50.0) -> tf.Tensor:
    """SoftSort relaxed permutation matrix ``[..., n, n]`` (row r: soft one-hot of rank r).

    Args:
        scores: float tensor ``[..., n]`` (computed in float32).
        mask: optional bool ``[..., n]``, True on real items.
        tau: temperature (> 0); smaller is closer to the hard sort. 50 in the public RecFlow runs.

    Example:
        >>> softsort(tf.constant([[0.0, 1.0]]), tau=1.0).numpy().sum(axis=-1).round(4).tolist()
        [[1.0, 1.0]]
    """
    rows = flatten_scores(scores, mask)
    return restore_shape(softsort_rows(rows, check_positive("tau", tau)), rows, extra_dims=1)


def softsort_rows(rows: PeerRows, tau: float) -> tf.Tensor:
    """SoftSort on checked ``[batch, n]`` rows; returns ``[batch, n, n]``.

    Example:
        >>> softsort_rows(flatten_scores(tf.constant([2.0, 1.0]), None), 1.0).shape.as_list()
        [1, 2, 2]
    """
    sorted_scores, sorted_mask, _ = sort_real_first(rows.scores, rows.mask)
    logits = -tf.abs(sorted_scores[:, :, None] - rows.scores[:, None, :]) / tau
    weights = softmax_over_real_items(logits, rows.mask[:, None, :])
    return tf.where(sorted_mask[:, :, None], weights, tf.zeros_like(weights))
