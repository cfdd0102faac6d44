"""DFTopK: the differentiable fast top-k operator and its gradient.

For scores x (one row per request) and k, the threshold is theta = (x_[k] + x_[k+1]) / 2 (the
k-th and (k+1)-th largest real scores), and the operator is p_i = sigmoid((x_i - theta) / tau).
The threshold is found in O(n) per row, never by a sort: by default (``selection="auto"``,
``dftopk_tf.selection.resolve_selection``) a linear-time radix select (the sample bracket in rows
of 100,000+ items), or, where it is faster, ``tf.math.top_k`` for a k bounded by a constant
(k <= 256 in rows of 10,000+ items; k <= 64 without XLA): CHANGELOG.md, 2026-11-26, "Threshold
paths". On a CPU under XLA, which of them is faster for k <= 256 in rows of 10,000+ items is timed
once per shape bucket and cached (``dftopk_tf.selection_autotune``).

Gradient (``tf.custom_gradient``): with s = p and upstream g, every real item gets
g_i s_i (1 - s_i) / tau, and the threshold's share -(1/2) sum_j g_j s_j (1 - s_j) / tau lands on the
k-th and the (k+1)-th item only (chosen in ``tf.math.top_k`` order when scores tie), so it equals
autodiff of the same formula written with ``tf.math.top_k``.

``threshold_gradient="spread"`` keeps the forward and the per-item term but spreads the
threshold's share over every real item in proportion to sigmoid'((x_i - theta) / tau): the
gradient of a threshold that keeps sum_i p_i fixed (implicit differentiation of
sum_i sigmoid((x_i - t) / tau) = c). The items nearest theta weigh most; as tau -> 0 the weights
concentrate on the k-th and (k+1)-th item (equally far from the midpoint) and the default
``"pair"`` gradient is recovered. Both sum to zero over a row (shifting every score changes
nothing). Spreading matters for two-tower retrieval, where the pair gradient pushes two items'
embeddings hard each step (``docs/results/method_comparison/report.md``).

Conventions:
- Padded items (``mask`` False) take no part in the threshold; their probability is exactly 0 and
  their logit is ``PADDED_LOGIT``; they get no gradient.
- A row with k >= its real count selects all its real items: the threshold is placed
  ``SELECT_ALL_MARGIN * tau`` below the smallest real score (probability 1.0 in float32, finite
  logits, so with-logits BCE stays finite) and is treated as a constant by the gradient.
- A NaN on a real item makes that row's outputs NaN; other rows are unaffected. +-inf scores are
  ordered as usual, but an infinite threshold gives NaN logits for the items equal to it.
- Inputs of any float dtype are computed in float32; outputs are float32. k and tau are not
  differentiated.

Example:
    >>> scores = tf.constant([[2.0, -1.0, 0.5, 3.0]])
    >>> dftopk(scores, k=2, tau=0.1).numpy().round(3)
    array([[0.999, 0.   , 0.001, 1.   ]], dtype=float32)
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from dftopk_tf import key_passes
from dftopk_tf.key_passes import ABSENT_KEY, values_of_keys
from dftopk_tf.masking import resolve_mask
from dftopk_tf.selection import (
    flatten_rows,
    kth_key_pair,
    occurrence_index,
    placement,
    resolve_selection,
    row_keys,
    rows_k,
    static_k,
    topk_mask_of_keys,
)
from dftopk_tf.validation import check_k, check_positive_tensor, check_scores

#: Logit returned for padded items: sigmoid of it is exactly 0 in float32.
PADDED_LOGIT: float = -1.0e4
#: A select-all row's threshold sits this many tau below its smallest real score.
SELECT_ALL_MARGIN: float = 30.0
#: Where the threshold's gradient lands: the k-th and (k+1)-th item (exact), or every item.
THRESHOLD_GRADIENTS: tuple[str, ...] = ("pair", "spread")


def check_threshold_gradient(threshold_gradient: str) -> str:
    """Returns ``threshold_gradient`` if it is one of ``THRESHOLD_GRADIENTS``, else raises.

    Example:
        >>> check_threshold_gradient("spread")
        'spread'
    """
    if threshold_gradient not in THRESHOLD_GRADIENTS:
        raise ValueError(
            f"threshold_gradient must be one of {THRESHOLD_GRADIENTS}, got {threshold_gradient!r}"
        )
    return threshold_gradient


def _threshold_weights(
    keys: tf.Tensor, k: tf.Tensor, kth_key: tf.Tensor, next_key: tf.Tensor
) -> tf.Tensor:
    """[rows, n] float32: 1 on the k-th and on the (k+1)-th item (``tf.math.top_k`` tie order).

    Without ties each of the two keys is held by one item, marked by comparing keys: one counting
    pass checks that, and the marks fuse into the gradient's final pass. Ties (some row's k-th or
    (k+1)-th key held by several items, or both keys equal) take the general path that counts
    occurrences by position. Rows without a k-th or (k+1)-th real item get no mark for it.
    """
    present = keys > ABSENT_KEY
    is_kth = tf.logical_and(tf.equal(keys, kth_key[:, tf.newaxis]), present)
    is_next = tf.logical_and(tf.equal(keys, next_key[:, tf.newaxis]), present)
    distinct = tf.logical_or(tf.not_equal(kth_key, next_key), tf.equal(kth_key, ABSENT_KEY))
    holders = key_passes.row_count(tf.logical_or(is_kth, is_next))
    unique = tf.logical_and(holders <= 2, distinct)

    def sole_holders() -> tf.Tensor:
        return tf.cast(is_kth, tf.float32) + tf.cast(is_next, tf.float32)

    def tie_order() -> tf.Tensor:
        above_kth = key_passes.row_count(keys > kth_key[:, tf.newaxis])
        above_next = key_passes.row_count(keys > next_key[:, tf.newaxis])
        kth_index = occurrence_index(keys, kth_key, k - above_kth)
        next_index = occurrence_index(keys, next_key, k + 1 - above_next)
        positions = tf.range(tf.shape(keys)[-1])[tf.newaxis, :]
        return tf.cast(tf.equal(positions, kth_index[:, tf.newaxis]), tf.float32) + tf.cast(
            tf.equal(positions, next_index[:, tf.newaxis]), tf.float32
        )

    return tf.cond(tf.reduce_all(unique), sole_holders, tie_order)


def _where_real(mask: tf.Tensor | None, real: tf.Tensor, padded: float) -> tf.Tensor:
    """``real`` on real items and ``padded`` elsewhere (``mask`` None: every item is real)."""
    return real if mask is None else tf.where(mask, real, padded)


def _spread_weights(soft: tf.Tensor, mask: tf.Tensor | None, probabilities: bool) -> tf.Tensor:
    """[rows, n] weights sigmoid'(z_i) / sum_j sigmoid'(z_j) over real items, from log-densities.

    ``soft`` holds the probabilities (``probabilities``) or the logits z. Saturated items
    (p exactly 0 or 1) weigh 0; a row where every item is saturated gives NaN weights, which
    only ever meet a zero threshold share (its items' sigmoid' terms are all 0 too).
    """
    if probabilities:
        log_density = tf.math.log(soft) + tf.math.log1p(-soft)
    else:
        log_density = -tf.math.softplus(soft) - tf.math.softplus(-soft)
    return tf.nn.softmax(_where_real(mask, log_density, float("-inf")), axis=-1)


@dataclass(frozen=True)
class ThresholdSettings:
    """The static settings of one operator call: they pick the program that is traced.

    k and tau are tensors and travel beside the settings, so one compiled program serves every
    value of them; the settings are hashable and each distinct one gets its own program.

    Attributes:
        selection: the threshold search that runs, ``"radix"``, ``"bracket"`` or ``"top_k"``
            (``"auto"`` is resolved before, ``dftopk_tf.selection.resolve_selection``).
        jit_compile: compile the forward and backward passes with XLA.
        probabilities: output sigmoid probabilities (else logits).
        hard: output the exact 0/1 top-k mask forward (straight-through gradient).
        threshold_gradient: ``"pair"`` or ``"spread"`` (see the module docstring).

    Example:
        >>> ThresholdSettings("radix", jit_compile=False, probabilities=True).hard
        False
    """

    selection: str
    jit_compile: bool
    probabilities: bool
    hard: bool = False
    threshold_gradient: str = "pair"


def _forward_rows(
    scores: tf.Tensor,
    mask: tf.Tensor | None,
    k: tf.Tensor,
    tau: tf.Tensor,
    settings: ThresholdSettings,
) -> tuple[tf.Tensor, ...]:
    """Forward pass on [rows, n] float32 scores: one XLA program when compiled.

    Returns the output (logits, probabilities, or the hard mask), the keys, each row's k-th and
    (k+1)-th key, each row's real-item count, and, when ``settings.hard``, the soft output the
    gradient needs (else the output is the soft output).
    """
    keys, real_count, has_nan, key_count = row_keys(scores, mask)
    kth_key, next_key = kth_key_pair(keys, k, settings.selection, key_count)
    has_pair = k < real_count
    kth = values_of_keys(kth_key)
    next_kth = values_of_keys(next_key)
    present = keys > ABSENT_KEY
    # Select-all rows: logits (x - smallest) / tau + margin, since smallest - margin * tau rounds
    # back to smallest for large scores (1e9 at tau = 1, 1e7 at tau = 0.01), leaving p = 0.5.
    # The smallest real key costs a pass, so it is found only when some row selects all.
    smallest_key = tf.cond(
        tf.reduce_all(has_pair), lambda: kth_key, lambda: key_passes.min_key(keys, present)
    )
    smallest_real = values_of_keys(smallest_key)
    theta = tf.where(has_pair, 0.5 * kth + 0.5 * next_kth, smallest_real)
    theta = tf.where(has_nan, float("nan"), theta)
    margin = tf.where(has_pair, 0.0, SELECT_ALL_MARGIN)[:, tf.newaxis]
    soft = _where_real(mask, (scores - theta[:, tf.newaxis]) / tau + margin, PADDED_LOGIT)
    if settings.probabilities:
        soft = _where_real(mask, tf.sigmoid(soft), 0.0)
    if not settings.hard:
        return soft, keys, kth_key, next_key, real_count
    selected = topk_mask_of_keys(
        keys, tf.minimum(k, real_count), tf.where(has_pair, kth_key, smallest_key)
    )
    return tf.cast(selected, tf.float32), keys, kth_key, next_key, real_count, soft


def _backward_rows(
    upstream: tf.Tensor,
    soft: tf.Tensor,
    keys: tf.Tensor,
    mask: tf.Tensor | None,
    k: tf.Tensor,
    tau: tf.Tensor,
    kth_key: tf.Tensor,
    next_key: tf.Tensor,
    real_count: tf.Tensor,
    settings: ThresholdSettings,
) -> tf.Tensor:
    """DFTopK gradient on [rows, n]: per-item term plus the threshold's share (see the module)."""
    probabilities = settings.probabilities
    item_grad = upstream * soft * (1.0 - soft) if probabilities else upstream
    item_grad = _where_real(mask, item_grad, 0.0) / tau
    share = tf.where(k < real_count, 0.5 * tf.reduce_sum(item_grad, axis=-1), 0.0)
    if settings.threshold_gradient == "spread":
        weights = _spread_weights(soft, mask, probabilities)
        return item_grad - tf.math.multiply_no_nan(weights, 2.0 * share[:, tf.newaxis])
    at_threshold = _threshold_weights(keys, k, kth_key, next_key)
    return item_grad - share[:, tf.newaxis] * at_threshold


