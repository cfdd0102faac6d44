"""The paper's experiments in one command, with tables and plots: ``experiments.reproduce``.

Runs, on simulated RecFlow-format data (or converted TFRecords given with ``--data``):

- the main table: every training method on the same data and seeds
  (``experiments.report.main_table``);
- temperature sensitivity (``experiments.report.tau_sensitivity``), negative-sampling scaling
  (``experiments.report.negative_sampling``) and a streaming evaluation
  (``experiments.report.streaming``);
- the operator runtime sweep with log-log slopes (``experiments.report.operator_runtime``; a GPU
  column when TensorFlow sees a GPU) and the gradient-conflict measurement
  (``experiments.report.gradient_conflict``);

and writes ``REPORT_DIR/report.md`` (machine, sizes, seeds, every table, links to every PNG),
one CSV per table, the PNGs, the trained models (``REPORT_DIR/models/``) with a record per run
(``REPORT_DIR/runs/``, ``experiments.run_records``) and, without ``--data``,
the simulated data (``REPORT_DIR/data/``). Every number in the report comes from this run.

Example::

    python -m experiments.reproduce --report-dir /tmp/report --quick
    python -m experiments.reproduce --data /data/recflow_tfrec --report-dir /tmp/report_real
"""

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence

import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.protocol import JOINT_RECALL
from dftopk_cascade.pipelines.convert import convert
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.simulator.simulate import simulate

from benchmarks.machine import gpu_description, machine_description
from experiments.report.experiment_sizes import SIZES, ExperimentSizes
from experiments.report.gradient_conflict import (
    DEFAULT_K,
    ConflictRow,
    conflict_section,
    measure_gradient_conflict,
)
from experiments.report.main_table import main_table_section, run_main_table
from experiments.report.negative_sampling import negatives_section, run_negative_sampling
from experiments.report.operator_runtime import (
    RuntimeResult,
    measure_runtime,
    runtime_sections,
    slope_rows,
)
from experiments.report.report_document import ReportSection, write_report
from experiments.report.streaming import run_streaming, streaming_section
from experiments.report.tau_sensitivity import run_tau_sensitivity, tau_section
from experiments.report.training_runs import RunOutcome, TrainingRunner, mean_and_spread

#: The experiments that train cascades, in report order.
TRAINING_EXPERIMENTS: tuple[str, ...] = ("main", "tau", "negatives", "streaming")
#: Every experiment, in report order.
EXPERIMENTS: tuple[str, ...] = (*TRAINING_EXPERIMENTS, "runtime", "conflict")


def simulated_data(out_dir: str, sizes: ExperimentSizes, seed: int) -> tuple[str, str]:
    """Simulates RecFlow into ``out_dir/data/recflow`` and converts it to ``.../tfrecords``.

    Returns (TFRecord folder, a line describing the data).

    Example::

        data_dir, description = simulated_data("/tmp/report", SIZES["tiny"], seed=0)
    """
    recflow_root = os.path.join(out_dir, "data", "recflow")
    data_dir = os.path.join(out_dir, "data", "tfrecords")
    summary = simulate(recflow_root, sizes.days, sizes.requests_per_day, seed, progress=False)
    convert(recflow_root, data_dir, workers=min(2, os.cpu_count() or 1), progress=False)
    description = (
        f"Data: simulated RecFlow (dftopk_cascade.pipelines.simulator.simulate, seed {seed}), "
        f"{sizes.days} days x "
        f"{sizes.requests_per_day} requests ({summary.days[0]} .. {summary.days[-1]}; the last "
        f"day held out), in {data_dir}"
    )
    return data_dir, description


def given_data(data_dir: str) -> str:
    """Checks a converted TFRecord folder and returns a line describing it.

    Example::

        given_data("/data/recflow_tfrec")
    """
    schema = read_data_schema(data_dir)
    days = sorted(schema["days"])
    return f"Data: {data_dir} ({len(days)} days, {days[0]} .. {days[-1]}; the last day held out)"


