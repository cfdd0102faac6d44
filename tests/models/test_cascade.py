"""CascadeModel: outputs, a tiny fit per method, metrics, saving and loading."""

import os

import numpy as np
import pytest
from dftopk_cascade.models.attention import DINAttention, TargetAttention
from dftopk_cascade.models.cascade import CascadeModel, build_cascade, load_cascade
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.objectives import METHOD_NAMES
from dftopk_cascade.models.protocol import PROTOCOL
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training.data import evaluation_dataset, training_input
from dftopk_cascade.models.training.evaluate import RequestMeans, per_request_metrics
from dftopk_cascade.pipelines.data_schema import read_data_schema

from dftopk_tf import metrics_numpy
from tests.models.batches import TINY_LAYERS, synthetic_batch, tiny_config


def test_every_stage_scores_the_candidate_matrix() -> None:
    features, _ = synthetic_batch(batch_size=3, negatives=8)
    model = build_cascade(tiny_config())
    scores = model(features)
    assert {name: value.shape for name, value in scores.items()} == {
        "retrieval": (3, 48),
        "prerank": (3, 48),
        "rank": (3, 48),
    }
    outputs = model.stage_outputs(features)
    np.testing.assert_allclose(outputs["retrieval"], scores["retrieval"], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_tiny_fit_reduces_the_loss(method: str) -> None:
    # 3 candidates per stage group (12 per request) and k = 3 keep the eager steps quick.
    features, labels = synthetic_batch(batch_size=8, group_size=3, seed=1)
    config = tiny_config(method=method, retrieval_k=3, prerank_k=3, rank_k=3, label_k=3)
    keras.utils.set_random_seed(0)
    model = build_cascade(config)
    model.compile(optimizer=keras.optimizers.Adam(0.03), run_eagerly=True)
    first = model.train_on_batch(features, labels, return_dict=True)
    for _ in range(2):
        last = model.train_on_batch(features, labels, return_dict=True)
    names = set(model.objective.output_names)
    assert set(first) == names
    for name in names - {"retrieval_weight", "prerank_weight"}:
        assert np.isfinite(last[name])
    assert last["loss"] < first["loss"]


def test_evaluation_metrics_match_the_numpy_reference() -> None:
    features, labels = synthetic_batch(batch_size=4, negatives=20, seed=2)
    model = build_cascade(tiny_config(method="bce"))
    model.compile(optimizer="adam", run_eagerly=True)
    logs = model.test_on_batch(features, labels, return_dict=True)
    scores = {name: value.numpy() for name, value in model(features).items()}
    label_values = labels["label"].numpy()
    expected = {
        "recall@10@30": metrics_numpy.recall_at_k_m(label_values, scores["retrieval"], 10, 30),
        "recall@10@20": metrics_numpy.recall_at_k_m(label_values, scores["prerank"], 10, 20),
        "joint_recall": metrics_numpy.joint_recall(
            label_values, scores["retrieval"], scores["prerank"], 10, 30, 20
        ),
        "ndcg@10": metrics_numpy.ndcg_at_k(label_values, scores["prerank"], 10),
        "rank_ndcg@10": metrics_numpy.ndcg_at_k(label_values, scores["rank"], 10),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(logs[name], value, rtol=1e-5, err_msg=name)


def test_keras_logs_and_metrics_json_give_each_metric_one_key_and_value() -> None:
    features, labels = synthetic_batch(batch_size=4, negatives=20, seed=3)
    model = build_cascade(tiny_config(method="bce"))
    model.compile(optimizer="adam", run_eagerly=True)
    logs = model.test_on_batch(features, labels, return_dict=True)
    means = RequestMeans()
    values = per_request_metrics(labels["label"], model(features))
    means.add({name: value.numpy() for name, value in values.items()})
    written = means.results()  # what dftopk_cascade.models.training.evaluate writes to metrics.json
    streamed = [metric.key for metric in PROTOCOL if metric.streamed]
    assert set(streamed) <= set(written) and set(streamed) <= set(logs)
    for key in streamed:
        np.testing.assert_allclose(logs[key], written[key], rtol=1e-5, err_msg=key)


def test_saved_weights_load_into_a_rebuilt_model(tmp_path) -> None:
    features, _ = synthetic_batch(batch_size=2)
    config = tiny_config(method="lapsum")
    model = build_cascade(config)
    layout = ModelDir(str(tmp_path))
    config.save(layout.config_path)
    with pytest.raises(FileNotFoundError, match="no trained weights"):
        load_cascade(str(tmp_path))
    layout.save_weights(model)
    layout.save_weights(model)  # replaces the earlier weights
    loaded = load_cascade(str(tmp_path))
    assert loaded.cascade_config == config
    for name, scores in model(features).items():
        np.testing.assert_array_equal(loaded(features)[name], scores)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "weights"]


def test_a_din_attention_cascade_trains_on_the_tiny_data_and_reloads(tiny_data, tmp_path) -> None:
    schema = read_data_schema(tiny_data)
    config = CascadeConfig.from_schema(schema, **TINY_LAYERS, prerank_attention="din")
    keras.utils.set_random_seed(0)
    model = build_cascade(config)
    batches = evaluation_dataset(tiny_data, ["2024-01-14"], 16, negatives=8, seed=0, schema=schema)
    features, _ = next(iter(batches))
    assert features["seq_mask"].numpy().any(axis=1).all()  # every request has behaviours
    model(features)
    attention = model.prerank.candidate_features.attention
    assert isinstance(attention, DINAttention)
    assert isinstance(model.rank.candidate_features.attention, TargetAttention)  # only pre-ranking
    before = [weight.numpy() for weight in attention.weights]
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    data = training_input(tiny_data, ["2024-01-13"], batch_size=60, negatives=0, seed=0)
    history = model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for old, new in zip(before, attention.weights, strict=True):
        assert not np.allclose(old, new.numpy())  # the attention MLP trains
    layout = ModelDir(str(tmp_path))
    config.save(layout.config_path)
    layout.save_weights(model)
    loaded = load_cascade(str(tmp_path))
    assert loaded.cascade_config.prerank_attention == "din"
    for name, scores in model(features).items():
        np.testing.assert_allclose(loaded(features)[name], scores, rtol=1e-6, atol=1e-7)


def test_model_config_round_trip() -> None:
    model = CascadeModel(tiny_config(method="tfrs"), in_step_negatives=4, seed=7)
    rebuilt = CascadeModel.from_config(model.get_config())
    assert rebuilt.cascade_config == model.cascade_config
    assert (rebuilt.in_step_negatives, rebuilt.seed) == (4, 7)
    assert CascadeConfig.from_dict(model.get_config()["config"]).method == "tfrs"


def test_in_step_negatives_extend_the_candidates_inside_the_train_step() -> None:
    features, labels = synthetic_batch(batch_size=4, group_size=10)
    model = build_cascade(tiny_config(method="bce"), in_step_negatives=6)
    model.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
    seen = []
    original = model.stage_outputs

    def recording(features):
        seen.append(features["items"].shape[1])
        return original(features)

    model.stage_outputs = recording
    logs = model.train_on_batch(features, labels, return_dict=True)
    assert seen == [46] and np.isfinite(logs["loss"])
    model.test_on_batch(features, labels)
    assert seen == [46, 40]  # evaluation scores the batch's own candidates


def test_regularization_losses_join_the_training_loss() -> None:
    # One plain SGD step: an L2 kernel regularizer adds lr * 2 * l2 * kernel to the update.
    features, labels = synthetic_batch(batch_size=4, seed=3)
    learning_rate, l2 = 0.1, 0.5
    kernels, logs = [], []
    for regularized in (False, True):
        keras.utils.set_random_seed(0)
        model = CascadeModel(tiny_config(method="bce"))
        dense = model.prerank.mlp.dense_layers[0]
        if regularized:
            dense.kernel_regularizer = keras.regularizers.L2(l2)
        model(features)
        before = dense.kernel.numpy()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate), run_eagerly=True)
        logs.append(model.train_on_batch(features, labels, return_dict=True))
        kernels.append((before, dense.kernel.numpy()))
    (plain_before, plain_after), (before, after) = kernels
    np.testing.assert_array_equal(before, plain_before)
    np.testing.assert_allclose(
        after - plain_after, -learning_rate * 2 * l2 * before, rtol=1e-4, atol=1e-7
    )
    assert "regularization_loss" not in logs[0]
    np.testing.assert_allclose(logs[1]["regularization_loss"], l2 * np.sum(before**2), rtol=1e-5)


