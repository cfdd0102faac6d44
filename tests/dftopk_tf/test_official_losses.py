"""The cascade losses against float64 ports of the official code (``official_references``).

Values and gradients of ``CascadeTopKLoss`` (float32) for LCRON (NeuralSort, SoftSort, DiffSort),
DFTopK and LapSum at several temperatures and with saturated scores. The official LCRON gradient
holds the column masses constant; the reference's finite differences do the same.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import CascadeTopKLoss, TopKSelectionLoss, peers
from dftopk_tf.masking import PADDING_LABEL
from tests.dftopk_tf import official_references as official
from tests.dftopk_tf import peer_references as ref

RNG = np.random.default_rng(16)
LABEL_K = 3
# Request 0: labels 5, 4, 4, 4 tie across the top-3 boundary; request 2: 4 real items, so LCRON
# gates off its L_single at k = 4 (not more than k items) but not at k = 3.
TIED_LABELS = np.array(
    [[5, 2, 3, 4, 1, 4, 0, 4, 2], [3, 1, 2, 0, 7, 6, 5, 4, 2], [2, 9, 1, 5] + [PADDING_LABEL] * 5],
    np.float64,
)


def distinct_labels() -> np.ndarray:
    """Labels without ties (the official DFTopK label breaks ties in torch.topk's order)."""
    return np.array([RNG.permutation(9) for _ in range(3)], np.float64)


def cascade(method, labels, scores, temperature, ks):
    """Stage losses, joint loss, total and d total / d scores of ``CascadeTopKLoss`` (float32)."""
    loss = CascadeTopKLoss(method, stage_ks=ks, label_k=LABEL_K, tau=temperature)
    tensors = [tf.constant(x, tf.float32) for x in scores]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        out = loss(tf.constant(labels, tf.float32), tensors)
    grads = [g.numpy() for g in tape.gradient(out["loss"], tensors)]
    return out["stage_losses"].numpy(), float(out["joint_loss"]), float(out["loss"]), grads


def assert_official(method, labels, scores, temperature, ks, request, rtol=2e-4) -> None:
    """Values at ``rtol``, gradients at 2e-3 of the largest entry (at least 1e-6: float32 noise
    of O(1) losses), padded gradients exactly 0.

    Saturated LapSum takes rtol 1e-3: its 1 - p is rounded to 6e-8 in float32 (ours and the
    official torch run alike) next to the 1e-6 epsilon; the reference is float64.
    """
    stage_losses, joint, total, grads = cascade(method, labels, scores, temperature, ks)
    expected_stages, expected_joint, expected_total = official.cascade_batch(
        request, labels, scores
    )
    np.testing.assert_allclose(stage_losses, expected_stages, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose([joint, total], [expected_joint, expected_total], rtol=rtol)

    def reference_total(moved):
        return official.cascade_batch(request, labels, moved, base_scores=scores)[2]

    expected_grads = official.finite_difference_gradient(reference_total, scores)
    real = labels >= 0
    for got, expected in zip(grads, expected_grads, strict=True):
        tolerance = max(2e-3 * np.abs(expected).max(), 1e-6)
        np.testing.assert_allclose(got[real], expected[real], rtol=2e-3, atol=tolerance)
        np.testing.assert_array_equal(got[~real], 0.0)


LCRON_CASES = [
    ("lcron-neuralsort", (0.3, 1.0), 1.0),
    ("lcron-neuralsort", (5.0, 50.0), 1.0),
    ("lcron-softsort", (0.3, 1.0), 1.0),
    ("lcron-softsort", (5.0, 50.0), 1.0),
    ("lcron-diffsort", (2.0, 0.5), 1.0),
    ("lcron-diffsort", (10.0, 10.0), 1.0),
    # Saturated: score gaps of tens of temperatures, masses far below the 1e-6 epsilon.
    ("lcron-neuralsort", (0.05, 0.05), 1.0),
    ("lcron-softsort", (0.05, 0.05), 1.0),
    ("lcron-diffsort", (100.0, 100.0), 10.0),
]


@pytest.mark.parametrize(("method", "temperatures", "scale"), LCRON_CASES)
def test_lcron_matches_the_official_formulas(method, temperatures, scale):
    scores = [scale * RNG.normal(size=TIED_LABELS.shape) for _ in range(2)]
    ks = (3, 4)
    request = functools.partial(
        official.lcron_request, method, ks=ks, label_k=LABEL_K, temperatures=temperatures
    )
    assert_official(method, TIED_LABELS, scores, list(temperatures), ks, request)


@pytest.mark.parametrize("method", ["lcron-neuralsort", "lcron-softsort", "lcron-diffsort"])
def test_lcron_single_stage_loss_is_the_official_gated_l_single(method):
    scores = RNG.normal(size=TIED_LABELS.shape)
    labels32, scores32 = TIED_LABELS.astype(np.float32), scores.astype(np.float32)
    per_request = TopKSelectionLoss(method, k=4, tau=2.0, label_k=LABEL_K, reduction="none")(
        labels32, scores32
    ).numpy()
    request = functools.partial(
        official.lcron_request, method, ks=(4,), label_k=LABEL_K, temperatures=(2.0,)
    )
    expected_stages, _, _ = official.cascade_batch(request, TIED_LABELS, [scores])
    np.testing.assert_allclose(per_request.mean(), expected_stages[0], rtol=2e-4)
    assert per_request[2] == 0.0  # 4 real items, not more than k = 4
    assert per_request[:2].min() > 0.0


def test_lcron_gradient_holds_the_column_mass_constant():
    # NeuralSort's columns do not sum to 1, so the stop-gradient changes the gradient.
    x = np.array([0.1, 1.0, 0.4, -0.5, 0.7])
    weights = np.array([0.3, -1.0, 0.5, 2.0, -0.7])
    columns = ref.neuralsort(x, 1.0).sum(axis=0)

    def frozen(moved):
        return float(weights @ (ref.neuralsort(moved[0], 1.0)[:2].sum(axis=0) / (columns + 1e-6)))

    def differentiated(moved):
        matrix = ref.neuralsort(moved[0], 1.0)
        return float(weights @ (matrix[:2].sum(axis=0) / matrix.sum(axis=0)))

    scores = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        selection = peers.lcron_neuralsort(scores, 2, tau=1.0)
        value = tf.reduce_sum(weights.astype(np.float32) * selection)
    got = tape.gradient(value, scores).numpy()
    np.testing.assert_allclose(got, official.finite_difference_gradient(frozen, [x])[0], atol=1e-5)
    assert np.abs(got - official.finite_difference_gradient(differentiated, [x])[0]).max() > 1e-2


@pytest.mark.parametrize("tau", [0.05, 0.5, 5.0, 500.0])
def test_dftopk_is_the_official_dftopkjoint_loss(tau):
    labels = distinct_labels()
    scores = [RNG.normal(size=labels.shape) for _ in range(2)]
    request = functools.partial(official.dftopk_request, k=LABEL_K, tau=tau)
    assert_official("dftopk", labels, scores, tau, (LABEL_K, LABEL_K), request)


@pytest.mark.parametrize(("alpha", "scale"), [(0.3, 1.0), (5.0, 1.0), (0.1, 2.0)])
def test_lapsum_is_the_official_lapsumjoint_loss(alpha, scale):
    labels = distinct_labels()
    scores = [scale * RNG.normal(size=labels.shape) for _ in range(2)]
    request = functools.partial(
        official.probability_request, ref.lapsum, k=LABEL_K, temperature=alpha
    )
    rtol = 1e-3 if scale > 1.0 else 2e-4
    assert_official("lapsum", labels, scores, alpha, (LABEL_K, LABEL_K), request, rtol)


def test_sparse_topk_is_scored_like_lapsum_not_as_logits():
    # The official run feeds the sparse mask to a with-logits BCE; we score the mask p itself.
    labels = distinct_labels()
    scores = [RNG.normal(size=labels.shape) for _ in range(2)]
    stage_losses, joint, total, _ = cascade("sparse-topk", labels, scores, 1.0, (3, 3))
    request = functools.partial(
        official.probability_request, ref.sparse_topk, k=LABEL_K, temperature=1.0
    )
    expected = official.cascade_batch(request, labels, scores)
    np.testing.assert_allclose(stage_losses, expected[0], rtol=2e-4)
    np.testing.assert_allclose([joint, total], expected[1:], rtol=2e-4)


@pytest.mark.parametrize(("scale", "num_iter"), [(3.0, 500), (0.3, 4000)])
def test_sparse_topk_is_the_official_dykstra_solution_once_converged(scale, num_iter):
    # The official 500 Dykstra rounds converge when the scores are spread (scale 3); for a large
    # pooled block (small scores) they do not, and more rounds reach our exact projection.
    x = scale * RNG.normal(size=(3, 40))
    got = peers.sparse_topk(tf.constant(x, tf.float32), 10, regularization=1.0).numpy()
    for row in range(3):
        expected = official.sparse_topk_dykstra(x[row], 10, 1.0, num_iter)
        np.testing.assert_allclose(got[row], expected, atol=1e-5)