@functools.cache
def _passes(settings: ThresholdSettings) -> tuple[Callable[..., tuple], Callable[..., tf.Tensor]]:
    """The forward and backward passes for ``settings``, XLA-compiled when it asks for it.

    One ``tf.function`` per distinct settings: the settings are bound here rather than passed to
    the ``tf.function`` (a dataclass argument would be traced again on every call).
    """
    forward = functools.partial(_forward_rows, settings=settings)
    backward = functools.partial(_backward_rows, settings=settings)
    if not settings.jit_compile:
        return forward, backward
    return (
        tf.function(forward, jit_compile=True, autograph=False),
        tf.function(backward, jit_compile=True, autograph=False),
    )


def _dftopk_rows(
    scores: tf.Tensor,
    mask: tf.Tensor | None,
    k: tf.Tensor,
    tau: tf.Tensor,
    settings: ThresholdSettings,
) -> tf.Tensor:
    """The operator on [rows, n] float32 scores, with the DFTopK gradient."""
    forward, backward = _passes(settings)

    @tf.custom_gradient
    def operator(x: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
        output, keys, kth_key, next_key, real_count, *hard_soft = forward(x, mask, k, tau)
        soft = hard_soft[0] if settings.hard else output

        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            return backward(upstream, soft, keys, mask, k, tau, kth_key, next_key, real_count)

        return output, gradient

    return operator(scores)


def _dftopk(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    tau: float | tf.Tensor,
    mask: tf.Tensor | None,
    selection: str,
    jit_compile: bool,
    probabilities: bool,
    hard: bool = False,
    threshold_gradient: str = "pair",
) -> tf.Tensor:
    """Validates inputs, flattens them to rows, runs the operator and restores the shape."""
    scores = check_scores(scores)
    check_threshold_gradient(threshold_gradient)
    k = check_k(k, scores.shape)
    selection, jit_compile = resolve_selection(
        selection, scores.shape[-1], static_k(k), jit_compile, placement(scores)
    )
    settings = ThresholdSettings(selection, jit_compile, probabilities, hard, threshold_gradient)
    tau = check_positive_tensor("tau", tau)
    scores32 = tf.cast(scores, tf.float32)
    flat_scores, batch_shape = flatten_rows(scores32)
    flat_mask = None
    if mask is not None:
        mask = resolve_mask(scores32, mask)
        flat_mask = tf.reshape(mask, tf.shape(flat_scores))
    output = _dftopk_rows(flat_scores, flat_mask, rows_k(k, batch_shape), tau, settings)
    return tf.reshape(output, tf.shape(scores32))


def dftopk_logits(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    tau: float | tf.Tensor = 1.0,
    mask: tf.Tensor | None = None,
    selection: str = "auto",
    jit_compile: bool = True,
    threshold_gradient: str = "pair",
) -> tf.Tensor:
    """DFTopK logits (x - theta) / tau, for numerically stable BCE-with-logits.

    Args:
        scores: float tensor [..., n].
        k: Python int >= 1, or an int tensor of shape [...] (one k per row).
        tau: temperature > 0 (Python float or scalar tensor).
        mask: optional bool [..., n], True for real items.
        selection: threshold search: ``"auto"`` (default: the path that measured fastest for
            the shape, k, device and XLA, ``dftopk_tf.selection.resolve_selection``: the radix
            select, or top_k for small k in long rows), ``"radix"`` (the O(n) radix select),
            ``"bracket"`` (O(n): a sample bracket, then the radix select inside it) or
            ``"top_k"`` (``tf.math.top_k``; under XLA one compile per distinct k). Values and
            gradients are the same.
        jit_compile: allow XLA: compile the forward and backward passes (``"auto"`` may run
            TF's top_k kernel uncompiled where that is faster); turn off for stock TF
            Serving, which runs no XLA.
        threshold_gradient: ``"pair"`` (exact: the k-th and (k+1)-th item) or ``"spread"``
            (every item, by sigmoid'); see the module docstring.

    Returns:
        float32 [..., n]; ``PADDED_LOGIT`` on padded items.

    Example:
        >>> dftopk_logits(tf.constant([[3.0, 1.0, 2.0]]), k=1).numpy().tolist()
        [[0.5, -1.5, -0.5]]
    """
    return _dftopk(
        scores,
        k,
        tau,
        mask,
        selection,
        jit_compile,
        probabilities=False,
        threshold_gradient=threshold_gradient,
    )


def dftopk(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    tau: float | tf.Tensor = 1.0,
    mask: tf.Tensor | None = None,
    hard: bool = False,
    selection: str = "auto",
    jit_compile: bool = True,
    threshold_gradient: str = "pair",
) -> tf.Tensor:
    """DFTopK selection probabilities p = sigmoid((x - theta) / tau), theta = (x_[k] + x_[k+1]) / 2.

    Args:
        scores: float tensor [..., n] (any float dtype; computed in float32).
        k: Python int >= 1, or an int tensor of shape [...] (one k per row).
        tau: temperature > 0: smaller is harder (closer to the 0/1 top-k mask).
        mask: optional bool [..., n], True for real items; padded items get p = 0.
        hard: if True, the forward value is the exact 0/1 top-k mask (ties to the lower index)
            and the gradient is DFTopK's (straight-through).
        selection: threshold search: ``"auto"`` (default: the path that measured fastest for
            the shape, k, device and XLA, ``dftopk_tf.selection.resolve_selection``: the radix
            select, or top_k for small k in long rows), ``"radix"`` (the O(n) radix select),
            ``"bracket"`` (O(n): a sample bracket, then the radix select inside it) or
            ``"top_k"`` (``tf.math.top_k``; under XLA one compile per distinct k). Values and
            gradients are the same.
        jit_compile: allow XLA: compile the forward and backward passes (``"auto"`` may run
            TF's top_k kernel uncompiled where that is faster); turn off for stock TF
            Serving, which runs no XLA.
        threshold_gradient: ``"pair"`` (exact: the k-th and (k+1)-th item) or ``"spread"``
            (every item, by sigmoid'); see the module docstring.

    Returns:
        float32 [..., n] in [0, 1].

    Example:
        >>> p = dftopk(tf.constant([[3.0, 1.0, 2.0, 0.0]]), k=2, tau=0.5)
        >>> p.numpy().round(3)
        array([[0.953, 0.269, 0.731, 0.047]], dtype=float32)
        >>> dftopk(tf.constant([[3.0, 1.0, 2.0, 0.0]]), k=2, hard=True).numpy().tolist()
        [[1.0, 0.0, 1.0, 0.0]]
    """
    return _dftopk(
        scores,
        k,
        tau,
        mask,
        selection,
        jit_compile,
        probabilities=True,
        hard=hard,
        threshold_gradient=threshold_gradient,
    )


def dftopk_reference(
    scores: tf.Tensor, k: int, tau: float = 1.0, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """The plain formula with ``tf.math.top_k``, differentiated by autodiff (tests' oracle).

    Scalar k only; rows need more than k real items. Padded items get p = 0.

    Example:
        >>> dftopk_reference(tf.constant([[3.0, 1.0, 2.0, 0.0]]), k=2, tau=0.5).numpy().round(3)
        array([[0.953, 0.269, 0.731, 0.047]], dtype=float32)
    """
    scores = tf.cast(scores, tf.float32)
    mask = resolve_mask(scores, mask)
    ranked = tf.math.top_k(tf.where(mask, scores, float("-inf")), k=k + 1).values
    theta = 0.5 * ranked[..., k - 1] + 0.5 * ranked[..., k]
    return tf.where(mask, tf.sigmoid((scores - theta[..., tf.newaxis]) / tau), 0.0)
