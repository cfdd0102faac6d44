"""make_dataset delivers contract batches: shapes, labels, order, sharding, determinism."""

import json
import os
import shutil

import numpy as np
import pyarrow.feather as feather
import pytest
import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.data_schema import load_schema_file, shard_paths
from dftopk_cascade.pipelines.input import make_dataset

from tests.pipelines.recflow_fixtures import convert_small, simulate_small

TOTAL = 240


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return simulate_small(str(tmp_path_factory.mktemp("sim")))


@pytest.fixture(scope="module")
def data(root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tfrec"))
    convert_small(root, out)
    return out


def stored_examples(path: str) -> dict[str, np.ndarray]:
    """All stored examples in day and shard order, parsed."""
    schema = load_schema_file(path)
    files = shard_paths(path, schema, list(schema["days"]))
    serialized = list(tf.data.TFRecordDataset(files, fmt.COMPRESSION).as_numpy_iterator())
    parsed = fmt.parse_examples(tf.constant(serialized), schema["has_preference"])
    return {name: values.numpy() for name, values in parsed.items()}


def example_keys(features: dict[str, tf.Tensor]) -> list[bytes]:
    """A fingerprint of each example in a batch (its user, context and candidate ids)."""
    parts = [features[fmt.USER], features[fmt.CONTEXT], features[fmt.ITEMS][:, :40, 0]]
    rows = np.concatenate([part.numpy().reshape(len(part), -1) for part in parts], axis=1)
    return [row.tobytes() for row in rows]


def everything(dataset: tf.data.Dataset) -> list[bytes]:
    return [key for features, _ in dataset for key in example_keys(features)]


def test_batches_follow_the_contract(data):
    features, labels = next(iter(make_dataset(data, 16, negatives_per_request=24)))
    expected = {
        fmt.CONTEXT: (tf.int32, [16, 3]),
        fmt.USER: (tf.int32, [16, 5]),
        fmt.SEQ: (tf.int32, [16, 50, 5]),
        fmt.SEQ_MASK: (tf.bool, [16, 50]),
        fmt.ITEMS: (tf.int32, [16, 64, 8]),
        fmt.ITEM_MASK: (tf.bool, [16, 64]),
        fmt.STAGE: (tf.int32, [16, 64]),
    }
    assert {name: (value.dtype, value.shape.as_list()) for name, value in features.items()} == (
        expected
    )
    assert {name: (value.dtype, value.shape.as_list()) for name, value in labels.items()} == {
        fmt.LABEL: (tf.float32, [16, 64]),
        fmt.PREFERENCE: (tf.float32, [16, 64]),
    }
    # The specs models and serving signatures are built from describe these batches.
    for name, spec in fmt.model_input_specs(candidates=64).items():
        assert spec.is_compatible_with(features[name]), name


def test_values_equal_the_stored_examples_and_the_protocol_labels(data):
    stored = stored_examples(data)
    features, labels = next(iter(make_dataset(data, TOTAL, shuffle=False)))
    stored_row = {
        key: row
        for row, key in enumerate(
            example_keys(
                {name: tf.constant(stored[name]) for name in (fmt.USER, fmt.CONTEXT, fmt.ITEMS)}
            )
        )
    }
    order = [stored_row[key] for key in example_keys(features)]
    stored = {name: values[order] for name, values in stored.items()}
    for name in (fmt.CONTEXT, fmt.USER, fmt.SEQ, fmt.ITEMS):
        np.testing.assert_array_equal(features[name], stored[name])
    mask = stored[fmt.ITEM_MASK] > 0
    np.testing.assert_array_equal(features[fmt.ITEM_MASK], mask)
    np.testing.assert_array_equal(features[fmt.SEQ_MASK], stored[fmt.SEQ][..., 0] > 0)
    np.testing.assert_array_equal(features[fmt.STAGE][0], np.repeat(np.arange(4), 10))
    constants = np.repeat([[7.0] * 10 + [6.0] * 10 + [5.0] * 10], TOTAL, axis=0)
    expected = np.concatenate([30.0 - stored[fmt.RANK_INDEX], constants], axis=1)
    np.testing.assert_array_equal(labels[fmt.LABEL], np.where(mask, expected, -1.0))
    np.testing.assert_array_equal(
        labels[fmt.PREFERENCE], np.where(mask, stored[fmt.PREFERENCE], -1.0)
    )
    assert (labels[fmt.LABEL].numpy()[:, :10][mask[:, :10]] > 7).all()


def test_one_pass_in_day_order(data):
    batches = list(make_dataset(data, 50, shuffle=False, deterministic=True))
    assert [len(features[fmt.USER]) for features, _ in batches] == [50, 50, 50, 50, 40]
    first_day = everything(make_dataset(data, 50, shuffle=False, days=["2024-01-13"]))
    in_order = everything(make_dataset(data, 50, shuffle=False, deterministic=True))
    assert set(in_order[:120]) == set(first_day)
    shuffled = everything(make_dataset(data, 50, shuffle=True, shuffle_buffer=16, seed=1))
    assert sorted(shuffled) == sorted(everything(make_dataset(data, 50, shuffle=False)))
    assert set(shuffled[:60]) <= set(first_day)  # days keep their order; records mix within


def test_deterministic_for_a_seed(data):
    def run(seed: int) -> list[bytes]:
        dataset = make_dataset(data, 32, negatives_per_request=8, deterministic=True, seed=seed)
        return [
            key + features[fmt.ITEMS][i, 40:].numpy().tobytes()
            for features, _ in dataset
            for i, key in enumerate(example_keys(features))
        ]

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("pipelines", [2, 8])  # 8 > 6 shards: records are split instead
def test_input_pipelines_split_the_data(data, pipelines):
    seen = []
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline, num_replicas_in_sync=pipelines)
        dataset = make_dataset(data, 16 * pipelines, input_context=context, shuffle=False)
        sizes = [len(features[fmt.USER]) for features, _ in dataset]
        assert max(sizes) == 16
        seen += everything(dataset)
    assert sorted(seen) == sorted(everything(make_dataset(data, 64, shuffle=False)))


def test_published_data_has_no_preference(root, tmp_path):
    published = str(tmp_path / "published")
    shutil.copytree(root, published)
    for day in recflow.list_days(published):
        path = recflow.day_file(published, recflow.ALL_STAGE_DIR, day)
        feather.write_feather(
            feather.read_table(path).drop_columns([recflow.TRUE_PREFERENCE]), path
        )
    out = str(tmp_path / "out")
    convert_small(published, out)
    assert load_schema_file(out)["has_preference"] is False
    features, labels = next(iter(make_dataset(out, 8)))
    mask = features[fmt.ITEM_MASK].numpy()
    np.testing.assert_array_equal(labels[fmt.PREFERENCE], np.where(mask, 0.0, -1.0))


def test_clear_errors(data, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no schema\.json"):
        make_dataset(str(tmp_path), 8)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "schema.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ValueError, match="expected 'dftopk-recflow-tfrecord'"):
        load_schema_file(str(bad))
    with pytest.raises(ValueError, match="day '2024-03-01' was not converted"):
        make_dataset(data, 8, days=["2024-03-01"])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make_dataset(data, 0)
    copy = str(tmp_path / "copy")
    shutil.copytree(data, copy)
    os.remove(os.path.join(copy, "2024-01-14", "part-00002-of-00003.tfrecord.gz"))
    with pytest.raises(FileNotFoundError, match=r"shard listed in schema\.json is missing"):
        make_dataset(copy, 8)
