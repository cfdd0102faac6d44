"""The simulator writes RecFlow's exact layout, consistently, deterministically, atomically."""

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.simulator import simulate, simulated_cascade
from dftopk_cascade.pipelines.simulator.simulated_history import BehaviourHistory

from tests.pipelines.recflow_fixtures import DAYS, REQUESTS_PER_DAY, simulate_small, tree


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return simulate_small(str(tmp_path_factory.mktemp("sim")))


@pytest.fixture(scope="module")
def first_day(root):
    day = recflow.list_days(root)[0]
    frame = pd.read_feather(recflow.day_file(root, recflow.ALL_STAGE_DIR, day))
    with open(recflow.day_file(root, recflow.SEQUENCE_DIR, day), "rb") as file:
        sequences = pickle.load(file)
    with open(recflow.day_file(root, recflow.REQUEST_DICT_DIR, day), "rb") as file:
        candidates = pickle.load(file)
    return day, frame, sequences, candidates


def test_layout_and_columns(root):
    days = recflow.list_days(root)
    assert days == ["2024-01-13", "2024-01-14"]
    recflow.require_day_files(
        root,
        [
            recflow.ALL_STAGE_DIR,
            recflow.REALSHOW_DIR,
            recflow.SEQUENCE_DIR,
            recflow.REQUEST_DICT_DIR,
        ],
        days,
    )
    for name in recflow.TEST_FILES:
        assert len(recflow.read_test_feather(root, name)) > 0
    frame = pd.read_feather(recflow.day_file(root, recflow.ALL_STAGE_DIR, days[0]))
    assert list(frame.columns) == list(recflow.ALL_STAGE_DTYPES)
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == recflow.ALL_STAGE_DTYPES
    counts = recflow.read_id_counts(root)
    for field in recflow.ID_FIELDS:
        assert frame[field].between(0, counts[field] - 1).all(), field
    assert not [name for name in tree(root) if name.endswith(".tmp")]


def test_stage_flags_follow_the_cascade(first_day):
    _, frame, _, _ = first_day
    per_request = frame.groupby(recflow.REQUEST_ID)
    assert (per_request[recflow.RANK_POS].sum() == 10).all()
    assert (per_request[recflow.REALSHOW].sum() >= 1).all()
    rank_pos = frame[frame[recflow.RANK_POS] == 1]
    assert rank_pos[recflow.RANK_INDEX].between(0, 9).all()
    rank_neg = frame[frame[recflow.RANK_NEG] == 1]
    assert (rank_neg[recflow.RANK_INDEX] >= 10).all()
    shown = frame[frame[recflow.REALSHOW] == 1]
    assert (shown[recflow.RERANK_POS] == 1).all() and (shown[recflow.RANK_INDEX] >= 0).all()
    unshown = frame[frame[recflow.REALSHOW] == 0]
    assert (unshown[list(recflow.FEEDBACK_COLUMNS)] == 0).all().all()
    groups = frame[[recflow.RANK_POS, recflow.RANK_NEG, recflow.COARSE_NEG, recflow.PRERANK_NEG]]
    assert (groups.sum(axis=1) == 1).all()
    assert not frame.duplicated([recflow.REQUEST_ID, recflow.VIDEO_ID]).any()


def test_true_preference_drives_the_stages(first_day):
    _, frame, _, _ = first_day
    means = [
        frame.loc[frame[stage] == 1, recflow.TRUE_PREFERENCE].mean()
        for stage in (recflow.RANK_POS, recflow.RANK_NEG, recflow.COARSE_NEG, recflow.PRERANK_NEG)
    ]
    assert means == sorted(means, reverse=True)
    assert means[0] - means[-1] > 0.2
    ranked = frame[frame[recflow.RANK_INDEX] >= 0]
    correlation = ranked[[recflow.RANK_INDEX, recflow.TRUE_PREFERENCE]].corr(method="spearman")
    assert correlation.iloc[0, 1] < -0.2


def test_request_dict_matches_all_stage(first_day):
    _, frame, _, candidates = first_day
    assert set(candidates) == set(frame[recflow.REQUEST_ID])
    request_id = int(frame[recflow.REQUEST_ID].iloc[0])
    rows = frame[frame[recflow.REQUEST_ID] == request_id]
    for stage in recflow.STAGE_FLAGS:
        expected = rows.loc[rows[stage] == 1, list(recflow.STAGE_ITEM_COLUMNS)].to_numpy()
        assert candidates[request_id][stage].tolist() == expected.tolist(), stage


