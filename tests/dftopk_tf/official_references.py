"""NumPy (float64) ports of the official DFTopK repository's cascade losses, one request at a time.

Written from the formulas in zhangzhen97/DFTOPK at commit d5e4654e84d6c2119707092582a7203b14e29034:
torch/deep_components/loss/two_stage/different_sorting_loss.py (LCRON: ``LsingleLoss``,
``JointUltraLoss``, ``compute_lcron_metrics_negative_sample``) and topk_loss.py
(``compute_cascade_topk_metrics``, versions ``dftopkjoint`` and ``lapsumjoint``), as the run script
run_train2_negativesampling.py calls them. Plain loops and NumPy, no dftopk_tf code.

Each request is a 1-D array of its real items. The official stop-gradient on the LCRON column
masses is the argument ``base``: the columns are computed at the ``base`` scores, so a finite-
difference gradient with ``base`` held at x (``finite_difference_gradient``) is the official
autodiff gradient.

The one deliberate departure, in ``peer_references.diffsort``: the official torch DiffSort never
updates the compared values between layers (each layer compares the original scores) and returns
the matrix as [item, rank]; we sort with the working odd-even network, as rows = ranks.
"""

from collections.abc import Callable, Sequence

import numpy as np

from tests.dftopk_tf import peer_references as ref

EPS = 1e-6
#: The official LCRON label sort: tau 1e-4 (NeuralSort, SoftSort), steepness 1000 (DiffSort).
LABEL_SORTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "lcron-neuralsort": lambda labels: ref.neuralsort(labels, 1e-4),
    "lcron-softsort": lambda labels: ref.softsort(labels, 1e-4),
    "lcron-diffsort": lambda labels: ref.diffsort(labels, 1000.0),
}
SORTS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "lcron-neuralsort": ref.neuralsort,
    "lcron-softsort": ref.softsort,
    "lcron-diffsort": ref.diffsort,
}


