"""Ranking metrics as streaming Keras metrics: set recall, joint recall, NDCG and Kendall tau.

Each metric reports the mean over all requests seen so far, weighted by ``sample_weight`` (one
weight per request). Inputs follow the Keras metric API: ``y_true`` = labels [batch, n] with padded
items marked by a negative label (``dftopk_tf.masking.PADDING_LABEL``), ``y_pred`` = scores
[batch, n] (``JointRecall``: [batch, n, 2], stage-1 and stage-2 scores stacked on the last axis).
``y_true`` may also be keras-rs's dict ``{"labels": [batch, n], "mask": [batch, n]}`` (True = real
item; ``dftopk_tf.label_inputs``), with the same values.
Padded items are never selected and never counted, whatever their score.

The ``*_per_request`` functions return one value per request and mirror ``dftopk_tf.metrics_numpy``
(the reference the tests check against), conventions included: top-k keeps min(k, real count) items,
ties broken by lower index; recall divides by min(k, real count); a request where the metric is
undefined (no real item, ideal DCG 0, all labels or all scores tied for Kendall tau) is NaN per
request and left out of the streamed mean; the metric reports 0 until some request is defined.
Real scores must not be NaN (checked at run time); a NaN label counts as padding.

Cost: the top-k masks are linear-time selections (``dftopk_tf.selection.topk_mask``); NDCG
sorts [batch, n] (``tf.math.top_k``), and Kendall tau makes [batch, n, n] pairwise comparisons;
meant for evaluation lists (n ~ 200), not the O(n) training path.

Example:
    >>> metric = RecallAtKM(k=1, m=2)
    >>> labels = [[3.0, 1.0, 0.0, -1.0]]  # -1.0 = PADDING_LABEL: a padded item
    >>> metric.update_state(labels, [[0.5, 0.9, 0.1, 2.0]])
    >>> float(metric.result())
    1.0
"""

from typing import Any

import tensorflow as tf

from dftopk_tf.keras_compat import keras, register_serializable
from dftopk_tf.label_inputs import padded_labels
from dftopk_tf.masking import mask_from_labels
from dftopk_tf.selection import topk_mask
from dftopk_tf.validation import check_positive_ints


