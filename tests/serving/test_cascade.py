"""The cascade: top-K equal to a NumPy walk through the three Keras stages, on every backend."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import GrpcBackend, LocalBackend, RestBackend
from dftopk_cascade.serving.cascade_inference import Cascade, check_sizes, keep_selected

from tests.serving.stand_in_cascade import random_request


@pytest.fixture(scope="module")
def cascades(export_dir, tf_serving):
    backends = [
        LocalBackend(export_dir),
        RestBackend(tf_serving.rest_url),
        GrpcBackend(tf_serving.grpc_target),
    ]
    yield {
        backend.name: Cascade(backend, retrieval_keep=60, prerank_keep=20, rank_keep=5)
        for backend in backends
    }
    for backend in backends:
        backend.close()


def _numpy_cascade(model, corpus, request, top_n, m, k) -> tuple[np.ndarray, np.ndarray]:
    """Retrieval, pre-ranking and ranking from the Keras stand-in, with NumPy selection."""
    query = model.user_vector(request).numpy()
    retrieval = query @ model.item_vector(tf.constant(corpus)).numpy().T
    candidates = np.argsort(-retrieval, axis=1, kind="stable")[:, :top_n]
    for stage, count in (("prerank", m), ("rank", k)):
        features = request | {
            sig.ITEMS: corpus[candidates],
            sig.ITEM_MASK: np.ones(candidates.shape, bool),
        }
        scores = getattr(model, f"{stage}_scores")(features).numpy()
        order = np.argsort(-scores, axis=1, kind="stable")[:, :count]
        candidates = np.take_along_axis(candidates, order, axis=1)
        kept_scores = np.take_along_axis(scores, order, axis=1)
    return candidates, kept_scores


def test_every_backend_returns_the_keras_cascades_top_k(cascades, stand_in_model, corpus):
    request = random_request(3, seed=21)
    expected_ids, expected_scores = _numpy_cascade(stand_in_model, corpus, request, 60, 20, 5)
    for name, cascade in cascades.items():
        result = cascade.recommend(request)
        np.testing.assert_array_equal(result.item_ids, expected_ids, err_msg=name)
        np.testing.assert_array_equal(result.item_features, corpus[expected_ids], err_msg=name)
        np.testing.assert_allclose(result.scores, expected_scores, rtol=1e-5, err_msg=name)
        assert set(result.timings_ms) == {"retrieval", "prerank", "rank", "total"}
        assert result.timings_ms["total"] >= result.timings_ms["rank"] >= 0.0


def test_sizes_are_per_call(cascades, stand_in_model, corpus):
    request = random_request(2, seed=4)
    cascade = cascades["local"]
    for top_n, m, k in ((10, 10, 10), (100, 30, 1), (1000, 200, 50)):
        result = cascade.recommend(request, top_n, m, k)
        expected_ids, _ = _numpy_cascade(stand_in_model, corpus, request, top_n, m, k)
        assert result.item_ids.shape == (2, min(k, len(corpus)))
        np.testing.assert_array_equal(result.item_ids, expected_ids)


def test_bad_sizes_and_missing_features_are_named(cascades):
    cascade = cascades["local"]
    request = random_request(1)
    with pytest.raises(ValueError, match="rank_keep <= prerank_keep <= retrieval_keep"):
        cascade.recommend(request, retrieval_keep=10, prerank_keep=20, rank_keep=5)
    with pytest.raises(ValueError, match="rank_keep must be an int >= 1"):
        cascade.recommend(request, rank_keep=0)
    with pytest.raises(ValueError, match=r"lacks the features \['seq_mask'\]"):
        cascade.recommend({key: v for key, v in request.items() if key != sig.SEQ_MASK})


def test_check_sizes_refuses_non_integers():
    with pytest.raises(ValueError, match="retrieval_keep"):
        check_sizes(10.0, 5, 1)
    with pytest.raises(ValueError, match="prerank_keep must"):
        check_sizes(10, True, 1)


def test_keep_selected_takes_the_selected_items_by_score_then_position():
    selected = np.array([[1.0, 1.0, 0.0, 1.0, 1.0]])
    scores = np.array([[0.5, 2.0, 9.0, 0.5, 1.0]])
    np.testing.assert_array_equal(keep_selected(selected, scores, 4), [[1, 4, 0, 3]])
    np.testing.assert_array_equal(keep_selected(selected, scores, 2), [[1, 4]])


def test_warm_up_runs_an_empty_history_of_padding_ids(cascades):
    result = cascades["grpc"].warm_up()
    assert result.item_ids.shape == (1, 5) and np.isfinite(result.scores).all()


def test_top_n_m_k_are_deprecated_names_of_the_sizes(cascades):
    with pytest.warns(DeprecationWarning, match="Cascade: top_n= is deprecated"):
        cascade = Cascade(cascades["local"].backend, top_n=60, m=20, k=5)
    assert cascade.sizes == (60, 20, 5)
    with pytest.warns(DeprecationWarning, match="use rank_keep= instead"):
        result = cascade.recommend(random_request(1), k=3)
    assert result.item_ids.shape == (1, 3)
