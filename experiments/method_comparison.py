"""The paper-protocol method comparison, resumable: ``python -m experiments.method_comparison``.

Settles DFTopK against the LCRON permutation losses and the other peers the way the paper's
protocol does, with every method tuned the same way:

- data: simulated RecFlow, 9 days x 150,000 requests (seed 42); training is one pass over
  the first 7 days (about 1,030 steps of 1,024 requests, like the paper's one pass over 22
  days), the 8th day is the validation day and the 9th the held-out test day;
- a temperature sweep per method (``sweep_temperatures``: 4 values spanning 100x plus the
  official run's value mapped to our score scale, ``experiments.temperature_scale``), seed 0,
  scored on the validation day, and extended past an end of the grid while the best value sits
  on that end (``tuned_grid``);
- each method at its best validation temperature, trained again with more seeds and scored on
  the test day (seed 0 is the sweep's run);
- with 0 in-batch training negatives (the paper's main runs), where the temperatures are tuned,
  and with 40, at each method's temperature tuned at 0 (one tuning rule for every method);
- the paper's two-stage cascade (``--no-rank-stage``): the ranking model shares no variable with
  retrieval and pre-ranking and has its own loss term, so leaving it out trains them the same
  (``tests/models/test_cascade.py``) in about half the step; the first run of the comparison
  (dftopk at 0.01, 0 negatives) trained it too (its record has no ``rank_stage``);
- the embedding start (``--embedding-init``): DFTopK and LCRON-NeuralSort also trained from the
  official N(0, 1) start, at the official temperature mapped to that start and at the scale-
  equivalent of their best uniform-start temperature.

Each run is a ``RunKey`` and is trained by the one runner (``experiments.runner``). Its record
(``experiments.run_records``: settings, validation and test metrics, steps, seconds, the code's
commit) is written atomically to ``RESULTS/runs/<name>.json`` when the run ends; a run whose
record exists is never trained again, and an interrupted run resumes from its last checkpoint
(a pass is split into ``CHECKPOINTS_PER_PASS`` Keras epochs). A record saves the
``dftopk_cascade.models.protocol.PROTOCOL_VERSION`` it was scored under; records scored under an
older one are scored again from the run's saved model (``rescore_one``) before anything trains,
since the plan picks temperatures from the scores.

Other lengths and data (``RunLength``), each a ``RunVariant`` whose runs carry it in their
names, so the committed one-pass runs stay as they are and plan on their own:

- ``--steps N``: a step budget (about 5,400 is the paper's length). On the simulated data it is
  reached with more simulated days (``simulated_days``): each request is read once, as in the
  paper's one pass, rather than the same 7 days several times. The validation joint recall is
  measured every ``--curve-every`` steps (500 by default) and saved in the record's ``curve``.
- ``--data DIR``: a converted dataset instead of the simulated one (a MovieLens folder's
  ``movielens.json`` names its splits); the budget is then reached with several passes, and it
  is the length of every run of the protocol, the sweep included (one pass over MovieLens-100K
  is a few steps: too short to tune a temperature on).
- ``--prerank-attention din``: the pre-ranking model with DIN's target attention (the official
  code's) instead of the bilinear default; with ``--steps`` each method trains one seed at its
  one-pass best, to show whether the attention changes the methods' ordering.

The runs go group by group (``METHOD_GROUPS``, the headline pair first); in a group, each
method's seeds follow its sweep as soon as the sweep is complete, and the group's 40-negatives
runs come before the next group starts, so that a session cut short leaves whole answers (a
method with its seeds) rather than many half-tuned methods.
``experiments.comparison_report`` turns the records into the report.

Example::

    python -m experiments.method_comparison --results docs/results/method_comparison \\
        --work-dir /tmp/comparison --stop-after 7200
    python -m experiments.method_comparison --results /tmp/r --work-dir /tmp/w --tiny  # a smoke run
    python -m experiments.method_comparison --results docs/results/method_comparison \\
        --work-dir /tmp/comparison --steps 5400 --workers 2  # two runs at once, a core each
    python -m experiments.method_comparison --results /tmp/r --work-dir /tmp/w --tiny --steps 6 \\
        --curve-every 3 --max-runs 2  # a smoke run of the step budget, with curves
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.attention import TARGET_ATTENTIONS
from dftopk_cascade.pipelines.atomic_files import write_json

from experiments.run_processes import RunProcesses
from experiments.run_records import (
    RunKey,
    git_commit,
    read_records,
    runs_dir,
    stale_records,
)
from experiments.runner import (
    DataSplit,
    RunSettings,
    TrainingLength,
    dataset_name,
    score_model,
    train_run,
)

#: Methods in the order their runs are planned: the headline pair first, the costly peers last.
METHOD_GROUPS: tuple[tuple[str, ...], ...] = (
    ("dftopk", "lcron-neuralsort"),
    ("lcron-softsort", "lapsum", "dftopk-spread", "bce", "tfrs"),
    ("sparse-topk", "lcron-diffsort"),
)
#: Methods trained with one seed only (their sweep run).
SINGLE_SEED_METHODS: frozenset[str] = frozenset({"sparse-topk", "lcron-diffsort"})
#: Methods also trained from the official N(0, 1) embedding start.
INIT_STUDY_METHODS: tuple[str, ...] = ("dftopk", "lcron-neuralsort")
#: The sweep of a temperature (4 values spanning 100x); the official mapped value is added.
SWEEP_TEMPERATURES: tuple[float, ...] = (0.01, 0.03, 0.1, 1.0)
#: The sweep of an inverse temperature (DiffSort's steepness).
SWEEP_STEEPNESS: tuple[float, ...] = (1.0, 10.0, 30.0, 100.0)
#: How far a sweep extends past an end where its best temperature sits (``tuned_grid``).
EXTENSIONS_PER_SIDE = 4
EXTENSION_FACTOR = 10**0.5
#: Keras epochs per pass over the training days: a killed run resumes from the last one.
CHECKPOINTS_PER_PASS = 5
#: The headline metric, chosen on the validation day and reported on the test day.
SELECTION_METRIC = "joint_recall"


@dataclass(frozen=True)
class ComparisonSizes:
    """The data and protocol sizes of a comparison.

    Example:
        >>> SIZES["paper"].steps_per_run()
        1026
    """

    days: int
    requests_per_day: int
    batch_size: int
    eval_batches: int
    negatives: tuple[int, ...]
    seeds: tuple[int, ...]

    def steps_per_run(self) -> int:
        """Training steps of a run: one pass over every day but the last two.

        Example:
            >>> SIZES["tiny"].steps_per_run()
            4
        """
        return math.ceil((self.days - 2) * self.requests_per_day / self.batch_size)


SIZES: dict[str, ComparisonSizes] = {
    "paper": ComparisonSizes(9, 150_000, 1024, 50, (0, 40), (0, 1, 2)),
    "tiny": ComparisonSizes(4, 256, 128, 1, (0,), (0, 1)),
}


@dataclass(frozen=True)
class RunVariant:
    """What sets a comparison's runs apart from its committed ones (one pass over simulated
    RecFlow): a step budget, another dataset, another pre-ranking attention (None: the
    default). Every key of a plan carries it.

    Example:
        >>> RunVariant(steps=5400).key("dftopk", "uniform", 0.1, 0, 1).name()
        'dftopk-uniform-t0.1-neg0-seed1-steps5400'
        >>> RunVariant.of(RunKey("bce", dataset="movielens"))
        RunVariant(steps=None, dataset='movielens', prerank_attention=None)
    """

    steps: int | None = None
    dataset: str | None = None
    prerank_attention: str | None = None

    def key(self, method: str, init: str, temperature: float, negatives: int, seed: int) -> RunKey:
        """The run's key in this variant."""
        return RunKey(
            method,
            init,
            temperature,
            negatives,
            seed,
            steps=self.steps,
            dataset=self.dataset,
            prerank_attention=self.prerank_attention,
        )

    @classmethod
    def of(cls, key: RunKey) -> "RunVariant":
        """The variant ``key`` belongs to."""
        return cls(key.steps, key.dataset, key.prerank_attention)

    @property
    def simulated_budget(self) -> bool:
        """A step budget on the simulated data: it plans ``budget_runs`` at the first negatives
        setting, tuned by the one-pass sweep (on a given dataset the budget sweeps itself).

        Example:
            >>> RunVariant(steps=5400).simulated_budget
            True
            >>> RunVariant(steps=5400, dataset="movielens").simulated_budget
            False
        """
        return self.steps is not None and self.dataset is None


