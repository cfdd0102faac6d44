"""Learning curves of the runs that measured one: validation joint recall against steps.

A run of ``experiments.runner`` with ``curve_every`` saves ``curve: [[step, joint recall], ...]``
in its record. Here the runs with a curve are grouped by method and setting (temperature,
training negatives, embedding start), their points averaged over seeds with the spread
(min-max) drawn as a band, and each group's test joint recall at the end of training compared
with ``dftopk``'s run of the same seed (the paired difference). Whether the methods' ordering
changes with training length is read off the curves themselves: at every curve step, the methods
in order of mean validation joint recall, and each one's paired validation difference from
``dftopk`` (same runs, same world, only the step differs). ``curve_sections`` gives the report
sections (``experiments.comparison_report`` puts them in its report).

Example:
    >>> key = {"method": "dftopk", "embedding_init": "uniform", "temperature": 0.1,
    ...        "negatives": 0, "seed": 0}
    >>> record = {"key": key, "curve": [[2, 0.4], [4, 0.5]], "test": {"joint_recall": 0.5}}
    >>> curve_rows(curve_groups({"a": record}))[1]
    ['dftopk', 0.1, 0, 'uniform', 4, 1, 0.5, 0.5, 0.5]
"""

import os
import statistics
from collections.abc import Mapping, Sequence

from experiments.report.report_document import ReportSection
from experiments.report.report_files import new_figure, save_figure
from experiments.run_records import RunKey

#: The method every other one is paired against.
BASELINE = "dftopk"
#: A group of runs: (method, temperature, training negatives, embedding start).
Group = tuple[str, float | None, int, str]


def run_group(key: RunKey) -> Group:
    """The group a run belongs to: its key but for the seed (and the variant's length, dataset
    and attention, which a report holds fixed).

    Example:
        >>> run_group(RunKey("bce", "uniform", 1.0, 40, seed=2))
        ('bce', 1.0, 40, 'uniform')
    """
    return key.method, key.temperature, key.negatives, key.embedding_init


CURVE_COLUMNS: tuple[str, ...] = (
    "method",
    "temperature",
    "training negatives",
    "embedding start",
    "step",
    "seeds",
    "mean validation joint recall",
    "min",
    "max",
)
PAIRED_COLUMNS: tuple[str, ...] = (
    "method",
    "temperature",
    "training negatives",
    "embedding start",
    "steps",
    "paired seeds",
    "test joint recall (mean)",
    "paired Δ test joint recall vs dftopk (mean ± std)",
    "higher than dftopk on",
)


ORDER_COLUMNS: tuple[str, ...] = (
    "step",
    "methods, highest mean validation joint recall first",
    "paired Δ validation joint recall vs dftopk (mean ± std, higher on)",
)


def curve_groups(records: Mapping[str, dict]) -> dict[Group, dict[int, dict]]:
    """The records that have a curve, by group and seed.

    Example:
        >>> curve_groups({"a": {"key": {"method": "bce"}, "test": {}}})
        {}
    """
    groups: dict[Group, dict[int, dict]] = {}
    for record in records.values():
        if not record.get("curve"):
            continue
        key = RunKey.from_dict(record["key"])
        groups.setdefault(run_group(key), {})[key.seed] = record
    return dict(sorted(groups.items(), key=lambda item: _group_order(item[0])))


def curve_rows(groups: Mapping[Group, Mapping[int, dict]]) -> list[list]:
    """One row per group and step: the seeds measured there, the mean, min and max recall.

    Example:
        >>> runs = {s: {"curve": [[5, v]]} for s, v in enumerate([0.2, 0.4])}
        >>> curve_rows({("bce", 1.0, 0, "uniform"): runs})
        [['bce', 1.0, 0, 'uniform', 5, 2, 0.3, 0.2, 0.4]]
    """
    rows = []
    for group, by_seed in groups.items():
        for step, values in _points_by_step(by_seed).items():
            summary = (statistics.fmean(values), min(values), max(values))
            rows.append([*group, step, len(values), *(round(value, 4) for value in summary)])
    return rows


def paired_rows(groups: Mapping[Group, Mapping[int, dict]]) -> list[list]:
    """Each group's test joint recall at the end of training, paired by seed with ``dftopk``'s
    group at the same training negatives and embedding start (the one with most seeds).

    Columns: ``PAIRED_COLUMNS``; the baseline's row has no difference.

    Example:
        >>> def run(value):
        ...     return {"curve": [[5, value]], "test": {"joint_recall": value}, "train_steps": 5}
        >>> groups = {("dftopk", 0.1, 0, "uniform"): {0: run(0.5), 1: run(0.6)},
        ...           ("bce", 1.0, 0, "uniform"): {0: run(0.4), 1: run(0.7)}}
        >>> paired_rows(groups)[1]
        ['bce', 1.0, 0, 'uniform', 5, 2, 0.55, '0.0000 ± 0.1414', '1 of 2']
    """
    rows = []
    for group, by_seed in groups.items():
        tests = [record["test"]["joint_recall"] for record in by_seed.values()]
        steps = max(record["train_steps"] for record in by_seed.values())
        seeds, difference, higher = _paired(groups, group)
        mean = round(statistics.fmean(tests), 4)
        rows.append([*group, steps, seeds, mean, difference, higher])
    return rows


