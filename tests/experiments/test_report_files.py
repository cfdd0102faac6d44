"""Report files: markdown and CSV tables, PNG figures, written atomically."""

import csv
import os

import pytest
from dftopk_cascade.models.tables import format_cell, markdown_table

from experiments.report.report_files import new_figure, save_figure, write_csv


def test_markdown_table_aligns_numbers_right_and_text_left() -> None:
    table = markdown_table(["method", "recall"], [["dftopk", 0.81234], ["bce", None]])
    assert table.splitlines() == [
        "| method | recall |",
        "|---|---:|",
        "| dftopk | 0.8123 |",
        "| bce |  |",
    ]


def test_cells_keep_four_significant_digits() -> None:
    assert [format_cell(v) for v in (1234567.0, 0.000123456, float("nan"), 7)] == [
        "1.235e+06",
        "0.0001235",
        "nan",
        "7",
    ]


def test_tables_reject_rows_of_the_wrong_width(tmp_path) -> None:
    with pytest.raises(ValueError, match="has 1 cells for 2 columns"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="has 3 cells for 2 columns"):
        write_csv(str(tmp_path / "t.csv"), ["a", "b"], [[1, 2, 3]])
    assert os.listdir(tmp_path) == []


def test_csv_round_trip(tmp_path) -> None:
    path = str(tmp_path / "t.csv")
    write_csv(path, ["method", "ms"], [["dftopk", 1.5], ["bce", None]])
    with open(path, newline="") as file:
        assert list(csv.reader(file)) == [["method", "ms"], ["dftopk", "1.5"], ["bce", ""]]
    assert os.listdir(tmp_path) == ["t.csv"]


def test_figures_are_pngs(tmp_path) -> None:
    figure = new_figure()
    figure.add_subplot().plot([1, 2], [3, 4])
    save_figure(figure, str(tmp_path / "f.png"))
    with open(tmp_path / "f.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
