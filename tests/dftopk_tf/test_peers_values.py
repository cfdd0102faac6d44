"""Peer operators against NumPy references written from the papers' formulas; their gradients."""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import peers
from tests.dftopk_tf import peer_references as ref

RNG = np.random.default_rng(7)


def _row(n: int, scale: float = 1.0) -> np.ndarray:
    """Distinct float32-exact scores, spaced so that tiny nudges never reorder them."""
    values = RNG.permutation(n).astype(np.float64) + RNG.uniform(0.2, 0.8, size=n)
    return (values * scale).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize(
    ("n", "k", "alpha", "scale"),
    [(5, 2, 1.0, 1.0), (12, 3, 5.0, 30.0), (40, 20, 5.0, 300.0), (7, 6, 0.5, 1.0), (9, 1, 2, 0.1)],
)
def test_lapsum_matches_root_find_and_sums_to_k(n, k, alpha, scale):
    x = _row(n, scale)
    p = peers.lapsum(tf.constant(x[None], tf.float32), k, alpha=alpha).numpy()[0]
    np.testing.assert_allclose(p, ref.lapsum(x, k, alpha), atol=2e-5)
    assert p.sum() == pytest.approx(k, abs=1e-4)
    assert np.all(np.diff(p[np.argsort(-x)]) <= 0.0)


def test_lapsum_stays_finite_for_scores_far_beyond_exp_range():
    x = np.array([4000.0, -3500.0, 2500.0, 100.0, -20.0])
    p = peers.lapsum(tf.constant(x, tf.float32), 2, alpha=5.0).numpy()
    np.testing.assert_allclose(p, ref.lapsum(x, 2, 5.0), atol=1e-6)


@pytest.mark.parametrize(
    ("n", "k", "regularization", "scale"),
    [(6, 2, 1.0, 0.3), (15, 4, 1.0, 0.2), (30, 15, 0.5, 0.1), (8, 7, 1.0, 0.05), (10, 3, 1.0, 5.0)],
)
def test_sparse_topk_matches_isotonic_projection(n, k, regularization, scale):
    x = _row(n, scale)
    y = peers.sparse_topk(tf.constant(x, tf.float32), k, regularization=regularization).numpy()
    np.testing.assert_allclose(y, ref.sparse_topk(x, k, regularization), atol=1e-5)
    assert y.sum() == pytest.approx(k, abs=1e-4)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_sparse_topk_is_sparse_and_ties_share_mass():
    y = peers.sparse_topk(tf.constant([3.0, 0.2, 0.2, -4.0, 0.9]), 2).numpy()
    expected = ref.sparse_topk(np.array([3.0, 0.2, 0.2, -4.0, 0.9]), 2, 1.0)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert y[0] == 1.0 and y[3] == 0.0 and y[1] == y[2]


@pytest.mark.parametrize(
    ("matrix_fn", "reference", "param"),
    [
        (peers.neuralsort, ref.neuralsort, {"tau": 0.7}),
        (peers.softsort, ref.softsort, {"tau": 0.7}),
        (peers.diffsort, ref.diffsort, {"steepness": 1.5}),
    ],
)
def test_permutation_matrices_match_formula_and_rows_sum_to_one(matrix_fn, reference, param):
    x = _row(7)
    matrix = matrix_fn(tf.constant(x[None], tf.float32), **param).numpy()[0]
    np.testing.assert_allclose(matrix, reference(x, *param.values()), atol=1e-5)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)


def test_diffsort_is_doubly_stochastic():
    columns = peers.diffsort(tf.constant(_row(6), tf.float32), steepness=0.5).numpy().sum(axis=0)
    np.testing.assert_allclose(columns, 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("matrix_fn", "param"),
    [
        (peers.neuralsort, {"tau": 1e-3}),
        (peers.softsort, {"tau": 1e-3}),
        (peers.diffsort, {"steepness": 1e5}),
    ],
)
def test_permutation_matrices_approach_the_hard_sort(matrix_fn, param):
    x = _row(8)
    matrix = matrix_fn(tf.constant(x, tf.float32), **param).numpy()
    np.testing.assert_allclose(matrix, ref.hard_sort_matrix(x), atol=1e-3)


