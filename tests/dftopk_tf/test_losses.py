"""Losses: values against the formulas, padding invariance, learned cascade weights, config."""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import CascadeTopKLoss, DFTopKLoss, TopKSelectionLoss, get_loss
from dftopk_tf.keras_compat import keras
from dftopk_tf.masking import PADDING_LABEL
from dftopk_tf.operators import OPERATOR_NAMES, get_operator

RNG = np.random.default_rng(7)


def numpy_topk_mask(labels: np.ndarray, k: int) -> np.ndarray:
    """Top-k by label among real items, ties to the lower index (stable sort)."""
    out = np.zeros(labels.shape, bool)
    for row, values in enumerate(labels):
        real = np.flatnonzero(values >= 0)
        order = real[np.argsort(-values[real], kind="stable")]
        out[row, order[:k]] = True
    return out


def numpy_dftopk_logits(scores: np.ndarray, mask: np.ndarray, k: int, tau: float) -> np.ndarray:
    logits = np.empty_like(scores)
    for row in range(scores.shape[0]):
        real = np.sort(scores[row][mask[row]])[::-1]
        theta = 0.5 * real[k - 1] + 0.5 * real[k]
        logits[row] = (scores[row] - theta) / tau
    return logits


def numpy_bce(
    targets: np.ndarray, p: np.ndarray, mask: np.ndarray, epsilon: float | None = None
) -> float:
    """BCE of p; ``epsilon`` None: the exact logs (clipped at 1e-7), else log(p + epsilon)."""
    p = p.astype(np.float64)
    if epsilon is None:
        log_p = np.log(np.clip(p, 1e-7, 1.0))
        log_not_p = np.log(np.clip(1.0 - p, 1e-7, 1.0))
    else:
        log_p, log_not_p = np.log(p + epsilon), np.log(1.0 - p + epsilon)
    item = -np.where(targets, log_p, log_not_p)
    per_request = (item * mask).sum(-1) / mask.sum(-1)
    return float(per_request.mean())


def batch(n: int = 12, rows: int = 4, padded: int = 3) -> tuple[np.ndarray, np.ndarray]:
    labels = RNG.integers(0, 30, size=(rows, n)).astype(np.float32)
    labels[:, n - padded :] = PADDING_LABEL
    scores = RNG.normal(size=(rows, n)).astype(np.float32)
    return labels, scores


def test_dftopk_loss_matches_numpy_formula() -> None:
    labels, scores = batch()
    mask = labels >= 0
    logits = numpy_dftopk_logits(scores, mask, k=3, tau=0.7)
    expected = numpy_bce(numpy_topk_mask(labels, 3), 1 / (1 + np.exp(-logits)), mask)
    got = float(DFTopKLoss(k=3, tau=0.7)(labels, scores))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "method", [name for name in OPERATOR_NAMES if get_operator(name).permutation is None]
)
def test_every_non_lcron_method_is_bce_of_its_operator(method: str) -> None:
    # LCRON's official loss is tested in test_official_losses.py.
    labels, scores = batch()
    mask = labels >= 0
    operator = get_operator(method)
    p = operator.probabilities(
        tf.constant(scores), 3, tf.constant(mask), operator.default_temperature
    ).numpy()
    # Logit operators: exact log-sigmoid; probability operators: the official 1e-6 epsilons.
    epsilon = None if operator.logits is not None else 1e-6
    expected = numpy_bce(numpy_topk_mask(labels, 3), p, mask, epsilon)
    got = float(TopKSelectionLoss(method, k=3)(labels, scores))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("method", OPERATOR_NAMES)
