"""The main table: every training method on the same data and seeds, mean and spread over seeds.

Each method is trained once per seed with the protocol's defaults
(``experiments.report.training_runs``) and evaluated on the held-out day; the table gives, per
method, the mean and the standard deviation over seeds of the joint Recall@10@20 (retrieval keeps
30, pre-ranking 20), the pre-ranking Recall@10@20, the retrieval Recall@10@30, NDCG@10, the joint
recall against the simulator's true preference (when the data has it) and the training seconds per
epoch.

Example::

    outcomes = run_main_table(runner, ["dftopk", "bce"], seeds=[0, 1, 2])
    section = main_table_section(outcomes, "/tmp/report")
"""

import os
from collections.abc import Sequence

from dftopk_cascade.models.protocol import (
    JOINT_RECALL,
    PREFERENCE_PREFIX,
    PRERANK_NDCG,
    PRERANK_RECALL,
    RETRIEVAL_RECALL,
)

from experiments.report.report_document import ReportSection
from experiments.report.report_files import Cell, new_figure, save_figure
from experiments.report.training_runs import (
    RunOutcome,
    TrainingRunner,
    mean_and_spread,
)
from experiments.run_records import RunKey

#: The table's metrics (keys of ``dftopk_cascade.models.protocol``), in column order.
MAIN_METRICS: tuple[str, ...] = (JOINT_RECALL, PRERANK_RECALL, RETRIEVAL_RECALL, PRERANK_NDCG)
#: Reported as well when the data came from the simulator.
PREFERENCE_METRIC = PREFERENCE_PREFIX + JOINT_RECALL


def run_main_table(
    runner: TrainingRunner, methods: Sequence[str], seeds: Sequence[int], negatives: int = 0
) -> dict[str, list[RunOutcome]]:
    """Trains and evaluates every method with every seed; returns the outcomes by method.

    ``negatives``: in-batch negatives per request in training, the same for every method.

    Example::

        run_main_table(runner, ["dftopk"], [0])["dftopk"][0].metrics["joint_recall"]
    """
    if not methods or not seeds:
        raise ValueError(f"need at least one method and one seed, got {methods} and {seeds}")
    return {
        method: [runner.run(RunKey(method, seed=seed, negatives=negatives)) for seed in seeds]
        for method in methods
    }


def main_table_rows(
    outcomes: dict[str, list[RunOutcome]],
) -> tuple[list[str], list[list[Cell]]]:
    """Columns and rows: method, seeds, then mean and std of each metric and of s/epoch.

    Example:
        >>> from experiments.run_records import RunKey
        >>> runs = [RunOutcome(RunKey("bce", seed=s), {"joint_recall": v}, 2.0)
        ...         for s, v in ((0, 0.4), (1, 0.6))]
        >>> columns, rows = main_table_rows({"bce": runs})
        >>> columns[:4], [round(x, 3) for x in rows[0][2:4]]
        (['method', 'seeds', 'joint_recall', 'joint_recall std'], [0.5, 0.141])
    """
    metrics = [name for name in (*MAIN_METRICS, PREFERENCE_METRIC) if _everywhere(outcomes, name)]
    columns = ["method", "seeds"]
    for name in (*metrics, "seconds_per_epoch"):
        columns += [name, f"{name} std"]
    rows = []
    for method, runs in outcomes.items():
        row: list[Cell] = [method, len(runs)]
        for name in metrics:
            row += list(mean_and_spread([run.metrics[name] for run in runs]))
        row += list(mean_and_spread([run.seconds_per_epoch for run in runs]))
        rows.append(row)
    return columns, rows


def plot_main_table(outcomes: dict[str, list[RunOutcome]], path: str) -> None:
    """Bar charts of the joint recall and the seconds per epoch per method (error bars: std).

    Example:
        >>> from experiments.run_records import RunKey
        >>> runs = {"bce": [RunOutcome(RunKey("bce", seed=0), {"joint_recall": 0.4}, 2.0)]}
        >>> plot_main_table(runs, "/tmp/main_table_example.png")
    """
    methods = list(outcomes)
    figure = new_figure(10.0, 4.0)
    recall_axes, time_axes = figure.subplots(1, 2)
    for axes, values, label in (
        (recall_axes, lambda run: run.metrics[JOINT_RECALL], "joint Recall@10@20"),
        (time_axes, lambda run: run.seconds_per_epoch, "training seconds per epoch"),
    ):
        spreads = [mean_and_spread([values(run) for run in outcomes[m]]) for m in methods]
        axes.bar(
            methods,
            [mean for mean, _ in spreads],
            yerr=[std for _, std in spreads],
            capsize=3,
            color="tab:blue",
        )
        axes.set_ylabel(label)
        axes.tick_params(axis="x", labelrotation=45)
        axes.grid(alpha=0.3, axis="y")
    recall_axes.set_title("Joint recall (mean ± std over seeds)")
    time_axes.set_title("Training time")
    save_figure(figure, path)


def main_table_section(outcomes: dict[str, list[RunOutcome]], report_dir: str) -> ReportSection:
    """Plots ``report_dir/main_table.png`` and returns the report section.

    Example:
        >>> from experiments.run_records import RunKey
        >>> runs = {"bce": [RunOutcome(RunKey("bce", seed=0), {"joint_recall": 0.4}, 2.0)]}
        >>> main_table_section(runs, "/tmp").table_name
        'main_table'
    """
    figure = "main_table.png"
    plot_main_table(outcomes, os.path.join(report_dir, figure))
    seeds = sorted({run.settings.seed for runs in outcomes.values() for run in runs})
    negatives = sorted({run.settings.negatives for runs in outcomes.values() for run in runs})
    columns, rows = main_table_rows(outcomes)
    text = (
        f"Every method trained on the same data with seeds {seeds} and {negatives} in-batch "
        "negatives per training request, evaluated on the held-out "
        "day over 200 candidates per request (40 stage candidates + 160 in-batch negatives). "
        "Each metric: mean over seeds, then its standard deviation. `joint_recall`: retrieval "
        "keeps its top-30, pre-ranking the top-20 of those, share of the label top-10 kept. "
        "`seconds_per_epoch`: steady-state training time of one pass over the training days "
        "(median step time x steps; the first step, which traces and compiles, left out)."
    )
    return ReportSection("Main table", text, "main_table", columns, rows, (figure,))


def _everywhere(outcomes: dict[str, list[RunOutcome]], name: str) -> bool:
    return all(name in run.metrics for runs in outcomes.values() for run in runs)
