"""Conversion: a field-by-field round trip, clear errors on bad input, resumable re-runs."""

import datetime
import json
import os
import pickle
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest
import tensorflow as tf
from dftopk_cascade.pipelines import convert as convert_module
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.data_schema import load_schema_file, shard_paths

from tests.pipelines.recflow_fixtures import convert_small, simulate_small, tree

RECFLOW_TIME = datetime.timezone(datetime.timedelta(hours=8))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return simulate_small(str(tmp_path_factory.mktemp("sim")))


@pytest.fixture(scope="module")
def converted(root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("tfrec"))
    convert_small(root, out)
    return out


@pytest.fixture()
def broken_copy(root, tmp_path):
    """A private copy of the simulated root to damage."""
    copy = str(tmp_path / "recflow")
    shutil.copytree(root, copy)
    return copy


def read_records(out: str) -> dict[int, dict[str, np.ndarray]]:
    """Every converted request, parsed, keyed by request id."""
    schema = load_schema_file(out)
    paths = shard_paths(out, schema, list(schema["days"]))
    serialized = list(tf.data.TFRecordDataset(paths, fmt.COMPRESSION).as_numpy_iterator())
    parsed = fmt.parse_examples(tf.constant(serialized), schema["has_preference"])
    ids = parsed.pop(fmt.REQUEST_ID).numpy()
    return {
        int(request_id): {name: values[i].numpy() for name, values in parsed.items()}
        for i, request_id in enumerate(ids)
    }


def time_features(timestamp_seconds: int) -> list[int]:
    moment = datetime.datetime.fromtimestamp(timestamp_seconds, RECFLOW_TIME)
    return [moment.weekday() + 1, moment.hour + 1, moment.minute + 1]