#: The committed runs' variant: one pass over the simulated data.
ONE_PASS = RunVariant()
#: The methods a step budget trains (the paper's length: issue 31), each at its one-pass best,
#: in the order a seed's runs go: first the pair whose gap shrank with more passes (DFTopK and
#: LCRON-SoftSort), so that a comparison stopped early has that pair's paired differences.
BUDGET_METHODS: tuple[str, ...] = (
    "dftopk",
    "lcron-softsort",
    "lcron-neuralsort",
    "dftopk-spread",
    "lapsum",
)


def sweep_temperatures(method: str, official_mapped: float) -> tuple[float, ...]:
    """The temperatures of ``method``'s sweep: the grid plus the official value, mapped.

    A mapped value within a factor 1.5 of a grid value takes that grid value's place.

    Example:
        >>> sweep_temperatures("dftopk", 39.4)
        (0.01, 0.03, 0.1, 1.0, 39.4)
        >>> sweep_temperatures("lcron-diffsort", 127.0)
        (1.0, 10.0, 30.0, 127.0)
    """
    grid = SWEEP_STEEPNESS if method == "lcron-diffsort" else SWEEP_TEMPERATURES
    kept = [value for value in grid if not 1 / 1.5 < value / official_mapped < 1.5]
    return tuple(sorted({*kept, official_mapped}))


