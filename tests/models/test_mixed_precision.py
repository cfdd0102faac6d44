"""Mixed precision training (``--mixed-precision``): float16/bfloat16 stages, float32 outputs."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models import precision
from dftopk_cascade.models.cascade import build_cascade, load_cascade
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.contract import zero_features
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training import train

from tests.models.batches import synthetic_batch
from tests.models.test_train import tiny_options


def _config(method: str) -> CascadeConfig:
    return CascadeConfig.for_examples(method=method, tower_units=(16, 8))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("method", ["dftopk", "lcron-neuralsort", "tfrs"])
def test_a_mixed_precision_model_computes_in_half_and_returns_float32(policy, method):
    with precision.mixed_precision_policy(policy):
        model = build_cascade(_config(method))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the build
    assert model.prerank.compute_dtype == policy.removeprefix("mixed_")
    assert all(variable.dtype == tf.float32 for variable in model.trainable_variables)
    features = zero_features(batch_size=4)
    outputs = model.stage_outputs(features)
    assert {value.dtype for value in outputs.values()} == {tf.float32}
    assert {value.dtype for value in model(features).values()} == {tf.float32}
    labels = {"label": tf.tile(tf.range(40.0, 0.0, -1.0)[None], [4, 1])}
    loss = model.compute_loss((features, labels), training=True)
    assert loss.dtype == tf.float32 and bool(tf.math.is_finite(loss))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("attention", ["bilinear", "din"])
def test_half_precision_prerank_matches_float32_with_and_without_behaviours(policy, attention):
    config = dataclasses.replace(_config("dftopk"), prerank_attention=attention)
    reference = build_cascade(config)
    with precision.mixed_precision_policy(policy):
        half = build_cascade(config)
    half.set_weights(reference.get_weights())
    features, _ = synthetic_batch(batch_size=4)  # request 0 has no behaviour
    half_scores = half.stage_outputs(features)["prerank"].numpy()
    full_scores = reference.stage_outputs(features)["prerank"].numpy()
    assert np.isfinite(half_scores).all()
    np.testing.assert_allclose(half_scores, full_scores, rtol=5e-2, atol=5e-2)


def test_float16_scales_the_loss_and_its_loss_matches_float32():
    config = _config("dftopk")
    reference = build_cascade(config)
    with precision.mixed_precision_policy("mixed_float16"):
        half = build_cascade(config)
    half.set_weights(reference.get_weights())
    optimizer = precision.training_optimizer(keras.optimizers.SGD(0.0), "mixed_float16")
    half.compile(optimizer=optimizer)
    reference.compile(optimizer=keras.optimizers.SGD(0.0))
    assert isinstance(half.optimizer, keras.mixed_precision.LossScaleOptimizer)
    rng = np.random.default_rng(0)
    features = zero_features(batch_size=8)
    labels = {"label": tf.constant(rng.permuted(np.tile(np.arange(40.0), (8, 1)), axis=1))}
    logs = half.train_step((features, labels))
    assert np.isfinite(float(logs["loss"]))
    assert float(half.optimizer.loss_scale) > 1.0  # dynamic scaling is on
    half_loss = float(half.compute_loss((features, labels), training=True))
    full_loss = float(reference.compute_loss((features, labels), training=True))
    np.testing.assert_allclose(half_loss, full_loss, rtol=2e-2)


def test_a_bfloat16_run_trains_evaluates_and_saves_float32_weights(tiny_data, tmp_path):
    # One eager step of 60 requests: bfloat16 is emulated on most CPUs, and one step shows it.
    options = tiny_options(
        tiny_data, str(tmp_path / "m"), mixed_precision="mixed_bfloat16", steps_per_epoch=1
    )
    result = train.run_training(options)
    assert 0.0 <= result.metrics["joint_recall"] <= 1.0
    assert keras.mixed_precision.global_policy().name == "float32"
    layout = ModelDir(str(tmp_path / "m"))
    model = load_cascade(layout.root)  # rebuilt under the default policy: float32 throughout
    assert model.prerank.compute_dtype == "float32"
    with open(layout.metrics_path) as file:
        assert json.load(file)["joint_recall"] == pytest.approx(result.metrics["joint_recall"])


def test_an_unknown_precision_is_refused_with_the_choices(tiny_data, tmp_path):
    with pytest.raises(ValueError, match="choose one of off, mixed_float16, mixed_bfloat16"):
        train.run_training(tiny_options(tiny_data, str(tmp_path / "m"), mixed_precision="fp8"))
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--model-dir", "m", "--mixed-precision", "fp8"])
    parsed = train.parse_args(["--data", "d", "--model-dir", "m", "--mixed-precision", "off"])
    assert parsed.mixed_precision == "off"


def test_bfloat16_warns_only_on_a_cpu_without_native_bfloat16(monkeypatch) -> None:
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma"}))
    with pytest.warns(UserWarning, match="neither AVX-512 BF16 nor AMX"):
        with precision.mixed_precision_policy("mixed_bfloat16"):
            pass
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with precision.mixed_precision_policy("mixed_bfloat16"):
            pass
        with precision.mixed_precision_policy("off"):
            pass