def ordering_rows(groups: Mapping[Group, Mapping[int, dict]]) -> list[list]:
    """At every curve step, the groups in order of mean validation joint recall over their seeds
    there, and each group's paired validation difference from ``dftopk`` at that step.

    Columns: ``ORDER_COLUMNS``. A change of order between the first steps and the last is the
    answer to "does training length change the verdict", free of any other difference. Each
    method enters once (``tuned_groups``): where its sweep has curves too, the order is of the
    methods, not of their temperatures.

    Example:
        >>> def run(*values):
        ...     return {"curve": [[5, values[0]], [10, values[1]]]}
        >>> groups = {("dftopk", 0.1, 0, "uniform"): {0: run(0.5, 0.6)},
        ...           ("bce", 1.0, 0, "uniform"): {0: run(0.4, 0.7)}}
        >>> for row in ordering_rows(groups):
        ...     print(row)
        [5, 'dftopk > bce', 'bce -0.1000 ± 0.0000 (0 of 1)']
        [10, 'bce > dftopk', 'bce +0.1000 ± 0.0000 (1 of 1)']
    """
    groups = tuned_groups(groups)
    points = {group: _points_by_seed_and_step(by_seed) for group, by_seed in groups.items()}
    baselines = {
        group: _points_by_seed_and_step(baseline)
        for group in groups
        if group[0] != BASELINE and (baseline := _baseline(groups, group)) is not None
    }
    steps = sorted({step for by_step in points.values() for step in by_step})
    rows = []
    for step in steps:
        means = {
            group: statistics.fmean(by_step[step].values())
            for group, by_step in points.items()
            if step in by_step
        }
        order = sorted(means, key=lambda group: -means[group])
        differences = []
        for group in (group for group in order if group in baselines):
            ours = points[group][step]
            theirs = baselines[group].get(step, {})
            values = [ours[seed] - theirs[seed] for seed in sorted(set(ours) & set(theirs))]
            if values:
                mean, spread, higher = difference_summary(values)
                differences.append(f"{group[0]} {mean:+.4f} ± {spread:.4f} ({higher})")
        rows.append([step, " > ".join(group[0] for group in order), "; ".join(differences)])
    return rows


def tuned_groups(groups: Mapping[Group, Mapping[int, dict]]) -> dict[Group, Mapping[int, dict]]:
    """Each method's group with the most seeds (its tuned temperature) at the main setting: the
    training negatives and embedding start of ``dftopk``'s group with the most seeds (else of the
    first group).

    Example:
        >>> runs = {s: {} for s in range(3)}
        >>> groups = {("dftopk", 0.1, 0, "uniform"): runs, ("dftopk", 1.0, 0, "uniform"): {0: {}},
        ...           ("dftopk", 0.1, 40, "uniform"): runs, ("bce", 1.0, 0, "uniform"): runs}
        >>> list(tuned_groups(groups))
        [('dftopk', 0.1, 0, 'uniform'), ('bce', 1.0, 0, 'uniform')]
    """
    if not groups:
        return {}
    main = max(groups, key=lambda group: (group[0] == BASELINE, len(groups[group])))
    chosen: dict[str, Group] = {}
    for group, by_seed in groups.items():
        best = chosen.get(group[0])
        if group[2:] == main[2:] and (best is None or len(by_seed) > len(groups[best])):
            chosen[group[0]] = group
    return {group: groups[group] for group in chosen.values()}


def _paired(groups: Mapping[Group, Mapping[int, dict]], group: Group) -> tuple[int, str, str]:
    """(paired seeds, mean ± std of the differences, "k of n") against the baseline; the
    baseline itself (or a group without one) gets its seeds and blanks."""
    by_seed = groups[group]
    baseline = _baseline(groups, group)
    common = [] if baseline is None else sorted(set(by_seed) & set(baseline))
    if group[0] == BASELINE or not common:
        return len(by_seed), "", ""
    differences = [
        by_seed[seed]["test"]["joint_recall"] - baseline[seed]["test"]["joint_recall"]
        for seed in common
    ]
    mean, spread, higher = difference_summary(differences)
    return len(common), f"{mean:.4f} ± {spread:.4f}", higher


def difference_summary(differences: Sequence[float]) -> tuple[float, float, str]:
    """(mean, sample std (0 for one), "k of n" positive) of paired differences.

    Example:
        >>> difference_summary([1.0, -1.0, 3.0])
        (1.0, 2.0, '2 of 3')
    """
    spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
    higher = sum(difference > 0 for difference in differences)
    return statistics.fmean(differences), spread, f"{higher} of {len(differences)}"


