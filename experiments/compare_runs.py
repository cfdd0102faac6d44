"""Compares trained model folders: a markdown table and a bar chart of their evaluation metrics.

``python -m experiments.compare_runs --run dftopk=RUNS/dftopk --run softsort=RUNS/softsort
--report-dir OUT`` reads each folder's ``metrics.json`` (written by
``dftopk_cascade.models.training.train`` or ``dftopk_cascade.models.training.evaluate``), prints the
table and writes ``OUT/comparison.csv`` and ``OUT/comparison.png`` (one group of bars per metric,
one bar per run).

Example:
    >>> runs = parse_runs(["dftopk=/runs/a"])
    >>> runs
    {'dftopk': '/runs/a'}
"""

import argparse
import json
import os
from collections.abc import Mapping, Sequence

from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.tables import markdown_table

from experiments.report.main_table import MAIN_METRICS, PREFERENCE_METRIC
from experiments.report.report_files import Cell, new_figure, save_figure, write_csv

#: Metrics compared, in column order.
COMPARED_METRICS: tuple[str, ...] = (*MAIN_METRICS, PREFERENCE_METRIC)


def parse_runs(specs: Sequence[str]) -> dict[str, str]:
    """``NAME=MODEL_DIR`` specs as a name -> folder dict; ``ValueError`` on a bad or repeated one.

    Example:
        >>> parse_runs(["no-equals-sign"])
        Traceback (most recent call last):
        ...
        ValueError: expected NAME=MODEL_DIR, got 'no-equals-sign'
    """
    runs: dict[str, str] = {}
    for spec in specs:
        name, separator, folder = spec.partition("=")
        if not separator or not name or not folder:
            raise ValueError(f"expected NAME=MODEL_DIR, got {spec!r}")
        if name in runs:
            raise ValueError(f"run name {name!r} given twice")
        runs[name] = folder
    return runs


def read_metrics(model_dir: str) -> dict[str, float]:
    """The evaluation metrics of a model folder; ``FileNotFoundError`` naming it when absent.

    Example:
        >>> read_metrics(tmp_dir)
        Traceback (most recent call last):
        ...
        FileNotFoundError: ... has no metrics.json; train or evaluate it first ...
    """
    path = os.path.join(model_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{model_dir} has no metrics.json; train or evaluate it first "
            "(python -m dftopk_cascade.models.training.train / "
            "dftopk_cascade.models.training.evaluate)"
        )
    with open(path) as file:
        return json.load(file)


def comparison_rows(metrics: Mapping[str, Mapping[str, float]]) -> list[list[Cell]]:
    """One row per run: its name, then ``COMPARED_METRICS`` (empty where a run lacks one).

    Example:
        >>> comparison_rows({"a": {"joint_recall": 0.5}})[0][:2]
        ['a', 0.5]
    """
    return [
        [name, *(values.get(metric) for metric in COMPARED_METRICS)]
        for name, values in metrics.items()
    ]


def draw_comparison(metrics: Mapping[str, Mapping[str, float]], path: str) -> None:
    """Writes the grouped bar chart (metrics on the x axis, one bar per run) to ``path``.

    Example:
        >>> draw_comparison({"a": {"joint_recall": 0.5}}, f"{tmp_dir}/comparison.png")
    """
    figure = new_figure(width=8.0, height=4.0)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(metrics))
    for index, (name, values) in enumerate(metrics.items()):
        offset = (index - (len(metrics) - 1) / 2) * width
        positions = [column + offset for column in range(len(COMPARED_METRICS))]
        heights = [values.get(metric, float("nan")) for metric in COMPARED_METRICS]
        axes.bar(positions, heights, width=width, label=name)
    axes.set_xticks(range(len(COMPARED_METRICS)), COMPARED_METRICS, rotation=15)
    axes.set_ylabel("held-out value")
    shown = [values[m] for values in metrics.values() for m in COMPARED_METRICS if m in values]
    lowest = min(shown, default=0.0)
    axes.set_ylim(max(0.0, lowest - 0.05), 1.0)
    axes.legend(fontsize="small", ncols=2)
    save_figure(figure, path)


def main(argv: Sequence[str] | None = None) -> str:
    """Command-line entry; returns the markdown table it printed.

    Example::

        python -m experiments.compare_runs --run a=RUNS/a --run b=RUNS/b --report-dir /tmp/compare
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run", action="append", required=True, help="NAME=MODEL_DIR (repeat, in table order)"
    )
    parser.add_argument("--report-dir", required=True, help="folder for comparison.csv and .png")
    arguments = add_entry_flags(parser).parse_args(argv)
    try:
        runs = parse_runs(arguments.run)
        metrics = {name: read_metrics(folder) for name, folder in runs.items()}
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    os.makedirs(arguments.report_dir, exist_ok=True)
    columns, rows = ["run", *COMPARED_METRICS], comparison_rows(metrics)
    write_csv(os.path.join(arguments.report_dir, "comparison.csv"), columns, rows)
    draw_comparison(metrics, os.path.join(arguments.report_dir, "comparison.png"))
    table = markdown_table(columns, rows)
    print(table)
    return table


if __name__ == "__main__":
    run_command(main, "python -m experiments.compare_runs")
