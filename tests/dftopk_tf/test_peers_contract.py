"""The peer operators' shared contract: padding invariance, per-row k, shapes, dtypes, errors."""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import peers

PEERS = {
    "lapsum": (peers.lapsum, {"alpha": 1.0}),
    "sparse-topk": (peers.sparse_topk, {"regularization": 1.0}),
    "lcron-neuralsort": (peers.lcron_neuralsort, {"tau": 1.0}),
    "lcron-softsort": (peers.lcron_softsort, {"tau": 1.0}),
    "lcron-diffsort": (peers.lcron_diffsort, {"steepness": 1.0}),
    "bce": (peers.sigmoid_selection, {"tau": 1.0}),
}
MATRICES = {
    "neuralsort": peers.neuralsort,
    "softsort": peers.softsort,
    "diffsort": peers.diffsort,
}
REAL = np.array([[0.3, -0.4, 0.9, 0.1, -0.2, 0.6], [1.2, 0.0, -0.7, 0.5, 0.45, -0.1]], np.float32)
PADDING_SCORES = np.array([1e30, -1e30, np.inf, -np.inf, np.nan, 0.3, 7.0], np.float32)
WEIGHTS = np.array([[0.5, -1.0, 2.0, 0.3, 1.1, -0.4], [1.0, 0.2, -0.6, 0.9, -1.3, 0.7]], np.float32)


def _with_padding(values: np.ndarray, n_padded: int, seed: int):
    """Inserts padded items with awkward scores at random slots; returns scores, mask, slots."""
    rng = np.random.default_rng(seed)
    batch, n_real = values.shape
    n = n_real + n_padded
    scores = np.zeros((batch, n), np.float32)
    mask = np.zeros((batch, n), bool)
    slots = np.stack([np.sort(rng.choice(n, n_real, replace=False)) for _ in range(batch)])
    for row in range(batch):
        scores[row] = rng.choice(PADDING_SCORES, n)
        scores[row, slots[row]] = values[row]
        mask[row, slots[row]] = True
    return scores, mask, slots


def _output_and_gradient(peer, params, scores, mask, k, weights):
    scores = tf.constant(scores)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        p = peer(scores, k, mask=mask, **params)
        loss = tf.reduce_sum(p * weights)
    return p.numpy(), tape.gradient(loss, scores).numpy()


@pytest.mark.parametrize("name", list(PEERS))
@pytest.mark.parametrize("n_padded", [1, 9])
def test_padding_changes_no_output_and_no_gradient(name, n_padded):
    peer, params = PEERS[name]
    k = tf.constant([2, 4])
    p, grad = _output_and_gradient(peer, params, REAL, None, k, WEIGHTS)
    scores, mask, slots = _with_padding(REAL, n_padded, seed=n_padded)
    padded_weights = np.ones(scores.shape, np.float32)
    np.put_along_axis(padded_weights, slots, WEIGHTS, axis=1)
    p_padded, grad_padded = _output_and_gradient(peer, params, scores, mask, k, padded_weights)
    np.testing.assert_allclose(np.take_along_axis(p_padded, slots, axis=1), p, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(grad_padded, slots, axis=1), grad, atol=1e-5)
    np.testing.assert_array_equal(p_padded[~mask], 0.0)
    np.testing.assert_array_equal(grad_padded[~mask], 0.0)
    assert np.all(np.isfinite(grad_padded))


@pytest.mark.parametrize("name", list(MATRICES))
def test_padding_leaves_the_real_block_of_the_permutation_matrix(name):
    matrix_fn = MATRICES[name]
    plain = matrix_fn(REAL[:1], mask=None).numpy()[0]
    scores, mask, slots = _with_padding(REAL[:1], 4, seed=3)
    padded = matrix_fn(scores, mask=mask).numpy()[0]
    n_real = REAL.shape[1]
    np.testing.assert_allclose(padded[:n_real][:, slots[0]], plain, atol=1e-6)
    assert np.all(padded[n_real:] == 0.0) and np.all(padded[:, ~mask[0]] == 0.0)


@pytest.mark.parametrize("name", list(PEERS))
def test_per_row_k_equals_rows_run_separately(name):
    peer, params = PEERS[name]
    k = [1, 3]
    together = peer(REAL, tf.constant(k, tf.int64), **params).numpy()
    for row, row_k in enumerate(k):
        alone = peer(REAL[row], row_k, **params).numpy()
        np.testing.assert_allclose(together[row], alone, atol=1e-6)


@pytest.mark.parametrize("name", [name for name in PEERS if name != "bce"])
def test_k_at_least_real_count_selects_every_real_item(name):
    peer, params = PEERS[name]
    mask = np.array([[True, True, False, True, False, False], [False] * 6])
    p, grad = _output_and_gradient(peer, params, REAL, mask, tf.constant([3, 2]), WEIGHTS)
    # LCRON: c / (c + 1e-6) with c the column mass, as in the official code.
    atol = 1e-5 if name.startswith("lcron") else 0.0
    np.testing.assert_allclose(p, mask.astype(np.float32), rtol=0.0, atol=atol)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", list(PEERS))
def test_leading_dims_dtypes_and_tf_function(name):
    peer, params = PEERS[name]
    scores = np.stack([REAL, REAL[::-1]])  # [2, 2, 6]
    k = tf.constant([[1, 2], [3, 4]])
    expected = peer(scores, k, **params).numpy()
    assert expected.shape == (2, 2, 6)
    np.testing.assert_allclose(expected[1, 0], peer(REAL[1], 3, **params).numpy(), atol=1e-6)
    for dtype in (tf.float16, tf.bfloat16, tf.float64):
        low = peer(tf.cast(scores, dtype), k, **params)
        assert low.dtype == tf.float32
        np.testing.assert_allclose(low.numpy(), expected, atol=0.05)
    traced = tf.function(
        lambda s, kk: peer(s, kk, **params),
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    eager = peer(REAL, tf.constant([1, 3]), **params).numpy()
    np.testing.assert_allclose(traced(REAL, tf.constant([1, 3])).numpy(), eager, atol=1e-6)


@pytest.mark.parametrize("name", list(PEERS))
def test_bad_input_raises_a_clear_error(name):
    peer, params = PEERS[name]
    with pytest.raises(ValueError, match="k must be >= 1"):
        peer(REAL, 0, **params)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 1"):
        peer(REAL, tf.constant([2, 0]), **params)
    with pytest.raises(TypeError, match="k must be an int"):
        peer(REAL, 2.0, **params)
    with pytest.raises(TypeError, match="k must be an int"):
        peer(REAL, tf.constant([2.0, 1.0]), **params)
    with pytest.raises(ValueError, match="leading shape"):
        peer(REAL, tf.constant([1, 2, 3]), **params)
    with pytest.raises(ValueError, match="rank >= 1"):
        peer(tf.constant(1.0), 1, **params)
    with pytest.raises(ValueError, match="mask shape"):
        peer(REAL, 1, mask=np.ones((2, 5), bool), **params)
    with pytest.raises(TypeError, match="floating-point"):
        peer(tf.constant([[1, 2, 3]]), 1, **params)
    with pytest.raises(ValueError, match="> 0"):
        peer(REAL, 1, **{key: 0.0 for key in params})


@pytest.mark.parametrize("name", list(MATRICES))
def test_permutation_matrix_rejects_bad_temperature(name):
    with pytest.raises(ValueError, match="> 0"):
        MATRICES[name](REAL, mask=None, **{"steepness" if name == "diffsort" else "tau": -1.0})
