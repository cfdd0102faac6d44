"""A damaged shard is named before TensorFlow reads it, and a convert re-run re-does its day.

Issue 29 item 5: a truncated shard used to fail training with "truncated record at N" and no
file name, and a convert re-run kept it.
"""

import json
import os
import shutil

import pytest
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.data_schema import read_data_schema, shard_paths
from dftopk_cascade.pipelines.input import make_dataset
from dftopk_cascade.pipelines.shard_integrity import ShardIntegrityError, file_sha256

from tests.pipelines.recflow_fixtures import convert_small, simulate_small


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> str:
    return simulate_small(str(tmp_path_factory.mktemp("sim") / "recflow"))


@pytest.fixture
def converted(simulated, tmp_path) -> str:
    out = str(tmp_path / "tfrec")
    convert_small(simulated, out)
    return out


def first_shard(data_dir: str) -> tuple[str, dict]:
    record = read_data_schema(data_dir)["days"]["2024-01-14"]["shards"][0]
    return os.path.join(data_dir, record["path"]), record


def test_the_schema_records_each_shards_size_and_sha256(converted) -> None:
    schema = read_data_schema(converted)
    for day in schema["days"].values():
        for record in day["shards"]:
            path = os.path.join(converted, record["path"])
            assert record["bytes"] == os.path.getsize(path) > 0
            assert record["sha256"] == file_sha256(path)


def test_a_truncated_shard_is_named_by_the_reader(converted) -> None:
    path, record = first_shard(converted)
    with open(path, "r+b") as file:
        file.truncate(record["bytes"] // 2)
    with pytest.raises(ShardIntegrityError) as error:
        make_dataset(converted, 8, days=["2024-01-14"])
    message = str(error.value)
    assert path in message and "truncated" in message and "\n" not in message
    assert "truncated record at" not in message


def test_a_shard_changed_at_equal_size_is_caught_by_its_sha256(converted) -> None:
    path, record = first_shard(converted)
    schema = read_data_schema(converted)
    shard_paths(converted, schema, ["2024-01-14"])  # hashed once, and cached in this process
    with open(path, "r+b") as file:
        file.seek(record["bytes"] // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))
    assert os.path.getsize(path) == record["bytes"]
    with pytest.raises(ShardIntegrityError, match="sha256 differs"):
        shard_paths(converted, schema, ["2024-01-14"])


def test_a_convert_rerun_redoes_the_day_of_a_bad_shard(simulated, converted) -> None:
    path, record = first_shard(converted)
    untouched_day = os.path.join(converted, "2024-01-13", "part-00000-of-00003.tfrecord.gz")
    untouched_mtime = os.stat(untouched_day).st_mtime_ns
    with open(path, "r+b") as file:
        file.truncate(10)
    summary = convert_small(simulated, converted)
    assert summary.skipped_days == ["2024-01-13"]
    assert os.path.getsize(path) == record["bytes"] and file_sha256(path) == record["sha256"]
    assert os.stat(untouched_day).st_mtime_ns == untouched_mtime
    batches = list(make_dataset(converted, 64, days=["2024-01-14"], shuffle=False))
    assert sum(int(features[fmt.ITEMS].shape[0]) for features, _ in batches) == 120


def test_a_folder_converted_before_shards_were_recorded_asks_for_a_new_conversion(
    converted, tmp_path
) -> None:
    old = str(tmp_path / "old")
    shutil.copytree(converted, old)
    schema_file = fmt.schema_path(old)
    with open(schema_file) as file:
        schema = json.load(file)
    schema["version"] = 1
    for day in schema["days"].values():
        day["shards"] = [record["path"] for record in day["shards"]]
    with open(schema_file, "w") as file:
        json.dump(schema, file)
    with pytest.raises(ValueError, match=r"version 1, expected .* version 2: re-run"):
        read_data_schema(old)
