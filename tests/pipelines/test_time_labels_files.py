"""Small building blocks: time features, protocol labels, atomic writes."""

import datetime
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.pipelines.atomic_files import atomic_path, write_json
from dftopk_cascade.pipelines.labels import protocol_labels, stage_ids
from dftopk_cascade.pipelines.time_features import weekday_hour_minute

RECFLOW_TIME = datetime.timezone(datetime.timedelta(hours=8))


@pytest.mark.parametrize("per_second", [1, 1000])
def test_time_features_match_datetime(per_second):
    rng = np.random.default_rng(0)
    seconds = rng.integers(1_600_000_000, 1_800_000_000, 200)
    timestamps = seconds * per_second + rng.integers(0, per_second, 200)
    expected = [
        [moment.weekday(), moment.hour, moment.minute]
        for moment in (datetime.datetime.fromtimestamp(int(s), RECFLOW_TIME) for s in seconds)
    ]
    np.testing.assert_array_equal(weekday_hour_minute(timestamps, per_second), expected)


def test_protocol_labels_match_the_formula():
    rng = np.random.default_rng(1)
    rank_index = rng.integers(0, 10, (4, 10))
    mask = rng.random((4, 40)) < 0.8
    expected = np.concatenate(
        [30.0 - rank_index, np.tile(np.repeat([7.0, 6.0, 5.0], 10), (4, 1))], axis=1
    )
    labels = protocol_labels(tf.constant(rank_index, tf.int32), tf.constant(mask))
    np.testing.assert_array_equal(labels, np.where(mask, expected, -1.0))
    np.testing.assert_array_equal(stage_ids(2, 10), np.tile(np.repeat(np.arange(4), 10), (2, 1)))


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    path = str(tmp_path / "out.bin")
    with pytest.raises(RuntimeError), atomic_path(path) as temporary:
        with open(temporary, "w") as file:
            file.write("half")
        raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []
    write_json(path, {"a": 1})
    with open(path) as file:
        assert json.load(file) == {"a": 1}
    assert os.listdir(tmp_path) == ["out.bin"]
