"""The method comparison's report from its run records: ``python -m experiments.comparison_report``.

Reads ``RESULTS/runs/*.json`` (``experiments.method_comparison``) and writes, beside them,
``report.md`` with:

- the temperature sweeps (validation-day joint recall per method and temperature, seed 0; the
  official run's value mapped to our scale marked), one PNG per training-negatives setting;
- the main table: each method at its best validation temperature, test-day metrics as mean +- std
  over seeds, and the paired difference to ``dftopk`` (same seeds, same requests) with its spread;
  a PNG with the seeds' spread;
- the embedding-start study (uniform vs the official N(0, 1));
- the rescoring: runs scored again under a newer ``dftopk_cascade.models.protocol.PROTOCOL_VERSION``
  (ties counted against the model), with the runs whose scores moved;
- for runs with a validation curve (``method_comparison --steps``), the learning curves and the
  paired test differences at the end of training (``experiments.learning_curves``);
- for another pre-ranking attention (``--prerank-attention din``), whether it changes the
  methods' ordering against the default attention's runs (``experiments.attention_comparison``);
- which of the paper's claims hold: DFTopK against each peer, from the paired seeds, and what
  training negatives change;

written with the experiments' one report builder (``experiments.report.report_document``), and one
CSV per table. Rows whose runs have not all finished are marked; the report says how many
of the planned runs are done, so it can be regenerated at any point of a long comparison.

Example::

    python -m experiments.comparison_report --results docs/results/method_comparison
    python -m experiments.comparison_report --results RESULTS --steps 5400  # RESULTS/steps5400/

The report is of one ``RunVariant`` (``--steps``, ``--dataset``, ``--prerank-attention``): the
committed one-pass runs on the simulated data by default.
"""

import argparse
import dataclasses
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence

from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines.simulator.simulated_world import scaled_world_size

from experiments.attention_comparison import attention_sections
from experiments.learning_curves import curve_sections
from experiments.method_comparison import (
    EXTENSIONS_PER_SIDE,
    METHOD_GROUPS,
    ONE_PASS,
    SINGLE_SEED_METHODS,
    SIZES,
    ComparisonSizes,
    RunKey,
    RunVariant,
    add_attention_flag,
    method_sweep,
    planned_runs,
    read_records,
    scale_file,
    stale_records,
    tuning_variant,
)
from experiments.report.report_document import ReportSection
from experiments.report.report_document import write_report as write_document
from experiments.report.report_files import new_figure, save_figure

#: The test-day metrics of the main table, after the headline.
REPORTED_METRICS: tuple[str, ...] = ("joint_recall", "recall@10@30", "recall@10@20", "ndcg@10")
BASELINE = "dftopk"
METHODS: tuple[str, ...] = tuple(method for group in METHOD_GROUPS for method in group)


def mean_std(values: Sequence[float]) -> str:
    """``mean +- std`` over seeds (``mean`` alone for one value), 4 decimals.

    Example:
        >>> mean_std([0.5, 0.7])
        '0.6000 ± 0.1414'
        >>> mean_std([0.5])
        '0.5000'
    """
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def sweep_rows(
    records: Mapping[str, dict],
    mapped: Mapping[str, float],
    negatives: int,
    variant: RunVariant = ONE_PASS,
) -> list[list]:
    """One row per (method, temperature) of the sweeps at ``negatives``: validation recall.

    Example:
        >>> sweep_rows({}, {"dftopk": 48.4}, 0)[-1]
        ['dftopk', 48.4, 'official, mapped', None, None]
    """
    tuning = tuning_variant(variant)
    rows = []
    for method in METHODS:
        if method not in mapped:
            continue
        grid, best = method_sweep(records, method, negatives, mapped[method], tuning)
        for temperature in grid:
            record = records.get(tuning.key(method, "uniform", temperature, negatives, 0).name())
            note = "official, mapped" if temperature == mapped[method] else ""
            if best == temperature:
                note = note + ", best" if note else "best"
                if temperature in (grid[0], grid[-1]):
                    note += " at the grid's end"
            value = None if record is None else round(record["validation"]["joint_recall"], 4)
            test = None if record is None else round(record["test"]["joint_recall"], 4)
            rows.append([method, temperature, note, value, test])
    return rows


