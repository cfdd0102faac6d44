"""NumPy reference ranking metrics: the tests' oracle and the evaluation script's cross-check.

All functions take ``labels`` and ``scores`` of shape [batch, n] (one request per row). Real items
are given by ``mask`` (bool [batch, n], True = real); when ``mask`` is None they are the items with
a non-negative label, the ``y_true`` padding convention of ``dftopk_tf.masking`` (PADDING_LABEL).
Real items must have a non-negative label and a score that is not NaN; padded items may hold
anything.

Conventions shared with the Keras metrics in ``dftopk_tf.metrics``:

- Top-k by label or by score keeps exactly min(k, real count) real items, the largest values, ties
  broken by lower index (the ``tf.math.top_k`` order). Padded items are never selected.
- Recall divides by min(k, real count): a request with only 5 real items and k = 10 scores 1.0 when
  the model's top-m holds all 5.
- A request where a metric is undefined gets NaN from the ``*_per_request`` functions and is left
  out of the mean: no real items (all metrics), an ideal DCG of 0 (NDCG), or no untied pair in the
  labels or in the scores (Kendall tau).
- The mean functions return the mean over defined requests, weighted by ``sample_weight`` (one
  weight per request), and NaN when no request is defined (the Keras metrics report 0 there).

Example:
    >>> labels = np.array([[3.0, 2.0, 1.0, 0.0]])
    >>> scores = np.array([[0.1, 0.9, 0.8, 0.2]])
    >>> float(recall_at_k_m(labels, scores, k=2, m=2))
    0.5
"""

import numpy as np

from dftopk_tf.validation import check_positive_ints


def recall_at_k_m_per_request(
    labels: np.ndarray, scores: np.ndarray, k: int, m: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per request, |top-k by label ∩ top-m by score| / min(k, real count); NaN with no real item.

    Example:
        >>> labels, scores = np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 2.0]])
        >>> recall_at_k_m_per_request(labels, scores, k=1, m=2)
        array([0.])
    """
    check_positive_ints(k=k, m=m)
    labels, scores, mask = _validated(labels, scores, mask)
    truth = _top_mask(labels, k, mask)
    chosen = _top_mask(scores, m, mask)
    return _ratio(np.sum(truth & chosen, axis=-1), np.sum(truth, axis=-1))


def recall_at_k_m(
    labels: np.ndarray,
    scores: np.ndarray,
    k: int,
    m: int,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Mean over requests of ``recall_at_k_m_per_request`` (weighted, NaN requests left out).

    Example:
        >>> float(recall_at_k_m(np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 2.0]]), 1, 3))
        1.0
    """
    return weighted_mean(recall_at_k_m_per_request(labels, scores, k, m, mask), sample_weight)


