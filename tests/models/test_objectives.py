"""Training methods: the objectives' parts against the library losses and plain formulas."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models.in_batch_softmax import InBatchSoftmax
from dftopk_cascade.models.objectives import (
    METHOD_NAMES,
    TFRSObjective,
    TopKCascadeObjective,
    default_tau,
    make_objective,
    tau_name,
)

from dftopk_tf import CascadeTopKLoss, TopKSelectionLoss
from dftopk_tf.operators import OPERATOR_NAMES

LABELS = np.array(
    [[30.0, 29.0, 7.0, 6.0, 5.0, 0.0, -1.0], [28.0, 7.0, 7.0, 5.0, 0.0, 0.0, 0.0]], np.float32
)


def random_outputs(n: int = 7, seed: int = 0) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(seed)
    return {
        "retrieval": tf.constant(rng.normal(size=(2, n)), tf.float32),
        "prerank": tf.constant(rng.normal(size=(2, n)), tf.float32),
        "rank": tf.constant(rng.normal(size=(2, n)), tf.float32),
        "query_embeddings": tf.constant(rng.normal(size=(2, 3)), tf.float32),
        "item_embeddings": tf.constant(rng.normal(size=(2, n, 3)), tf.float32),
    }


def test_every_method_has_a_default_temperature_and_an_objective() -> None:
    assert set(METHOD_NAMES) == {*OPERATOR_NAMES, "tfrs"}
    # One scale for every method: 0.1, DiffSort's steepness (an inverse temperature) 10.
    defaults = {method: default_tau(method) for method in METHOD_NAMES}
    assert defaults == {**dict.fromkeys(METHOD_NAMES, 0.1), "lcron-diffsort": 10.0}
    for method in METHOD_NAMES:
        objective = make_objective(method, 2, 2, 2, 2)
        assert objective.output_names[0] == "loss"
    assert tau_name("lcron-diffsort") == "steepness"


def test_unknown_method_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match="unknown method 'softmax'; expected one of dftopk"):
        make_objective("softmax")


@pytest.mark.parametrize("method", ["dftopk", "lapsum", "bce"])
def test_top_k_objective_is_the_cascade_loss_plus_the_ranking_loss(method: str) -> None:
    outputs = random_outputs()
    labels = tf.constant(LABELS)
    objective = TopKCascadeObjective(method, 3, 2, 2, 2, tau=1.5)
    losses = objective(labels, outputs)
    cascade = CascadeTopKLoss(method, stage_ks=(3, 2), label_k=2, tau=1.5)
    expected = cascade(labels, [outputs["retrieval"], outputs["prerank"]])
    rank = TopKSelectionLoss(method, k=2, tau=1.5, label_k=2)(labels, outputs["rank"])
    np.testing.assert_allclose(losses["loss"], expected["loss"] + rank, rtol=1e-5)
    np.testing.assert_allclose(losses["joint_loss"], expected["joint_loss"], rtol=1e-5)
    np.testing.assert_allclose(losses["retrieval_loss"], expected["stage_losses"][0], rtol=1e-5)
    np.testing.assert_allclose(losses["rank_loss"], rank, rtol=1e-5)
    assert float(losses["retrieval_weight"]) == float(losses["prerank_weight"]) == 1.0


def test_stage_weights_exist_before_the_first_call() -> None:
    objective = make_objective("dftopk")
    objective.build(None)
    assert [weight.shape for weight in objective.trainable_weights] == [(2,)]


def bce_with_logits(targets: np.ndarray, logits: np.ndarray) -> np.ndarray:
    return np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))


def test_tfrs_objective_is_sampled_softmax_plus_pointwise_bce() -> None:
    outputs = random_outputs()
    labels = tf.constant(LABELS)
    losses = TFRSObjective(label_k=2)(labels, outputs)
    truth = np.array([[1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]], np.float32)
    real = LABELS >= 0
    for stage in ("prerank", "rank"):
        per_item = bce_with_logits(truth, outputs[stage].numpy())
        expected = np.mean([per_item[row][real[row]].mean() for row in range(2)])
        np.testing.assert_allclose(losses[f"{stage}_loss"], expected, rtol=1e-5)
    softmax = InBatchSoftmax(label_k=2)(
        outputs["query_embeddings"], outputs["item_embeddings"], labels
    )
    np.testing.assert_allclose(losses["retrieval_loss"], softmax, rtol=1e-6)
    total = losses["retrieval_loss"] + losses["prerank_loss"] + losses["rank_loss"]
    np.testing.assert_allclose(losses["loss"], total, rtol=1e-6)


# DFTopK's own padding invariance is tested in tests/dftopk_tf; the objectives combine every
# operator's losses the same way.
@pytest.mark.parametrize("method", ["lcron-softsort", "tfrs"])
def test_padded_candidates_change_no_loss_and_no_gradient(method: str) -> None:
    objective = make_objective(method, 2, 2, 2, 2)
    outputs = random_outputs()
    padded_outputs = {
        name: value
        if name == "query_embeddings"
        else tf.concat([value, 50.0 + tf.zeros_like(value)[:, :3]], axis=1)
        for name, value in outputs.items()
    }
    padded_labels = np.concatenate([LABELS, np.full((2, 3), -1.0, np.float32)], axis=1)

    def losses_and_gradients(labels, values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            losses = objective(tf.constant(labels), values)
        return losses, tape.gradient(losses["loss"], values)

    losses, gradients = losses_and_gradients(LABELS, outputs)
    padded_losses, padded_gradients = losses_and_gradients(padded_labels, padded_outputs)
    for name in objective.output_names:
        np.testing.assert_allclose(padded_losses[name], losses[name], rtol=1e-5, atol=1e-7)
    for name, gradient in gradients.items():
        if gradient is None:  # the method does not use this output
            assert padded_gradients[name] is None
            continue
        if name == "query_embeddings":
            np.testing.assert_allclose(padded_gradients[name], gradient, rtol=1e-4, atol=1e-7)
            continue
        np.testing.assert_allclose(padded_gradients[name][:, :7], gradient, rtol=1e-4, atol=1e-7)
        np.testing.assert_array_equal(padded_gradients[name][:, 7:], 0.0)


@pytest.mark.parametrize("method", ["dftopk", "tfrs"])
def test_objective_config_round_trip(method: str) -> None:
    objective = make_objective(method, 3, 2, 1, 2, tau=0.5)
    config = objective.get_config()
    assert type(objective).from_config(config).get_config() == config


def test_make_objective_temperature_is_a_deprecated_name_of_tau() -> None:
    with pytest.warns(DeprecationWarning, match="make_objective: temperature= is deprecated"):
        objective = make_objective("lapsum", 3, 2, 1, 2, temperature=0.5)
    assert objective.tau == 0.5 and objective.get_config()["tau"] == 0.5
    with pytest.warns(DeprecationWarning, match="TFRSObjective: temperature= is deprecated"):
        assert TFRSObjective(label_k=2, temperature=0.5).tau == 0.5


def test_an_objective_config_saved_with_temperature_still_loads() -> None:
    saved = make_objective("lapsum", 3, 2, 1, 2, tau=0.5).get_config()
    saved["temperature"] = saved.pop("tau")
    assert TopKCascadeObjective.from_config(saved).tau == 0.5