def best_temperature(
    records: Mapping[str, dict],
    method: str,
    init: str,
    negatives: int,
    temperatures,
    variant: RunVariant = ONE_PASS,
) -> float | None:
    """The sweep temperature with the best validation joint recall; None until all have run.

    Example:
        >>> records = {RunKey("bce", "uniform", t, 0, 0).name(): {"validation": {
        ...     "joint_recall": r}} for t, r in [(0.1, 0.4), (1.0, 0.5)]}
        >>> best_temperature(records, "bce", "uniform", 0, (0.1, 1.0))
        1.0
    """
    scores = {}
    for temperature in temperatures:
        record = records.get(variant.key(method, init, temperature, negatives, 0).name())
        if record is None:
            return None
        scores[temperature] = record["validation"][SELECTION_METRIC]
    return max(scores, key=scores.get)


def tuned_grid(
    records: Mapping[str, dict],
    method: str,
    init: str,
    negatives: int,
    base: Sequence[float],
    variant: RunVariant = ONE_PASS,
) -> tuple[float, ...]:
    """The sweep grid, extended past an end while the best validation temperature sits on it.

    A best at the grid's largest (smallest) value adds that value times (over) sqrt(10), at most
    ``EXTENSIONS_PER_SIDE`` times per side, so that a method's chosen temperature is an interior
    optimum of its sweep whenever the data allow it.

    Example:
        >>> records = {RunKey("bce", "uniform", t, 0, 0).name(): {"validation": {
        ...     "joint_recall": r}} for t, r in [(0.1, 0.4), (1.0, 0.5)]}
        >>> tuned_grid(records, "bce", "uniform", 0, (0.1, 1.0))
        (0.1, 1.0, 3.16)
    """
    grid = sorted(base)
    added = {"up": 0, "down": 0}
    while True:
        best = best_temperature(records, method, init, negatives, grid, variant)
        if best is None:
            break
        if best == grid[-1] and added["up"] < EXTENSIONS_PER_SIDE:
            grid.append(_round(best * EXTENSION_FACTOR))
            added["up"] += 1
        elif best == grid[0] and added["down"] < EXTENSIONS_PER_SIDE:
            grid.insert(0, _round(best / EXTENSION_FACTOR))
            added["down"] += 1
        else:
            break
    return tuple(grid)


def method_sweep(
    records: Mapping[str, dict],
    method: str,
    negatives: int,
    official_mapped: float,
    variant: RunVariant = ONE_PASS,
) -> tuple[tuple[float, ...], float | None]:
    """``method``'s sweep at the uniform start: its (extended) grid and best temperature so far.

    Example:
        >>> method_sweep({}, "dftopk", 0, 39.4)
        ((0.01, 0.03, 0.1, 1.0, 39.4), None)
    """
    base = sweep_temperatures(method, official_mapped)
    grid = tuned_grid(records, method, "uniform", negatives, base, variant)
    return grid, best_temperature(records, method, "uniform", negatives, grid, variant)