@pytest.mark.parametrize("method", ["dftopk", "tfrs"])
def test_without_the_ranking_stage_retrieval_and_prerank_train_the_same(method: str) -> None:
    """The paper's two-stage cascade (``rank_stage=False``): the ranking model shares nothing."""
    features, labels = synthetic_batch(batch_size=8, group_size=3, seed=4)
    settings = {"method": method, "retrieval_k": 3, "prerank_k": 3, "rank_k": 3, "label_k": 3}
    models = {}
    for rank_stage in (True, False):
        keras.utils.set_random_seed(0)
        model = build_cascade(tiny_config(**settings, rank_stage=rank_stage))
        model.compile(optimizer=keras.optimizers.Adam(0.03), run_eagerly=True)
        for _ in range(3):
            logs = model.train_on_batch(features, labels, return_dict=True)
        models[rank_stage] = (model, logs)
    (three, three_logs), (two, two_logs) = models[True], models[False]
    assert two.stages == ("retrieval", "prerank") and "rank" not in two(features)
    assert "rank_loss" not in two_logs
    assert two_logs["loss"] == pytest.approx(three_logs["loss"] - three_logs["rank_loss"], 1e-5)
    for stage in ("retrieval", "prerank"):
        for mine, theirs in zip(
            getattr(two, stage).weights, getattr(three, stage).weights, strict=True
        ):
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    logs = two.test_on_batch(features, labels, return_dict=True)
    assert "rank_ndcg@10" not in logs and "joint_recall" in logs
    scores = {name: value.numpy() for name, value in two(features).items()}
    assert "rank_ndcg@10" not in per_request_metrics(labels["label"].numpy(), scores)
