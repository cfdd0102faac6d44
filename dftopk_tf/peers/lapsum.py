"""LapSum soft top-k: selection probabilities from a Laplace-CDF threshold, in closed form.

With F the standard Laplace CDF (F(w) = e^w / 2 for w < 0, 1 - e^-w / 2 otherwise) and scale alpha,
LapSum finds the threshold t with

    sum_i F((x_i - t) / alpha) = k

and returns p_i = F((x_i - t) / alpha) (equivalently 1 - F((t - x_i) / alpha)): in (0, 1), summing
to k, larger for larger scores. The sum is strictly decreasing in t and, between two consecutive
sorted scores, is ``j - A e^t / 2 + B e^-t / 2`` (units of alpha; j items above t, A = sum_{above}
e^-x, B = sum_{below} e^x), so after one sort the root is a quadratic in e^t: O(n log n), no
iterations. A and B are kept as log prefix/suffix sums (``cumulative_logsumexp``) so large scores do
not overflow. The gradient is autodiff through that closed form, which equals the implicit-function
gradient of the root.

Rows whose k is at least their number of real items select every real item (p = 1). Padded items
get p = 0 and take no part in the threshold.

Example:
    >>> p = lapsum(tf.constant([[3.0, 1.0, 2.0, 0.0]]), k=2, alpha=1.0)
    >>> round(float(tf.reduce_sum(p)), 4)
    2.0
"""

import tensorflow as tf

from dftopk_tf.peers.inputs import flatten_k, flatten_scores, restore_shape
from dftopk_tf.peers.sorting import sort_real_first
from dftopk_tf.validation import check_positive

# Log of an empty sum: finite (not -inf) so that no gradient of cumulative_logsumexp becomes NaN.
_LOG_ZERO = -1e30


def laplace_cdf(w: tf.Tensor) -> tf.Tensor:
    """The standard Laplace CDF, evaluated without overflow for any finite ``w``.

    Example:
        >>> laplace_cdf(tf.constant([0.0])).numpy().tolist()
        [0.5]
    """
    half_tail = 0.5 * tf.exp(-tf.abs(w))
    return tf.where(w >= 0.0, 1.0 - half_tail, half_tail)


def lapsum(
    scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None = None, alpha: float = 5.0
) -> tf.Tensor:
    """LapSum soft top-k probabilities ``F((x - t) / alpha)`` with ``sum_i p_i = k`` per row.

    Args:
        scores: float tensor ``[..., n]`` (float16/bfloat16/float64 are computed in float32).
        k: number of items to select, a Python int or an int tensor of shape ``[...]``.
        mask: optional bool ``[..., n]``, True on real items.
        alpha: Laplace scale (> 0); larger is softer. 5 in the public RecFlow runs.

    Returns:
        float32 ``[..., n]`` probabilities, 0 on padded items, 1 on real items of rows with
        k >= their real count.

    Example:
        >>> lapsum(tf.constant([10.0, 0.0, -10.0]), k=1, alpha=0.1).numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    rows = flatten_scores(scores, mask)
    k_rows = flatten_k(k, rows)
    z = rows.scores / check_positive("alpha", alpha)
    # The output is shift-invariant; centring on the top real score keeps the exponents small.
    top = tf.reduce_max(tf.where(rows.mask, z, tf.fill(tf.shape(z), float("-inf"))), axis=-1)
    z = z - tf.stop_gradient(tf.where(tf.math.is_finite(top), top, 0.0))[:, None]
    select_all = k_rows >= rows.real_count
    solvable_k = tf.clip_by_value(k_rows, 1, tf.maximum(rows.real_count - 1, 1))
    threshold = _laplace_threshold(z, rows.mask, tf.cast(solvable_k, tf.float32))
    probabilities = laplace_cdf(z - threshold[:, None])
    probabilities = tf.where(select_all[:, None], tf.ones_like(probabilities), probabilities)
    probabilities = tf.where(rows.mask, probabilities, tf.zeros_like(probabilities))
    return restore_shape(probabilities, rows)


def _laplace_threshold(z: tf.Tensor, mask: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Root t of ``sum_i F(z_i - t) = k`` per row (1 <= k < real count), differentiable."""
    z_sorted, mask_sorted, _ = sort_real_first(z, mask)
    log_zero = tf.fill([tf.shape(z)[0], 1], _LOG_ZERO)
    terms_above = tf.where(mask_sorted, -z_sorted, _LOG_ZERO)
    terms_below = tf.where(mask_sorted, z_sorted, _LOG_ZERO)
    # Index j = number of sorted items above t: log A_j over the first j, log B_j over the rest.
    log_above = tf.concat([log_zero, tf.math.cumulative_logsumexp(terms_above, axis=1)], axis=1)
    log_below = tf.concat(
        [tf.math.cumulative_logsumexp(terms_below, axis=1, reverse=True), log_zero], axis=1
    )
    interval = _root_interval(z_sorted, mask_sorted, log_above, log_below, k)
    log_a = tf.gather(log_above, interval, batch_dims=1)
    log_b = tf.gather(log_below, interval, batch_dims=1)
    # On interval j: A u^2 - 2 d u - B = 0 in u = e^t with d = j - k; and A * B <= n^2 / 4.
    d = tf.cast(interval, tf.float32) - k
    ab = tf.exp(log_a + log_b)
    # Each branch uses the cancellation-free root form and a safe d so unused branches stay finite.
    d_pos = tf.where(d > 0.0, d, 1.0)
    d_neg = tf.where(d < 0.0, d, -1.0)
    root_pos = tf.math.log(d_pos + tf.sqrt(d_pos * d_pos + ab)) - log_a
    root_neg = log_b - tf.math.log(tf.sqrt(d_neg * d_neg + ab) - d_neg)
    root_zero = 0.5 * (log_b - log_a)
    return tf.where(d > 0.0, root_pos, tf.where(d < 0.0, root_neg, root_zero))


def _root_interval(
    z_sorted: tf.Tensor,
    mask_sorted: tf.Tensor,
    log_above: tf.Tensor,
    log_below: tf.Tensor,
    k: tf.Tensor,
) -> tf.Tensor:
    """Number of sorted items at or above the root: count of breakpoints z_(j) with sum F <= k."""
    z_sorted = tf.stop_gradient(z_sorted)
    n = tf.shape(z_sorted)[1]
    # Relative to z_(j) both log sums lie in [0, log n] for real j; padded positions are masked.
    rel_above = tf.where(mask_sorted, z_sorted + tf.stop_gradient(log_above[:, 1:]), 0.0)
    rel_below = tf.where(mask_sorted, tf.stop_gradient(log_below[:, 1:]) - z_sorted, 0.0)
    j = tf.cast(tf.range(1, n + 1), tf.float32)[None, :]
    sum_at_breakpoint = j - 0.5 * tf.exp(rel_above) + 0.5 * tf.exp(rel_below)
    below_k = mask_sorted & (sum_at_breakpoint <= k[:, None])
    return tf.reduce_sum(tf.cast(below_k, tf.int32), axis=1)