def planned_runs(
    records: Mapping[str, dict],
    sizes: ComparisonSizes,
    mapped: Mapping[str, Mapping[str, float]],
    variant: RunVariant = ONE_PASS,
) -> list[RunKey]:
    """Every run that can be planned from ``records``, in order (done ones included).

    Group by group: each method's sweep, then its seeds (and the init study) once the sweep is
    complete, then the group's runs at the other negatives settings. ``mapped`` is
    {embedding init: {method: official temperature at that start}}. Every key is in
    ``variant``. A step budget on the simulated data plans ``budget_runs`` (no sweep of its
    own: the one-pass sweep tuned the temperatures); on a given dataset (``variant.dataset``)
    the budget is the length of the whole protocol, sweep included, since one pass over a
    small dataset (a few steps on MovieLens-100K) is too short to tune anything.

    Example:
        >>> mapped = {"uniform": dict.fromkeys(["dftopk", "lcron-neuralsort"], 1.0),
        ...           "normal": dict.fromkeys(["dftopk", "lcron-neuralsort"], 100.0)}
        >>> [key.name() for key in planned_runs({}, SIZES["tiny"], mapped)][:2]
        ['dftopk-uniform-t0.01-neg0-seed0', 'dftopk-uniform-t0.03-neg0-seed0']
    """
    if variant.simulated_budget:
        return budget_runs(records, sizes, mapped, variant)
    runs: list[RunKey] = []
    tuned_negatives, *other_negatives = sizes.negatives
    for group_index, group in enumerate(METHOD_GROUPS):
        bests: dict[str, float] = {}
        for method in (method for method in group if method in mapped["uniform"]):
            grid, best = method_sweep(
                records, method, tuned_negatives, mapped["uniform"][method], variant
            )
            runs += [variant.key(method, "uniform", t, tuned_negatives, 0) for t in grid]
            if best is None:
                continue
            bests[method] = best
            runs += [
                variant.key(method, "uniform", best, tuned_negatives, s)
                for s in _seeds(method, sizes)
            ]
            if group_index == 0 and method in INIT_STUDY_METHODS:
                scale = mapped["normal"][method] / mapped["uniform"][method]
                for temperature in (mapped["normal"][method], _round(best * scale)):
                    runs.append(variant.key(method, "normal", temperature, tuned_negatives, 0))
        # The other negatives settings reuse the temperature tuned at the first (no second sweep).
        for negatives in other_negatives:
            for method, best in bests.items():
                runs += [
                    variant.key(method, "uniform", best, negatives, s)
                    for s in _seeds(method, sizes)
                ]
    return list(dict.fromkeys(runs))


def tuning_variant(variant: RunVariant) -> RunVariant:
    """The variant whose sweep tunes ``variant``'s temperatures: a step budget on the simulated
    data trains at the one-pass sweep's best (``budget_runs``); any other variant sweeps itself.

    Example:
        >>> tuning_variant(RunVariant(steps=5400, prerank_attention="din"))
        RunVariant(steps=None, dataset=None, prerank_attention=None)
        >>> tuning_variant(RunVariant(steps=150, dataset="movielens")).steps
        150
    """
    if variant.simulated_budget:
        return RunVariant(dataset=variant.dataset)
    return variant


def budget_runs(
    records: Mapping[str, dict],
    sizes: ComparisonSizes,
    mapped: Mapping[str, Mapping[str, float]],
    variant: RunVariant,
) -> list[RunKey]:
    """A step budget's runs: each of ``BUDGET_METHODS`` with every seed at its best temperature.

    The temperature is the one-pass sweep's best on the same dataset (no second sweep at the
    longer length); the negatives are the sizes' first setting (0: the paper's). A method whose
    one-pass sweep is not complete has no budget runs yet. The runs go seed by seed, so that a
    comparison stopped early has every method's first seeds. Under another pre-ranking attention
    (``variant.prerank_attention``, e.g. DIN's) each method trains the first seed only: enough
    to show whether the attention changes the methods' ordering.

    Example:
        >>> mapped = {"uniform": dict.fromkeys(BUDGET_METHODS, 1.0)}
        >>> budget_runs({}, SIZES["tiny"], mapped, RunVariant(steps=5400))
        []
    """
    one_pass = tuning_variant(variant)
    seeds = sizes.seeds if variant.prerank_attention is None else sizes.seeds[:1]
    negatives = sizes.negatives[0]
    bests = {}
    for method in (method for method in BUDGET_METHODS if method in mapped["uniform"]):
        _, best = method_sweep(records, method, negatives, mapped["uniform"][method], one_pass)
        if best is not None:
            bests[method] = best
    # Seed by seed: every method's first seed lands before any method's second.
    return [
        variant.key(method, "uniform", best, negatives, seed)
        for seed in seeds
        for method, best in bests.items()
    ]


def _seeds(method: str, sizes: ComparisonSizes) -> tuple[int, ...]:
    """The seeds ``method`` trains with at its best temperature."""
    return sizes.seeds[:1] if method in SINGLE_SEED_METHODS else sizes.seeds


