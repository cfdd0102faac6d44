"""The method comparison's plan, its resumability, the mapped temperatures and the report."""

import csv
import dataclasses
import json
import os
import subprocess

import numpy as np
import pytest
from dftopk_cascade.models.contract import zero_features
from dftopk_cascade.models.protocol import PROTOCOL_VERSION
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow

from experiments import comparison_report, learning_curves, method_comparison
from experiments.method_comparison import SIZES, planned_runs, sweep_temperatures
from experiments.run_records import RunKey
from experiments.temperature_scale import ScoreSpread, mapped_temperature, official_start_spread

MAPPED = {
    "uniform": {method: 1.0 for method in method_comparison.METHOD_GROUPS[0]},
    "normal": {method: 200.0 for method in method_comparison.METHOD_GROUPS[0]},
}


def comparison_results(tmp_path, records: dict[str, dict] | None = None):
    """A results folder holding the mapped temperatures and ``records`` as its run records."""
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    (results / "temperature_scale.json").write_text(json.dumps({"mapped": MAPPED}))
    for name, value in (records or {}).items():
        (results / "runs" / f"{name}.json").write_text(json.dumps(value))
    return results


def record(key: RunKey, validation: float, test: float) -> dict:
    return {
        "key": dataclasses.asdict(key),
        "validation": {"joint_recall": validation},
        "test": {metric: test for metric in comparison_report.REPORTED_METRICS},
        "train_seconds": 100.0,
        "train_steps": 1000,
        "train_days": ["d1"],
        "batch_size": 1024,
        "validation_day": "d2",
        "test_day": "d3",
        "evaluated_requests": 1024,
        "protocol_version": PROTOCOL_VERSION,
    }


def sweep_records(
    method: str, best: float, negatives: int = 0, mapped: dict = MAPPED
) -> dict[str, dict]:
    grid = sweep_temperatures(method, mapped["uniform"][method])
    return {
        RunKey(method, "uniform", t, negatives, 0).name(): record(
            RunKey(method, "uniform", t, negatives, 0), 0.5 if t == best else 0.4, 0.45
        )
        for t in grid
    }


def results_folder(tmp_path, records: dict[str, dict], mapped: dict = MAPPED):
    """A comparison's results folder: the score scale (``mapped``) and ``records`` as its runs."""
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    spreads = {
        name: {"retrieval": 1.0, "prerank": 1.0} for name in ("official", "uniform", "normal")
    }
    (results / "temperature_scale.json").write_text(
        json.dumps({"mapped": mapped, "spreads": spreads})
    )
    for name, value in records.items():
        (results / "runs" / f"{name}.json").write_text(json.dumps(value))
    return results


def test_the_sweep_has_four_values_spanning_100x_and_the_official_one() -> None:
    for method, official in [("dftopk", 48.4), ("bce", 0.0968), ("lcron-diffsort", 103.0)]:
        grid = sweep_temperatures(method, official)
        assert official in grid and len(grid) >= 4
        assert max(grid) / min(grid) >= 100


def test_seeds_and_the_init_study_are_planned_only_after_the_sweep() -> None:
    sizes = SIZES["paper"]
    first = planned_runs({}, sizes, MAPPED)
    assert {key.seed for key in first} == {0}
    assert {key.embedding_init for key in first} == {"uniform"}
    assert [key.method for key in first[:4]] == ["dftopk"] * 4  # the headline comes first

    records = sweep_records("dftopk", best=0.03)
    after = planned_runs(records, sizes, MAPPED)
    seeds = [key for key in after if key.method == "dftopk" and key.seed > 0]
    # The temperature tuned at 0 negatives serves the 40-negatives runs too (no second sweep).
    assert {(key.temperature, key.seed, key.negatives) for key in seeds} == {
        (0.03, 1, 0),
        (0.03, 2, 0),
        (0.03, 1, 40),
        (0.03, 2, 40),
    }
    assert RunKey("dftopk", "uniform", 0.03, 40, 0) in after
    assert not [key for key in after if key.negatives == 40 and key.method != "dftopk"]
    normal = [key for key in after if key.embedding_init == "normal"]
    # The official value at the normal start, and the best uniform temperature x 200 (scale).
    assert {key.temperature for key in normal} == {200.0, 6.0}