def reference_example(root: str, day: str, request_id: int) -> dict[str, np.ndarray]:
    """The expected example, from the raw files with the published layout spelled out."""
    frame = pd.read_feather(recflow.day_file(root, recflow.ALL_STAGE_DIR, day))
    rows = frame[frame["request_id"] == request_id]
    first = rows.iloc[0]
    with open(recflow.day_file(root, recflow.SEQUENCE_DIR, day), "rb") as file:
        sequence = pickle.load(file)[request_id]
    with open(recflow.day_file(root, recflow.REQUEST_DICT_DIR, day), "rb") as file:
        stages = pickle.load(file)[request_id]
    # Sequence columns: video, author, cate_two, cate_one, upload_type, upload_ts, duration,
    # request_ts (0 = padding), playing_time, request_id.
    real = sequence[:, 7] > 0
    seq = np.where(real[:, None], sequence[:, :5] + 1, 0)
    items, mask, rank_index, preference = [], [], [], []
    for stage in ("rank_pos", "rank_neg", "coarse_neg", "prerank_neg"):
        videos = stages[stage][:10]
        # Stage columns: video, author, duration, cate_two, upload_type, upload_ts, cate_one, ev.
        for video, author, _, cate_two, upload_type, upload_ts, cate_one, _ in videos.tolist():
            ids = [video + 1, author + 1, cate_two + 1, cate_one + 1, upload_type + 1]
            items.append([*ids, *time_features(upload_ts)])
            row = rows[rows["video_id"] == video]
            preference.append(float(row["true_preference"].iloc[0]))
            if stage == "rank_pos":
                rank_index.append(int(row.loc[row["rank_pos"] == 1, "rank_index"].iloc[0]))
        padding = 10 - len(videos)
        items += [[0] * 8] * padding
        preference += [0.0] * padding
        mask += [1] * len(videos) + [0] * padding
    rank_index += [0] * (10 - len(rank_index))
    return {
        "context": np.array(time_features(int(first["request_timestamp"]) // 1000)),
        "user": np.array(
            [first[name] + 1 for name in ("user_id", "device_id", "gender", "age", "province")]
        ),
        "seq": seq,
        "items": np.array(items),
        "item_mask": np.array(mask),
        "rank_index": np.array(rank_index),
        "preference": np.array(preference, np.float32),
    }


def test_round_trip_equals_the_source_rows(root, converted):
    records = read_records(converted)
    schema = load_schema_file(converted)
    assert schema["counts"]["requests"] == len(records) == 240
    assert schema["has_preference"] is True
    rng = np.random.default_rng(0)
    for day in schema["days"]:
        frame = pd.read_feather(recflow.day_file(root, recflow.ALL_STAGE_DIR, day))
        for request_id in rng.choice(frame["request_id"].unique(), 6, replace=False):
            expected = reference_example(root, day, int(request_id))
            actual = records[int(request_id)]
            for name, values in expected.items():
                np.testing.assert_allclose(actual[name], values, err_msg=f"{request_id} {name}")


def test_schema_describes_the_features(root, converted):
    schema = load_schema_file(converted)
    counts = recflow.read_id_counts(root)
    assert schema["vocab_sizes"]["video_id"] == counts["video_id"] + 2
    assert schema["vocab_sizes"]["request_minute"] == 62
    assert schema["columns"]["items"] == list(fmt.ITEM_FIELDS)
    assert set(schema["vocab_sizes"]) >= set(fmt.ITEM_FIELDS + fmt.USER_FIELDS + fmt.CONTEXT_FIELDS)
    assert schema["features"]["items"] == {"dtype": "int64", "shape": [40, 8]}
    for day, entry in schema["days"].items():
        assert entry["requests"] == 120 and len(entry["shards"]) == 3, day
    assert all(count == 0 for count in schema["counts"]["out_of_vocabulary"].values())


def test_ids_beyond_id_counts_go_to_the_oov_bucket(broken_copy, tmp_path):
    id_path = os.path.join(broken_copy, recflow.OTHERS_DIR, recflow.ID_COUNT_FILE)
    with open(id_path, "rb") as file:
        counts = pickle.load(file)
    counts["video_id"] = 10
    with open(id_path, "wb") as file:
        pickle.dump(counts, file)
    out = str(tmp_path / "out")
    convert_small(broken_copy, out, days=["2024-01-13"])
    schema = load_schema_file(out)
    assert schema["counts"]["out_of_vocabulary"]["video_id"] > 0
    for record in read_records(out).values():
        videos = record["items"][record["item_mask"] > 0, 0]
        assert videos.max() <= 11 and videos.min() >= 1


def _edit_first_rank_pos_row(root: str, day: str, edit) -> tuple[int, int]:
    """Applies ``edit(frame, row)`` to all_stage's first rank_pos row; returns (request, video)."""
    path = recflow.day_file(root, recflow.ALL_STAGE_DIR, day)
    frame = pd.read_feather(path)
    row = frame.index[frame["rank_pos"] == 1][0]
    key = (int(frame.at[row, "request_id"]), int(frame.at[row, "video_id"]))
    feather.write_feather(edit(frame, row).reset_index(drop=True), path)
    return key


def test_rank_pos_without_a_position_ranks_after_the_known_ones(broken_copy, tmp_path):
    request_id, video_id = _edit_first_rank_pos_row(
        broken_copy, "2024-01-13", lambda frame, row: frame.drop(index=row)
    )
    out = str(tmp_path / "out")
    convert_small(broken_copy, out, days=["2024-01-13"])
    assert load_schema_file(out)["counts"]["missing_rank_index"] == 1
    record = read_records(out)[request_id]
    slot = list(record["items"][:10, 0]).index(video_id + 1)
    assert record["rank_index"][slot] == 10


def test_rank_index_out_of_range_is_an_error(broken_copy, tmp_path):
    def far(frame, row):
        frame.at[row, "rank_index"] = 40
        return frame

    request_id, _ = _edit_first_rank_pos_row(broken_copy, "2024-01-13", far)
    with pytest.raises(recflow.RecFlowError, match=f"request {request_id}: 40"):
        convert_small(broken_copy, str(tmp_path / "out"), days=["2024-01-13"])


def _rewrite_all_stage(root: str, change) -> str:
    path = recflow.day_file(root, recflow.ALL_STAGE_DIR, "2024-01-14")
    feather.write_feather(change(feather.read_table(path)), path)
    return path


def _remove_request(root: str, folder: str) -> str:
    path = recflow.day_file(root, folder, "2024-01-14")
    with open(path, "rb") as file:
        entries = pickle.load(file)
    entries.pop(next(iter(entries)))
    with open(path, "wb") as file:
        pickle.dump(entries, file)
    return path


def _overwrite(path: str, data: bytes) -> str:
    with open(path, "wb") as file:
        file.write(data)
    return path


def _truncate(path: str) -> str:
    with open(path, "rb") as file:
        data = file.read()
    return _overwrite(path, data[: len(data) // 2])


BAD_INPUTS = {
    "missing folder": (
        lambda root: (
            shutil.rmtree(os.path.join(root, recflow.SEQUENCE_DIR))
            or os.path.join(root, recflow.SEQUENCE_DIR)
        ),
        "missing folder",
    ),
    "missing day": (
        lambda root: (
            os.remove(recflow.day_file(root, recflow.REQUEST_DICT_DIR, "2024-01-14"))
            or recflow.day_file(root, recflow.REQUEST_DICT_DIR, "2024-01-14")
        ),
        "missing day 2024-01-14",
    ),
    "missing column": (
        lambda root: _rewrite_all_stage(root, lambda table: table.drop_columns(["user_id"])),
        "no column 'user_id'",
    ),
    "wrong dtype": (
        lambda root: _rewrite_all_stage(
            root,
            lambda table: table.set_column(
                table.schema.get_field_index("age"),
                "age",
                table.column("age").cast(pa.float64()),
            ),
        ),
        "column 'age' has dtype double, expected an integer",
    ),
    "corrupt feather": (
        lambda root: _truncate(recflow.day_file(root, recflow.ALL_STAGE_DIR, "2024-01-14")),
        "corrupt feather",
    ),
    "corrupt pickle": (
        lambda root: _truncate(recflow.day_file(root, recflow.SEQUENCE_DIR, "2024-01-14")),
        "corrupt pickle",
    ),
    "not a dict": (
        lambda root: _overwrite(
            recflow.day_file(root, recflow.REQUEST_DICT_DIR, "2024-01-14"), pickle.dumps([1, 2])
        ),
        "expected a pickled dict, found list",
    ),
    "request missing from the sequences": (
        lambda root: _remove_request(root, recflow.SEQUENCE_DIR),
        "1 request ids missing from the dict",
    ),
    "request missing from the stages": (
        lambda root: _remove_request(root, recflow.REQUEST_DICT_DIR),
        "1 request ids missing from the dict",
    ),
    "id count missing": (
        lambda root: _overwrite(
            os.path.join(root, recflow.OTHERS_DIR, recflow.ID_COUNT_FILE),
            pickle.dumps({"user_id": 5}),
        ),
        "no count for id field 'device_id'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_and_problem_and_leaves_no_complete_output(
    case, broken_copy, converted, tmp_path
):
    damage, message = BAD_INPUTS[case]
    out = str(tmp_path / "out")
    shutil.copytree(converted, out)  # an earlier complete conversion must stop looking complete
    path = damage(broken_copy)
    with pytest.raises(recflow.RecFlowError) as error:
        convert_small(broken_copy, out)
    assert path in str(error.value) and message in str(error.value)
    assert not os.path.exists(fmt.schema_path(out))
    with pytest.raises(FileNotFoundError, match="conversion did not finish"):
        load_schema_file(out)
    for name, data in tree(out).items():
        assert not name.endswith(".tmp")
        if name.startswith("2024-01-14") and name.endswith(convert_module.MANIFEST_FILE):
            assert json.loads(data)["complete"] is False or case in (
                "missing folder",
                "missing day",
                "id count missing",
            )


def test_killed_conversion_resumes(root, converted, tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    shutil.copytree(converted, out)
    day_dir = os.path.join(out, "2024-01-14")
    manifest_path = os.path.join(day_dir, convert_module.MANIFEST_FILE)
    # What a kill while writing 2024-01-14 leaves: no schema, an unfinished plan, a missing
    # shard and a half-written temporary file.
    os.remove(fmt.schema_path(out))
    with open(manifest_path) as file:
        manifest = json.load(file)
    manifest["complete"] = False
    with open(manifest_path, "w") as file:
        json.dump(manifest, file)
    os.remove(os.path.join(day_dir, "part-00000-of-00003.tfrecord.gz"))
    partial = os.path.join(day_dir, "part-00001-of-00003.tfrecord.gz")
    os.rename(partial, partial + ".tmp")
    _truncate(partial + ".tmp")

    summary = convert_small(root, out)
    assert summary.skipped_days == ["2024-01-13"]
    resumed, original = read_records(out), read_records(converted)
    assert resumed.keys() == original.keys()
    for request_id, record in resumed.items():
        for name, values in record.items():
            np.testing.assert_array_equal(values, original[request_id][name])
    assert not any(name.endswith(".tmp") for name in tree(out))
    with open(manifest_path) as file:
        assert json.load(file)["complete"] is True

    def not_loaded(*args):
        raise AssertionError("a complete day was read again")

    monkeypatch.setattr(convert_module, "load_day", not_loaded)
    assert convert_small(root, out).skipped_days == ["2024-01-13", "2024-01-14"]
    assert os.path.exists(fmt.schema_path(out))


def test_changed_inputs_are_converted_again(broken_copy, tmp_path):
    out = str(tmp_path / "out")
    convert_small(broken_copy, out)
    _remove_request(broken_copy, recflow.REQUEST_DICT_DIR)
    # The dict no longer holds a request of all_stage: the day must be read again, and fail.
    with pytest.raises(recflow.RecFlowError, match="missing from the dict"):
        convert_small(broken_copy, out)


def test_parallel_workers_write_the_same_records(root, converted, tmp_path):
    out = str(tmp_path / "out")
    convert_small(root, out, workers=2)
    parallel, serial = read_records(out), read_records(converted)
    assert parallel.keys() == serial.keys()
    for request_id, record in parallel.items():
        np.testing.assert_array_equal(record["items"], serial[request_id]["items"])


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        convert_module.main(["--help"])
    text = capsys.readouterr().out
    for flag in (
        "--recflow",
        "--data",
        "--days",
        "--workers",
        "--requests-per-shard",
        "--quiet",
    ):
        assert flag in text
