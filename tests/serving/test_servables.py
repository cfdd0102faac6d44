"""Exported models: served scores equal the Keras model's, ids out of vocabulary are served,
``top_n`` and ``k`` change the answer at serving time, and every graph is stock-TF-Serving safe."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.export.graph_ops import serving_problems
from dftopk_cascade.serving.export_layout import latest_version_dir
from dftopk_cascade.serving.saved_model_proto import signature_defaults

from tests.serving.stand_in_cascade import DEFAULT_SIZES, VOCABULARY, random_request


def _signature(export_dir: str, name: str):
    loaded = tf.saved_model.load(latest_version_dir(export_dir, name))
    return loaded, loaded.signatures[sig.SIGNATURE_NAME]


def _call(signature, inputs: dict) -> dict[str, np.ndarray]:
    return {key: value.numpy() for key, value in signature(**inputs).items()}


def _scorer_inputs(request, corpus, rows, k, mask=None) -> dict:
    items = np.stack([corpus[row] for row in rows])
    mask = np.ones(items.shape[:2], bool) if mask is None else mask
    return request | {sig.ITEMS: items, sig.ITEM_MASK: mask, sig.K: np.int32(k)}


@pytest.mark.parametrize("name", sig.MODEL_NAMES)
def test_signatures_match_the_contract(export_dir, name):
    _, signature = _signature(export_dir, name)
    inputs = signature.structured_input_signature[1]
    assert {key: (spec.dtype, spec.shape.as_list()) for key, spec in inputs.items()} == {
        key: (spec.dtype, spec.shape.as_list()) for key, spec in sig.INPUT_SPECS[name].items()
    }
    outputs = signature.structured_outputs
    assert {key: spec.dtype for key, spec in outputs.items()} == sig.OUTPUT_DTYPES[name]


@pytest.mark.parametrize("name", sig.MODEL_NAMES)
def test_every_exported_graph_runs_on_stock_tf_serving(export_dir, name):
    assert serving_problems(latest_version_dir(export_dir, name)) == []


def test_retrieval_returns_the_keras_towers_exact_top_n(export_dir, stand_in_model, corpus):
    request = random_request(3)
    _, signature = _signature(export_dir, sig.RETRIEVAL)
    served = _call(signature, request | {sig.TOP_N: np.int32(25)})

    queries = stand_in_model.user_vector(request).numpy()
    items = stand_in_model.item_vector(tf.constant(corpus)).numpy()
    expected_scores = queries @ items.T
    expected_ids = np.argsort(-expected_scores, axis=1, kind="stable")[:, :25]
    np.testing.assert_array_equal(served[sig.ITEM_IDS], expected_ids)
    np.testing.assert_allclose(
        served[sig.SCORES], np.take_along_axis(expected_scores, expected_ids, 1), rtol=1e-5
    )
    np.testing.assert_array_equal(served[sig.ITEM_FEATURES], corpus[expected_ids])


@pytest.mark.parametrize("name", [sig.PRERANK, sig.RANK])
def test_scorers_return_the_keras_scores_and_the_exact_top_k(
    export_dir, stand_in_model, corpus, name
):
    request = random_request(2, seed=5)
    rows = np.arange(40).reshape(2, 20)
    mask = np.ones([2, 20], bool)
    mask[1, 15:] = False
    _, signature = _signature(export_dir, name)
    served = _call(signature, _scorer_inputs(request, corpus, rows, k=6, mask=mask))

    features = _scorer_inputs(request, corpus, rows, k=6)
    keras_scores = getattr(stand_in_model, f"{name}_scores")(features).numpy()
    expected = np.where(mask, keras_scores, np.finfo(np.float32).min)
    np.testing.assert_allclose(served[sig.SCORES], expected, rtol=1e-5, atol=1e-6)
    for row in range(2):
        best = np.argsort(-expected[row], kind="stable")[:6]
        assert set(np.flatnonzero(served[sig.SELECTED][row])) == set(best)


def test_top_n_and_k_are_serving_inputs_not_export_constants(export_dir, corpus):
    request = random_request(2)
    _, retrieval = _signature(export_dir, sig.RETRIEVAL)
    sizes = [
        _call(retrieval, request | {sig.TOP_N: np.int32(n)})[sig.ITEM_IDS].shape
        for n in (1, 7, 120)
    ]
    assert sizes == [(2, 1), (2, 7), (2, 120)]
    everything = _call(retrieval, request | {sig.TOP_N: np.int32(10_000)})
    assert everything[sig.ITEM_IDS].shape == (2, len(corpus))

    _, rank = _signature(export_dir, sig.RANK)
    rows = np.arange(30).reshape(1, 30).repeat(2, 0)
    for k in (1, 4, 29, 50):
        selected = _call(rank, _scorer_inputs(request, corpus, rows, k=k))[sig.SELECTED]
        np.testing.assert_array_equal(selected.sum(axis=1), [min(k, 30)] * 2)


def test_sizes_have_defaults_in_the_signature_def(export_dir):
    top_n, m, k = DEFAULT_SIZES
    expected = {sig.RETRIEVAL: {sig.TOP_N: top_n}, sig.PRERANK: {sig.K: m}, sig.RANK: {sig.K: k}}
    for name, defaults in expected.items():
        found = signature_defaults(latest_version_dir(export_dir, name))
        assert {key: int(value) for key, value in found.items()} == defaults
        assert all(value.dtype == np.int32 and value.shape == () for value in found.values())


def test_ids_outside_the_vocabulary_are_served_as_the_oov_bucket(export_dir, corpus):
    request = random_request(2)
    unknown = {key: value.copy() for key, value in request.items()}
    unknown[sig.USER][0] = [10**6, 10**9, -3, 2**31 - 1, 10**4]
    unknown[sig.SEQ][1, -1] = [10**7] * 5
    oov = {key: value.copy() for key, value in request.items()}
    oov[sig.USER][0] = np.asarray(VOCABULARY.sizes[sig.USER]) - 1
    oov[sig.SEQ][1, -1] = np.asarray(VOCABULARY.sizes[sig.SEQ]) - 1

    _, retrieval = _signature(export_dir, sig.RETRIEVAL)
    served = _call(retrieval, unknown | {sig.TOP_N: np.int32(10)})
    bucket = _call(retrieval, oov | {sig.TOP_N: np.int32(10)})
    for key in served:
        np.testing.assert_array_equal(served[key], bucket[key])

    _, rank = _signature(export_dir, sig.RANK)
    items = corpus[:12].copy()[None].repeat(2, 0)
    items[0, 3] = 99_999
    oov_items = items.copy()
    oov_items[0, 3] = np.asarray(VOCABULARY.sizes[sig.ITEMS]) - 1
    inputs = {sig.ITEM_MASK: np.ones([2, 12], bool), sig.K: np.int32(3)}
    served = _call(rank, unknown | inputs | {sig.ITEMS: items})
    bucket = _call(rank, oov | inputs | {sig.ITEMS: oov_items})
    np.testing.assert_array_equal(served[sig.SCORES], bucket[sig.SCORES])
    assert np.isfinite(served[sig.SCORES]).all()


def test_an_empty_history_is_served(export_dir):
    request = random_request(2, history=0)
    assert not request[sig.SEQ_MASK].any()
    _, retrieval = _signature(export_dir, sig.RETRIEVAL)
    served = _call(retrieval, request | {sig.TOP_N: np.int32(5)})
    assert np.isfinite(served[sig.SCORES]).all()


def test_bad_serving_sizes_are_refused_with_a_message(export_dir, corpus):
    _, retrieval = _signature(export_dir, sig.RETRIEVAL)
    with pytest.raises(tf.errors.InvalidArgumentError, match="top_n must be >= 1"):
        retrieval(**{key: tf.constant(v) for key, v in random_request(1).items()}, top_n=0)
    _, rank = _signature(export_dir, sig.RANK)
    inputs = _scorer_inputs(random_request(1), corpus, [np.arange(4)], k=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 1"):
        rank(**{key: tf.constant(value) for key, value in inputs.items()})