def summary_lines(
    main_outcomes: dict[str, list[RunOutcome]] | None,
    runtime: RuntimeResult | None,
    conflict: Sequence[ConflictRow] | None = None,
) -> list[str]:
    """The report's closing summary: methods by joint recall, runtime slopes, gradient conflict.

    Example:
        >>> from experiments.report.operator_runtime import RuntimePoint
        >>> points = [RuntimePoint("dftopk", "CPU", n, n // 2, 1, n / 10) for n in (10, 100)]
        >>> summary_lines(None, RuntimeResult(points, {}))
        ['- Runtime log-log slope at the largest n: dftopk CPU 1.00.']
    """
    lines = []
    if main_outcomes:
        ranked = sorted(
            (
                (mean_and_spread([run.metrics[JOINT_RECALL] for run in runs]), method)
                for method, runs in main_outcomes.items()
            ),
            reverse=True,
        )
        lines.append(
            "- Joint Recall@10@20 (mean ± std over seeds), best first: "
            + ", ".join(f"{method} {mean:.4f} ± {std:.4f}" for (mean, std), method in ranked)
            + "."
        )
        fastest = sorted(
            (mean_and_spread([run.seconds_per_epoch for run in runs])[0], method)
            for method, runs in main_outcomes.items()
        )
        lines.append(
            "- Training seconds per epoch (mean over seeds), fastest first: "
            + ", ".join(f"{method} {seconds:.3g}" for seconds, method in fastest)
            + "."
        )
    if runtime and runtime.points:
        slopes = [row for row in slope_rows(runtime) if row[3] is not None]
        lines.append(
            "- Runtime log-log slope at the largest n: "
            + ", ".join(f"{row[0]} {row[1]} {row[3]:.2f}" for row in slopes)
            + "."
        )
    if conflict:
        methods = dict.fromkeys(row.method for row in conflict)
        shares = {
            method: mean_and_spread(
                [row.ground_truth_pushed_down for row in conflict if row.method == method]
            )[0]
            for method in methods
        }
        lines.append(
            "- Share of ground-truth items pushed down, mean over noise levels: "
            + ", ".join(f"{method} {share:.3f}" for method, share in shares.items())
            + "."
        )
    return lines


def training_sections(
    runner: TrainingRunner,
    sizes: ExperimentSizes,
    experiments: Sequence[str],
    report_dir: str,
    log: Callable[[str], None] = print,
) -> tuple[list[ReportSection], dict[str, list[RunOutcome]] | None]:
    """Runs the chosen training studies; returns their sections and the main table's outcomes.

    Example::

        sections, main_outcomes = training_sections(runner, SIZES["tiny"], ["main"], "/tmp/r")
    """
    sections = []
    main_outcomes = None
    if "main" in experiments:
        log("main table")
        main_outcomes = run_main_table(runner, sizes.methods, sizes.seeds, sizes.main_negatives)
        sections.append(main_table_section(main_outcomes, report_dir))
    if "tau" in experiments:
        log("temperature sensitivity")
        outcomes = run_tau_sensitivity(runner, sizes.tau_methods, sizes.taus, sizes.study_seeds)
        sections.append(tau_section(outcomes, report_dir))
    if "negatives" in experiments:
        log("negative-sampling scaling")
        negative_outcomes = run_negative_sampling(
            runner, sizes.negative_methods, sizes.negatives, sizes.study_seeds
        )
        sections.append(negatives_section(negative_outcomes, report_dir))
    if "streaming" in experiments:
        log("streaming evaluation")
        days = sorted(read_data_schema(runner.data_dir)["days"])[: sizes.streaming_days]
        streaming = run_streaming(runner, sizes.streaming_methods, days, sizes.study_seeds)
        sections.append(streaming_section(streaming, report_dir))
    return sections, main_outcomes


def operator_sections(
    sizes: ExperimentSizes,
    experiments: Sequence[str],
    report_dir: str,
    log: Callable[[str], None] = print,
) -> tuple[list[ReportSection], RuntimeResult | None, list[ConflictRow] | None]:
    """Runs the operator-level studies (runtime, gradient conflict); returns sections and results.

    Example::

        sections, runtime, conflict = operator_sections(SIZES["tiny"], ["runtime"], "/tmp/r")
    """
    sections = []
    runtime = conflict = None
    if "runtime" in experiments:
        log("operator runtime")
        runtime = measure_runtime(
            sizes=sizes.runtime_sizes,
            batch=sizes.runtime_batch,
            repeats=sizes.runtime_repeats,
            memory_limit_bytes=sizes.runtime_memory_limit_bytes,
            time_limit_s=sizes.runtime_time_limit_s,
        )
        sections += runtime_sections(runtime, report_dir, sizes.runtime_repeats)
    if "conflict" in experiments:
        log("gradient conflict")
        conflict = measure_gradient_conflict(
            requests=sizes.conflict_requests,
            candidates=sizes.conflict_candidates,
            noise_levels=sizes.noise_levels,
            k=DEFAULT_K,
        )
        sections.append(
            conflict_section(
                conflict, report_dir, sizes.conflict_requests, sizes.conflict_candidates, DEFAULT_K
            )
        )
    return sections, runtime, conflict


