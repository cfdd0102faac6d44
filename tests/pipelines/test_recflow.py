"""RecFlow readers: every malformed file gives a RecFlowError that names it and the problem."""

import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.recflow import RecFlowError


def write_table(path: str, columns: dict, version: int = 2) -> str:
    feather.write_feather(pa.table(columns), path, version=version)
    return path


def write_pickle(path: str, value) -> str:
    with open(path, "wb") as file:
        pickle.dump(value, file)
    return path


def test_layout_helpers(tmp_path):
    root = str(tmp_path)
    with pytest.raises(RecFlowError, match="all_stage: missing folder"):
        recflow.list_days(root)
    os.makedirs(os.path.join(root, recflow.ALL_STAGE_DIR))
    for day in ("2024-01-14", "2024-01-13"):
        open(recflow.day_file(root, recflow.ALL_STAGE_DIR, day), "w").close()
    assert recflow.list_days(root) == ["2024-01-13", "2024-01-14"]
    assert recflow.day_file(root, recflow.REQUEST_DICT_DIR, "2024-01-13").endswith(
        "request_id_dict/2024-01-13.pkl"
    )
    recflow.require_day_files(root, [recflow.ALL_STAGE_DIR], ["2024-01-13"])
    with pytest.raises(RecFlowError, match=r"2024-01-15\.feather: missing day 2024-01-15"):
        recflow.require_day_files(root, [recflow.ALL_STAGE_DIR], ["2024-01-15"])


def test_feather_batches_are_read_and_checked(tmp_path):
    path = write_table(str(tmp_path / "day.feather"), {"request_id": [1, 2], "age": [3, 4]})
    batches = list(recflow.iter_feather_batches(path, ["age", "request_id"]))
    assert [batch["age"].tolist() for batch in batches] == [[3, 4]]
    legacy = write_table(str(tmp_path / "v1.feather"), {"request_id": [7]}, version=1)
    assert recflow.read_feather(legacy, ["request_id"])["request_id"].tolist() == [7]
    with pytest.raises(RecFlowError, match=r"day\.feather: no column 'user_id' \(columns present"):
        list(recflow.iter_feather_batches(path, ["user_id"]))
    wrong = write_table(str(tmp_path / "wrong.feather"), {"age": ["young"]})
    with pytest.raises(RecFlowError, match="column 'age' has dtype string, expected an integer"):
        list(recflow.iter_feather_batches(wrong, ["age"]))
    preference = write_table(str(tmp_path / "p.feather"), {recflow.TRUE_PREFERENCE: [1]})
    with pytest.raises(RecFlowError, match="expected a float"):
        list(recflow.iter_feather_batches(preference, [recflow.TRUE_PREFERENCE]))
    garbage = str(tmp_path / "garbage.feather")
    with open(garbage, "wb") as file:
        file.write(b"not arrow at all")
    with pytest.raises(RecFlowError, match=r"garbage\.feather: corrupt feather file"):
        list(recflow.iter_feather_batches(garbage, ["age"]))
    with pytest.raises(RecFlowError, match=r"absent\.feather: missing file"):
        list(recflow.iter_feather_batches(str(tmp_path / "absent.feather"), ["age"]))
    with pytest.raises(RecFlowError, match="not a RecFlow test file"):
        recflow.read_test_feather(str(tmp_path), "train.feather")


def test_pickles_are_checked(tmp_path):
    path = write_pickle(str(tmp_path / "ok.pkl"), {1: 2})
    assert recflow.read_pickle_dict(path) == {1: 2}
    with pytest.raises(RecFlowError, match=r"list\.pkl: expected a pickled dict, found list"):
        recflow.read_pickle_dict(write_pickle(str(tmp_path / "list.pkl"), [1]))
    corrupt = str(tmp_path / "corrupt.pkl")
    with open(corrupt, "wb") as file:
        file.write(pickle.dumps({1: 2})[:-3])
    with pytest.raises(RecFlowError, match=r"corrupt\.pkl: corrupt pickle"):
        recflow.read_pickle_dict(corrupt)
    with pytest.raises(RecFlowError, match="missing file"):
        recflow.read_pickle_dict(str(tmp_path / "absent.pkl"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"video_id": None}, "no count for id field 'video_id'"),
        ({"video_id": 0}, "count of 'video_id' is 0, expected a positive int"),
        ({"gender": True}, "count of 'gender' is True"),
        ({"age": 2.5}, "count of 'age' is 2.5"),
    ],
)
def test_id_counts_are_checked(tmp_path, change, message):
    counts = {field: 10 for field in recflow.ID_FIELDS} | change
    counts = {field: value for field, value in counts.items() if value is not None}
    os.makedirs(tmp_path / recflow.OTHERS_DIR)
    write_pickle(str(tmp_path / recflow.OTHERS_DIR / recflow.ID_COUNT_FILE), counts)
    with pytest.raises(RecFlowError, match=message):
        recflow.read_id_counts(str(tmp_path))


def test_sequences_are_stacked_and_checked():
    sequence = np.arange(500, dtype=np.int32).reshape(50, 10)
    stacked = recflow.stack_sequences({5: sequence, 6: sequence + 1}, [6, 5], "seq.pkl")
    assert stacked.dtype == np.int64
    np.testing.assert_array_equal(stacked, [sequence + 1, sequence])
    with pytest.raises(RecFlowError, match=r"seq\.pkl: 2 request ids missing from the dict"):
        recflow.stack_sequences({5: sequence}, [5, 7, 8], "seq.pkl")
    with pytest.raises(RecFlowError, match=r"sequence of request 5 is ndarray shape \(50, 9\)"):
        recflow.stack_sequences({5: sequence[:, :9]}, [5], "seq.pkl")
    with pytest.raises(RecFlowError, match="dtype float64, expected an integer array"):
        recflow.stack_sequences({5: sequence.astype(float)}, [5], "seq.pkl")
    assert recflow.stack_sequences({}, [], "seq.pkl").shape == (0, 50, 10)


def test_stage_items_are_stacked_and_checked():
    videos = np.arange(96).reshape(12, 8)
    entries = {1: {recflow.RANK_NEG: videos}, 2: {recflow.RANK_NEG: videos[:3]}, 3: {}}
    items = recflow.stack_stage_items(entries, [1, 2, 3], recflow.RANK_NEG, 10, "dict.pkl")
    assert items.counts.tolist() == [10, 3, 0]
    np.testing.assert_array_equal(items.values[0], videos[:10])
    np.testing.assert_array_equal(items.values[1, :3], videos[:3])
    assert not items.values[1, 3:].any() and not items.values[2].any()
    with pytest.raises(RecFlowError, match=r"dict\.pkl: 1 request ids missing from the dict"):
        recflow.stack_stage_items(entries, [4], recflow.RANK_NEG, 10, "dict.pkl")
    with pytest.raises(RecFlowError, match="entry of request 1 is list"):
        recflow.stack_stage_items({1: [videos]}, [1], recflow.RANK_NEG, 10, "dict.pkl")
    with pytest.raises(RecFlowError, match=r"rank_neg of request 1 is ndarray shape \(12, 7\)"):
        recflow.stack_stage_items(
            {1: {recflow.RANK_NEG: videos[:, :7]}}, [1], recflow.RANK_NEG, 10, "dict.pkl"
        )