def seed_values(
    records: Mapping[str, dict],
    method: str,
    temperature: float,
    negatives: int,
    variant: RunVariant = ONE_PASS,
) -> dict[int, dict]:
    """{seed: test metrics} of ``method`` at ``temperature`` (uniform start) in ``variant``.

    Example:
        >>> seed_values({}, "dftopk", 0.1, 0)
        {}
    """
    values = {}
    for record in records.values():
        key = RunKey.from_dict(record["key"])
        if (key.method, key.embedding_init, key.temperature, key.negatives) == (
            method,
            "uniform",
            temperature,
            negatives,
        ) and RunVariant.of(key) == variant:
            values[key.seed] = record["test"] | {
                "train_seconds": record["train_seconds"],
                # Records before trained_steps existed trained all their steps in one process.
                "timed_steps": record.get("trained_steps", record["train_steps"]),
                # Records before train_cpus existed do not say how many CPUs trained them.
                "train_cpus": record.get("train_cpus"),
                # Records before peak_memory_gib existed do not say either.
                "peak_memory_gib": record.get("peak_memory_gib"),
            }
    return dict(sorted(values.items()))


def tuned_runs(
    records: Mapping[str, dict],
    mapped: Mapping[str, float],
    negatives: int,
    tuned_negatives: int,
    variant: RunVariant = ONE_PASS,
) -> tuple[dict[str, float | None], dict[str, dict[int, dict]]]:
    """Each method's best temperature (tuned at ``tuned_negatives``, in ``variant``'s
    ``tuning_variant``) and its runs there.

    Returns ({method: best or None}, {method: {seed: test metrics}} for the tuned methods).

    Example:
        >>> tuned_runs({}, {"dftopk": 48.4}, 0, 0)
        ({'dftopk': None}, {})
    """
    bests = {
        method: method_sweep(
            records, method, tuned_negatives, mapped[method], tuning_variant(variant)
        )[1]
        for method in METHODS
        if method in mapped
    }
    per_method = {
        method: seed_values(records, method, best, negatives, variant)
        for method, best in bests.items()
        if best is not None
    }
    return bests, per_method


def main_rows(
    records: Mapping[str, dict],
    mapped: Mapping[str, float],
    negatives: int,
    seeds: Sequence[int],
    tuned_negatives: int = 0,
    variant: RunVariant = ONE_PASS,
) -> list[list]:
    """The main table at ``negatives``: each method at its best validation temperature.

    The temperature is the one tuned with ``tuned_negatives`` training negatives.

    Columns: method, temperature, seeds, the ``REPORTED_METRICS`` (mean +- std), the paired
    difference of joint recall to ``dftopk`` (mean +- std over common seeds, and on how many of
    them the method scores higher than ``dftopk``), milliseconds per step, and the CPUs each
    seed's training process could use ("?" for a record that predates the field).

    Example:
        >>> main_rows({}, {"dftopk": 48.4}, 0, (0, 1, 2))
        []
    """
    bests, per_method = tuned_runs(records, mapped, negatives, tuned_negatives, variant)
    baseline = per_method.get(BASELINE, {})
    rows = []
    for method, by_seed in per_method.items():
        if not by_seed:
            continue
        metrics = [
            mean_std([values[name] for values in by_seed.values()]) for name in REPORTED_METRICS
        ]
        common = sorted(set(by_seed) & set(baseline))
        if method == BASELINE or not common:
            paired = "" if method == BASELINE else None
        else:
            differences = [by_seed[s]["joint_recall"] - baseline[s]["joint_recall"] for s in common]
            higher = sum(difference > 0 for difference in differences)
            paired = mean_std(differences) + f" (n={len(common)}, higher on {higher})"
        timed = [values for values in by_seed.values() if values["timed_steps"]]
        step_ms = (
            round(statistics.fmean(1000 * v["train_seconds"] / v["timed_steps"] for v in timed))
            if timed
            else None
        )
        complete = (
            ""
            if len(by_seed) >= len(seeds) or (len(by_seed) == 1 and method in SINGLE_SEED_METHODS)
            else " (incomplete)"
        )
        cpus = ", ".join(str(values["train_cpus"] or "?") for values in by_seed.values())
        peaks = [v["peak_memory_gib"] for v in by_seed.values() if v["peak_memory_gib"]]
        rows.append(
            [
                method + complete,
                bests[method],
                len(by_seed),
                *metrics,
                paired,
                step_ms,
                cpus,
                max(peaks) if peaks else "?",
            ]
        )
    return rows