def plot_curves(groups: Mapping[Group, Mapping[int, dict]], path: str) -> None:
    """Validation joint recall against steps: each group's mean over seeds, its min-max band.

    Example:
        >>> runs = {s: {"curve": [[5, v], [10, v + 0.1]]} for s, v in enumerate([0.2, 0.4])}
        >>> plot_curves({("bce", 1.0, 0, "uniform"): runs}, tmp_dir + "/curves.png")
        >>> os.path.getsize(tmp_dir + "/curves.png") > 0
        True
    """
    figure = new_figure(7.0, 4.5)
    axes = figure.add_subplot()
    for group, by_seed in groups.items():
        points = _points_by_step(by_seed)
        steps = list(points)
        means = [statistics.fmean(values) for values in points.values()]
        (line,) = axes.plot(steps, means, marker="o", markersize=3, label=_label(group))
        axes.fill_between(
            steps,
            [min(values) for values in points.values()],
            [max(values) for values in points.values()],
            color=line.get_color(),
            alpha=0.2,
        )
    axes.set_xlabel("training step")
    axes.set_ylabel("validation joint Recall@10@20")
    axes.set_title("Learning curves: mean over seeds, band from min to max")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    save_figure(figure, path)


def curve_sections(records: Mapping[str, dict], report_dir: str) -> list[ReportSection]:
    """The learning curves (a PNG and its points), the methods' ordering at every curve step,
    and the paired test differences at the end of training; none when no record has a curve.
    Draws ``report_dir/learning_curves.png``.

    Example:
        >>> curve_sections({}, tmp_dir)
        []
    """
    groups = curve_groups(records)
    if not groups:
        return []
    figure = "learning_curves.png"
    plot_curves(groups, os.path.join(report_dir, figure))
    curves = ReportSection(
        "Learning curves",
        "Validation joint recall every few steps (the runs' `curve_every`), mean over seeds; "
        "the band spans the seeds' lowest to highest value.",
        "learning_curves",
        CURVE_COLUMNS,
        curve_rows(groups),
        (figure,),
    )
    ordering = ReportSection(
        "Does the ordering change with length?",
        "At every curve step, the methods in order of their mean validation joint recall over "
        "seeds (each method's runs with the most seeds, at the main setting: "
        f"{BASELINE}'s training negatives and start), and each method's paired difference from "
        f"{BASELINE} there (same seeds; "
        '"higher on" counts the seeds where it beats it). The runs, data and world are the '
        "same at every step, so a change of order between the early steps (on the simulated "
        "data, the one-pass comparison trains about 1,000 steps) and the last is the effect of "
        "training length alone.",
        "learning_curves_ordering",
        ORDER_COLUMNS,
        ordering_rows(groups),
    )
    paired = ReportSection(
        "Paired test differences at the end of training",
        "Test-day joint recall of the runs with a curve, at their last step; the paired "
        f"difference subtracts {BASELINE}'s run of the same seed (same training negatives and "
        'embedding start), and "higher than dftopk on" counts the seeds where the method beats it.',
        "learning_curves_paired",
        PAIRED_COLUMNS,
        paired_rows(groups),
    )
    return [curves, ordering, paired]


def _points_by_seed_and_step(by_seed: Mapping[int, dict]) -> dict[int, dict[int, float]]:
    """{step: {seed: value}}."""
    points: dict[int, dict[int, float]] = {}
    for seed, record in by_seed.items():
        for step, value in record["curve"]:
            points.setdefault(int(step), {})[seed] = float(value)
    return points


def _points_by_step(by_seed: Mapping[int, dict]) -> dict[int, list[float]]:
    """{step: the seeds' values there}, steps in order."""
    points = _points_by_seed_and_step(by_seed)
    return {step: list(points[step].values()) for step in sorted(points)}


def _baseline(
    groups: Mapping[Group, Mapping[int, dict]], group: Group
) -> Mapping[int, dict] | None:
    """``dftopk``'s runs at ``group``'s negatives and start (its group with most seeds)."""
    candidates = [
        by_seed
        for (method, _, negatives, init), by_seed in groups.items()
        if method == BASELINE and (negatives, init) == group[2:]
    ]
    return max(candidates, key=len, default=None)


def _group_order(group: Group) -> tuple:
    """The baseline first, then by method, negatives, start and temperature."""
    method, temperature, negatives, init = group
    return (method != BASELINE, method, negatives, init, temperature or 0.0)


def _label(group: Group) -> str:
    method, temperature, negatives, init = group
    start = "" if init == "uniform" else f", {init} start"
    shown = "default" if temperature is None else f"{temperature:g}"
    return f"{method} (t={shown}, {negatives} neg{start})"