def _round(value: float) -> float:
    """``value`` to 3 significant digits (run names stay short and stable)."""
    return float(f"{value:.3g}")


def simulated_days(sizes: ComparisonSizes, train_steps: int | None = None) -> int:
    """Days to simulate: the sizes' days, or enough for ``train_steps`` in one pass over fresh
    requests (a step budget is reached with more days, never by re-reading requests) plus the
    validation and test days.

    Example:
        >>> simulated_days(SIZES["paper"]), simulated_days(SIZES["paper"], 5500)
        (9, 40)
    """
    if train_steps is None:
        return sizes.days
    training_days = math.ceil(train_steps * sizes.batch_size / sizes.requests_per_day)
    return max(sizes.days, training_days + 2)


def prepare_data(work_dir: str, sizes: ComparisonSizes, days: int | None = None) -> str:
    """Simulates and converts the comparison's data under ``work_dir`` (complete days are kept).

    ``days``: days to simulate (default: the sizes'); other than the sizes' go to their own
    folders. Returns the TFRecord folder.

    Example::

        prepare_data("/tmp/comparison", SIZES["tiny"])  # '/tmp/comparison/tfrecords'
        prepare_data("/tmp/comparison", SIZES["tiny"], 6)  # '/tmp/comparison/tfrecords-6days'
    """
    from dftopk_cascade.pipelines.convert import convert
    from dftopk_cascade.pipelines.simulator.simulate import simulate

    days = sizes.days if days is None else days
    suffix = "" if days == sizes.days else f"-{days}days"
    data_dir = os.path.join(work_dir, "tfrecords" + suffix)
    if os.path.isfile(os.path.join(data_dir, "schema.json")):
        return data_dir
    recflow_dir = os.path.join(work_dir, "recflow" + suffix)
    simulate(recflow_dir, days, sizes.requests_per_day, 42, progress=True)
    convert(recflow_dir, data_dir, workers=min(2, os.cpu_count() or 1), progress=True)
    return data_dir


def comparison_data(
    work_dir: str,
    sizes: ComparisonSizes,
    steps: int | None,
    curve_every: int | None,
    data_dir: str | None,
    prerank_attention: str | None = None,
) -> tuple[RunVariant, str]:
    """The runs' variant and data folder: ``data_dir`` (a converted dataset, named in the keys)
    or the simulated data, with days enough for the step budget.

    Example::

        comparison_data("/tmp/w", SIZES["tiny"], 12, 2, None)  # (RunVariant(12), '/tmp/w/...')
    """
    if data_dir is not None:
        return RunVariant(steps, dataset_name(data_dir), prerank_attention), data_dir
    budget = None if steps is None else budget_steps(steps, curve_every)
    data_dir = prepare_data(work_dir, sizes, simulated_days(sizes, budget))
    return RunVariant(steps, None, prerank_attention), data_dir


def budget_steps(steps: int, curve_every: int | None) -> int:
    """The steps a run of budget ``steps`` trains: rounded up to whole curve intervals (or
    checkpoints).

    Example:
        >>> budget_steps(5400, 500), budget_steps(5400, None)
        (5500, 5400)
    """
    return TrainingLength.of(steps, 1, 1, CHECKPOINTS_PER_PASS, curve_every).train_steps


def scale_file(results_dir: str, dataset: str | None = None) -> str:
    """The file of the mapped temperatures (one per dataset).

    Example:
        >>> scale_file("r"), scale_file("r", "movielens")
        ('r/temperature_scale.json', 'r/temperature_scale_movielens.json')
    """
    suffix = "" if dataset is None else f"_{dataset}"
    return os.path.join(results_dir, f"temperature_scale{suffix}.json")


def mapped_temperatures(
    results_dir: str, data_dir: str, dataset: str | None = None
) -> dict[str, dict[str, float]]:
    """The official temperatures at each embedding start, measured once and kept.

    Stored in ``scale_file(results_dir, dataset)`` so that every session plans the same runs.

    Example::

        mapped_temperatures("/tmp/results", "/tmp/comparison/tfrecords")["uniform"]["dftopk"]
    """
    path = scale_file(results_dir, dataset)
    if os.path.isfile(path):
        with open(path) as file:
            return json.load(file)["mapped"]
    from dftopk_cascade.pipelines.data_schema import read_data_schema

    from experiments.temperature_scale import OFFICIAL_TEMPERATURES, mapped_temperature, measure

    day = sorted(read_data_schema(data_dir)["days"])[0]
    spreads = measure(data_dir, day)
    mapped = {
        init: {
            method: _round(mapped_temperature(method, spreads[init], spreads["official"]))
            for method in OFFICIAL_TEMPERATURES
        }
        for init in spreads
        if init != "official"
    }
    write_json(
        path,
        {
            "command": f"python -m experiments.temperature_scale --data DATA --day {day}",
            "spreads": {name: asdict(spread) for name, spread in spreads.items()},
            "official": OFFICIAL_TEMPERATURES,
            "mapped": mapped,
        },
    )
    return mapped