def run_experiments(
    out_dir: str,
    sizes: ExperimentSizes,
    data_dir: str | None = None,
    experiments: Sequence[str] = EXPERIMENTS,
    simulation_seed: int = 0,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> str:
    """Runs the chosen experiments and writes the report; returns the path of ``report.md``.

    Without ``data_dir`` the training studies simulate their data into ``out_dir/data``.
    ``command`` (the command line, if any) is quoted in the report's header.

    Example::

        run_experiments("/tmp/report", SIZES["tiny"], experiments=["runtime", "conflict"])
    """
    unknown = sorted(set(experiments) - set(EXPERIMENTS))
    if unknown or not experiments:
        raise ValueError(
            f"unknown or no experiments {unknown}; choose from {', '.join(EXPERIMENTS)}"
        )
    started = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    header = [f"Command: `{command}`"] if command else []
    header.append(f"Machine: {machine_description()}; {gpu_description()}")
    sections: list[ReportSection] = []
    main_outcomes = None
    if set(experiments) & set(TRAINING_EXPERIMENTS):
        if data_dir is None:
            log("simulating and converting the data")
            data_dir, description = simulated_data(out_dir, sizes, simulation_seed)
        else:
            description = given_data(data_dir)
        header.append(description)
        runner = TrainingRunner(
            data_dir,
            out_dir,
            sizes.epochs,
            sizes.batch_size,
            sizes.eval_batch_size,
            log=log,
        )
        sections, main_outcomes = training_sections(runner, sizes, experiments, out_dir, log)
    more_sections, runtime, conflict = operator_sections(sizes, experiments, out_dir, log)
    sections += more_sections
    header += [*sizes.describe(), f"Run time: {time.perf_counter() - started:.0f} s"]
    closing = "\n".join(["## Summary", "", *summary_lines(main_outcomes, runtime, conflict)])
    path = write_report(out_dir, "DFTopK experiments", header, sections, closing)
    log(f"wrote {path}")
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags of ``python -m experiments.reproduce`` (see ``--help``).

    Example:
        >>> parse_args(["--report-dir", "/tmp/report", "--quick"]).size
        'quick'
    """
    parser = argparse.ArgumentParser(
        prog="python -m experiments.reproduce",
        description="Reproduce the DFTopK paper's experiments in one command: main table (every "
        "method, mean and spread over seeds), temperature sensitivity, negative-sampling "
        "scaling, streaming evaluation, operator runtime by n with log-log slopes, and the "
        "gradient-conflict measurement. Writes REPORT_DIR/report.md with every table (also as "
        "CSV) and PNG plot. Without --quick or --tiny the full sizes run (the longest; see "
        "experiments/report/experiment_sizes.py).",
    )
    parser.add_argument(
        "--data",
        dest="data_dir",
        metavar="DIR",
        default=None,
        help="converted TFRecord folder (python -m dftopk_cascade.pipelines.convert; simulated or "
        "real "
        "RecFlow); default: simulate RecFlow-format data into REPORT_DIR/data",
    )
    parser.add_argument(
        "--report-dir",
        metavar="REPORT_DIR",
        required=True,
        help="output folder: report.md, CSV tables, PNGs, trained models (models/), their records "
        "(runs/), simulated data",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="size",
        action="store_const",
        const="quick",
        default="full",
        help="small sizes: every experiment, a few minutes",
    )
    size.add_argument(
        "--tiny",
        dest="size",
        action="store_const",
        const="tiny",
        help="tiny sizes, for tests of the command itself",
    )
    parser.add_argument(
        "--experiments",
        nargs="+",
        choices=EXPERIMENTS,
        default=list(EXPERIMENTS),
        help="which experiments to run (default: all)",
    )
    parser.add_argument(
        "--simulation-seed",
        metavar="SEED",
        type=int,
        default=0,
        help="seed of the simulated data when --data is not given (default 0)",
    )
    return add_entry_flags(parser).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> str:
    """Command-line entry: ``python -m experiments.reproduce --help``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    sizes = SIZES[args.size]
    # The runtime sweep traces one tf.function per operator and size on purpose.
    tf.get_logger().setLevel("ERROR")
    return run_experiments(
        args.report_dir,
        sizes,
        args.data_dir,
        args.experiments,
        args.simulation_seed,
        log=lambda line: print(f"[reproduce {sizes.name}] {line}", flush=True),
        command=shlex.join(["python", "-m", "experiments.reproduce", *argv]),
    )


if __name__ == "__main__":
    run_command(main, "python -m experiments.reproduce")
