"""The TFRS anchor on the tiny MovieLens fixture: fields, splits, a resumable run, clear errors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.command_line.entry import run_command

import dftopk_tf
from experiments.run_records import read_records
from experiments.tfrs_anchor import (
    TEMPERATURE_LIMITS,
    LossChoice,
    best_temperature,
    held_out_dir,
    main,
    reported_splits,
    sweep_dir,
)
from experiments.tfrs_anchor_data import (
    movie_titles,
    random_split,
    temporal_split,
    tutorial_ratings,
)
from tests.pipelines.movielens_fixture import fixture_tables, fixture_wheel


def test_ratings_carry_the_tutorial_fields() -> None:
    tables = fixture_tables()
    ratings = tutorial_ratings(tables)
    assert len(ratings) == len(tables.ratings)
    first = tables.ratings.iloc[0]
    movie = tables.movies.set_index("item_id").loc[first["item_id"]]
    assert ratings.loc[0, "user_id"] == str(first["user_id"])
    assert ratings.loc[0, "movie_title"] == f"{movie['movie_title']} ({movie['release_year']})"
    # The movie without a year keeps its bare title.
    assert movie_titles(tables).loc[60] == "unknown"


@pytest.mark.parametrize("method", ["dftopk", "lapsum"])
def test_operator_losses_sum_over_rows_like_the_tasks_default(method: str) -> None:
    # tfrs.tasks.Retrieval's default loss sums over rows; the operators must too, or the
    # tutorial's Adagrad steps shrink by the batch size.
    scores = tf.random.stateless_normal([6, 6], seed=[1, 2])
    labels = tf.eye(6)
    per_row = dftopk_tf.get_loss(method, k=1, tau=0.3, reduction="none")(labels, scores)
    summed = LossChoice(method, 0.3).loss()(labels, scores)
    np.testing.assert_allclose(summed.numpy(), tf.reduce_sum(per_row).numpy(), rtol=1e-6)


def test_random_split_is_the_seeded_80_20_partition() -> None:
    ratings = tutorial_ratings(fixture_tables()).assign(row=lambda f: np.arange(len(f)))
    train, test = random_split(ratings)
    again, _ = random_split(ratings)
    assert len(train) == round(0.8 * len(ratings))
    assert sorted(train["row"].tolist() + test["row"].tolist()) == list(range(len(ratings)))
    assert train["row"].tolist() == again["row"].tolist()
    assert train["row"].tolist() != sorted(train["row"].tolist())


def test_temporal_split_holds_out_each_users_latest_fifth() -> None:
    ratings = tutorial_ratings(fixture_tables())
    train, test = temporal_split(ratings)
    assert len(train) + len(test) == len(ratings)
    for user, rows in ratings.groupby("user_id"):
        held = test[test["user_id"] == user]
        kept = train[train["user_id"] == user]
        assert len(held) == max(1, int(np.floor(0.2 * len(rows))))
        assert kept["timestamp"].max() <= held["timestamp"].min()


def test_a_run_writes_records_and_report_and_resumes(tmp_path) -> None:
    wheel, digest = fixture_wheel(str(tmp_path))
    results = str(tmp_path / "results")
    argv = ["--wheel", wheel, "--expected-sha256", digest, "--results", results]
    argv += ["--splits", "temporal", "--methods", "tfrs", "dftopk", "--seeds", "1"]
    argv += ["--epochs", "1", "--train-batch", "64", "--test-batch", "64"]
    main(argv)
    tested = read_records(held_out_dir(results, "temporal"))
    swept = read_records(sweep_dir(results, "temporal"))
    assert sorted(r["key"]["method"] for r in tested.values()) == ["dftopk", "tfrs"]
    # The grid, extended past whichever end held the best until the best is inside it (or at
    # a limit).
    temperatures = sorted(r["key"]["temperature"] for r in swept.values())
    assert {0.03, 0.1, 0.3} <= set(temperatures)
    best = best_temperature(swept, "dftopk")
    assert best not in (temperatures[0], temperatures[-1]) or best in TEMPERATURE_LIMITS
    for record in tested.values():
        test = record["test"]
        assert 0.0 <= test["top_10"] <= test["top_50"] <= test["top_100"] <= 1.0
        assert record["epochs"] == 1 and record["batch_size"] == 64
    report = open(os.path.join(results, "report.md")).read()
    assert report.startswith("# TFRS basic retrieval tutorial")
    assert "python -m experiments.tfrs_anchor" in report
    assert os.path.getsize(os.path.join(results, "top_k.png")) > 0
    finished = {name: r["finished"] for name, r in tested.items()}
    stamps = {
        name: os.path.getmtime(
            os.path.join(held_out_dir(results, "temporal"), "runs", name + ".json")
        )
        for name in finished
    }
    main(argv)
    for name in finished:
        path = os.path.join(held_out_dir(results, "temporal"), "runs", name + ".json")
        assert os.path.getmtime(path) == stamps[name]
        assert json.load(open(path))["finished"] == finished[name]


def test_a_report_keeps_the_splits_another_process_ran(tmp_path) -> None:
    wheel, digest = fixture_wheel(str(tmp_path))
    results = str(tmp_path / "results")
    argv = ["--wheel", wheel, "--expected-sha256", digest, "--results", results, "--seeds", "1"]
    argv += ["--methods", "tfrs", "--epochs", "1", "--train-batch", "64", "--test-batch", "64"]
    main([*argv, "--splits", "random"])
    main([*argv, "--splits", "temporal"])
    assert reported_splits(results, ["temporal"]) == ["random", "temporal"]
    rows = open(os.path.join(results, "main.csv")).read().splitlines()[1:]
    assert sorted({row.split(",")[0] for row in rows}) == ["random", "temporal"]
    assert "--splits random temporal" in open(os.path.join(results, "report.md")).read()


def test_a_damaged_wheel_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    wheel.write_bytes(b"not a wheel")
    with pytest.raises(SystemExit) as exit_info:
        run_command(main, "python -m experiments.tfrs_anchor", ["--wheel", str(wheel)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("python -m experiments.tfrs_anchor: error: ")
    assert "sha256" in error and "\n" not in error
