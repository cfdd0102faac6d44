"""The export layout: atomic version folders that are never overwritten, and version numbering."""

import os

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.serving.export.publish import VersionExistsError, next_version, write_version
from dftopk_cascade.serving.export.servables import ScorerServable
from dftopk_cascade.serving.export_layout import (
    TEMPORARY_PREFIX,
    existing_versions,
    latest_version_dir,
)

from tests.serving.stand_in_cascade import VOCABULARY


def _tiny_servable() -> ScorerServable:
    weight = tf.Variable(2.0)
    return ScorerServable(
        lambda f: weight * tf.cast(f["items"][..., 0], tf.float32), [weight], VOCABULARY
    )


def test_write_version_lays_out_tf_serving_folders_and_leaves_no_temporary(tmp_path):
    servable = _tiny_servable()
    path = write_version(str(tmp_path), "rank", 3, servable, servable.signatures())
    assert path == os.path.join(str(tmp_path), "rank", "3")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.listdir(tmp_path / "rank") == ["3"]
    assert existing_versions(str(tmp_path), "rank") == [3]
    assert latest_version_dir(str(tmp_path), "rank") == path


def test_write_version_refuses_to_overwrite_and_keeps_the_old_model(tmp_path):
    servable = _tiny_servable()
    path = write_version(str(tmp_path), "rank", 1, servable, servable.signatures())
    before = os.path.getmtime(os.path.join(path, "saved_model.pb"))
    with pytest.raises(VersionExistsError, match="never overwrites"):
        write_version(str(tmp_path), "rank", 1, servable, servable.signatures())
    assert os.path.getmtime(os.path.join(path, "saved_model.pb")) == before
    assert sorted(os.listdir(tmp_path / "rank")) == ["1"]


def test_failed_write_leaves_nothing_under_the_version(tmp_path):
    def broken_score(features):
        raise RuntimeError("model broke while tracing")

    servable = ScorerServable(broken_score, [], VOCABULARY)
    with pytest.raises(RuntimeError, match="model broke"):
        write_version(str(tmp_path), "rank", 1, servable, servable.signatures())
    assert not os.path.exists(tmp_path / "rank" / "1")


def test_a_model_that_needs_xla_is_not_published(tmp_path):
    compiled = tf.function(lambda x: x * 2.0, jit_compile=True)
    servable = ScorerServable(
        lambda f: compiled(tf.cast(f["items"][..., 0], tf.float32)), [], VOCABULARY
    )
    with pytest.raises(ValueError, match="XLA"):
        write_version(str(tmp_path), "rank", 1, servable, servable.signatures())
    remaining = os.listdir(tmp_path / "rank")
    assert remaining == [] and not any(name.startswith(TEMPORARY_PREFIX) for name in remaining)


def test_next_version_follows_the_highest_of_all_models(tmp_path):
    assert next_version(str(tmp_path), ["retrieval", "rank"]) == 1
    os.makedirs(tmp_path / "rank" / "4")
    os.makedirs(tmp_path / "rank" / f"{TEMPORARY_PREFIX}5-abc")
    os.makedirs(tmp_path / "retrieval" / "2")
    assert next_version(str(tmp_path), ["retrieval", "rank"]) == 5


def test_latest_version_dir_names_the_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="prerank"):
        latest_version_dir(str(tmp_path), "prerank")


@pytest.mark.parametrize("version", [0, -1, True, 1.5])
def test_bad_versions_are_refused(tmp_path, version):
    with pytest.raises(ValueError, match="version"):
        write_version(str(tmp_path), "rank", version, _tiny_servable(), {})


def test_the_served_model_needs_no_python_objects(tmp_path):
    servable = _tiny_servable()
    path = write_version(str(tmp_path), "rank", 1, servable, servable.signatures())
    del servable
    signature = tf.saved_model.load(path).signatures["serving_default"]
    items = np.array([[[3] + [1] * 7, [1] * 8]], np.int32)
    outputs = signature(
        context=tf.ones([1, 3], tf.int32),
        user=tf.ones([1, 5], tf.int32),
        seq=tf.zeros([1, 50, 5], tf.int32),
        seq_mask=tf.zeros([1, 50], tf.bool),
        items=tf.constant(items),
        item_mask=tf.constant([[True, True]]),
        k=tf.constant(1),
    )
    np.testing.assert_allclose(outputs["scores"].numpy(), [[6.0, 2.0]])
    np.testing.assert_array_equal(outputs["selected"].numpy(), [[1.0, 0.0]])
