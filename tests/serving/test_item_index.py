"""The exact item index against NumPy: scores, order (ties by corpus position) and N per call."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.serving.export.item_index import ExactItemIndex


def _index(count: int = 50, dim: int = 6, seed: int = 0) -> tuple[ExactItemIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(count, dim)).astype(np.float32)
    features = rng.integers(0, 100, size=(count, 8)).astype(np.int32)
    return ExactItemIndex(embeddings, features), embeddings


def test_top_n_equals_numpy_for_several_n_in_one_index():
    index, embeddings = _index()
    queries = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    all_scores = queries @ embeddings.T
    for n in (1, 5, 50):
        scores, ids, features = (value.numpy() for value in index(queries, tf.constant(n)))
        expected = np.argsort(-all_scores, axis=1, kind="stable")[:, :n]
        np.testing.assert_array_equal(ids, expected)
        np.testing.assert_allclose(scores, np.take_along_axis(all_scores, expected, 1), rtol=1e-5)
        np.testing.assert_array_equal(features, index.item_features.numpy()[expected])


def test_ties_keep_corpus_order_and_n_is_capped_at_the_corpus():
    index = ExactItemIndex(np.ones([5, 2], np.float32), np.arange(40).reshape(5, 8))
    scores, ids, _ = index(tf.ones([1, 2]), tf.constant(10))
    assert ids.numpy().tolist() == [[0, 1, 2, 3, 4]]
    np.testing.assert_array_equal(scores.numpy(), np.full([1, 5], 2.0))


def test_bad_inputs_are_named():
    index, _ = _index()
    with pytest.raises(tf.errors.InvalidArgumentError, match="top_n must be >= 1"):
        index(tf.ones([1, 6]), tf.constant(0))
    with pytest.raises(ValueError, match="same, non-zero number of items"):
        ExactItemIndex(np.ones([3, 2]), np.ones([4, 8]))
    with pytest.raises(ValueError, match=r"\[items, dim\]"):
        ExactItemIndex(np.ones([3]), np.ones([3, 8]))
