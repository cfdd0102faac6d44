"""DiffSort (Petersen et al., 2021/2022): an odd-even transposition network of relaxed swaps.

The network has n layers; layer l compares the wire pairs (i, i + 1) for every i with i = l (mod 2).
A comparator keeps the larger value on the upper wire with probability

    q = f(steepness * (a_i - a_{i+1})),  f(x) = arctan(x) / pi + 1/2   (the Cauchy CDF),

    a_i <- q a_i + (1 - q) a_{i+1},   a_{i+1} <- q a_{i+1} + (1 - q) a_i,

and the same mix applied to the rows of the running permutation matrix (started at the identity)
gives the relaxed permutation P, row r = soft one-hot of the item at rank r (descending). Rows and
columns sum to 1; P tends to the hard sort as the steepness grows. Time O(n^3), memory O(n^2).

With padding, the real items are moved to the first wires in their original order and the network
runs only on them (real_count layers, comparators between real wires): exactly the network on the
real items alone. Rows beyond the real count and padded columns are 0.

The official DFTopK torch code's DiffSort (used by its ``lcron-diffsort`` runs) never updates the
values it compares between layers, so it does not sort, and it returns [item, rank]; this is the
working network of the DiffSort paper, rows = ranks.

Example:
    >>> diffsort(tf.constant([1.0, 3.0, 2.0]), steepness=1000.0).numpy().round(2).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
"""

import math

import tensorflow as tf

from dftopk_tf.peers.inputs import PeerRows, flatten_scores, restore_shape
from dftopk_tf.validation import check_positive


def cauchy_cdf(x: tf.Tensor) -> tf.Tensor:
    """The standard Cauchy CDF ``arctan(x) / pi + 1/2``, the relaxed comparator of DiffSort.

    Example:
        >>> cauchy_cdf(tf.constant([0.0])).numpy().tolist()
        [0.5]
    """
    return tf.math.atan(x) / math.pi + 0.5


def diffsort(
    scores: tf.Tensor, mask: tf.Tensor | None = None, steepness: float = 10.0
) -> tf.Tensor:
    """DiffSort relaxed permutation matrix ``[..., n, n]`` (row r: soft one-hot of rank r).

    Args:
        scores: float tensor ``[..., n]`` (computed in float32).
        mask: optional bool ``[..., n]``, True on real items.
        steepness: comparator steepness (> 0); larger is closer to the hard sort. 10 in the public
            RecFlow runs.

    Example:
        >>> diffsort(tf.constant([[0.0, 1.0]])).numpy().sum(axis=-2).round(4).tolist()
        [[1.0, 1.0]]
    """
    rows = flatten_scores(scores, mask)
    matrix = diffsort_rows(rows, check_positive("steepness", steepness))
    return restore_shape(matrix, rows, extra_dims=1)


def diffsort_rows(rows: PeerRows, steepness: float) -> tf.Tensor:
    """DiffSort on checked ``[batch, n]`` rows; returns ``[batch, n, n]``.

    Example:
        >>> diffsort_rows(flatten_scores(tf.constant([2.0, 1.0]), None), 10.0).shape.as_list()
        [1, 2, 2]
    """
    n = tf.shape(rows.scores)[1]
    # Stable ascending sort of "is padded" lists the real items first, in their original order.
    wire_item = tf.argsort(tf.cast(~rows.mask, tf.int32), axis=1, stable=True)
    wire_values = tf.gather(rows.scores, wire_item, batch_dims=1)
    real_wires = tf.range(n)[None, :] < rows.real_count[:, None]
    start = tf.one_hot(wire_item, n) * tf.cast(real_wires, tf.float32)[:, :, None]
    wires = tf.range(n)
    count = rows.real_count[:, None]

    def layer(index: tf.Tensor, values: tf.Tensor, matrix: tf.Tensor):
        is_upper = (wires - index % 2) % 2 == 0
        partner = tf.where(is_upper, wires + 1, wires - 1)
        active = (partner >= 0) & (partner < count) & (wires < count) & (index < count)
        partner = tf.clip_by_value(partner, 0, n - 1)
        partner_values = tf.gather(values, partner, axis=1)
        direction = tf.where(is_upper, 1.0, -1.0)
        keep = cauchy_cdf(steepness * direction * (values - partner_values))
        keep = tf.where(active, keep, tf.ones_like(keep))
        values = keep * values + (1.0 - keep) * partner_values
        partner_rows = tf.gather(matrix, partner, axis=1)
        matrix = keep[:, :, None] * matrix + (1.0 - keep)[:, :, None] * partner_rows
        return index + 1, values, matrix

    _, _, matrix = tf.while_loop(
        lambda index, values, matrix: index < n, layer, (tf.constant(0), wire_values, start)
    )
    return matrix