def init_rows(
    records: Mapping[str, dict], negatives: int, variant: RunVariant = ONE_PASS
) -> list[list]:
    """The embedding-start study at ``negatives``: every normal-start run beside the uniform best.

    Example:
        >>> init_rows({}, 0)
        []
    """
    rows = []
    for record in sorted(records.values(), key=lambda r: RunKey.from_dict(r["key"]).name()):
        key = RunKey.from_dict(record["key"])
        if (
            key.embedding_init == "normal"
            and key.negatives == negatives
            and RunVariant.of(key) == variant
        ):
            rows.append(
                [
                    key.method,
                    "normal N(0, 1)",
                    key.temperature,
                    round(record["validation"]["joint_recall"], 4),
                    round(record["test"]["joint_recall"], 4),
                ]
            )
    return rows


def plot_sweeps(rows: Sequence[Sequence], negatives: int, path: str) -> None:
    """Validation joint recall against temperature (log scale), one line per method.

    Example::

        plot_sweeps(sweep_rows(records, mapped, 0), 0, "/tmp/sweep.png")
    """
    figure = new_figure(8.5, 4.5)
    axes = figure.add_subplot()
    for method in METHODS:
        points = [(row[1], row[3]) for row in rows if row[0] == method and row[3] is not None]
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            axes.plot(xs, ys, marker="o", label=method)
    axes.set_xscale("log")
    axes.set_xlabel("temperature (DiffSort: steepness)")
    axes.set_ylabel("validation joint Recall@10@20")
    axes.set_title(f"Temperature sweeps, {negatives} training negatives, seed 0")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(figure, path)


def plot_main(
    records: Mapping[str, dict],
    rows: Sequence[Sequence],
    negatives: int,
    path: str,
    variant: RunVariant = ONE_PASS,
):
    """Test joint recall per method at its best temperature: each seed a dot, the mean a bar.

    Example::

        plot_main(records, main_rows(records, mapped, 0, (0, 1, 2)), 0, "/tmp/main.png")
    """
    figure = new_figure(7.0, 4.0)
    axes = figure.add_subplot()
    names = []
    for index, row in enumerate(rows):
        method = row[0].split(" ")[0]
        values = [
            v["joint_recall"]
            for v in seed_values(records, method, row[1], negatives, variant).values()
        ]
        axes.bar(index, statistics.fmean(values), color="#9ecae1")
        axes.scatter([index] * len(values), values, color="#08519c", zorder=3, s=12)
        names.append(method)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylabel("test joint Recall@10@20")
    low = min(
        (
            min(
                values["joint_recall"]
                for values in seed_values(records, n, r[1], negatives, variant).values()
            )
            for n, r in zip(names, rows, strict=True)
        ),
        default=0.0,
    )
    axes.set_ylim(max(0.0, low - 0.05), None)
    axes.set_title(f"Best temperature per method, {negatives} training negatives")
    axes.grid(True, axis="y", alpha=0.3)
    save_figure(figure, path)


#: A rescored run is listed when its joint recall moved by more than this (a trained tower's
#: moves by under 0.0001: it ties only an item with its own copy among the in-batch negatives).
RESCORING_LISTED_CHANGE = 0.005


