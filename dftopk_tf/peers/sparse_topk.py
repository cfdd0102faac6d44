"""Sparse soft top-k (Sander et al., 2023): the top-k mask as a regularised projection.

The hard top-k mask maximises <y, x> over the permutahedron of w = (1, ..., 1, 0, ..., 0) (k ones),
which is the capped simplex {y in [0, 1]^n : sum y = k}. Adding (l / 2) ||y||^2 gives

    y* = argmin_{y in P(w)} ||y - x / l||^2,

which the paper solves as an isotonic regression of (sorted x / l) - w (pool-adjacent-violators).
For this w the isotonic solution has a known block form: items at 1, one pooled block of free items
that share a common shift tau, items at 0, i.e. y_i = clip(x_i / l - tau, 0, 1) with sum y = k. We
find the pooled block exactly after one sort of the 2n breakpoints {x_i / l, x_i / l - 1} (O(n log
n), no fixed-iteration solver) and write tau = (sum_free z + #ones - k) / #free, so autodiff gives
the isotonic Jacobian (block-constant: identity minus the block mean on the free items, zero
elsewhere).

When no item is free (a gap of at least l around the k-th score) tau is the middle of the flat
interval: the output is the exact top-k mask with zero gradient, as in the paper.

Outputs are probabilities in [0, 1] (often exactly 0 or 1), not logits: a BCE on them must not apply
a sigmoid again (the official DFTopK sparse top-k run does, a quirk we do not copy; our losses score
the mask with 1e-6 epsilons, ``dftopk_tf.selection_terms``). That run solves the isotonic regression
with 500 Dykstra rounds, which agree with this exact solution once they converge.
Rows whose k is at least their real count select every real item; padded items get
0 and take no part.

Example:
    >>> y = sparse_topk(tf.constant([[0.9, 0.5, 0.4, -2.0]]), k=2)
    >>> [round(v, 3) for v in y.numpy()[0].tolist()]
    [0.967, 0.567, 0.467, 0.0]
"""

import tensorflow as tf

from dftopk_tf.peers.inputs import flatten_k, flatten_scores, restore_shape
from dftopk_tf.validation import check_positive


def sparse_topk(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None = None,
    regularization: float = 1.0,
) -> tf.Tensor:
    """Sparse soft top-k mask: ``scores / regularization`` projected onto the capped simplex.

    Args:
        scores: float tensor ``[..., n]`` (float16/bfloat16/float64 are computed in float32).
        k: number of items to select, a Python int or an int tensor of shape ``[...]``.
        mask: optional bool ``[..., n]``, True on real items.
        regularization: the strength l (> 0) of the quadratic regulariser; larger is softer.
            1 in the public RecFlow runs.

    Returns:
        float32 ``[..., n]`` in [0, 1], summing to k over each row's real items (to all of them
        when k >= the real count), 0 on padded items.

    Example:
        >>> sparse_topk(tf.constant([5.0, 1.0, 0.0]), k=1).numpy().tolist()
        [1.0, 0.0, 0.0]
    """
    rows = flatten_scores(scores, mask)
    k_rows = flatten_k(k, rows)
    z = rows.scores / check_positive("regularization", regularization)
    # The projection is shift-invariant; centring keeps the breakpoint sums precise in float32.
    top = tf.reduce_max(tf.where(rows.mask, z, tf.fill(tf.shape(z), float("-inf"))), axis=-1)
    z = z - tf.stop_gradient(tf.where(tf.math.is_finite(top), top, 0.0))[:, None]
    select_all = k_rows >= rows.real_count
    solvable_k = tf.clip_by_value(k_rows, 1, tf.maximum(rows.real_count - 1, 1))
    shift = _capped_simplex_shift(z, rows.mask, tf.cast(solvable_k, tf.float32))
    selection = tf.clip_by_value(z - shift[:, None], 0.0, 1.0)
    selection = tf.where(select_all[:, None], tf.ones_like(selection), selection)
    selection = tf.where(rows.mask, selection, tf.zeros_like(selection))
    return restore_shape(selection, rows)


def _capped_simplex_shift(z: tf.Tensor, mask: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Shift tau with ``sum_i clip(z_i - tau, 0, 1) = k`` over real items (1 <= k < real count)."""
    n = tf.shape(z)[1]
    plain_z = tf.stop_gradient(z)
    breakpoints = tf.concat([plain_z, plain_z - 1.0], axis=1)
    real = tf.concat([mask, mask], axis=1)
    slopes = tf.concat([tf.cast(mask, tf.float32), -tf.cast(mask, tf.float32)], axis=1)
    keys = tf.where(real, breakpoints, tf.fill(tf.shape(breakpoints), float("-inf")))
    order = tf.argsort(keys, axis=1, direction="DESCENDING", stable=True)
    sorted_breakpoints = tf.gather(breakpoints, order, batch_dims=1)
    sorted_slopes = tf.gather(slopes, order, batch_dims=1)
    # sum_i clip(z_i - b, 0, 1) at each sorted breakpoint b, from prefix sums of the hinge terms.
    slope = tf.cumsum(sorted_slopes, axis=1)
    level = tf.cumsum(sorted_slopes * sorted_breakpoints, axis=1)
    selected_at = level - sorted_breakpoints * slope
    sorted_real = tf.gather(real, order, batch_dims=1)
    above = tf.reduce_sum(tf.cast(sorted_real & (selected_at <= k[:, None]), tf.int32), axis=1)
    position = tf.argsort(order, axis=1, stable=True)
    free_shift, free_count = _shift_on_segment(z, mask, k, position[:, :n], position[:, n:], above)
    # No free item: the segment is flat at level k (a gap >= 1 after the k-th score) and any tau on
    # it gives the hard mask; its middle keeps every item off the clip edges (zero gradient).
    ends = tf.clip_by_value(above[:, None] - 1 + [[0, 1]], 0, 2 * n - 1)
    flat_shift = tf.reduce_mean(tf.gather(sorted_breakpoints, ends, batch_dims=1), axis=1)
    return tf.where(free_count > 0.0, free_shift, flat_shift)


def _shift_on_segment(
    z: tf.Tensor,
    mask: tf.Tensor,
    k: tf.Tensor,
    top_position: tf.Tensor,
    bottom_position: tf.Tensor,
    breakpoints_above: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """tau solved on the segment below the first ``breakpoints_above`` breakpoints, and #free there.

    Items with both breakpoints above the segment sit at 1, items with only z_i above are free.
    """
    above = breakpoints_above[:, None]
    at_one = mask & (bottom_position < above)
    free = mask & (top_position < above) & (bottom_position >= above)
    free_count = tf.reduce_sum(tf.cast(free, tf.float32), axis=1)
    ones = tf.reduce_sum(tf.cast(at_one, tf.float32), axis=1)
    free_sum = tf.reduce_sum(tf.where(free, z, tf.zeros_like(z)), axis=1)
    return (free_sum + ones - k) / tf.maximum(free_count, 1.0), free_count
