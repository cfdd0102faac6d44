"""`experiments.reproduce --tiny`: the report, its tables and PNGs exist, numbers are finite."""

import csv
import math
import os
import re

import pytest

from experiments.report.experiment_sizes import SIZES
from experiments.reproduce import EXPERIMENTS, given_data, main, parse_args, run_experiments

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TABLES = (
    "main_table",
    "tau_sensitivity",
    "negative_sampling",
    "streaming",
    "operator_runtime",
    "operator_slopes",
    "gradient_conflict",
)
FIGURES = (
    "main_table.png",
    "tau_sensitivity.png",
    "negative_sampling.png",
    "streaming.png",
    "operator_runtime.png",
    "gradient_conflict.png",
)


def numeric_cells(path: str) -> list[float]:
    """Every cell of a CSV table that reads as a number."""
    values = []
    with open(path, newline="") as file:
        for row in list(csv.reader(file))[1:]:
            for cell in row:
                try:
                    values.append(float(cell))
                except ValueError:
                    continue
    return values


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("report"))
    main(["--report-dir", out, "--tiny"])
    return out


def test_every_trained_run_has_its_record_and_model_folder(tiny_report: str) -> None:
    from experiments.run_records import read_records

    records = read_records(tiny_report)
    models = os.path.join(tiny_report, "models")
    assert records, "no run record under REPORT_DIR/runs"
    assert set(os.listdir(models)) <= set(records)  # every model folder has its record
    for name, record in records.items():
        assert os.path.isfile(os.path.join(record["model_dir"], "config.json")), name
        assert 0.0 <= record["test"]["joint_recall"] <= 1.0
        assert record["step_seconds"] > 0 and record["train_steps"] > 0


def test_report_links_every_png_and_states_machine_sizes_and_seeds(tiny_report: str) -> None:
    with open(os.path.join(tiny_report, "report.md")) as file:
        report = file.read()
    for line in (
        "Command: `python -m experiments.reproduce --report-dir",
        "Machine: ",
        "Data: simulated",
        "Sizes: tiny",
        "training request, seeds [0]",
        "## Summary",
        "Joint Recall@10@20",
    ):
        assert line in report
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(linked) == sorted(FIGURES)
    for figure in linked:
        with open(os.path.join(tiny_report, figure), "rb") as file:
            assert file.read(8) == PNG_MAGIC


def test_every_table_exists_with_finite_numbers(tiny_report: str) -> None:
    for table in TABLES:
        path = os.path.join(tiny_report, f"{table}.csv")
        values = numeric_cells(path)
        assert values, f"{table}.csv has no numbers"
        assert all(math.isfinite(value) for value in values), f"{table}.csv: {values}"


def test_main_table_has_every_tiny_method_and_recalls_in_range(tiny_report: str) -> None:
    with open(os.path.join(tiny_report, "main_table.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["method"] for row in rows] == list(SIZES["tiny"].methods)
    for row in rows:
        for name in ("joint_recall", "recall@10@20", "recall@10@30", "ndcg@10"):
            assert 0.0 <= float(row[name]) <= 1.0
        assert float(row["seconds_per_epoch"]) > 0


def test_the_tiny_studies_reuse_the_main_table_run(tiny_report: str) -> None:
    tables = {}
    for table in ("main_table", "tau_sensitivity", "negative_sampling"):
        with open(os.path.join(tiny_report, f"{table}.csv"), newline="") as file:
            (tables[table],) = list(csv.DictReader(file))
    assert float(tables["tau_sensitivity"]["tau"]) == SIZES["tiny"].taus[0]
    for study in ("tau_sensitivity", "negative_sampling"):
        assert tables[study]["joint_recall"] == tables["main_table"]["joint_recall"], study


def test_streaming_tests_each_next_day(tiny_report: str) -> None:
    with open(os.path.join(tiny_report, "streaming.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["test day"] for row in rows] == ["2024-01-14", "2024-01-15"]
    assert [row["trained through"] for row in rows] == ["2024-01-13", "2024-01-14"]


def test_flags() -> None:
    assert parse_args(["--report-dir", "r"]).size == "full"
    assert parse_args(["--report-dir", "r", "--tiny"]).experiments == list(EXPERIMENTS)
    with pytest.raises(SystemExit):
        parse_args(["--report-dir", "r", "--quick", "--tiny"])
    with pytest.raises(SystemExit):
        parse_args(["--report-dir", "r", "--experiments", "everything"])


def test_unknown_experiment_is_named(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown or no experiments"):
        run_experiments(str(tmp_path), SIZES["tiny"], experiments=["figure9"])


def test_given_data_is_checked_and_described(tiny_report: str, tmp_path) -> None:
    data_dir = os.path.join(tiny_report, "data", "tfrecords")
    assert given_data(data_dir) == (
        f"Data: {data_dir} (3 days, 2024-01-13 .. 2024-01-15; the last day held out)"
    )
    with pytest.raises(FileNotFoundError):
        given_data(str(tmp_path / "missing"))