def rescoring_rows(
    records: Mapping[str, dict], tolerance: float = RESCORING_LISTED_CHANGE
) -> list[list]:
    """Rescored runs whose validation or test joint recall moved by more than ``tolerance``.

    Rows: run, validation before and after, test before and after, and the largest change of
    any metric defined (not NaN) in both scorings, rounded to 4 decimals.

    Example:
        >>> moved = {"key": {}, "validation": {"joint_recall": 0.1}, "test": {"joint_recall": 0.2},
        ...          "rescored": {"previous": {"validation": {"joint_recall": 0.3},
        ...                                    "test": {"joint_recall": 0.2}}}}
        >>> rescoring_rows({"a": moved})
        [['a', 0.3, 0.1, 0.2, 0.2, 0.2]]
    """
    rows = []
    for name, record in sorted(records.items()):
        previous = record.get("rescored", {}).get("previous")
        if previous is None:
            continue
        joint = [
            (previous[part]["joint_recall"], record[part]["joint_recall"])
            for part in ("validation", "test")
        ]
        if any(abs(after - before) > tolerance for before, after in joint):
            changes = [
                abs(record[part][metric] - value)
                for part in ("validation", "test")
                for metric, value in previous[part].items()
                if metric in record[part] and not math.isnan(value + record[part][metric])
            ]
            values = [*joint[0], *joint[1], max(changes, default=0.0)]
            rows.append([name, *(round(value, 4) for value in values)])
    return rows


def write_report(
    results_dir: str, sizes_name: str = "paper", variant: RunVariant = ONE_PASS
) -> str:
    """Writes ``report.md``, the CSVs and the PNGs of ``variant``'s runs; returns the markdown.

    The committed one-pass runs' report goes to ``results_dir``, another variant's to its own
    folder in it (``report_dir``). The learning curves (``experiments.learning_curves``) and
    their paired test differences end the report when the variant's runs have curves; a
    variant with another pre-ranking attention adds whether it changes the methods' ordering
    (``experiments.attention_comparison``).

    Example::

        write_report("docs/results/method_comparison")
    """
    # The variant's runs, and the sweep that tuned their temperatures (a step budget's is the
    # one-pass sweep): the plan and the tables read both, the studies only the variant's.
    tuning = tuning_variant(variant)
    every_record = read_records(results_dir)
    records = variant_records(every_record, variant, tuning)
    own = variant_records(records, variant)
    with open(scale_file(results_dir, variant.dataset)) as file:
        scale = json.load(file)
    out_dir = report_dir(results_dir, variant)
    os.makedirs(out_dir, exist_ok=True)
    sizes = SIZES[sizes_name]
    header = header_lines(results_dir, sizes_name, records, scale, variant)
    sections: list[ReportSection] = []
    # A step budget on the simulated data trains at the first negatives setting only.
    for negatives in sizes.negatives[:1] if variant.simulated_budget else sizes.negatives:
        sections += negatives_sections(out_dir, records, scale["mapped"], sizes, negatives, variant)
    sections += rescoring_sections(own)
    sections += curve_sections(own, out_dir)
    if variant.prerank_attention is not None:
        default = variant_records(
            every_record, dataclasses.replace(variant, prerank_attention=None)
        )
        attention = variant.prerank_attention
        planned = planned_runs(records, sizes, scale["mapped"], variant)
        sections += attention_sections(
            list(own.values()),
            list(default.values()),
            attention,
            planned_methods=[key.method for key in planned],
        )
    closing = claims_section(records, scale["mapped"]["uniform"], sizes, variant)
    path = write_document(out_dir, TITLE, header, sections, closing)
    with open(path) as file:
        return file.read()


def variant_records(records: Mapping[str, dict], *variants: RunVariant) -> dict[str, dict]:
    """The records of runs in any of ``variants``, by run name.

    Example:
        >>> records = {"a": {"key": {"method": "bce"}}, "b": {"key": {"method": "bce", "steps": 9}}}
        >>> list(variant_records(records, RunVariant(steps=9)))
        ['b']
    """
    return {
        name: record
        for name, record in records.items()
        if RunVariant.of(RunKey.from_dict(record["key"])) in variants
    }