def test_finished_runs_are_not_run_again(tmp_path, monkeypatch, fake_processes) -> None:
    done = sweep_records("dftopk", best=0.1)
    results = comparison_results(tmp_path, done)
    monkeypatch.setattr(
        method_comparison, "prepare_data", lambda work, sizes, days=None: str(tmp_path)
    )
    # The fake run writes no record, so the driver would start the same run again: stop at 2.
    finished = method_comparison.run_comparison(str(results), str(tmp_path), max_runs=2)
    started = [json.loads(line[line.index("--one") + 1]) for line in fake_processes.started]
    assert [RunKey(**key).name() for key in started] == finished
    assert not set(finished) & set(done)
    # The tuned method's next seed comes before the next method's sweep.
    assert RunKey(**started[0]) == RunKey("dftopk", "uniform", 0.1, 0, 1)


def test_two_workers_train_two_different_runs_at_once(
    tmp_path, monkeypatch, fake_processes
) -> None:
    results = comparison_results(tmp_path, sweep_records("dftopk", best=0.1))
    monkeypatch.setattr(
        method_comparison, "prepare_data", lambda work, sizes, days=None: str(tmp_path)
    )
    fake_processes.polls = 3  # each run is still running when the other starts
    finished = method_comparison.run_comparison(str(results), str(tmp_path), max_runs=2, workers=2)
    keys = [
        RunKey.from_dict(json.loads(command[command.index("--one") + 1]))
        for command in fake_processes.started
    ]
    assert fake_processes.most_at_once == 2
    assert {key.seed for key in keys} == {1, 2} and sorted(finished) == sorted(
        key.name() for key in keys
    )


def test_a_failed_run_stops_new_starts_lets_the_other_finish_and_is_raised(
    tmp_path, monkeypatch, fake_processes
) -> None:
    results = comparison_results(tmp_path)
    monkeypatch.setattr(
        method_comparison, "prepare_data", lambda work, sizes, days=None: str(tmp_path)
    )
    fake_processes.polls = 2
    fake_processes.exit_statuses = {0: 1}
    with pytest.raises(subprocess.CalledProcessError, match=r"the run dftopk-uniform-t0\.01-"):
        method_comparison.run_comparison(str(results), str(tmp_path), max_runs=5, workers=2)
    assert len(fake_processes.started) == 2 and fake_processes.alive == 0


def test_records_scored_under_an_older_protocol_are_rescored_before_any_training(
    tmp_path, monkeypatch, fake_processes
) -> None:
    done = sweep_records("dftopk", best=0.1)
    stale = sorted(done)[:2]
    for name in stale:
        del done[name]["protocol_version"]  # scored before versions were saved: version 1
    results = comparison_results(tmp_path, done)
    monkeypatch.setattr(
        method_comparison, "prepare_data", lambda work, sizes, days=None: str(tmp_path)
    )
    method_comparison.run_comparison(str(results), str(tmp_path), max_runs=1)
    # The fake rescoring writes nothing, so the first stale record is the one started.
    assert fake_processes.started[0][-2:] == ["--rescore", stale[0]]


def test_a_method_s_seeds_follow_its_sweep_and_a_group_ends_before_the_next() -> None:
    mapped = {
        init: {method: 1.0 for group in method_comparison.METHOD_GROUPS for method in group}
        for init in ("uniform", "normal")
    }
    records = {}
    for method in method_comparison.METHOD_GROUPS[0] + ("lcron-softsort",):
        records |= sweep_records(method, best=0.1, mapped=mapped)
    plan = planned_runs(records, SIZES["paper"], mapped)
    position = {key: index for index, key in enumerate(plan)}

    def first(method: str, **fields) -> int:
        return min(
            position[key]
            for key in plan
            if key.method == method and all(getattr(key, f) == v for f, v in fields.items())
        )

    # SoftSort (swept) gets its seeds before LapSum's sweep starts.
    assert first("lcron-softsort", seed=2) < first("lapsum")
    # The headline pair's 40-negatives runs come before the next group's first run.
    assert first("lcron-neuralsort", negatives=40) < first("lcron-softsort", seed=1)
    assert max(position[k] for k in plan if k.negatives == 40 and k.method == "dftopk") < first(
        "lcron-softsort", seed=1
    )
    # A group's 40-negatives runs come after all its 0-negatives runs.
    group_one = set(method_comparison.METHOD_GROUPS[1])
    last_zero = max(position[k] for k in plan if k.method in group_one and k.negatives == 0)
    assert first("lcron-softsort", negatives=40) > last_zero