def comparison_settings(
    data_dir: str, work_dir: str, results_dir: str, sizes_name: str, curve_every: int | None
) -> RunSettings:
    """The runner's settings of the comparison's runs (``experiments.runner``).

    Example:
        >>> comparison_settings("/d", "/w", "/r", "tiny", None).checkpoints
        5
    """
    sizes = SIZES[sizes_name]
    return RunSettings(
        data_dir,
        work_dir,
        results_dir,
        batch_size=sizes.batch_size,
        checkpoints=CHECKPOINTS_PER_PASS,
        curve_every=curve_every,
        validation=True,
        rank_stage=False,
        eval_batch_size=1024,
        eval_batches=sizes.eval_batches,
        verbose=2,
        record_fields={"sizes": sizes_name},
    )


def train_one(
    key: RunKey,
    data_dir: str,
    work_dir: str,
    results_dir: str,
    sizes_name: str,
    curve_every: int | None = None,
) -> dict:
    """Trains (or resumes) one run with the one runner (``experiments.runner.train_run``), scores
    it on the validation and test days and saves its record; returns the record.

    Once the record is written, the run's per-epoch checkpoints are deleted (its final weights
    stay): a comparison's checkpoints would otherwise fill the disk.

    Example::

        train_one(RunKey("dftopk", "uniform", 0.1, 0, 0), "/tmp/w/tfrecords", "/tmp/w",
                  "/tmp/results", "tiny")["test"]["joint_recall"]
    """
    settings = comparison_settings(data_dir, work_dir, results_dir, sizes_name, curve_every)
    return train_run(key, settings).record