def report_dir(results_dir: str, variant: RunVariant = ONE_PASS) -> str:
    """The folder of ``variant``'s report: ``results_dir`` for the one-pass runs, else a folder
    in it named after the variant.

    Example:
        >>> report_dir("r"), report_dir("r", RunVariant(5400, "movielens"))
        ('r', 'r/steps5400-movielens')
        >>> report_dir("r", RunVariant(5400, prerank_attention="din"))
        'r/steps5400-din'
    """
    parts = [] if variant.steps is None else [f"steps{variant.steps}"]
    parts += [] if variant.dataset is None else [variant.dataset]
    parts += [] if variant.prerank_attention is None else [variant.prerank_attention]
    return os.path.join(results_dir, "-".join(parts)) if parts else results_dir


TITLE = "Method comparison: DFTopK against the LCRON losses and the peers"


def header_lines(
    results_dir: str,
    sizes_name: str,
    records: Mapping[str, dict],
    scale: Mapping,
    variant: RunVariant = ONE_PASS,
) -> list[str]:
    """The report's header: its command, how many runs are done, the protocol, the score scale.

    Example:
        >>> spreads = dict.fromkeys(["official", "uniform", "normal"], {"retrieval": 1.0,
        ...                                                         "prerank": 2.0})
        >>> scale = {"mapped": {"uniform": {}, "normal": {}}, "spreads": spreads}
        >>> header_lines("RESULTS", "tiny", {}, scale)[0]
        'Generated by `python -m experiments.comparison_report --results RESULTS --sizes tiny` ...'
    """
    planned = planned_runs(records, SIZES[sizes_name], scale["mapped"], variant)
    done = sum(key.name() in records for key in planned)
    steps = "" if variant.steps is None else f" --steps {variant.steps}"
    dataset = "" if variant.dataset is None else f" --dataset {variant.dataset}"
    data = "" if variant.dataset is None else " --data DATA"
    attention = variant.prerank_attention
    attention = "" if attention is None else f" --prerank-attention {attention}"
    lines = [
        f"Generated by `python -m experiments.comparison_report --results {results_dir} --sizes "
        f"{sizes_name}{steps}{dataset}{attention}` from the run records of `python -m "
        f"experiments.method_comparison --results {results_dir} --work-dir WORK --sizes "
        f"{sizes_name}{steps}{data}{attention}`.",
        _status_line(done, len(planned)),
    ]
    stale = stale_records(records)
    if stale:
        lines.append(
            f"**{len(stale)} of the {len(records)} records are still scored under an older "
            "evaluation protocol** (`dftopk_cascade.models.protocol.PROTOCOL_VERSION`); the "
            "comparison's "
            "driver scores them again from their saved models before it trains anything."
        )
    sample = next(iter(variant_records(records, variant).values()), None)
    if sample is not None:
        lines.append(
            f"Protocol: training days {', '.join(sample['train_days'])} ({_passes(sample)}, "
            f"{sample['train_steps']} steps of {sample['batch_size']} requests), validation day "
            f"{sample['validation_day']}, test day {sample['test_day']}; evaluation on "
            f"{sample['evaluated_requests']} requests of each day with 160 in-batch negatives "
            "(200 candidates per request), metrics as in `models/protocol.py`. Adam 1e-2, "
            "embedding size 8; uniform embedding start unless the row says otherwise."
            + (
                ""
                if variant.prerank_attention is None
                else f" Pre-ranking target attention: {variant.prerank_attention} "
                "(DIN: an MLP over query, key, their difference and product)."
            )
        )
        if variant.dataset is None:
            lines.append(world_line(sizes_name, len(sample["train_days"]) + 2))
    spreads = scale["spreads"]
    lines.append(
        "Temperature scale (`experiments.temperature_scale`): mean per-request std of the initial "
        f"scores, retrieval / pre-ranking: official models {spreads['official']['retrieval']:.3g}"
        f" / {spreads['official']['prerank']:.3g}, ours with the uniform start "
        f"{spreads['uniform']['retrieval']:.3g} / {spreads['uniform']['prerank']:.3g}, with the "
        f"normal start {spreads['normal']['retrieval']:.3g} / {spreads['normal']['prerank']:.3g}."
        " The official temperature of each method is mapped by that ratio."
    )
    return lines


