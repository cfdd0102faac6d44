"""The DFTopK Keras layer: values, per-call k, config, SavedModel round trip."""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import DFTopK, dftopk
from dftopk_tf.keras_compat import IS_KERAS_3, keras

SCORES = np.random.default_rng(3).normal(size=(3, 9)).astype(np.float32)


def test_layer_equals_the_operator_and_takes_k_per_call() -> None:
    layer = DFTopK(k=3, tau=0.5)
    np.testing.assert_array_equal(layer(SCORES).numpy(), dftopk(SCORES, 3, tau=0.5).numpy())
    per_row_k = tf.constant([1, 4, 8])
    np.testing.assert_array_equal(
        layer(SCORES, k=per_row_k).numpy(), dftopk(SCORES, per_row_k, tau=0.5).numpy()
    )
    mask = SCORES > -0.5
    np.testing.assert_array_equal(
        layer(SCORES, mask=mask).numpy(), dftopk(SCORES, 3, tau=0.5, mask=mask).numpy()
    )


def test_hard_layer_returns_the_exact_top_k_mask() -> None:
    selected = DFTopK(k=2, hard=True)(SCORES).numpy()
    expected = np.zeros_like(selected)
    np.put_along_axis(expected, np.argsort(-SCORES, axis=-1)[:, :2], 1.0, axis=-1)
    np.testing.assert_array_equal(selected, expected)


def test_config_round_trip_and_serialization() -> None:
    layer = DFTopK(k=4, tau=2.5, hard=True, selection="top_k", jit_compile=False, name="select")
    clone = DFTopK.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, DFTopK) and restored.k == 4 and restored.hard


def test_model_saved_with_the_earlier_method_key_still_loads() -> None:
    # Earlier versions stored the threshold search as "method"; their saved configs must load.
    inputs = keras.Input(shape=(9,))
    outputs = DFTopK(k=2, tau=0.3, selection="top_k", name="select")(inputs)
    model = keras.Model(inputs, outputs)
    old_json = model.to_json().replace('"selection": "top_k"', '"method": "top_k"')
    assert '"method": "top_k"' in old_json and '"selection"' not in old_json
    restored = keras.models.model_from_json(old_json)
    assert restored.get_layer("select").selection == "top_k"
    np.testing.assert_array_equal(restored(SCORES).numpy(), model(SCORES).numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be an int >= 1"),
        ({"k": 2.0}, "k must be an int"),
        ({"tau": 0.0}, "tau must be > 0"),
        ({"selection": "sort"}, "unknown selection method"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DFTopK(**kwargs)


def test_model_with_the_layer_survives_saved_model(tmp_path) -> None:
    inputs = keras.Input(shape=(9,))
    hidden = keras.layers.Dense(9)(inputs)
    outputs = DFTopK(k=3, tau=0.5, jit_compile=False)(hidden)
    model = keras.Model(inputs, outputs)
    expected = model(SCORES).numpy()
    path = str(tmp_path / "model")
    if IS_KERAS_3:
        model.export(path)
        restored = tf.saved_model.load(path)
        got = restored.serve(SCORES).numpy()
    else:
        tf.saved_model.save(model, path)
        restored = tf.saved_model.load(path)
        got = restored(SCORES).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_keras_model_file_round_trip(tmp_path) -> None:
    inputs = keras.Input(shape=(9,))
    outputs = DFTopK(k=2, tau=0.3)(keras.layers.Dense(9)(inputs))
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / ("model.keras" if IS_KERAS_3 else "model_tf"))
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(SCORES).numpy(), model(SCORES).numpy(), rtol=1e-6)
