"""Streaming evaluation (the paper's Figure 5): train on day d, test on day d + 1, across days.

One model per method and seed is trained day after day (``TrainingRunner.run_streaming``): after
each training day it is tested on the next, unseen day, as a production model retrained daily
would be. The table gives, per method and test day, the joint recall (mean and spread over
seeds); the plot shows how stable each method stays across days.

Example::

    outcomes = run_streaming(runner, ["dftopk", "bce"], days, seeds=[0])
    section = streaming_section(outcomes, "/tmp/report")
"""

import os
from collections.abc import Sequence

from dftopk_cascade.models.protocol import JOINT_RECALL

from experiments.report.report_document import ReportSection
from experiments.report.report_files import Cell, new_figure, save_figure
from experiments.report.training_runs import RunOutcome, TrainingRunner, mean_and_spread

#: Outcomes by method: one list per seed, one outcome per tested day.
StreamingOutcomes = dict[str, list[list[RunOutcome]]]


def run_streaming(
    runner: TrainingRunner, methods: Sequence[str], days: Sequence[str], seeds: Sequence[int]
) -> StreamingOutcomes:
    """Trains each method day after day with each seed, testing on every next day.

    Example::

        run_streaming(runner, ["dftopk"], ["2024-01-13", "2024-01-14", "2024-01-15"], [0])
    """
    return {
        method: [runner.run_streaming(method, seed, tuple(days)) for seed in seeds]
        for method in methods
    }


def streaming_rows(outcomes: StreamingOutcomes) -> tuple[list[str], list[list[Cell]]]:
    """Columns and rows: method, train day, test day, joint recall (mean, std over seeds).

    Example:
        >>> from experiments.run_records import RunKey
        >>> run = RunOutcome(RunKey("bce", seed=0, train_days=("d1",), eval_days=("d2",)),
        ...                  {"joint_recall": 0.5}, 1.0)
        >>> streaming_rows({"bce": [[run]]})[1]
        [['bce', 'd1', 'd2', 0.5, 0.0]]
    """
    columns = ["method", "trained through", "test day", JOINT_RECALL, f"{JOINT_RECALL} std"]
    rows = []
    for method, per_seed in outcomes.items():
        for day_runs in zip(*per_seed, strict=True):
            settings = day_runs[0].settings
            recall = mean_and_spread([run.metrics[JOINT_RECALL] for run in day_runs])
            rows.append([method, settings.train_days[-1], settings.eval_days[0], *recall])
    return columns, rows


def plot_streaming(outcomes: StreamingOutcomes, path: str) -> None:
    """Joint recall by test day, one line per method, error bars over seeds.

    Example:
        >>> from experiments.run_records import RunKey
        >>> runs = [RunOutcome(RunKey("bce", seed=0, train_days=(a,), eval_days=(b,)),
        ...                    {"joint_recall": 0.5}, 1.0) for a, b in (("d1", "d2"), ("d2", "d3"))]
        >>> plot_streaming({"bce": [runs]}, "/tmp/streaming_example.png")
    """
    figure = new_figure(7.0, 4.0)
    axes = figure.add_subplot()
    for method, per_seed in outcomes.items():
        days = [run.settings.eval_days[0] for run in per_seed[0]]
        spreads = [
            mean_and_spread([run.metrics[JOINT_RECALL] for run in day_runs])
            for day_runs in zip(*per_seed, strict=True)
        ]
        axes.errorbar(
            range(len(days)),
            [m for m, _ in spreads],
            yerr=[s for _, s in spreads],
            marker="o",
            capsize=3,
            label=method,
        )
        axes.set_xticks(range(len(days)), days, rotation=30)
    axes.set_xlabel("test day (trained on every earlier day, one day at a time)")
    axes.set_ylabel("joint Recall@10@20")
    axes.set_title("Streaming evaluation")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    save_figure(figure, path)


def streaming_section(outcomes: StreamingOutcomes, report_dir: str) -> ReportSection:
    """Plots ``report_dir/streaming.png`` and returns the report section.

    Example:
        >>> from experiments.run_records import RunKey
        >>> run = RunOutcome(RunKey("bce", seed=0, train_days=("d1",), eval_days=("d2",)),
        ...                  {"joint_recall": 0.5}, 1.0)
        >>> streaming_section({"bce": [[run]]}, "/tmp").table_name
        'streaming'
    """
    figure = "streaming.png"
    plot_streaming(outcomes, os.path.join(report_dir, figure))
    seeds = sorted({runs[0].settings.seed for per_seed in outcomes.values() for runs in per_seed})
    columns, rows = streaming_rows(outcomes)
    text = (
        "One model per method and seed trained one day at a time (one pass per day); after each "
        "day it is tested on the next, unseen day with the protocol's 200 candidates. Seeds "
        f"{seeds}; mean and standard deviation over seeds."
    )
    return ReportSection("Streaming evaluation", text, "streaming", columns, rows, (figure,))
