"""DFTopK's ``threshold_gradient="spread"``: same forward, the threshold's share spread by sigmoid'.

The reference is independent of the implementation: in float64 NumPy, the threshold t(x) that
keeps sum_i sigmoid((x_i - t) / tau) at its value at x0 is found by bisection, and the gradient
of the outputs at x0 is taken by central differences.
"""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import ops
from dftopk_tf.layers import DFTopK
from dftopk_tf.losses import DFTopKLoss

TAU = 0.7
K = 3


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fixed_sum_outputs(row: np.ndarray, total: float, tau: float, probabilities: bool) -> np.ndarray:
    """Outputs with the threshold t solving sum sigmoid((row - t) / tau) = total (bisection)."""
    low, high = row.min() - 60 * tau, row.max() + 60 * tau
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if sigmoid((row - middle) / tau).sum() > total else (low, middle)
    logits = (row - 0.5 * (low + high)) / tau
    return sigmoid(logits) if probabilities else logits


def implicit_threshold_gradient(
    scores: np.ndarray, upstream: np.ndarray, k: int, tau: float, probabilities: bool
) -> np.ndarray:
    """Central differences of upstream . outputs, with sum_i p_i held at its DFTopK value."""
    gradient = np.zeros(scores.shape)
    for r, row in enumerate(scores.astype(np.float64)):
        ranked = np.sort(row)[::-1]
        total = sigmoid((row - 0.5 * (ranked[k - 1] + ranked[k])) / tau).sum()
        for i in range(row.size):
            step = np.zeros(row.size)
            step[i] = 1e-5
            change = fixed_sum_outputs(row + step, total, tau, probabilities) - fixed_sum_outputs(
                row - step, total, tau, probabilities
            )
            gradient[r, i] = upstream[r] @ change / 2e-5
    return gradient


def gradient_of(function, scores, upstream, **settings) -> np.ndarray:
    scores = tf.constant(scores)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        outputs = function(scores, **settings)
    return tape.gradient(outputs, scores, output_gradients=tf.constant(upstream)).numpy()


@pytest.mark.parametrize("function", [ops.dftopk, ops.dftopk_logits])
@pytest.mark.parametrize("jit_compile", [True, False])
def test_spread_gradient_is_the_fixed_sum_threshold_gradient(function, jit_compile) -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 7)).astype(np.float32)
    upstream = rng.normal(size=(3, 7)).astype(np.float32)
    gradient = gradient_of(
        function,
        scores,
        upstream,
        k=K,
        tau=TAU,
        jit_compile=jit_compile,
        threshold_gradient="spread",
    )
    expected = implicit_threshold_gradient(
        scores, upstream, K, TAU, probabilities=function is ops.dftopk
    )
    np.testing.assert_allclose(gradient, expected, atol=2e-6, rtol=1e-4)
    np.testing.assert_allclose(gradient.sum(axis=-1), 0.0, atol=1e-5)  # shift invariance


@pytest.mark.parametrize("function", [ops.dftopk, ops.dftopk_logits])
def test_forward_is_unchanged_and_the_gradient_differs(function) -> None:
    scores = np.array([[2.0, -1.0, 0.5, 3.0, 0.0]], np.float32)
    upstream = np.array([[1.0, -2.0, 0.5, 0.0, 1.0]], np.float32)
    pair = function(tf.constant(scores), 2, tau=TAU)
    spread = function(tf.constant(scores), 2, tau=TAU, threshold_gradient="spread")
    np.testing.assert_array_equal(pair.numpy(), spread.numpy())
    pair_gradient = gradient_of(function, scores, upstream, k=2, tau=TAU)
    spread_gradient = gradient_of(
        function, scores, upstream, k=2, tau=TAU, threshold_gradient="spread"
    )
    assert np.abs(pair_gradient - spread_gradient).max() > 1e-2


@pytest.mark.parametrize("function", [ops.dftopk, ops.dftopk_logits])
def test_at_small_tau_the_spread_gradient_becomes_the_pair_gradient(function) -> None:
    # Gaps of at least 1 between scores: at tau 0.02 every item but the k-th and (k+1)-th weighs
    # at most exp(-50) of them.
    scores = np.array([[4.0, 0.0, 2.0, -3.0, 1.0, 6.0]], np.float32)
    upstream = np.array([[1.0, -1.0, 0.5, 2.0, -0.5, 1.5]], np.float32)
    pair = gradient_of(function, scores, upstream, k=3, tau=0.02)
    spread = gradient_of(function, scores, upstream, k=3, tau=0.02, threshold_gradient="spread")
    np.testing.assert_allclose(spread, pair, rtol=1e-5, atol=1e-6)


def test_padded_items_and_select_all_rows_get_no_share() -> None:
    scores = np.array([[1.0, 5.0, 2.0, 0.5], [1.0, 2.0, 9.0, 9.0]], np.float32)
    mask = tf.constant([[True, False, True, True], [True, True, False, False]])
    upstream = np.ones_like(scores)
    scores_tensor = tf.constant(scores)
    with tf.GradientTape() as tape:
        tape.watch(scores_tensor)
        outputs = ops.dftopk_logits(
            scores_tensor, 2, tau=TAU, mask=mask, threshold_gradient="spread"
        )
    gradient = tape.gradient(outputs, scores_tensor, output_gradients=tf.constant(upstream))
    gradient = gradient.numpy()
    assert gradient[0, 1] == 0.0 and gradient[1, 2] == gradient[1, 3] == 0.0
    np.testing.assert_allclose(gradient[0].sum(), 0.0, atol=1e-6)
    # k = 2 of 2 real items: the threshold is a constant, so only the per-item term remains.
    np.testing.assert_allclose(gradient[1, :2], 1.0 / TAU, rtol=1e-6)


def test_saturated_rows_give_a_finite_gradient() -> None:
    scores = np.array([[100.0, -100.0, 50.0, -50.0]], np.float32)
    gradient = gradient_of(
        ops.dftopk, scores, np.ones_like(scores), k=2, tau=1e-3, threshold_gradient="spread"
    )
    np.testing.assert_array_equal(gradient, np.zeros_like(scores))


def test_layer_and_loss_take_the_option_and_keep_it_in_their_config() -> None:
    layer = DFTopK(k=2, tau=TAU, threshold_gradient="spread")
    assert DFTopK.from_config(layer.get_config()).threshold_gradient == "spread"
    loss = DFTopKLoss(k=2, tau=TAU, threshold_gradient="spread")
    assert loss.method == "dftopk-spread"
    assert DFTopKLoss.from_config(loss.get_config()).threshold_gradient == "spread"
    labels = tf.constant([[3.0, 1.0, 2.0, 0.0]])
    scores = tf.constant([[0.2, 0.4, 0.1, -0.3]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(scores)
        spread_loss = loss(labels, scores)
        pair_loss = DFTopKLoss(k=2, tau=TAU)(labels, scores)
    assert float(spread_loss) == pytest.approx(float(pair_loss))
    assert not np.allclose(tape.gradient(spread_loss, scores), tape.gradient(pair_loss, scores))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ops.dftopk(tf.ones([1, 3]), 1, threshold_gradient="both"),
        lambda: DFTopK(k=1, threshold_gradient="both"),
        lambda: DFTopKLoss(k=1, threshold_gradient="both"),
    ],
)
def test_an_unknown_threshold_gradient_is_refused(build) -> None:
    with pytest.raises(ValueError, match=r"threshold_gradient must be one of \('pair', 'spread'\)"):
        build()