def lcron_masses(matrix: np.ndarray, k: int, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom row masses over the (constant) column masses plus 1e-6."""
    return matrix[:k].sum(axis=0) / (columns + EPS), matrix[k:].sum(axis=0) / (columns + EPS)


def lcron_request(
    method: str,
    labels: np.ndarray,
    stage_scores: Sequence[np.ndarray],
    ks: Sequence[int],
    label_k: int,
    temperatures: Sequence[float],
    base: Sequence[np.ndarray] | None = None,
) -> tuple[list[float], float]:
    """One request's LCRON L_single per stage (gated on n > k) and L_joint.

    The column masses are taken at ``base`` (default: the scores) and held constant.
    """
    n = len(labels)
    label_matrix = LABEL_SORTS[method](labels)
    label_top = label_matrix[:label_k].sum(axis=0)
    label_bottom = label_matrix[label_k:].sum(axis=0)
    matrices = [SORTS[method](x, t) for x, t in zip(stage_scores, temperatures, strict=True)]
    base = stage_scores if base is None else base
    columns = [SORTS[method](x, t).sum(axis=0) for x, t in zip(base, temperatures, strict=True)]
    singles, joint_top, joint_kept = [], 1.0, 1.0
    for matrix, k, column in zip(matrices, ks, columns, strict=True):
        top, bottom = lcron_masses(matrix, k, column)
        up = np.mean(-np.log(top + EPS) * label_top)
        down = np.mean(-np.log(bottom + EPS) * label_bottom)
        singles.append(float(up + down) * float(n > k))
        joint_top = joint_top * top
        joint_kept = joint_kept * (1.0 - bottom)
    joint_up = np.mean(-np.log(joint_top + EPS) * label_top)
    joint_negative = np.clip(1.0 - label_top, 0.0, 1.0)
    joint_down = np.mean(-np.log(1.0 - joint_kept + EPS) * joint_negative)
    return singles, float(joint_up + joint_down)


def top_k_labels(labels: np.ndarray, k: int) -> np.ndarray:
    """The labels' top-k mask (``topk_label``); the tests use labels without ties at the k-th."""
    y = np.zeros(len(labels))
    y[np.argsort(-labels, kind="stable")[:k]] = 1.0
    return y


def dftopk_request(
    labels: np.ndarray, stage_scores: Sequence[np.ndarray], k: int, tau: float, base=None
) -> tuple[list[float], float]:
    """``cascade-topk_dftopkjoint``: BCE with logits (x - theta) / tau; joint: BCELoss of p_1 p_2.

    theta is the midpoint of the k-th and (k+1)-th largest scores; torch's BCELoss clamps each log
    at -100.
    """
    y = top_k_labels(labels, k)
    singles, joint = [], 1.0
    for x in stage_scores:
        ordered = np.sort(x)[::-1]
        logits = (x - 0.5 * (ordered[k - 1] + ordered[k])) / tau
        # BCE with logits: softplus(-l) for positives, softplus(l) for negatives.
        singles.append(
            float(np.mean(y * np.logaddexp(0, -logits) + (1 - y) * np.logaddexp(0, logits)))
        )
        joint = joint * 1.0 / (1.0 + np.exp(-logits))
    log_p, log_not_p = np.maximum(np.log(joint), -100), np.maximum(np.log(1 - joint), -100)
    return singles, float(np.mean(-(y * log_p + (1 - y) * log_not_p)))


def probability_request(
    probabilities: Callable[[np.ndarray, int, float], np.ndarray],
    labels: np.ndarray,
    stage_scores: Sequence[np.ndarray],
    k: int,
    temperature: float,
    base=None,
) -> tuple[list[float], float]:
    """``cascade-topk_lapsumjoint``: -mean(y log(p + 1e-6) + (1 - y) log(1 - p + 1e-6)).

    The joint takes p_1 p_2.
    """
    y = top_k_labels(labels, k)

    def bce(p):
        return float(-np.mean(y * np.log(p + EPS) + (1 - y) * np.log(1 - p + EPS)))

    stage_p = [probabilities(x, k, temperature) for x in stage_scores]
    return [bce(p) for p in stage_p], bce(np.prod(stage_p, axis=0))


def cascade_batch(request_loss, labels, stage_scores, base_scores=None, **kwargs):
    """Batch means of the per-request stage losses and joint loss, and the total at weights 1.

    ``labels`` [batch, n] with negative = padded; each request is cut to its real items.
    ``base_scores`` (default: the scores) are passed on as each request's ``base``.
    """
    base_scores = stage_scores if base_scores is None else base_scores
    singles, joints = [], []
    for row in range(labels.shape[0]):
        real = labels[row] >= 0
        scores = [x[row][real] for x in stage_scores]
        base = [x[row][real] for x in base_scores]
        request_singles, joint = request_loss(labels[row][real], scores, base=base, **kwargs)
        singles.append(request_singles)
        joints.append(joint)
    stage_losses = np.mean(singles, axis=0)
    joint_loss = float(np.mean(joints))
    return stage_losses, joint_loss, float(0.5 * stage_losses.sum() + joint_loss)


def finite_difference_gradient(total: Callable[[list], float], stage_scores, step: float = 1e-6):
    """Central finite differences of ``total(stage_scores)`` in every score, float64."""
    grads = []
    for stage, x in enumerate(stage_scores):
        grad = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            shifted = []
            for sign in (1.0, -1.0):
                moved = [s.copy() for s in stage_scores]
                moved[stage][index] += sign * step
                shifted.append(total(moved))
            grad[index] = (shifted[0] - shifted[1]) / (2 * step)
        grads.append(grad)
    return grads


def _pool_pairs(v: np.ndarray) -> np.ndarray:
    """Each pair (v[2i], v[2i+1]) kept if decreasing, else replaced by its mean (even length)."""
    increasing = np.repeat(v[1::2] >= v[::2], 2)
    return np.where(increasing, np.repeat((v[::2] + v[1::2]) / 2, 2), v)


def dykstra_isotonic(s: np.ndarray, num_iter: int = 500) -> np.ndarray:
    """The official ``isotonic_dykstra_mask``: non-increasing fit of s by Dykstra's alternating
    projections onto the even-pair and odd-pair constraints, ``num_iter // 2`` rounds."""
    n = len(s)
    if n % 2 == 0:
        s = np.append(s, s.min() - 1.0)
    v, p, q = s.copy(), np.zeros_like(s), np.zeros_like(s)
    for _ in range(num_iter // 2):
        y = np.append(_pool_pairs((v + p)[:-1]), (v + p)[-1])
        p = v + p - y
        w = np.insert(_pool_pairs((y + q)[1:]), 0, (y + q)[0])
        q = y + q - w
        v = w
    return v[:n]


def sparse_topk_dykstra(
    x: np.ndarray, k: int, strength: float = 1.0, num_iter: int = 500
) -> np.ndarray:
    """The official ``sparse_soft_topk_mask_dykstra`` (its ``l`` is ``strength``):
    (s - iso(s - l w)) / l on the sorted scores s, w = k ones then zeros."""
    order = np.argsort(-x, kind="stable")
    s = x[order]
    w = (np.arange(len(x)) < k).astype(float)
    out = np.empty_like(x)
    out[order] = (s - dykstra_isotonic(s - strength * w, num_iter)) / strength
    return out