def test_a_tiny_run_writes_its_record_and_keeps_only_its_final_weights(
    tiny_comparison_data, tmp_path
) -> None:
    from dftopk_cascade.models.model_folder import ModelDir

    work, results = str(tmp_path / "work"), str(tmp_path / "results")
    key = RunKey("dftopk", "uniform", 0.1, 0, 0)
    data_dir = tiny_comparison_data
    record = method_comparison.train_one(key, data_dir, work, results, "tiny")
    assert record["train_steps"] >= SIZES["tiny"].steps_per_run()
    for day in ("validation", "test"):
        assert 0.0 <= record[day]["joint_recall"] <= 1.0
    assert method_comparison.read_records(results)[key.name()]["test"] == record["test"]
    layout = ModelDir(os.path.join(work, "models", key.name()))
    assert layout.has_weights()
    assert not os.path.exists(layout.checkpoints_dir)  # 1.3 GB a run at the paper's sizes
    # Rescoring an old record replaces its scores from the saved model and keeps the old ones.
    path = os.path.join(results, "runs", key.name() + ".json")
    with open(path) as file:
        old = json.load(file)
    old["test"]["joint_recall"] = 0.999
    del old["protocol_version"]
    with open(path, "w") as file:
        json.dump(old, file)
    rescored = method_comparison.rescore_one(key.name(), data_dir, work, results, "tiny")
    assert rescored["protocol_version"] == PROTOCOL_VERSION
    assert rescored["test"] == record["test"]
    assert rescored["rescored"]["previous"]["test"]["joint_recall"] == 0.999
    assert rescored["train_seconds"] == record["train_seconds"]
    assert method_comparison.stale_records(method_comparison.read_records(results)) == []


def test_the_mapped_temperature_follows_the_score_scale() -> None:
    ours, official = ScoreSpread(0.002, 0.008), ScoreSpread(0.05, 0.02)
    ratio = np.sqrt(0.002 * 0.008) / np.sqrt(0.05 * 0.02)
    assert mapped_temperature("dftopk", ours, official) == pytest.approx(500 * ratio)
    assert mapped_temperature("lcron-diffsort", ours, official) == pytest.approx(10 / ratio)


def test_the_official_start_spread_grows_with_distinct_items() -> None:
    sizes = fmt.vocab_sizes(dict.fromkeys(recflow.ID_FIELDS, 50))
    batch = {name: np.asarray(value) for name, value in zero_features(8).items()}
    random = np.random.default_rng(0)
    batch["item_mask"] = np.ones(batch["item_mask"].shape, bool)
    same = official_start_spread(
        batch | {"items": np.ones_like(batch["items"])}, sizes, fmt.COLUMNS
    )
    distinct = official_start_spread(
        batch | {"items": random.integers(1, 49, batch["items"].shape)}, sizes, fmt.COLUMNS
    )
    assert same.retrieval == pytest.approx(0.0, abs=1e-6)  # identical items: identical scores
    assert distinct.retrieval > 0 and distinct.prerank > 0