def test_sequences_are_earlier_effective_views(root):
    first, second = recflow.list_days(root)
    with open(recflow.day_file(root, recflow.SEQUENCE_DIR, second), "rb") as file:
        sequences = pickle.load(file)
    frame = pd.concat(
        [
            pd.read_feather(recflow.day_file(root, recflow.ALL_STAGE_DIR, day))
            for day in (first, second)
        ]
    )
    request_time = dict(
        zip(frame[recflow.REQUEST_ID], frame[recflow.REQUEST_TIMESTAMP], strict=False)
    )
    viewed = frame[frame[recflow.EFFECTIVE_VIEW] == 1]
    viewed_keys = set(zip(viewed[recflow.REQUEST_ID], viewed[recflow.VIDEO_ID], strict=True))
    request_column = recflow.SEQUENCE_COLUMNS.index(recflow.REQUEST_ID)
    video_column = recflow.SEQUENCE_COLUMNS.index(recflow.VIDEO_ID)
    time_column = recflow.SEQUENCE_COLUMNS.index(recflow.REQUEST_TIMESTAMP)
    from_dataset = 0
    for request_id, sequence in sequences.items():
        real = sequence[:, time_column] > 0
        assert (real[np.argmax(real) :]).all(), "left-padded: real rows are the last ones"
        assert (np.diff(sequence[real, time_column]) >= 0).all(), "oldest first"
        for row in sequence[real]:
            if row[request_column] != 0:  # 0: warm-start behaviour from before the dataset
                assert (row[request_column], row[video_column]) in viewed_keys
                assert row[time_column] < request_time[request_id], "only earlier behaviour"
                from_dataset += 1
    assert from_dataset > 0


def test_features_carry_the_preference_signal(first_day):
    """Candidates whose category the user's sequence holds are preferred (a learnable signal)."""
    _, frame, sequences, _ = first_day
    category_column = recflow.SEQUENCE_COLUMNS.index(recflow.CATEGORY_LEVEL_TWO)
    time_column = recflow.SEQUENCE_COLUMNS.index(recflow.REQUEST_TIMESTAMP)
    seen = [
        category
        in set(sequences[request][sequences[request][:, time_column] > 0, category_column].tolist())
        for request, category in zip(
            frame[recflow.REQUEST_ID], frame[recflow.CATEGORY_LEVEL_TWO], strict=True
        )
    ]
    frame = frame.assign(seen=seen)
    preference = frame.groupby("seen")[recflow.TRUE_PREFERENCE].mean()
    assert preference[True] > preference[False] + 0.05


def test_same_seed_same_files_other_seed_other_files(root, tmp_path):
    again = simulate_small(str(tmp_path / "again"))
    assert tree(again) == tree(root)
    other = simulate_small(str(tmp_path / "other"), seed=4)
    assert tree(other) != tree(root)


def test_interrupted_run_leaves_no_complete_looking_output(tmp_path, monkeypatch):
    calls = []

    def failing_cascade(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    original = simulated_cascade.run_cascade
    monkeypatch.setattr(simulate, "run_cascade", failing_cascade)
    root = str(tmp_path / "sim")
    with pytest.raises(RuntimeError, match="killed"):
        simulate_small(root)
    files = tree(root)
    assert not any(name.endswith(".tmp") for name in files)
    assert os.path.join(recflow.OTHERS_DIR, recflow.ID_COUNT_FILE) not in files
    assert os.path.join(recflow.ALL_STAGE_DIR, "2024-01-13.feather") in files
    assert os.path.join(recflow.ALL_STAGE_DIR, "2024-01-14.feather") not in files


def test_scale_and_arguments():
    summary_days = simulate.day_names("2024-02-28", 3)
    assert summary_days == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert DAYS * REQUESTS_PER_DAY == 240
    with pytest.raises(ValueError, match="must be >= 1"):
        simulate.simulate("/nonexistent", days=0, requests_per_day=10, seed=0)


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        simulate.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--recflow",
        "--days",
        "--requests-per-day",
        "--seed",
        "--start-day",
        "--users",
        "--items",
        "--chunk-size",
        "--quiet",
    ):
        assert flag in text


def test_history_keeps_each_users_last_50_rows_in_order():
    rng = np.random.default_rng(0)
    history = BehaviourHistory(users=4)
    expected = {user: [] for user in range(4)}
    for _ in range(3):
        users = rng.integers(0, 4, 70)
        rows = rng.integers(1, 1000, (70, len(recflow.SEQUENCE_COLUMNS)))
        history.append(users, rows)
        for user, row in zip(users.tolist(), rows.tolist(), strict=True):
            expected[user] = (expected[user] + [row])[-recflow.SEQUENCE_LENGTH :]
    for user, kept in expected.items():
        window = history.sequences(np.array([user]))[0]
        padding = recflow.SEQUENCE_LENGTH - len(kept)
        assert not window[:padding].any()
        assert window[padding:].tolist() == kept