def world_line(sizes_name: str, days: int) -> str:
    """The simulated world of ``days`` days: its users and videos, and the one-pass world's when
    it differs (the simulator scales RecFlow's users and videos per request to the requests it
    simulates, so more days make a larger world, not only more data).

    Example:
        >>> world_line("paper", 9)
        'Simulated world: 9 days of 150,000 requests, 6,097 users, 1,306,452 videos.'
    """
    sizes = SIZES[sizes_name]
    world = scaled_world_size(days * sizes.requests_per_day)
    line = (
        f"Simulated world: {days} days of {sizes.requests_per_day:,} requests, "
        f"{world.users:,} users, {world.items:,} videos."
    )
    if days == sizes.days:
        return line
    one_pass = scaled_world_size(sizes.days * sizes.requests_per_day)
    return line + (
        " The simulator scales RecFlow's users and videos per request to the requests it "
        f"simulates, so this world is {world.items / one_pass.items:.1f}x the one-pass "
        f"comparison's ({sizes.days} days, {one_pass.users:,} users, {one_pass.items:,} "
        "videos): compare methods within this report (the curves' ordering below), not its "
        "figures with the one-pass report's."
    )


MAIN_COLUMNS: tuple[str, ...] = (
    "method",
    "best temperature",
    "seeds",
    *(f"test {metric}" for metric in REPORTED_METRICS),
    "paired Δ joint recall vs dftopk",
    "ms per step",
    "training CPUs per seed",
    "peak memory GiB",
)
SWEEP_COLUMNS: tuple[str, ...] = (
    "method",
    "temperature",
    "note",
    "validation joint recall",
    "test joint recall",
)
INIT_COLUMNS: tuple[str, ...] = (
    "method",
    "embedding start",
    "temperature",
    "validation joint recall",
    "test joint recall",
)
RESCORING_COLUMNS: tuple[str, ...] = (
    "run",
    "validation before",
    "validation after",
    "test before",
    "test after",
    "largest change, any metric",
)


def negatives_sections(
    results_dir: str,
    records: Mapping[str, dict],
    mapped_all: Mapping[str, Mapping[str, float]],
    sizes: ComparisonSizes,
    negatives: int,
    variant: RunVariant = ONE_PASS,
) -> list[ReportSection]:
    """The main table at ``negatives``; where the temperatures are tuned, the sweeps and the
    embedding-start study too. Draws their PNGs into ``results_dir``.

    Example:
        >>> mapped = {"uniform": {"dftopk": 1.0}, "normal": {"dftopk": 9.0}}
        >>> [s.title for s in negatives_sections(tmp_dir, {}, mapped, SIZES["tiny"], 0)]
        ['0 in-batch training negatives', 'Temperature sweeps, 0 training negatives']
    """
    mapped = mapped_all["uniform"]
    tuned = sizes.negatives[0]
    main = main_rows(records, mapped, negatives, sizes.seeds, tuned, variant)
    figures = []
    if main:
        figures.append(f"main_neg{negatives}.png")
        plot_main(records, main, negatives, os.path.join(results_dir, figures[0]), variant)
    sections = [
        ReportSection(
            f"{negatives} in-batch training negatives",
            _main_text(tuned) if main else "No method has finished its sweep and a test run yet.",
            f"main_neg{negatives}",
            MAIN_COLUMNS,
            main,
            figures,
        )
    ]
    if negatives != tuned:
        return sections
    sweep = sweep_rows(records, mapped, negatives, variant)
    figures = []
    if any(row[3] is not None for row in sweep):
        figures.append(f"sweep_neg{negatives}.png")
        plot_sweeps(sweep, negatives, os.path.join(results_dir, figures[0]))
    sections.append(
        ReportSection(
            f"Temperature sweeps, {negatives} training negatives",
            "Seed 0; the best by validation joint recall is chosen. A best at an end of the "
            f"grid adds a temperature sqrt(10) beyond it, up to {EXTENSIONS_PER_SIDE} times a "
            "side; a best still at an end says so."
            + (
                ""
                if tuning_variant(variant) == variant
                else " The one-pass sweep: a step budget trains at its best, with no sweep of "
                "its own."
            ),
            f"sweep_neg{negatives}",
            SWEEP_COLUMNS,
            sweep,
            figures,
        )
    )
    study = init_rows(records, negatives, variant)
    if study:
        sections.append(
            ReportSection(
                f"Embedding start, {negatives} training negatives",
                "Seed 0; the official N(0, 1) start against the uniform one.",
                f"init_neg{negatives}",
                INIT_COLUMNS,
                study,
            )
        )
    return sections