def joint_recall_per_request(
    labels: np.ndarray,
    stage1_scores: np.ndarray,
    stage2_scores: np.ndarray,
    k: int,
    m1: int,
    m2: int,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Per request, recall of the label top-k in a two-stage cascade's final selection.

    Stage 1 keeps its top-``m1`` real items by ``stage1_scores``; stage 2 keeps the top-``m2`` of
    those by ``stage2_scores``. The value is |top-k by label ∩ final| / min(k, real count).

    Example:
        >>> labels = np.array([[3.0, 2.0, 1.0, 0.0]])
        >>> stage1 = np.array([[4.0, 1.0, 3.0, 2.0]])  # keeps items 0, 2, 3
        >>> stage2 = np.array([[0.0, 9.0, 2.0, 1.0]])  # of those keeps 2, 3
        >>> joint_recall_per_request(labels, stage1, stage2, k=2, m1=3, m2=2)
        array([0.])
    """
    check_positive_ints(k=k, m1=m1, m2=m2)
    labels, stage1_scores, mask = _validated(labels, stage1_scores, mask)
    _, stage2_scores, _ = _validated(labels, stage2_scores, mask)
    truth = _top_mask(labels, k, mask)
    kept = _top_mask(stage1_scores, m1, mask)
    final = _top_mask(stage2_scores, m2, kept)
    return _ratio(np.sum(truth & final, axis=-1), np.sum(truth, axis=-1))


def joint_recall(
    labels: np.ndarray,
    stage1_scores: np.ndarray,
    stage2_scores: np.ndarray,
    k: int,
    m1: int,
    m2: int,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Mean over requests of ``joint_recall_per_request`` (weighted, NaN requests left out).

    Example:
        >>> labels = np.array([[3.0, 2.0, 1.0, 0.0]])
        >>> float(joint_recall(labels, labels, labels, k=2, m1=3, m2=2))
        1.0
    """
    per_request = joint_recall_per_request(labels, stage1_scores, stage2_scores, k, m1, m2, mask)
    return weighted_mean(per_request, sample_weight)


def ndcg_at_k_per_request(
    labels: np.ndarray, scores: np.ndarray, k: int, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per request, DCG@k of the score order over the ideal DCG@k; NaN where the ideal DCG is 0.

    DCG@k = sum over the top-min(k, real count) items by score of label / log2(position + 1),
    positions 1, 2, ... (linear gain: the label value itself). The ideal DCG takes the items in
    label order. Requests whose real labels are all 0 (or with no real item) have no ideal DCG: NaN.

    Example:
        >>> ndcg_at_k_per_request(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), k=2)
        array([0.63092975])
    """
    check_positive_ints(k=k)
    labels, scores, mask = _validated(labels, scores, mask)
    dcg = _dcg(labels, _positions(scores, mask), k, mask)
    ideal_dcg = _dcg(labels, _positions(labels, mask), k, mask)
    return _ratio(dcg, ideal_dcg)


def ndcg_at_k(
    labels: np.ndarray,
    scores: np.ndarray,
    k: int,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Mean over requests of ``ndcg_at_k_per_request`` (weighted, NaN requests left out).

    Example:
        >>> float(ndcg_at_k(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]), k=2))
        1.0
    """
    return weighted_mean(ndcg_at_k_per_request(labels, scores, k, mask), sample_weight)


def kendall_tau_per_request(
    labels: np.ndarray, scores: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per request, Kendall's tau-b between labels and scores over the real items.

    tau-b = sum_{i<j} sign(l_i - l_j) sign(s_i - s_j) / sqrt(P_l * P_s), where P_l (P_s) counts the
    pairs not tied in the labels (scores). NaN where P_l or P_s is 0 (all labels or all scores tied,
    fewer than two real items). Infinite scores compare as usual (+inf ties with +inf).

    Example:
        >>> kendall_tau_per_request(np.array([[3.0, 2.0, 1.0]]), np.array([[1.0, 2.0, 3.0]]))
        array([-1.])
    """
    labels, scores, mask = _validated(labels, scores, mask)
    values = np.full(labels.shape[0], np.nan)
    for request, real in enumerate(mask):
        label_signs = _pairwise_signs(labels[request, real])
        score_signs = _pairwise_signs(scores[request, real])
        untied_pairs = np.sum(label_signs != 0) * np.sum(score_signs != 0)
        if untied_pairs > 0:
            # Sums over ordered pairs count each pair twice, in the numerator and under the root.
            values[request] = np.sum(label_signs * score_signs) / np.sqrt(untied_pairs)
    return values


def kendall_tau(
    labels: np.ndarray,
    scores: np.ndarray,
    mask: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Mean over requests of ``kendall_tau_per_request`` (weighted, NaN requests left out).

    Example:
        >>> float(kendall_tau(np.array([[3.0, 2.0, 1.0]]), np.array([[3.0, 2.0, 1.0]])))
        1.0
    """
    return weighted_mean(kendall_tau_per_request(labels, scores, mask), sample_weight)


def weighted_mean(per_request: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean of per-request values weighted by ``sample_weight`` [batch], skipping NaN values.

    Returns NaN when no request is defined or all defined requests have weight 0.

    Example:
        >>> float(weighted_mean(np.array([1.0, np.nan, 0.0]), np.array([3.0, 1.0, 1.0])))
        0.75
    """
    total, total_weight = defined_total(per_request, sample_weight)
    if total_weight == 0:
        return float("nan")
    return total / total_weight


def defined_total(
    per_request: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[float, float]:
    """The weighted sum of the defined (not NaN) per-request values, and the sum of their weights.

    ``weighted_mean`` is their ratio; adding them up over batches gives the mean over all of them.

    Example:
        >>> defined_total(np.array([1.0, np.nan, 0.5]))
        (1.5, 2.0)
    """
    per_request = np.asarray(per_request, dtype=np.float64)
    if sample_weight is None:
        sample_weight = np.ones_like(per_request)
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    if sample_weight.shape != per_request.shape:
        raise ValueError(
            f"sample_weight shape {sample_weight.shape} must be [batch] = {per_request.shape}: "
            "one weight per request."
        )
    defined = ~np.isnan(per_request)
    weights = sample_weight[defined]
    return float(np.sum(weights * per_request[defined])), float(np.sum(weights))


def _validated(
    labels: np.ndarray, scores: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns float64 labels and scores and the bool mask of real items, after checking them."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 2:
        raise ValueError(f"labels must have shape [batch, n], got shape {labels.shape}.")
    if scores.shape != labels.shape:
        raise ValueError(f"scores shape {scores.shape} must equal labels shape {labels.shape}.")
    if mask is None:
        mask = labels >= 0
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != labels.shape:
        raise ValueError(f"mask shape {mask.shape} must equal labels shape {labels.shape}.")
    if np.any(mask & ~(labels >= 0)):
        raise ValueError(
            "real items (mask True) must have labels >= 0; negative labels mark padded items."
        )
    if np.any(mask & np.isnan(scores)):
        raise ValueError("scores of real items must not be NaN.")
    return labels, scores, mask


def _positions(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """0-based position of each item: real items first, by value descending, ties by lower index."""
    index = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
    # np.lexsort sorts by its last key first: real before padded, then value descending, then index.
    order = np.lexsort((index, -np.where(mask, values, 0.0), ~mask), axis=-1)
    return np.argsort(order, axis=-1)


def _top_mask(values: np.ndarray, k: int, mask: np.ndarray) -> np.ndarray:
    """The min(k, real count) real items with the largest values, ties broken by lower index."""
    return mask & (_positions(values, mask) < k)


def _dcg(gains: np.ndarray, positions: np.ndarray, k: int, mask: np.ndarray) -> np.ndarray:
    counted = mask & (positions < k)
    discounts = np.log2(positions + 2.0)
    return np.sum(np.where(counted, gains / discounts, 0.0), axis=-1)


def _pairwise_signs(values: np.ndarray) -> np.ndarray:
    """sign(v_i - v_j) for all ordered pairs, by comparison so that equal infinities tie."""
    return (values[:, None] > values[None, :]).astype(np.float64) - (
        values[:, None] < values[None, :]
    ).astype(np.float64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator per request, NaN where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, np.nan)