def test_the_report_pairs_seeds_against_dftopk(tmp_path) -> None:
    records = sweep_records("dftopk", best=0.03) | sweep_records("lcron-neuralsort", best=0.1)
    for seed, (ours, theirs) in enumerate([(0.50, 0.48), (0.52, 0.53), (0.51, 0.47)]):
        for method, temperature, value in [
            ("dftopk", 0.03, ours),
            ("lcron-neuralsort", 0.1, theirs),
        ]:
            key = RunKey(method, "uniform", temperature, 0, seed)
            records[key.name()] = record(key, 0.5 if seed == 0 else 0.0, value)
    # Two runs scored again: one whose scores moved (a tied scorer), one whose did not.
    moved, kept = RunKey("dftopk", "uniform", 0.03, 0, 1).name(), sorted(records)[0]
    for name, before in ((moved, 0.9), (kept, records[kept]["test"]["joint_recall"])):
        previous = {"validation": records[name]["validation"], "test": {"joint_recall": before}}
        records[name]["rescored"] = {"previous": previous}
    results = results_folder(tmp_path, records)
    text = comparison_report.write_report(str(results))
    assert "2 runs were scored again" in text and "in 1 of them:" in text
    assert "runs planned so far are done" in text  # the 40-negatives runs are still to run
    assert comparison_report.rescoring_rows(records) == [[moved, 0.0, 0.0, 0.9, 0.52, 0.38]]
    rows = {
        row[0]: row
        for row in comparison_report.main_rows(
            method_comparison.read_records(str(results)), MAPPED["uniform"], 0, (0, 1, 2)
        )
    }
    assert rows["dftopk"][1] == 0.03 and rows["dftopk"][2] == 3
    # neuralsort - dftopk per seed: -0.02, +0.01, -0.04 -> mean -0.0167, std 0.0252; one above.
    paired = comparison_report.MAIN_COLUMNS.index("paired Δ joint recall vs dftopk")
    assert rows["lcron-neuralsort"][paired] == "-0.0167 ± 0.0252 (n=3, higher on 1)"
    assert "## 0 in-batch training negatives" in text
    assert (
        "dftopk better than lcron-neuralsort, 0 training negatives: not shown "
        "(lcron-neuralsort higher on 1 of 3 paired seeds)"
    ) in text
    assert os.path.isfile(results / "main_neg0.png") and os.path.isfile(results / "sweep_neg0.png")


def test_a_best_temperature_on_the_grid_end_extends_the_sweep() -> None:
    # lcron-neuralsort's recall grows with the temperature up to the grid's top (1.0 here).
    grid = sweep_temperatures("lcron-neuralsort", MAPPED["uniform"]["lcron-neuralsort"])
    values = {t: 0.1 + t / 10 for t in grid}
    records = {
        RunKey("lcron-neuralsort", "uniform", t, 0, 0).name(): record(
            RunKey("lcron-neuralsort", "uniform", t, 0, 0), v, v
        )
        for t, v in values.items()
    }
    planned = planned_runs(records, SIZES["paper"], MAPPED)
    extension = RunKey("lcron-neuralsort", "uniform", 3.16, 0, 0)
    assert extension in planned  # 1.0 x sqrt(10), before any seed of lcron-neuralsort
    assert not [k for k in planned if k.method == "lcron-neuralsort" and k.seed > 0]
    # Once the extension is worse, the best is interior and the seeds follow at 1.0.
    records[extension.name()] = record(extension, 0.15, 0.15)
    seeds = [
        k
        for k in planned_runs(records, SIZES["paper"], MAPPED)
        if k.method == "lcron-neuralsort" and k.seed > 0 and k.negatives == 0
    ]
    assert {(k.temperature, k.seed) for k in seeds} == {(1.0, 1), (1.0, 2)}


def test_a_sweep_extends_up_to_its_cap_and_its_table_names_a_best_left_at_the_end() -> None:
    # Recall grows with the temperature without bound: each extension becomes the new best.
    base = sweep_temperatures("lcron-neuralsort", MAPPED["uniform"]["lcron-neuralsort"])
    grid: tuple[float, ...] = ()
    records: dict[str, dict] = {}
    while (
        extended := method_comparison.tuned_grid(records, "lcron-neuralsort", "uniform", 0, base)
    ) != grid:
        grid = extended
        for t in grid:
            key = RunKey("lcron-neuralsort", "uniform", t, 0, 0)
            records.setdefault(key.name(), record(key, t / (1 + t), 0.3))
    cap = method_comparison.EXTENSIONS_PER_SIDE
    assert len(grid) == len(base) + cap
    assert grid[-1] == pytest.approx(max(base) * 10 ** (cap / 2), rel=0.01)
    rows = comparison_report.sweep_rows(records, MAPPED["uniform"], 0)
    notes = {row[1]: row[2] for row in rows if row[0] == "lcron-neuralsort"}
    assert notes[grid[-1]] == "best at the grid's end"
    assert notes[MAPPED["uniform"]["lcron-neuralsort"]] == "official, mapped"