def _main_text(tuned: int) -> str:
    return (
        f"Each method at its best validation temperature (tuned with {tuned} training "
        "negatives); test-day metrics, mean ± std over seeds; the paired difference "
        'subtracts dftopk\'s run of the same seed, and "higher on" counts the seeds '
        'where the method beats it. "ms per step" is each run\'s wall time over the '
        "steps it trained in that time (a run resumed after a stop: its last process's), "
        "validation points included, on a shared machine (other jobs, pauses for benchmarks, "
        "runs trained side by side on fewer CPUs: the next column, in seed order), not a "
        "speed comparison: `python -m benchmarks.bench_train` times methods side by side. "
        "\"peak memory\" is the largest of the seeds' peak resident memory (a run process's "
        "training and scoring; a resumed run: its last process's; ? for records before it)."
    )


def _status_line(done: int, planned: int) -> str:
    if done == planned:
        return f"**Status: all {planned} planned runs are done.**"
    return (
        f"**Status: {done} of the {planned} runs planned so far are done** (runs that need a "
        "sweep's best temperature are planned when the sweep is complete)."
    )


def rescoring_sections(records: Mapping[str, dict]) -> list[ReportSection]:
    """The rescoring section (none when no run was scored again): how far the metrics moved.

    Example:
        >>> rescoring_sections({})
        []
    """
    rescored = [record for record in records.values() if "rescored" in record]
    if not rescored:
        return []
    rows = rescoring_rows(records)
    moves = {
        metric: sorted(
            abs(record["test"][metric] - record["rescored"]["previous"]["test"][metric])
            for record in rescored
            if metric in record["rescored"]["previous"]["test"]
        )
        for metric in REPORTED_METRICS
    }
    summary = ", ".join(
        f"{metric} by {statistics.median(values):.4f} (largest {values[-1]:.4f})"
        for metric, values in moves.items()
        if values
    )
    text = (
        f"{len(rescored)} runs were scored again from their saved models after the protocol "
        "changed to count ties in scores against the model (version 1 broke ties by the "
        "candidates' stored order, which puts the ground truth first, so a model giving "
        "candidates equal scores was handed them). Median move of the test metrics: "
        f"{summary}. Joint recall moved by more than {RESCORING_LISTED_CHANGE} in "
        f"{len(rows)} of them{':' if rows else '.'}"
    )
    return [ReportSection("Rescoring", text, "rescoring", RESCORING_COLUMNS, rows)]