def recall_at_k_m_per_request(
    labels: tf.Tensor, scores: tf.Tensor, k: int, m: int, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """Per request, |top-k by label ∩ top-m by score| / min(k, real count); NaN with no real item.

    Args:
        labels: float [batch, n]; real items must have labels >= 0.
        scores: float [batch, n].
        k: size of the ground-truth set, >= 1.
        m: size of the model's selection, >= 1.
        mask: bool [batch, n], True = real item; None means ``labels >= 0``.

    Returns:
        float32 [batch].

    Example:
        >>> labels = tf.constant([[2.0, 1.0, 0.0]])
        >>> scores = tf.constant([[0.0, 1.0, 2.0]])
        >>> recall_at_k_m_per_request(labels, scores, k=1, m=3).numpy().tolist()
        [1.0]
    """
    check_positive_ints(k=k, m=m)
    labels, scores, mask = _validated(labels, scores, mask)
    truth = topk_mask(labels, k, mask)
    chosen = topk_mask(scores, m, mask)
    return _ratio(_count(truth & chosen), _count(truth))


def joint_recall_per_request(
    labels: tf.Tensor,
    stage1_scores: tf.Tensor,
    stage2_scores: tf.Tensor,
    k: int,
    m1: int,
    m2: int,
    mask: tf.Tensor | None = None,
) -> tf.Tensor:
    """Per request, recall of the label top-k in a two-stage cascade's final selection.

    Stage 1 keeps its top-``m1`` real items by ``stage1_scores``; stage 2 keeps the top-``m2`` of
    those by ``stage2_scores``; the value is |top-k by label ∩ final| / min(k, real count).

    Args:
        labels: float [batch, n]; real items must have labels >= 0.
        stage1_scores: float [batch, n], e.g. the retrieval scores.
        stage2_scores: float [batch, n], e.g. the pre-ranking scores.
        k: size of the ground-truth set, >= 1.
        m1: how many items stage 1 passes on, >= 1.
        m2: how many of those stage 2 keeps, >= 1.
        mask: bool [batch, n], True = real item; None means ``labels >= 0``.

    Returns:
        float32 [batch].

    Example:
        >>> labels = tf.constant([[3.0, 2.0, 1.0, 0.0]])
        >>> joint_recall_per_request(labels, tf.constant([[4.0, 1.0, 3.0, 2.0]]), labels,
        ...                          k=2, m1=3, m2=2).numpy().tolist()
        [0.5]
    """
    check_positive_ints(k=k, m1=m1, m2=m2)
    labels, stage1_scores, mask = _validated(labels, stage1_scores, mask)
    _, stage2_scores, _ = _validated(labels, stage2_scores, mask)
    truth = topk_mask(labels, k, mask)
    kept = topk_mask(stage1_scores, m1, mask)
    final = topk_mask(stage2_scores, m2, kept)
    return _ratio(_count(truth & final), _count(truth))


def ndcg_at_k_per_request(
    labels: tf.Tensor, scores: tf.Tensor, k: int, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """Per request, DCG@k of the score order over the ideal DCG@k; NaN where the ideal DCG is 0.

    DCG@k = sum over the top-min(k, real count) items by score of label / log2(position + 1),
    positions 1, 2, ... (linear gain); the ideal DCG takes the items in label order.

    Args:
        labels: float [batch, n], the gains; real items must have labels >= 0.
        scores: float [batch, n].
        k: cut-off, >= 1.
        mask: bool [batch, n], True = real item; None means ``labels >= 0``.

    Returns:
        float32 [batch].

    Example:
        >>> ndcg_at_k_per_request(tf.constant([[1.0, 0.0]]), tf.constant([[1.0, 0.0]]),
        ...                       k=2).numpy().tolist()
        [1.0]
    """
    check_positive_ints(k=k)
    labels, scores, mask = _validated(labels, scores, mask)
    dcg = _dcg(labels, _positions(scores, mask), k, mask)
    ideal_dcg = _dcg(labels, _positions(labels, mask), k, mask)
    return _ratio(dcg, ideal_dcg)


def kendall_tau_per_request(
    labels: tf.Tensor, scores: tf.Tensor, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """Per request, Kendall's tau-b between labels and scores over the real items.

    tau-b = sum_{i<j} sign(l_i - l_j) sign(s_i - s_j) / sqrt(P_l * P_s), where P_l (P_s) counts the
    pairs not tied in the labels (scores); NaN where either count is 0.

    Args:
        labels: float [batch, n]; real items must have labels >= 0.
        scores: float [batch, n].
        mask: bool [batch, n], True = real item; None means ``labels >= 0``.

    Returns:
        float32 [batch].

    Example:
        >>> kendall_tau_per_request(tf.constant([[3.0, 2.0, 1.0]]),
        ...                         tf.constant([[1.0, 2.0, 3.0]])).numpy().tolist()
        [-1.0]
    """
    labels, scores, mask = _validated(labels, scores, mask)
    pair_mask = mask[:, :, None] & mask[:, None, :]
    label_signs = _pairwise_signs(labels, pair_mask)
    score_signs = _pairwise_signs(scores, pair_mask)
    # Sums over ordered pairs count each pair twice, in the numerator and under the root alike.
    concordance = tf.reduce_sum(label_signs * score_signs, axis=[1, 2])
    untied_pairs = tf.reduce_sum(tf.abs(label_signs), axis=[1, 2]) * tf.reduce_sum(
        tf.abs(score_signs), axis=[1, 2]
    )
    return _ratio(concordance, tf.sqrt(untied_pairs))


class _RequestMean(keras.metrics.Metric):
    """Streams the weighted mean over requests of a per-request value, skipping NaN requests."""

    def __init__(self, name: str, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_weight(name="total", shape=(), initializer="zeros")
        self.count = self.add_weight(name="count", shape=(), initializer="zeros")

    def _per_request(self, labels: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        """Returns the float32 [batch] values, NaN where undefined, for labels and predictions."""
        raise NotImplementedError("subclasses compute the per-request value")

    def update_state(
        self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None
    ) -> None:
        """Adds a batch: y_true labels [batch, n] or ``{"labels", "mask"}`` (keras-rs style),
        y_pred scores, sample_weight [batch] or None."""
        values = self._per_request(padded_labels(y_true), tf.cast(y_pred, tf.float32))
        weights = _request_weights(sample_weight, values)
        defined = tf.logical_not(tf.math.is_nan(values))
        weights = tf.where(defined, weights, 0.0)
        total = tf.reduce_sum(tf.where(defined, weights * values, 0.0))
        self.total.assign_add(tf.cast(total, self.total.dtype))
        self.count.assign_add(tf.cast(tf.reduce_sum(weights), self.count.dtype))

    def result(self) -> tf.Tensor:
        """The weighted mean over the defined requests seen so far (0 before any)."""
        return tf.math.divide_no_nan(self.total, self.count)


@register_serializable
class RecallAtKM(_RequestMean):
    """Set recall: the share of the ground-truth top-k (by label) in the model's top-m (by score).

    Per request |top-k by label ∩ top-m by score| / min(k, real count), averaged over requests.
    The paper reports pre-ranking as Recall@10@20 and retrieval as Recall@10@30.

    Args:
        k: size of the ground-truth set (top-k by label), >= 1.
        m: size of the model's selection (top-m by score), >= 1.
        name: metric name.
        dtype: dtype of the result.

    Input shapes:
        y_true: labels [batch, n], padded items marked by a negative label (``PADDING_LABEL``).
        y_pred: scores [batch, n].
        sample_weight: optional per-request weights [batch].

    Example:
        >>> metric = RecallAtKM(k=1, m=2)
        >>> labels = [[3.0, 1.0, 0.0, -1.0]]  # -1.0 = PADDING_LABEL: a padded item
        >>> metric.update_state(labels, [[0.5, 0.9, 0.1, 2.0]])
        >>> float(metric.result())
        1.0
    """

    def __init__(self, k: int = 10, m: int = 20, name: str | None = None, dtype: Any = None):
        check_positive_ints(k=k, m=m)
        super().__init__(name=name or f"recall_at_{k}_at_{m}", dtype=dtype)
        self.k = int(k)
        self.m = int(m)

    def _per_request(self, labels: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        return recall_at_k_m_per_request(labels, scores, self.k, self.m)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "m": self.m}


@register_serializable
class JointRecall(_RequestMean):
    """Two-stage cascade recall: the share of the label top-k that survives both stages.

    Stage 1 keeps its top-``m1`` items by the stage-1 scores, stage 2 keeps the top-``m2`` of those
    by the stage-2 scores; per request |top-k by label ∩ final| / min(k, real count), averaged. The
    paper's headline metric is the joint Recall@10@20 with retrieval keeping 30 (the defaults).

    Args:
        k: size of the ground-truth set (top-k by label), >= 1.
        m1: how many items stage 1 passes on, >= 1.
        m2: how many of those stage 2 keeps, >= 1.
        name: metric name.
        dtype: dtype of the result.

    Input shapes:
        y_true: labels [batch, n], padded items marked by a negative label (``PADDING_LABEL``).
        y_pred: [batch, n, 2], the stage-1 scores (``[..., 0]``) and stage-2 scores (``[..., 1]``).
        sample_weight: optional per-request weights [batch].

    Example:
        >>> metric = JointRecall(k=1, m1=2, m2=1)
        >>> stage1 = [[0.9, 0.8, 0.1]]  # keeps items 0 and 1
        >>> stage2 = [[0.2, 0.7, 0.9]]  # of those keeps item 1
        >>> metric.update_state([[0.0, 5.0, 1.0]], tf.stack([stage1, stage2], axis=-1))
        >>> float(metric.result())
        1.0
    """

    def __init__(
        self, k: int = 10, m1: int = 30, m2: int = 20, name: str | None = None, dtype: Any = None
    ):
        check_positive_ints(k=k, m1=m1, m2=m2)
        super().__init__(name=name or f"joint_recall_at_{k}_at_{m1}_{m2}", dtype=dtype)
        self.k = int(k)
        self.m1 = int(m1)
        self.m2 = int(m2)

    def _per_request(self, labels: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        if scores.shape.rank is not None and (
            scores.shape.rank != 3 or scores.shape[-1] not in (None, 2)
        ):
            raise ValueError(
                f"JointRecall expects y_pred of shape [batch, n, 2] (stage-1 and stage-2 scores "
                f"stacked on the last axis), got shape {scores.shape}."
            )
        tf.debugging.assert_equal(
            tf.shape(scores)[-1], 2, message="JointRecall y_pred must be [batch, n, 2]"
        )
        return joint_recall_per_request(
            labels, scores[..., 0], scores[..., 1], self.k, self.m1, self.m2
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "m1": self.m1, "m2": self.m2}


@register_serializable
class NDCG(_RequestMean):
    """NDCG@k with the label as linear gain and a log2 discount, averaged over requests.

    Requests whose real labels are all 0 have no ideal ranking and are left out of the mean.

    Args:
        k: cut-off, >= 1.
        name: metric name.
        dtype: dtype of the result.

    Input shapes:
        y_true: labels (the gains) [batch, n], padded items marked by a negative label.
        y_pred: scores [batch, n].
        sample_weight: optional per-request weights [batch].

    Example:
        >>> metric = NDCG(k=2)
        >>> labels = [[1.0, 0.0, -1.0]]  # -1.0 = PADDING_LABEL: a padded item
        >>> metric.update_state(labels, [[0.0, 1.0, 5.0]])
        >>> round(float(metric.result()), 4)
        0.6309
    """

    def __init__(self, k: int = 10, name: str | None = None, dtype: Any = None):
        check_positive_ints(k=k)
        super().__init__(name=name or f"ndcg_at_{k}", dtype=dtype)
        self.k = int(k)

    def _per_request(self, labels: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        return ndcg_at_k_per_request(labels, scores, self.k)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


@register_serializable
class KendallTau(_RequestMean):
    """Kendall's tau-b between scores and labels over each request's real items, averaged.

    Requests with all labels or all scores tied (or fewer than two real items) are left out.
    Memory is [batch, n, n]: meant for evaluation lists of a few hundred items.

    Args:
        name: metric name.
        dtype: dtype of the result.

    Input shapes:
        y_true: labels [batch, n], padded items marked by a negative label (``PADDING_LABEL``).
        y_pred: scores [batch, n].
        sample_weight: optional per-request weights [batch].

    Example:
        >>> metric = KendallTau()
        >>> labels = [[3.0, 2.0, 1.0, -1.0]]  # -1.0 = PADDING_LABEL: a padded item
        >>> metric.update_state(labels, [[3.0, 1.0, 2.0, 0.0]])
        >>> round(float(metric.result()), 4)
        0.3333
    """

    def __init__(self, name: str = "kendall_tau", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def _per_request(self, labels: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
        return kendall_tau_per_request(labels, scores)


def _validated(
    labels: tf.Tensor, scores: tf.Tensor, mask: tf.Tensor | None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Returns float32 labels and scores and the bool mask of real items, after checking them."""
    labels = tf.cast(labels, tf.float32)
    scores = tf.cast(scores, tf.float32)
    if labels.shape.rank is not None and labels.shape.rank != 2:
        raise ValueError(f"labels (y_true) must have shape [batch, n], got shape {labels.shape}.")
    if not scores.shape.is_compatible_with(labels.shape):
        raise ValueError(
            f"scores (y_pred) shape {scores.shape} must equal labels (y_true) shape {labels.shape}."
        )
    tf.debugging.assert_equal(
        tf.shape(scores), tf.shape(labels), message="scores shape must equal labels shape"
    )
    if mask is None:
        mask = mask_from_labels(labels)
    else:
        mask = tf.cast(mask, tf.bool)
        if not mask.shape.is_compatible_with(labels.shape):
            raise ValueError(f"mask shape {mask.shape} must equal labels shape {labels.shape}.")
        tf.debugging.assert_equal(
            tf.shape(mask), tf.shape(labels), message="mask shape must equal labels shape"
        )
        tf.debugging.Assert(
            tf.reduce_all(mask_from_labels(labels) | ~mask),
            ["real items (mask True) must have labels >= 0; negative labels mark padded items"],
        )
    tf.debugging.Assert(
        tf.reduce_all(~(mask & tf.math.is_nan(scores))),
        ["scores (y_pred) of real items must not be NaN"],
    )
    return labels, scores, mask


def _positions(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """0-based position of each item: real items first, by value descending, ties by lower index."""
    n = tf.shape(values)[-1]
    # Padded values are replaced so that NaN or inf padding cannot disturb the sort of real items.
    _, by_value = tf.math.top_k(tf.where(mask, values, 0.0), k=n)  # ties: lower index first
    # float32 keys: top_k on GPU takes floats; integers below 2**24 are exact.
    real_in_value_order = tf.cast(tf.gather(mask, by_value, batch_dims=1), tf.float32)
    _, real_first = tf.math.top_k(real_in_value_order, k=n)  # stable: keeps the value order
    order = tf.gather(by_value, real_first, batch_dims=1)
    _, inverse = tf.math.top_k(-tf.cast(order, tf.float32), k=n)
    return inverse


def _dcg(gains: tf.Tensor, positions: tf.Tensor, k: int, mask: tf.Tensor) -> tf.Tensor:
    counted = mask & (positions < k)
    discounts = tf.math.log(tf.cast(positions, tf.float32) + 2.0) / tf.math.log(2.0)
    return tf.reduce_sum(tf.where(counted, gains / discounts, 0.0), axis=-1)


def _pairwise_signs(values: tf.Tensor, pair_mask: tf.Tensor) -> tf.Tensor:
    """sign(v_i - v_j) on real pairs, by comparison so that equal infinities tie; 0 elsewhere."""
    above = tf.cast(values[:, :, None] > values[:, None, :], tf.float32)
    below = tf.cast(values[:, :, None] < values[:, None, :], tf.float32)
    return tf.where(pair_mask, above - below, 0.0)


def _count(selected: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(selected, tf.float32), axis=-1)


def _ratio(numerator: tf.Tensor, denominator: tf.Tensor) -> tf.Tensor:
    """numerator / denominator per request, NaN where the denominator is 0."""
    nan = tf.fill(tf.shape(numerator), float("nan"))
    return tf.where(denominator > 0, tf.math.divide_no_nan(numerator, denominator), nan)


def _request_weights(sample_weight: tf.Tensor | None, values: tf.Tensor) -> tf.Tensor:
    """Per-request weights [batch] from None, a scalar, [batch] or [batch, 1]."""
    if sample_weight is None:
        return tf.ones_like(values)
    sample_weight = tf.cast(sample_weight, tf.float32)
    if sample_weight.shape.rank == 0:
        return tf.fill(tf.shape(values), sample_weight)
    tf.debugging.assert_equal(
        tf.size(sample_weight),
        tf.size(values),
        message="sample_weight must hold one weight per request: shape [batch] or [batch, 1]",
    )
    return tf.reshape(sample_weight, tf.shape(values))