def test_tau_changes_the_permutation_matrix():
    x = tf.constant(_row(5), tf.float32)
    assert not np.allclose(peers.softsort(x, tau=0.5), peers.softsort(x, tau=50.0))
    assert not np.allclose(peers.neuralsort(x, tau=0.5), peers.neuralsort(x, tau=50.0))


@pytest.mark.parametrize(
    ("selection", "matrix_reference", "param"),
    [
        (peers.lcron_neuralsort, ref.neuralsort, {"tau": 0.8}),
        (peers.lcron_softsort, ref.softsort, {"tau": 0.8}),
        (peers.lcron_diffsort, ref.diffsort, {"steepness": 2.0}),
    ],
)
def test_lcron_selection_is_top_rows_over_column_mass(selection, matrix_reference, param):
    x = _row(9)
    p = selection(tf.constant(x, tf.float32), 4, **param).numpy()
    expected = ref.top_rows_probability(matrix_reference(x, *param.values()), 4)
    np.testing.assert_allclose(p, expected, atol=1e-5)
    assert p.min() >= 0.0 and p.max() <= 1.0


def test_sigmoid_selection_ignores_k():
    x = _row(6)
    for k in (1, 5):
        p = peers.sigmoid_selection(tf.constant(x, tf.float32), k, tau=2.0).numpy()
        np.testing.assert_allclose(p, 1.0 / (1.0 + np.exp(-x / 2.0)), rtol=1e-6)


# LCRON NeuralSort and SoftSort hold their column mass constant in the gradient, as the official
# code does (test_official_losses.py); DiffSort's columns sum to 1, so its gradient is the full one.
SOFT_PEERS = [
    (peers.lapsum, {"alpha": 1.0}),
    (peers.sparse_topk, {"regularization": 1.0}),
    (peers.lcron_diffsort, {"steepness": 1.0}),
    (peers.sigmoid_selection, {"tau": 1.0}),
]


@pytest.mark.parametrize(("peer", "params"), SOFT_PEERS)
def test_gradients_match_finite_differences(peer, params):
    # Spacing 0.3 keeps sparse top-k's free block fixed under the finite-difference steps.
    x = tf.constant([[0.1, 1.0, 0.4, -0.5, 0.7]])
    theoretical, numerical = tf.test.compute_gradient(
        lambda s: peer(s, 2, **params), [x], delta=1e-2
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=3e-3)


def test_lapsum_gradient_is_the_implicit_function_gradient():
    x = _row(6, 0.7)
    scores = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        p = peers.lapsum(scores, 3, alpha=1.0)
    jacobian = tape.jacobian(p, scores).numpy()
    np.testing.assert_allclose(jacobian, ref.lapsum_jacobian(x, 3, 1.0), atol=1e-5)


def test_sparse_topk_jacobian_is_block_constant():
    scores = tf.constant([5.0, 0.0, 3.0, 2.8, 2.5])
    with tf.GradientTape() as tape:
        tape.watch(scores)
        y = peers.sparse_topk(scores, 2)
    jacobian = tape.jacobian(y, scores).numpy()
    free = np.array([2, 3, 4])
    expected = np.zeros((5, 5))
    expected[np.ix_(free, free)] = np.eye(3) - 1.0 / 3.0
    np.testing.assert_allclose(jacobian, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("values", "k"),
    [
        ([4.0, 0.0, 2.5, -3.0], 2),
        # Float32 rounding lands the breakpoint search on the flat segment itself for this row.
        (
            [
                -18.980825,
                -24.24983,
                -10.98801,
                -3.4415216,
                -42.039547,
                -1.0528436,
                -50.024597,
                41.764153,
                -2.4299085,
                -19.258732,
                -27.250143,
                -11.532914,
            ],
            10,
        ),
    ],
)
def test_sparse_topk_hard_mask_has_zero_gradient(values, k):
    scores = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        y = peers.sparse_topk(scores, k)
    expected = np.zeros(len(values))
    expected[np.argsort(-np.array(values))[:k]] = 1.0
    np.testing.assert_array_equal(y.numpy(), expected)
    np.testing.assert_array_equal(tape.jacobian(y, scores).numpy(), np.zeros((len(values),) * 2))
