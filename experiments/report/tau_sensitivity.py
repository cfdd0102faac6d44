"""Temperature sensitivity (the paper's Figure 3): recall as a function of tau.

Each method is trained at every temperature of a grid (its own knob: DFTopK's tau, LapSum's
alpha, ...), once per seed, with every other setting at the protocol's default; the table gives
the mean and spread over seeds of the joint recall and the two single-stage recalls.

Example::

    outcomes = run_tau_sensitivity(runner, ["dftopk"], [0.1, 1.0, 10.0], seeds=[0])
    section = tau_section(outcomes, "/tmp/report")
"""

import os
from collections.abc import Sequence

from dftopk_cascade.models.objectives import tau_name
from dftopk_cascade.models.protocol import JOINT_RECALL, PRERANK_RECALL, RETRIEVAL_RECALL

from experiments.report.report_document import ReportSection
from experiments.report.report_files import Cell, new_figure, save_figure
from experiments.report.training_runs import (
    RunOutcome,
    TrainingRunner,
    mean_and_spread,
)
from experiments.run_records import RunKey

#: The recalls reported per temperature.
TAU_METRICS: tuple[str, ...] = (JOINT_RECALL, PRERANK_RECALL, RETRIEVAL_RECALL)

TauOutcomes = dict[tuple[str, float], list[RunOutcome]]


def run_tau_sensitivity(
    runner: TrainingRunner, methods: Sequence[str], taus: Sequence[float], seeds: Sequence[int]
) -> TauOutcomes:
    """Trains every method at every temperature with every seed; outcomes by (method, tau).

    Example::

        run_tau_sensitivity(runner, ["dftopk"], [1.0], [0])[("dftopk", 1.0)][0].metrics
    """
    if any(not tau > 0 for tau in taus):
        raise ValueError(f"temperatures must be > 0, got {list(taus)}")
    return {
        (method, float(tau)): [
            runner.run(RunKey(method, seed=seed, temperature=tau)) for seed in seeds
        ]
        for method in methods
        for tau in taus
    }


def tau_rows(outcomes: TauOutcomes) -> tuple[list[str], list[list[Cell]]]:
    """Columns and rows: method, its knob's name, tau, then mean and std of each recall.

    Example:
        >>> key = RunKey("dftopk", seed=0, temperature=2.0)
        >>> runs = [RunOutcome(key, dict.fromkeys(TAU_METRICS, 0.5), 1.0)]
        >>> tau_rows({("dftopk", 2.0): runs})[1]
        [['dftopk', 'tau', 2.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0]]
    """
    columns = ["method", "knob", "tau"]
    for name in TAU_METRICS:
        columns += [name, f"{name} std"]
    rows = []
    for (method, tau), runs in outcomes.items():
        row: list[Cell] = [method, tau_name(method), tau]
        for name in TAU_METRICS:
            row += list(mean_and_spread([run.metrics[name] for run in runs]))
        rows.append(row)
    return columns, rows


def plot_tau_sensitivity(outcomes: TauOutcomes, path: str) -> None:
    """Joint recall against tau (log axis), one line per method, error bars over seeds.

    Example:
        >>> runs = {("dftopk", t): [RunOutcome(RunKey("dftopk", seed=0, temperature=t),
        ...                                    {"joint_recall": 0.5}, 1.0)] for t in (0.1, 1.0)}
        >>> plot_tau_sensitivity(runs, "/tmp/tau_example.png")
    """
    figure = new_figure()
    axes = figure.add_subplot()
    for method in dict.fromkeys(method for method, _ in outcomes):
        taus = sorted(tau for m, tau in outcomes if m == method)
        spreads = [
            mean_and_spread([run.metrics[JOINT_RECALL] for run in outcomes[(method, tau)]])
            for tau in taus
        ]
        axes.errorbar(
            taus,
            [m for m, _ in spreads],
            yerr=[s for _, s in spreads],
            marker="o",
            capsize=3,
            label=f"{method} ({tau_name(method)})",
        )
    axes.set_xscale("log")
    axes.set_xlabel("temperature")
    axes.set_ylabel("joint Recall@10@20")
    axes.set_title("Temperature sensitivity")
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    save_figure(figure, path)


def tau_section(outcomes: TauOutcomes, report_dir: str) -> ReportSection:
    """Plots ``report_dir/tau_sensitivity.png`` and returns the report section.

    Example:
        >>> runs = {("dftopk", 1.0): [RunOutcome(RunKey("dftopk", seed=0, temperature=1.0),
        ...                                      dict.fromkeys(TAU_METRICS, 0.5), 1.0)]}
        >>> tau_section(runs, "/tmp").figures
        ('tau_sensitivity.png',)
    """
    figure = "tau_sensitivity.png"
    plot_tau_sensitivity(outcomes, os.path.join(report_dir, figure))
    seeds = sorted({run.settings.seed for runs in outcomes.values() for run in runs})
    columns, rows = tau_rows(outcomes)
    text = (
        f"Each method trained at each temperature of its own knob with seeds {seeds}, every "
        "other setting at the protocol's default; mean and standard deviation over seeds."
    )
    return ReportSection(
        "Temperature sensitivity", text, "tau_sensitivity", columns, rows, (figure,)
    )
