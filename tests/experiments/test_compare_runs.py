"""experiments.compare_runs: the table and chart of trained model folders, and its errors."""

import csv
import json
import os

import pytest

from experiments import compare_runs

DFTOPK = {"joint_recall": 0.76, "recall@10@20": 0.764, "recall@10@30": 0.781, "ndcg@10": 0.73}
SOFTSORT = {**DFTOPK, "joint_recall": 0.772, "preference_joint_recall": 0.889}


def model_dir(root, name: str, metrics: dict) -> str:
    folder = os.path.join(root, name)
    os.makedirs(folder)
    with open(os.path.join(folder, "metrics.json"), "w") as file:
        json.dump({**metrics, "evaluation": {"requests": 10}}, file)
    return folder


def test_the_table_and_chart_hold_every_run_in_order(tmp_path, capsys) -> None:
    first = model_dir(tmp_path, "a", DFTOPK)
    second = model_dir(tmp_path, "b", SOFTSORT)
    out = str(tmp_path / "out")
    runs = ["--run", f"dftopk={first}", "--run", f"softsort={second}"]
    table = compare_runs.main([*runs, "--report-dir", out])
    assert "| dftopk | 0.76 | 0.764 | 0.781 | 0.73 |  |" in table
    assert table in capsys.readouterr().out
    with open(os.path.join(out, "comparison.csv")) as file:
        rows = list(csv.DictReader(file))
    assert [row["run"] for row in rows] == ["dftopk", "softsort"]
    assert float(rows[1]["joint_recall"]) == 0.772 and rows[0]["preference_joint_recall"] == ""
    with open(os.path.join(out, "comparison.png"), "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        (["nameless"], "expected NAME=MODEL_DIR"),
        (["a=DIR", "a=DIR"], "given twice"),
        (["a=/no/such/folder"], "/no/such/folder has no metrics.json"),
    ],
)
def test_bad_runs_get_clear_errors(tmp_path, capsys, runs, message) -> None:
    arguments = [part for run in runs for part in ("--run", run)]
    with pytest.raises(SystemExit):
        compare_runs.main([*arguments, "--report-dir", str(tmp_path / "out")])
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")