def claims_section(
    records: Mapping[str, dict],
    mapped: Mapping[str, float],
    sizes: ComparisonSizes,
    variant: RunVariant = ONE_PASS,
) -> str:
    """The report's closing: the paper's claim (DFTopK trains better) against each peer, and
    what training negatives change, worked out from the seeds' paired differences.

    Example:
        >>> print(claims_section({}, {"dftopk": 1.0}, SIZES["tiny"]))
        ## Which of the paper's claims hold here
        <BLANKLINE>
        No method has a test run beside dftopk yet.
    """
    lines = [
        "## Which of the paper's claims hold here",
        "",
        "The paper's claim is that DFTopK trains the cascade better than the LCRON losses and the "
        "other peers. Against each peer, at each training-negatives setting, from the paired "
        "seeds of the main tables (same seed, same test requests): it holds where DFTopK scores "
        "the higher test joint recall on every paired seed, it is refuted where the peer does, "
        "and it is not shown otherwise.",
        "",
    ]
    tuned = sizes.negatives[0]
    claims = []
    means: dict[str, dict[int, float]] = {}
    for negatives in sizes.negatives:
        _, per_method = tuned_runs(records, mapped, negatives, tuned, variant)
        baseline = per_method.get(BASELINE, {})
        for method, by_seed in per_method.items():
            if by_seed:
                values = [values["joint_recall"] for values in by_seed.values()]
                means.setdefault(method, {})[negatives] = statistics.fmean(values)
            common = sorted(set(by_seed) & set(baseline))
            if method == BASELINE or not common:
                continue
            claims.append(_claim_line(method, negatives, by_seed, baseline, common))
    if not claims:
        return "\n".join([*lines[:2], "No method has a test run beside dftopk yet."])
    lines += claims
    if len(sizes.negatives) > 1:
        lines += ["", "Test joint recall (mean over seeds) by training negatives:", ""]
        lines += [
            f"- {method}: " + " -> ".join(f"{by_negatives[n]:.4f} ({n})" for n in sizes.negatives)
            for method, by_negatives in means.items()
            if set(by_negatives) == set(sizes.negatives)
        ]
    return "\n".join(lines)


def _claim_line(
    method: str,
    negatives: int,
    by_seed: Mapping[int, dict],
    baseline: Mapping[int, dict],
    common: Sequence[int],
) -> str:
    differences = [by_seed[s]["joint_recall"] - baseline[s]["joint_recall"] for s in common]
    higher = sum(difference > 0 for difference in differences)
    if higher == 0:
        verdict = "holds (dftopk higher on every paired seed)"
    elif higher == len(common):
        verdict = f"refuted ({method} higher on every paired seed)"
    else:
        verdict = f"not shown ({method} higher on {higher} of {len(common)} paired seeds)"
    return (
        f"- dftopk better than {method}, {negatives} training negatives: {verdict}; paired Δ "
        f"{method} - dftopk {mean_std(differences)} over {len(common)} seed"
        + ("s." if len(common) > 1 else ".")
    )


def _passes(record: Mapping) -> str:
    passes = record.get("passes", 1)
    return "one pass" if passes == 1 else f"{passes:g} passes"


def add_variant_flags(parser: argparse.ArgumentParser) -> None:
    """--steps, --dataset, --prerank-attention: which runs the report is of (default: the one-pass
    simulated ones)."""
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="report the runs of this step budget (method_comparison --steps); their report "
        "goes to RESULTS/steps<STEPS>",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="report the runs of this dataset (its name in the runs' names, e.g. movielens for "
        "method_comparison --data of a MovieLens folder); their report goes to RESULTS/<name>",
    )
    add_attention_flag(parser)


def main(argv: Sequence[str] | None = None) -> str:
    """Command-line entry; returns the report's markdown.

    Example::

        python -m experiments.comparison_report --results docs/results/method_comparison
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="the comparison's results folder")
    parser.add_argument("--sizes", choices=sorted(SIZES), default="paper", help="protocol sizes")
    add_variant_flags(parser)
    arguments = add_entry_flags(parser).parse_args(argv)
    variant = RunVariant(arguments.steps, arguments.dataset, arguments.prerank_attention)
    text = write_report(arguments.results, arguments.sizes, variant)
    print(text)
    return text


if __name__ == "__main__":
    run_command(main, "python -m experiments.comparison_report")
