"""Out-of-vocabulary clipping against its formula: id if 0 <= id < size, else size - 1."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary


def test_clip_follows_the_formula_column_by_column():
    sizes = [4, 9, 2, 100]
    ids = np.random.default_rng(0).integers(-20, 150, size=(6, 7, 4)).astype(np.int32)
    clipped = FeatureVocabulary({"seq": sizes}).clip("seq", tf.constant(ids)).numpy()
    sizes_array = np.asarray(sizes)
    expected = np.where((ids >= 0) & (ids < sizes_array), ids, sizes_array - 1)
    np.testing.assert_array_equal(clipped, expected)


def test_padding_and_known_ids_are_kept():
    vocabulary = FeatureVocabulary({"user": [6] * 5})
    ids = np.array([[0, 1, 2, 4, 5]], np.int32)
    np.testing.assert_array_equal(vocabulary.clip("user", tf.constant(ids)).numpy(), ids)


def test_from_schema_orders_sizes_by_columns():
    vocabulary = FeatureVocabulary.from_schema(
        {"context": ["hour", "minute", "weekday"]}, {"weekday": 9, "hour": 26, "minute": 62}
    )
    assert vocabulary.sizes == {"context": (26, 62, 9)}


def test_clip_features_passes_other_inputs_through():
    vocabulary = FeatureVocabulary({"user": [3] * 5})
    mask = tf.constant([[True]])
    clipped = vocabulary.clip_features({"user": tf.fill([1, 5], 8), "seq_mask": mask})
    assert clipped["seq_mask"] is mask
    np.testing.assert_array_equal(clipped["user"].numpy(), [[2] * 5])


def test_bad_vocabularies_and_inputs_are_named():
    with pytest.raises(ValueError, match="ints >= 2"):
        FeatureVocabulary({"user": [1, 5]})
    with pytest.raises(ValueError, match=r"no size for the fields \['age'\]"):
        FeatureVocabulary.from_schema({"user": ["age"]}, {})
    with pytest.raises(ValueError, match="no vocabulary for feature 'items'"):
        FeatureVocabulary({"user": [3] * 5}).clip("items", tf.zeros([1, 8], tf.int32))
    with pytest.raises(ValueError, match="user has 5 columns"):
        FeatureVocabulary({"user": [3] * 5}).clip("user", tf.zeros([1, 4], tf.int32))