def test_a_step_budget_plans_its_own_runs_on_more_simulated_days(
    tmp_path, monkeypatch, fake_processes
) -> None:
    results = comparison_results(tmp_path, sweep_records("dftopk", best=0.1))  # one-pass sweep
    simulated = []
    monkeypatch.setattr(
        method_comparison,
        "prepare_data",
        lambda work, sizes, days=None: simulated.append(days) or str(tmp_path),
    )
    length = method_comparison.RunLength(steps=5400)
    method_comparison.run_comparison(str(results), str(tmp_path), max_runs=1, length=length)
    # 5,500 steps (whole 500-step curve intervals) x 1,024 requests: 38 fresh days + 2 held out.
    assert simulated == [40]
    command = fake_processes.started[0]
    assert command[command.index("--steps") + 1] == "5400" and "--curve-every" not in command
    # No second sweep: the budget trains every seed at the one-pass sweep's best temperature.
    key = RunKey.from_dict(json.loads(command[command.index("--one") + 1]))
    assert key == RunKey("dftopk", "uniform", 0.1, 0, 0, steps=5400)


def test_a_step_budget_plans_the_seeds_of_the_one_pass_best_and_nothing_else() -> None:
    mapped = {"uniform": dict(MAPPED["uniform"], bce=1.0)}
    records = sweep_records("dftopk", best=0.1) | sweep_records("lcron-neuralsort", best=0.03)
    records |= sweep_records("bce", best=1.0, mapped=mapped)  # not a budget method
    variant = method_comparison.RunVariant(steps=5400)
    planned = method_comparison.planned_runs(records, SIZES["paper"], mapped, variant)
    assert {(k.method, k.temperature, k.steps) for k in planned} == {
        ("dftopk", 0.1, 5400),
        ("lcron-neuralsort", 0.03, 5400),
    }
    assert sorted(k.seed for k in planned if k.method == "dftopk") == list(SIZES["paper"].seeds)
    assert {k.negatives for k in planned} == {SIZES["paper"].negatives[0]}


def test_a_step_budget_trains_dftopk_and_softsort_first_within_each_seed() -> None:
    mapped = {"uniform": dict.fromkeys(["dftopk", "lcron-softsort", "lapsum"], 1.0)}
    records = {}
    for method in ("lapsum", "lcron-softsort", "dftopk"):  # the best: inside the grid
        best = sweep_temperatures(method, 1.0)[2]
        records |= sweep_records(method, best=best, mapped=mapped)
    variant = method_comparison.RunVariant(steps=5400)
    planned = method_comparison.planned_runs(records, SIZES["paper"], mapped, variant)
    assert [(k.method, k.seed) for k in planned[:4]] == [
        ("dftopk", 0),
        ("lcron-softsort", 0),
        ("lapsum", 0),
        ("dftopk", 1),
    ]


def test_din_attention_at_a_step_budget_plans_one_seed_per_method_and_passes_its_flag(
    tmp_path, monkeypatch, fake_processes
) -> None:
    records = sweep_records("dftopk", best=0.1) | sweep_records("lcron-neuralsort", best=0.03)
    results = comparison_results(tmp_path, records)  # the one-pass (bilinear) sweeps, done
    variant = method_comparison.RunVariant(steps=5400, prerank_attention="din")
    planned = method_comparison.planned_runs(records, SIZES["paper"], MAPPED, variant)
    assert {(k.method, k.temperature, k.seed, k.prerank_attention) for k in planned} == {
        ("dftopk", 0.1, 0, "din"),
        ("lcron-neuralsort", 0.03, 0, "din"),
    }
    monkeypatch.setattr(method_comparison, "prepare_data", lambda *args: str(tmp_path))
    length = method_comparison.RunLength(steps=5400, prerank_attention="din")
    method_comparison.run_comparison(str(results), str(tmp_path), max_runs=1, length=length)
    command = fake_processes.started[0]
    assert command[command.index("--prerank-attention") + 1] == "din"
    key = RunKey.from_dict(json.loads(command[command.index("--one") + 1]))
    assert key.name() == "dftopk-uniform-t0.1-neg0-seed0-steps5400-attention_din"


