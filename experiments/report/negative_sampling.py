"""Negative-sampling scaling (the paper's Figure 4): recall and time vs negatives per request.

Each method is trained with n in-batch negatives per request added to its 40 stage candidates
(so its top-k operator sees 40 + n items per request), once per seed; evaluation is always the
protocol's 200 candidates. The table gives the joint recall and the training seconds per epoch,
mean and spread over seeds: the permutation-matrix peers cost O((40 + n)^2) per request, DFTopK
O(40 + n).

Example::

    outcomes = run_negative_sampling(runner, ["dftopk", "lcron-neuralsort"], [0, 40, 160], [0])
    section = negatives_section(outcomes, "/tmp/report")
"""

import os
from collections.abc import Sequence

from dftopk_cascade.models.contract import STAGE_CANDIDATES
from dftopk_cascade.models.protocol import JOINT_RECALL

from experiments.report.report_document import ReportSection
from experiments.report.report_files import Cell, new_figure, save_figure
from experiments.report.training_runs import (
    RunOutcome,
    TrainingRunner,
    mean_and_spread,
)
from experiments.run_records import RunKey

NegativeOutcomes = dict[tuple[str, int], list[RunOutcome]]


def run_negative_sampling(
    runner: TrainingRunner,
    methods: Sequence[str],
    negatives: Sequence[int],
    seeds: Sequence[int],
) -> NegativeOutcomes:
    """Trains every method with every negative count and seed; outcomes by (method, negatives).

    Example::

        run_negative_sampling(runner, ["dftopk"], [0, 40], [0])[("dftopk", 40)][0].metrics
    """
    if any(count < 0 for count in negatives):
        raise ValueError(f"negatives per request must be >= 0, got {list(negatives)}")
    return {
        (method, int(count)): [
            runner.run(RunKey(method, seed=seed, negatives=count)) for seed in seeds
        ]
        for method in methods
        for count in negatives
    }


def negatives_rows(outcomes: NegativeOutcomes) -> tuple[list[str], list[list[Cell]]]:
    """Columns and rows: method, negatives, candidates, joint recall and s/epoch (mean, std).

    Example:
        >>> runs = [RunOutcome(RunKey("dftopk", seed=0, negatives=8), {"joint_recall": 0.5}, 3.0)]
        >>> negatives_rows({("dftopk", 8): runs})[1]
        [['dftopk', 8, 48, 0.5, 0.0, 3.0, 0.0]]
    """
    columns = [
        "method",
        "negatives",
        "candidates",
        JOINT_RECALL,
        f"{JOINT_RECALL} std",
        "seconds_per_epoch",
        "seconds_per_epoch std",
    ]
    rows = []
    for (method, count), runs in outcomes.items():
        recall = mean_and_spread([run.metrics[JOINT_RECALL] for run in runs])
        seconds = mean_and_spread([run.seconds_per_epoch for run in runs])
        rows.append([method, count, STAGE_CANDIDATES + count, *recall, *seconds])
    return columns, rows


def plot_negative_sampling(outcomes: NegativeOutcomes, path: str) -> None:
    """Joint recall and seconds per epoch against the negatives per request, one line per method.

    Example:
        >>> runs = {("dftopk", n): [RunOutcome(RunKey("dftopk", seed=0, negatives=n),
        ...                                    {"joint_recall": 0.5}, 1.0 + n)] for n in (0, 8)}
        >>> plot_negative_sampling(runs, "/tmp/negatives_example.png")
    """
    figure = new_figure(10.0, 4.0)
    recall_axes, time_axes = figure.subplots(1, 2)
    for method in dict.fromkeys(method for method, _ in outcomes):
        counts = sorted(count for m, count in outcomes if m == method)
        for axes, values in (
            (recall_axes, lambda run: run.metrics[JOINT_RECALL]),
            (time_axes, lambda run: run.seconds_per_epoch),
        ):
            spreads = [
                mean_and_spread([values(run) for run in outcomes[(method, count)]])
                for count in counts
            ]
            axes.errorbar(
                counts,
                [m for m, _ in spreads],
                yerr=[s for _, s in spreads],
                marker="o",
                capsize=3,
                label=method,
            )
    recall_axes.set_ylabel("joint Recall@10@20")
    time_axes.set_ylabel("training seconds per epoch")
    for axes in (recall_axes, time_axes):
        axes.set_xlabel("in-batch negatives per request in training")
        axes.grid(alpha=0.3)
    recall_axes.legend(fontsize="small")
    recall_axes.set_title("Recall vs negatives")
    time_axes.set_title("Training time vs negatives")
    save_figure(figure, path)


def negatives_section(outcomes: NegativeOutcomes, report_dir: str) -> ReportSection:
    """Plots ``report_dir/negative_sampling.png`` and returns the report section.

    Example:
        >>> runs = {("dftopk", 0): [RunOutcome(RunKey("dftopk", seed=0), {"joint_recall": 0.5},
        ...                                    1.0)]}
        >>> negatives_section(runs, "/tmp").table_name
        'negative_sampling'
    """
    figure = "negative_sampling.png"
    plot_negative_sampling(outcomes, os.path.join(report_dir, figure))
    seeds = sorted({run.settings.seed for runs in outcomes.values() for run in runs})
    columns, rows = negatives_rows(outcomes)
    text = (
        "Each method trained with n in-batch negatives per request (its top-k operator sees "
        f"{STAGE_CANDIDATES} + n candidates) with seeds {seeds}, evaluated with the protocol's "
        "200 candidates; mean and standard deviation over seeds. `seconds_per_epoch` as in the "
        "main table (steady state, without the first step's tracing)."
    )
    return ReportSection(
        "Negative-sampling scaling", text, "negative_sampling", columns, rows, (figure,)
    )