def rescore_one(name: str, data_dir: str, work_dir: str, results_dir: str, sizes_name: str) -> dict:
    """Scores a finished run's saved model again under the current ``PROTOCOL_VERSION``.

    The record keeps its training fields; its validation and test scores are replaced, and the
    replaced ones move to ``rescored["previous"]``. A run whose model folder is gone (another
    machine) has its record removed and trains again.

    Example::

        rescore_one("dftopk-uniform-t0.1-neg0-seed0", "/tmp/w/tfrecords", "/tmp/w",
                    "/tmp/results", "tiny")["protocol_version"]
    """
    from dftopk_cascade.models.cascade import load_cascade
    from dftopk_cascade.models.model_folder import ModelDir

    path = os.path.join(runs_dir(results_dir), name + ".json")
    with open(path) as file:
        record = json.load(file)
    settings = comparison_settings(
        data_dir, work_dir, results_dir, sizes_name, record.get("curve_every")
    )
    key = RunKey.from_dict(record["key"])
    if not ModelDir(settings.model_dir(key)).has_weights():
        os.remove(path)
        return train_run(key, settings).record
    previous = {
        part: record[part] for part in ("protocol_version", "validation", "test") if part in record
    }
    split = DataSplit(tuple(record["train_days"]), record["validation_day"], record["test_day"])
    scores = score_model(load_cascade(settings.model_dir(key)), settings, split)
    record |= scores | {
        "rescored": {
            "commit": git_commit(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "previous": {"protocol_version": 1} | previous,
        }
    }
    write_json(path, record)
    return record


#: The validation curve's interval (steps) of a step-budget run, unless ``--curve-every``.
DEFAULT_CURVE_EVERY = 500
#: The pre-ranking attentions other than the default, each a variant of its own.
OTHER_ATTENTIONS: tuple[str, ...] = TARGET_ATTENTIONS[1:]


@dataclass(frozen=True)
class RunLength:
    """A comparison's training length, data and attention: ``--steps``, ``--curve-every``,
    ``--data``, ``--prerank-attention``.

    Example:
        >>> RunLength(steps=5400).curve()
        500
        >>> RunLength().curve(), RunLength(5400, curve_every=0).curve()
        (None, None)
        >>> RunLength(5400, 250, "/data/ml").flags()
        ['--steps', '5400', '--curve-every', '250', '--data', '/data/ml']
    """

    steps: int | None = None
    curve_every: int | None = None
    data_dir: str | None = None
    prerank_attention: str | None = None

    def curve(self) -> int | None:
        """The curve's interval: the given one (0: none), else 500 steps with a step budget."""
        if self.curve_every is not None:
            return self.curve_every or None
        return DEFAULT_CURVE_EVERY if self.steps is not None else None

    def flags(self) -> list[str]:
        """The command-line flags that give this length to a run's process."""
        flags = []
        for flag, value in (
            ("--steps", self.steps),
            ("--curve-every", self.curve_every),
            ("--data", self.data_dir),
            ("--prerank-attention", self.prerank_attention),
        ):
            if value is not None:
                flags += [flag, str(value)]
        return flags


def run_comparison(
    results_dir: str,
    work_dir: str,
    sizes_name: str = "paper",
    stop_after_s: float | None = None,
    max_runs: int | None = None,
    length: RunLength = RunLength(),
    workers: int = 1,
) -> list[str]:
    """Rescores stale records, then runs the planned runs without a record, each in a process,
    ``workers`` at once (``experiments.run_processes``: side by side, each process is pinned to
    its own CPUs and logs to ``WORK/logs/<name>.log``).

    Starts no run once ``max_runs`` have started or ``stop_after_s`` seconds have passed, and
    returns the names of the runs it finished when none is running. A run that fails stops the
    starting of new ones; the others finish (nothing trained is lost) and the failure is raised.

    Example::

        run_comparison("/tmp/results", "/tmp/comparison", "tiny", max_runs=1)
    """
    sizes = SIZES[sizes_name]
    os.makedirs(results_dir, exist_ok=True)  # temperature_scale.json; train_one adds runs/
    variant, data_dir = comparison_data(
        work_dir, sizes, length.steps, length.curve(), length.data_dir, length.prerank_attention
    )
    mapped = mapped_temperatures(results_dir, data_dir, variant.dataset)
    processes = RunProcesses(workers, os.path.join(work_dir, "logs"))
    started = time.monotonic()
    launched = 0
    finished: list[str] = []
    failed: list[tuple[str, int]] = []
    while True:
        may_start = not failed and (max_runs is None or launched < max_runs)
        if stop_after_s is not None and time.monotonic() - started > stop_after_s:
            may_start = False
        task = None
        if may_start and processes.has_free_worker():
            task = _next_task(results_dir, sizes, mapped, variant, processes.running)
        if task is not None:
            name, arguments = task
            command = [sys.executable, "-m", "experiments.method_comparison", "--results"]
            command += [results_dir, "--work-dir", work_dir, "--sizes", sizes_name]
            cpus = processes.start(name, command + length.flags() + arguments)
            launched += 1
            if cpus is not None:
                print(
                    f"[comparison] {name} started on CPUs {list(cpus)}, its log in "
                    f"{processes.log_path(name)}",
                    flush=True,
                )
            continue
        if not processes.running:
            break
        name, status = processes.wait_any()
        if status != 0:
            print(f"[comparison] {name} failed (exit status {status})", flush=True)
            failed.append((name, status))
            continue
        finished.append(name)
        if workers > 1:
            print(f"[comparison] {name} finished", flush=True)
    if failed:
        name, status = failed[0]
        raise subprocess.CalledProcessError(status, f"the run {name}")
    return finished


def _next_task(
    results_dir: str,
    sizes: ComparisonSizes,
    mapped: Mapping[str, Mapping[str, float]],
    variant: RunVariant,
    running: Sequence[str],
) -> tuple[str, list[str]] | None:
    """The next run to start (its name and its process's flags), or None while none can.

    Records scored under an older protocol are rescored first, and no run trains until every
    one is: the plan picks temperatures from the scores. A run already running is not started
    again.
    """
    records = read_records(results_dir)
    stale = stale_records(records)
    if stale:
        waiting = [name for name in stale if name not in running]
        if not waiting:
            return None
        print(f"[comparison] {len(stale)} to rescore; next {waiting[0]}", flush=True)
        return waiting[0], ["--rescore", waiting[0]]
    plan = planned_runs(records, sizes, mapped, variant)
    pending = [key for key in plan if key.name() not in records]
    startable = [key for key in pending if key.name() not in running]
    if not startable:
        return None
    name = startable[0].name()
    print(f"[comparison] {len(records)} done, {len(pending)} planned; next {name}", flush=True)
    return name, ["--one", json.dumps(startable[0].to_dict())]


STEPS_HELP = (
    "step budget: train each run for STEPS steps (about 5400 is the paper's length) instead of "
    "one pass; rounded up to whole --curve-every intervals. On the simulated data the budget is "
    "reached with more simulated days (ceil(STEPS x batch / requests per day) training days, "
    "plus the validation and test days, in WORK/tfrecords-<days>days), so no request is read "
    "twice; on --data the days are fixed and it is reached with several passes, and every run "
    "of the protocol (the sweep too) trains for it. Runs with a "
    "budget have '-steps<STEPS>' in their names; each record says how it was reached "
    "(step_budget_by: days or passes, and passes)"
)


def main(argv: Sequence[str] | None = None) -> list[str]:
    """Command-line entry; returns the names of the runs finished.

    Example::

        python -m experiments.method_comparison --results docs/results/method_comparison \\
            --work-dir /tmp/comparison
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="folder of the run records (commit it)")
    parser.add_argument(
        "--work-dir", required=True, help="folder of the data and the trained models"
    )
    parser.add_argument("--sizes", choices=sorted(SIZES), default="paper", help="protocol sizes")
    parser.add_argument(
        "--tiny",
        action="store_const",
        const="tiny",
        dest="sizes",
        help="same as --sizes tiny (a smoke run)",
    )
    parser.add_argument(
        "--stop-after", type=float, default=None, help="start no run after this many seconds"
    )
    parser.add_argument("--max-runs", type=int, default=None, help="start at most this many runs")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="train this many runs at once, each process pinned to its own share of the CPUs "
        "(Linux) with its output in WORK/logs/<run>.log; worth it where a run's steps do not "
        "keep every core busy (compare a run's epoch time alone and side by side)",
    )
    add_length_flags(parser)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # one run, as JSON
    parser.add_argument("--rescore", default=None, help=argparse.SUPPRESS)  # one run's name
    arguments = add_entry_flags(parser).parse_args(argv)
    length = RunLength(
        arguments.steps, arguments.curve_every, arguments.data, arguments.prerank_attention
    )
    if arguments.one is not None or arguments.rescore is not None:
        _, data_dir = comparison_data(
            arguments.work_dir,
            SIZES[arguments.sizes],
            length.steps,
            length.curve(),
            length.data_dir,
        )
        folders = (data_dir, arguments.work_dir, arguments.results, arguments.sizes)
        if arguments.rescore is not None:
            rescore_one(arguments.rescore, *folders)
            return [arguments.rescore]
        key = RunKey.from_dict(json.loads(arguments.one))
        train_one(key, *folders, length.curve())
        return [key.name()]
    return run_comparison(
        arguments.results,
        arguments.work_dir,
        arguments.sizes,
        arguments.stop_after,
        arguments.max_runs,
        length,
        arguments.workers,
    )


def add_length_flags(parser: argparse.ArgumentParser) -> None:
    """--steps, --curve-every, --data, --prerank-attention: the runs' training length, validation
    curve, data and pre-ranking attention."""
    parser.add_argument("--steps", type=_positive, default=None, help=STEPS_HELP)
    parser.add_argument(
        "--curve-every",
        type=_non_negative,
        default=None,
        metavar="STEPS",
        help="measure the validation joint recall every STEPS steps and save the points in the "
        f"record's curve (default: {DEFAULT_CURVE_EVERY} with --steps, none without; 0: none)",
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help="a converted dataset folder instead of the simulated data (e.g. MovieLens from "
        "python -m dftopk_cascade.pipelines.movielens.convert: its movielens.json names the "
        "training, "
        "validation and test windows; else the last day is the test day and the one before it "
        "the validation day); its name (movielens, else the folder's name) is in the runs' "
        "names ('-data_<name>'), so records of different datasets never mix",
    )
    add_attention_flag(parser)


def add_attention_flag(parser: argparse.ArgumentParser) -> None:
    """--prerank-attention: the runs' pre-ranking attention (``din``; absent: the default)."""
    parser.add_argument(
        "--prerank-attention",
        choices=OTHER_ATTENTIONS,
        default=None,
        help="train (or report) the runs whose pre-ranking model uses this target attention "
        "instead of the default bilinear one: din is the official code's DIN attention, an MLP "
        "over [behaviour, candidate] with 80 hidden units. Its runs have '-attention_<name>' in "
        "their names; "
        "with --steps each method trains one seed at its one-pass best temperature",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


if __name__ == "__main__":
    run_command(main, "python -m experiments.method_comparison")