def test_an_unknown_attention_is_refused_by_the_command_line() -> None:
    with pytest.raises(SystemExit):
        method_comparison.main(["--results", "r", "--work-dir", "w", "--prerank-attention", "x"])


def test_a_given_dataset_names_its_runs_and_keeps_its_own_temperatures(
    tmp_path, monkeypatch, fake_processes
) -> None:
    results, data = tmp_path / "results", tmp_path / "ml"
    results.mkdir()
    data.mkdir()
    (data / "movielens.json").write_text(json.dumps({"splits": {}}))
    (results / "temperature_scale_movielens.json").write_text(json.dumps({"mapped": MAPPED}))
    monkeypatch.setattr(method_comparison, "prepare_data", lambda *args: pytest.fail("simulated"))
    length = method_comparison.RunLength(data_dir=str(data))
    method_comparison.run_comparison(str(results), str(tmp_path), max_runs=1, length=length)
    command = fake_processes.started[0]
    assert command[command.index("--data") + 1] == str(data)
    key = RunKey.from_dict(json.loads(command[command.index("--one") + 1]))
    assert key.name() == "dftopk-uniform-t0.01-neg0-seed0-data_movielens"


def test_the_step_budget_report_ends_with_learning_curves_and_paired_differences(
    tmp_path,
) -> None:
    # The one-pass sweeps tune the budget's runs: each trains at its method's one-pass best.
    records = sweep_records("dftopk", best=0.1) | sweep_records("lcron-neuralsort", best=0.1)
    curves = {  # seed: (dftopk's curve, lcron-neuralsort's curve); the last point is the test's
        0: ([0.30, 0.40, 0.50], [0.35, 0.45, 0.48]),
        1: ([0.32, 0.42, 0.52], [0.31, 0.44, 0.53]),
    }
    for seed, by_method in curves.items():
        for method, values in zip(("dftopk", "lcron-neuralsort"), by_method, strict=True):
            key = RunKey(method, "uniform", 0.1, 0, seed, steps=1500)
            records[key.name()] = record(key, values[-1], values[-1]) | {
                "key": key.to_dict(),
                "curve": [[500 * (i + 1), v] for i, v in enumerate(values)],
                "curve_every": 500,
                "train_steps": 1500,
            }
    results = results_folder(tmp_path, records)

    variant = method_comparison.RunVariant(steps=1500)
    text = comparison_report.write_report(str(results), "tiny", variant)
    folder = results / "steps1500"
    assert "--sizes tiny --steps 1500`" in text
    assert text.index("## Learning curves") < text.index("## Paired test differences")
    with open(folder / "learning_curves.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(folder / "learning_curves.csv") as file:
        rows = list(csv.DictReader(file))
    first = [row for row in rows if row["method"] == "lcron-neuralsort" and row["step"] == "500"]
    assert float(first[0]["mean validation joint recall"]) == pytest.approx(0.33)
    assert (float(first[0]["min"]), float(first[0]["max"])) == (0.31, 0.35)
    with open(folder / "learning_curves_paired.csv") as file:
        paired = {row["method"]: row for row in csv.DictReader(file)}
    # lcron-neuralsort - dftopk per seed: -0.02, +0.01 -> mean -0.005, std 0.0212.
    differences = [0.48 - 0.50, 0.53 - 0.52]
    expected = f"{np.mean(differences):.4f} ± {np.std(differences, ddof=1):.4f}"
    assert paired["lcron-neuralsort"][PAIRED_DELTA] == expected
    assert paired["lcron-neuralsort"]["higher than dftopk on"] == "1 of 2"
    # The ordering flips along the curve: lcron-neuralsort leads at 500 steps, dftopk at 1,500.
    assert text.index("## Does the ordering change") < text.index("## Paired test differences")
    with open(folder / "learning_curves_ordering.csv") as file:
        ordering = {row["step"]: list(row.values()) for row in csv.DictReader(file)}
    assert ordering["500"][1:] == [
        "lcron-neuralsort > dftopk",
        "lcron-neuralsort +0.0200 ± 0.0424 (1 of 2)",
    ]
    assert ordering["1500"][1:] == [
        "dftopk > lcron-neuralsort",
        "lcron-neuralsort -0.0050 ± 0.0212 (1 of 2)",
    ]
    # The main table holds the budget's runs (not the one-pass seed 0) at the one-pass best.
    with open(folder / "main_neg0.csv") as file:
        main = {row["method"]: row for row in csv.DictReader(file)}
    assert main["dftopk"]["best temperature"] == "0.1" and main["dftopk"]["seeds"] == "2"
    assert main["dftopk"]["test joint_recall"].startswith("0.5100 ± ")
    assert "(1500 steps of 1024 requests)" not in text and "1500 steps of 1024" in text
    # The budget trains with 0 training negatives only: no empty 40-negatives section.
    text = comparison_report.write_report(str(results), "paper", variant)
    assert "## 0 in-batch" in text and "## 40 in-batch" not in text
    assert not (folder / "main_neg40.csv").exists()
    # The one-pass report leaves the budget's runs out and has no curves.
    one_pass_text = comparison_report.write_report(str(results), "tiny")
    assert "Learning curves" not in one_pass_text and "steps1500" not in one_pass_text


PAIRED_DELTA = "paired Δ test joint recall vs dftopk (mean ± std)"


def test_the_din_report_ends_with_whether_din_changes_the_ordering(tmp_path) -> None:
    mapped = {start: {**temperatures, "lapsum": 1.0} for start, temperatures in MAPPED.items()}
    records = sweep_records("dftopk", best=0.1) | sweep_records("lcron-neuralsort", best=0.1)
    records |= sweep_records("lapsum", best=0.1, mapped=mapped)  # planned, no DIN run yet
    # test joint recall by (method, attention): bilinear ranks neuralsort first, DIN dftopk.
    recalls = {
        ("dftopk", None): 0.50,
        ("lcron-neuralsort", None): 0.55,
        ("dftopk", "din"): 0.58,
        ("lcron-neuralsort", "din"): 0.52,
    }
    for (method, attention), value in recalls.items():
        key = RunKey(method, "uniform", 0.1, 0, 0, steps=1500, prerank_attention=attention)
        records[key.name()] = record(key, value, value) | {
            "key": key.to_dict(),
            "curve": [[500, value - 0.1], [1500, value]],
            "train_steps": 1500,
        }
    results = results_folder(tmp_path, records, mapped)

    variant = method_comparison.RunVariant(steps=1500, prerank_attention="din")
    text = comparison_report.write_report(str(results), "tiny", variant)
    assert "## Does the din attention change the ordering?" in text
    assert "Default attention: lcron-neuralsort > dftopk; din: dftopk > lcron-neuralsort" in text
    assert "The ordering is **changed so far** (lapsum: no run under both attentions yet)." in text
    with open(results / "steps1500-din" / "attention_din_ordering.csv") as file:
        rows = {row["method"]: row for row in csv.DictReader(file)}
    assert rows["dftopk"]["paired Δ this - default (mean ± std)"] == "0.0800 ± 0.0000"
    assert (rows["dftopk"]["rank, default attention"], rows["dftopk"]["rank, this attention"]) == (
        "2",
        "1",
    )
    # The bilinear budget's own report has no such section.
    bilinear = comparison_report.write_report(
        str(results), "tiny", method_comparison.RunVariant(steps=1500)
    )
    assert "attention change the ordering" not in bilinear


def test_a_step_budget_on_a_given_dataset_sweeps_at_that_budget() -> None:
    """On a small dataset one pass is a few steps: the budget is every run's length, sweep too."""
    variant = method_comparison.RunVariant(steps=200, dataset="movielens")
    planned = method_comparison.planned_runs({}, SIZES["paper"], MAPPED, variant)
    sweep = [k for k in planned if k.method == "dftopk"]
    assert [k.temperature for k in sweep] == list(
        sweep_temperatures("dftopk", MAPPED["uniform"]["dftopk"])
    )
    assert {(k.steps, k.dataset, k.seed) for k in planned} == {(200, "movielens", 0)}


def test_a_budget_report_says_its_world_is_larger_than_the_one_pass_world() -> None:
    line = comparison_report.world_line("paper", 40)
    assert "40 days of 150,000 requests, 27,097 users, 5,806,452 videos" in line
    assert "4.4x the one-pass comparison's (9 days, 6,097 users, 1,306,452 videos)" in line


def test_ms_per_step_counts_only_the_steps_a_resumed_run_trained_in_its_last_process() -> None:
    records = sweep_records("dftopk", best=0.1)
    for seed, trained in enumerate([None, 250, 0]):  # whole run; resumed at 750; only scored
        key = RunKey("dftopk", "uniform", 0.1, 0, seed)
        records[key.name()] = record(key, 0.5, 0.5)  # 100 s, 1,000 steps
        if trained is not None:
            records[key.name()]["trained_steps"] = trained
    rows = comparison_report.main_rows(records, MAPPED["uniform"], 0, (0, 1, 2))
    # 100 ms and 400 ms per step; the run that trained nothing in its process does not count.
    step_ms = comparison_report.MAIN_COLUMNS.index("ms per step")
    assert rows[0][0] == "dftopk" and rows[0][step_ms] == 250


def test_the_main_table_says_how_many_cpus_trained_each_seed() -> None:
    records = sweep_records("dftopk", best=0.1)
    for seed, cpus in enumerate([2, 1, None]):  # alone; side by side; a record before the field
        key = RunKey("dftopk", "uniform", 0.1, 0, seed)
        records[key.name()] = record(key, 0.5, 0.5)
        if cpus is not None:
            records[key.name()]["train_cpus"] = cpus
    rows = comparison_report.main_rows(records, MAPPED["uniform"], 0, (0, 1, 2))
    assert rows[0][comparison_report.MAIN_COLUMNS.index("training CPUs per seed")] == "2, 1, ?"


def test_the_main_table_gives_the_largest_peak_memory_of_the_seeds_that_say_it() -> None:
    records = sweep_records("dftopk", best=0.1)
    for seed, peak in enumerate([2.5, 2.9, None]):  # the last: a record before the field
        key = RunKey("dftopk", "uniform", 0.1, 0, seed)
        records[key.name()] = record(key, 0.5, 0.5)
        if peak is not None:
            records[key.name()]["peak_memory_gib"] = peak
    column = comparison_report.MAIN_COLUMNS.index("peak memory GiB")
    assert comparison_report.main_rows(records, MAPPED["uniform"], 0, (0, 1, 2))[0][column] == 2.9
    for seed in (0, 1):
        del records[RunKey("dftopk", "uniform", 0.1, 0, seed).name()]["peak_memory_gib"]
    assert comparison_report.main_rows(records, MAPPED["uniform"], 0, (0, 1, 2))[0][column] == "?"


def test_the_ordering_names_each_method_once_when_its_sweep_has_curves_too() -> None:
    def runs(*values: float) -> dict[int, dict]:  # one run per seed, a curve of one point
        return {seed: {"curve": [[10, value]]} for seed, value in enumerate(values)}

    groups = {
        ("dftopk", 0.1, 0, "uniform"): runs(0.50, 0.52, 0.54),  # tuned: 3 seeds
        ("dftopk", 1.0, 0, "uniform"): runs(0.90),  # a sweep point: 1 seed
        ("dftopk", 0.1, 40, "uniform"): runs(0.10, 0.10, 0.10),  # another setting
        ("lapsum", 0.3, 0, "uniform"): runs(0.55, 0.50, 0.55),
        ("lapsum", 0.01, 0, "uniform"): runs(0.05),
    }
    # lapsum - dftopk per seed: +0.05, -0.02, +0.01 -> mean +0.0133, std 0.0351; 2 of 3 higher.
    assert learning_curves.ordering_rows(groups) == [
        [10, "lapsum > dftopk", "lapsum +0.0133 ± 0.0351 (2 of 3)"]
    ]