def test_padded_items_change_neither_loss_nor_gradient(method: str) -> None:
    labels, scores = batch(padded=0)
    extra = 5
    padded_labels = np.concatenate([labels, np.full((4, extra), PADDING_LABEL, np.float32)], 1)
    padded_scores = np.concatenate([scores, RNG.normal(size=(4, extra)) * 1e3], 1).astype(
        np.float32
    )
    loss = TopKSelectionLoss(method, k=3)

    def value_and_grad(y, x):
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(y, x)
        return float(value), tape.gradient(value, x).numpy()

    base_value, base_grad = value_and_grad(labels, scores)
    value, grad = value_and_grad(padded_labels, padded_scores)
    np.testing.assert_allclose(value, base_value, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad[:, : labels.shape[1]], base_grad, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(grad[:, labels.shape[1] :], 0.0)


def test_better_scores_give_lower_loss_for_every_method() -> None:
    labels = np.tile(np.arange(10, 0, -1, dtype=np.float32), (2, 1))
    good = labels - 7.5  # the top 3 positive, the rest negative
    bad = -good
    for method in OPERATOR_NAMES:
        loss = TopKSelectionLoss(method, k=3)
        assert float(loss(labels, good)) < float(loss(labels, bad)), method


def test_cascade_loss_matches_formula_and_learns_its_weights() -> None:
    labels, _ = batch()
    mask = labels >= 0
    retrieval = RNG.normal(size=labels.shape).astype(np.float32)
    prerank = RNG.normal(size=labels.shape).astype(np.float32)
    cascade = CascadeTopKLoss("dftopk", stage_ks=(4, 3), label_k=3, tau=[0.5, 2.0])
    out = cascade(labels, [retrieval, prerank])

    targets = numpy_topk_mask(labels, 3)
    p_r = 1 / (1 + np.exp(-numpy_dftopk_logits(retrieval, mask, 4, 0.5)))
    p_p = 1 / (1 + np.exp(-numpy_dftopk_logits(prerank, mask, 3, 2.0)))
    l_r, l_p = numpy_bce(targets, p_r, mask), numpy_bce(targets, p_p, mask)
    l_joint = numpy_bce(targets, p_r * p_p, mask)
    np.testing.assert_allclose(out["stage_losses"].numpy(), [l_r, l_p], rtol=1e-4)
    np.testing.assert_allclose(float(out["joint_loss"]), l_joint, rtol=1e-4)
    # Weights start at 1: total = 0.5 L_r + 0.5 L_p + L_joint + log(1).
    np.testing.assert_allclose(float(out["loss"]), 0.5 * l_r + 0.5 * l_p + l_joint, rtol=1e-4)

    with tf.GradientTape() as tape:
        total = cascade(labels, [retrieval, prerank])["loss"]
    (grad,) = tape.gradient(total, cascade.trainable_weights)
    # d/d log w_s of 0.5 exp(-2 log w_s) L_s + log w_s at log w_s = 0 is 1 - L_s.
    np.testing.assert_allclose(grad.numpy(), [1 - l_r, 1 - l_p], rtol=1e-4)


def test_cascade_joint_weight_and_errors() -> None:
    cascade = CascadeTopKLoss("lapsum", stage_ks=(2, 2, 1), label_k=1, learn_joint_weight=True)
    labels = tf.constant([[3.0, 1.0, 2.0, PADDING_LABEL]])
    scores = [tf.random.normal([1, 4], seed=s) for s in range(3)]
    out = cascade(labels, scores)
    assert cascade.log_weights.shape == (4,)
    assert np.isfinite(float(out["loss"]))
    with pytest.raises(ValueError, match="stages"):
        cascade(labels, scores[:2])
    with pytest.raises(ValueError, match="stage_ks"):
        CascadeTopKLoss(stage_ks=(0, 3))
    with pytest.raises(ValueError, match="tau"):
        CascadeTopKLoss(stage_ks=(1, 2), tau=[1.0])
    with pytest.raises(ValueError, match="unknown top-k method"):
        CascadeTopKLoss(method="quicksort")


def test_loss_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown top-k method 'nope'"):
        TopKSelectionLoss("nope")
    with pytest.raises(ValueError, match="k and label_k must be >= 1"):
        DFTopKLoss(k=0)


def test_configs_round_trip() -> None:
    for loss in (
        DFTopKLoss(k=4, tau=3.0, label_k=2),
        TopKSelectionLoss("sparse-topk", k=5, tau=0.5),
        get_loss("lcron-softsort", k=3),
    ):
        clone = type(loss).from_config(loss.get_config())
        assert clone.get_config() == loss.get_config()
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is type(loss)
    cascade = CascadeTopKLoss("bce", stage_ks=(3, 2), label_k=2, tau=2.0)
    assert CascadeTopKLoss.from_config(cascade.get_config()).get_config() == cascade.get_config()


def test_fit_with_the_loss_improves_recall_of_the_top_items() -> None:
    features = RNG.normal(size=(256, 20, 4)).astype(np.float32)
    true_weights = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    labels = features @ true_weights
    inputs = keras.Input(shape=(20, 4))
    scores = keras.layers.Reshape((20,))(keras.layers.Dense(1, use_bias=False)(inputs))
    model = keras.Model(inputs, scores)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=DFTopKLoss(k=5, tau=0.5))
    before = float(model.evaluate(features, labels - labels.min(), verbose=0))
    model.fit(features, labels - labels.min(), epochs=15, batch_size=64, verbose=0)
    after = float(model.evaluate(features, labels - labels.min(), verbose=0))
    assert after < 0.7 * before
