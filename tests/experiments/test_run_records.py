"""experiments.run_records: the committed comparison records load under the one key, and keys
with days round-trip through a record."""

import json
import os
import subprocess

import pytest

from experiments import run_records
from experiments.run_records import RunKey, git_commit, read_records, stale_records, write_record

COMMITTED = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "results")
COMPARISON = os.path.join(COMMITTED, "method_comparison")


def test_every_committed_comparison_record_loads_under_its_file_name() -> None:
    records = read_records(COMPARISON)
    names = sorted(name[:-5] for name in os.listdir(os.path.join(COMPARISON, "runs")))
    assert sorted(records) == names and len(names) > 80
    assert stale_records(records) == []


def test_a_key_with_days_round_trips_through_its_record(tmp_path) -> None:
    key = RunKey("bce", "normal", 0.5, 40, 2, train_days=("d1", "d2"), eval_days=("d3",))
    write_record(str(tmp_path), key, {"test": {"joint_recall": 0.25}})
    with open(tmp_path / "runs" / f"{key.name()}.json") as file:
        stored = json.load(file)
    assert stored["key"]["train_days"] == ["d1", "d2"]
    assert RunKey.from_dict(stored["key"]) == key
    assert read_records(str(tmp_path))[key.name()]["test"] == {"joint_recall": 0.25}


def test_a_key_without_days_keeps_the_comparison_s_run_names() -> None:
    key = RunKey("dftopk", "uniform", 0.1, 0, 1)
    assert key.name() == "dftopk-uniform-t0.1-neg0-seed1"
    assert "train_days" not in key.to_dict()
    assert RunKey.from_dict(key.to_dict()) == key


def test_a_step_budget_and_a_dataset_round_trip_and_rename_the_run(tmp_path) -> None:
    key = RunKey("dftopk", "uniform", 0.1, 0, 1, steps=5400, dataset="movielens")
    assert key.name() == "dftopk-uniform-t0.1-neg0-seed1-steps5400-data_movielens"
    write_record(str(tmp_path), key, {"test": {"joint_recall": 0.5}})
    stored = read_records(str(tmp_path))[key.name()]
    assert stored["key"]["steps"] == 5400 and stored["key"]["dataset"] == "movielens"
    assert RunKey.from_dict(stored["key"]) == key


def test_the_pre_ranking_attention_round_trips_and_renames_the_run(tmp_path) -> None:
    key = RunKey("lapsum", "uniform", 0.01, 0, 0, steps=5400, prerank_attention="din")
    assert key.name() == "lapsum-uniform-t0.01-neg0-seed0-steps5400-attention_din"
    write_record(str(tmp_path), key, {"test": {}})
    assert RunKey.from_dict(read_records(str(tmp_path))[key.name()]["key"]) == key
    assert "prerank_attention" not in RunKey("lapsum").to_dict()


@pytest.fixture
def fresh_git_commit():
    git_commit.cache_clear()
    yield
    git_commit.cache_clear()


def test_a_record_names_the_code_s_commit_not_a_results_commit_made_while_it_trained(
    tmp_path, monkeypatch, fresh_git_commit
) -> None:
    heads = iter(["code-commit", "results-commit"])
    monkeypatch.setattr(
        run_records.subprocess,
        "run",
        lambda *args, **kwargs: subprocess.CompletedProcess(args, 0, next(heads) + "\n", ""),
    )
    git_commit()  # the runner asks when it starts training
    record = write_record(str(tmp_path), RunKey("bce"), {"test": {}})
    assert record["commit"] == "code-commit"
