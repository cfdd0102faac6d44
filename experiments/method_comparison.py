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

Each run is a ``RunKey``. Its record (``experiments.run_records``: settings, validation and test
metrics, steps, seconds, the code's commit) is written atomically to ``RESULTS/runs/<name>.json``
when the run ends; a run
whose record exists is never trained again, and an interrupted run resumes from its last
checkpoint (a pass is split into ``CHECKPOINTS_PER_PASS`` Keras epochs, ``models.training.train``'s
resumable input). A record saves the ``models.protocol.PROTOCOL_VERSION`` it was scored under;
records scored under an older one are scored again from the run's saved model (``rescore_one``)
before anything trains, since the plan picks temperatures from the scores.

The runs go group by group (``METHOD_GROUPS``, the headline pair first); in a group, each
method's seeds follow its sweep as soon as the sweep is complete, and the group's 40-negatives
runs come before the next group starts, so that a session cut short leaves whole answers (a
method with its seeds) rather than many half-tuned methods.
``experiments.comparison_report`` turns the records into the report.

Example::

    python -m experiments.method_comparison --results docs/results/method_comparison \\
        --work-dir /tmp/comparison --stop-after 7200
    python -m experiments.method_comparison --results /tmp/r --work-dir /tmp/w --tiny  # a smoke run
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from command_line.entry import add_entry_flags, run_command
from experiments.run_records import (
    RunKey,
    git_commit,
    read_records,
    runs_dir,
    stale_records,
    write_record,
)
from pipelines.atomic_files import write_json

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
EXTENSIONS_PER_SIDE = 2
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
    records: Mapping[str, dict], method: str, init: str, negatives: int, temperatures
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
        record = records.get(RunKey(method, init, temperature, negatives, 0).name())
        if record is None:
            return None
        scores[temperature] = record["validation"][SELECTION_METRIC]
    return max(scores, key=scores.get)


def tuned_grid(
    records: Mapping[str, dict], method: str, init: str, negatives: int, base: Sequence[float]
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
        best = best_temperature(records, method, init, negatives, grid)
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
    records: Mapping[str, dict], method: str, negatives: int, official_mapped: float
) -> tuple[tuple[float, ...], float | None]:
    """``method``'s sweep at the uniform start: its (extended) grid and best temperature so far.

    Example:
        >>> method_sweep({}, "dftopk", 0, 39.4)
        ((0.01, 0.03, 0.1, 1.0, 39.4), None)
    """
    base = sweep_temperatures(method, official_mapped)
    grid = tuned_grid(records, method, "uniform", negatives, base)
    return grid, best_temperature(records, method, "uniform", negatives, grid)


def planned_runs(
    records: Mapping[str, dict],
    sizes: ComparisonSizes,
    mapped: Mapping[str, Mapping[str, float]],
) -> list[RunKey]:
    """Every run that can be planned from ``records``, in order (done ones included).

    Group by group: each method's sweep, then its seeds (and the init study) once the sweep is
    complete, then the group's runs at the other negatives settings. ``mapped`` is
    {embedding init: {method: official temperature at that start}}.

    Example:
        >>> mapped = {"uniform": dict.fromkeys(["dftopk", "lcron-neuralsort"], 1.0),
        ...           "normal": dict.fromkeys(["dftopk", "lcron-neuralsort"], 100.0)}
        >>> [key.name() for key in planned_runs({}, SIZES["tiny"], mapped)][:2]
        ['dftopk-uniform-t0.01-neg0-seed0', 'dftopk-uniform-t0.03-neg0-seed0']
    """
    runs: list[RunKey] = []
    tuned_negatives, *other_negatives = sizes.negatives
    for group_index, group in enumerate(METHOD_GROUPS):
        bests: dict[str, float] = {}
        for method in (method for method in group if method in mapped["uniform"]):
            grid, best = method_sweep(records, method, tuned_negatives, mapped["uniform"][method])
            runs += [RunKey(method, "uniform", t, tuned_negatives, 0) for t in grid]
            if best is None:
                continue
            bests[method] = best
            runs += [
                RunKey(method, "uniform", best, tuned_negatives, s) for s in _seeds(method, sizes)
            ]
            if group_index == 0 and method in INIT_STUDY_METHODS:
                scale = mapped["normal"][method] / mapped["uniform"][method]
                for temperature in (mapped["normal"][method], _round(best * scale)):
                    runs.append(RunKey(method, "normal", temperature, tuned_negatives, 0))
        # The other negatives settings reuse the temperature tuned at the first (no second sweep).
        for negatives in other_negatives:
            for method, best in bests.items():
                runs += [
                    RunKey(method, "uniform", best, negatives, s) for s in _seeds(method, sizes)
                ]
    return list(dict.fromkeys(runs))


def _seeds(method: str, sizes: ComparisonSizes) -> tuple[int, ...]:
    """The seeds ``method`` trains with at its best temperature."""
    return sizes.seeds[:1] if method in SINGLE_SEED_METHODS else sizes.seeds


def _round(value: float) -> float:
    """``value`` to 3 significant digits (run names stay short and stable)."""
    return float(f"{value:.3g}")


def prepare_data(work_dir: str, sizes: ComparisonSizes) -> str:
    """Simulates and converts the comparison's data under ``work_dir`` (complete days are kept).

    Returns the TFRecord folder.

    Example::

        prepare_data("/tmp/comparison", SIZES["tiny"])  # '/tmp/comparison/tfrecords'
    """
    from pipelines.convert import convert
    from pipelines.simulator.simulate import simulate

    data_dir = os.path.join(work_dir, "tfrecords")
    if os.path.isfile(os.path.join(data_dir, "schema.json")):
        return data_dir
    recflow_dir = os.path.join(work_dir, "recflow")
    simulate(recflow_dir, sizes.days, sizes.requests_per_day, 42, progress=True)
    convert(recflow_dir, data_dir, workers=min(2, os.cpu_count() or 1), progress=True)
    return data_dir


def mapped_temperatures(results_dir: str, data_dir: str) -> dict[str, dict[str, float]]:
    """The official temperatures at each embedding start, measured once and kept.

    Stored in ``results_dir/temperature_scale.json`` so that every session plans the same runs.

    Example::

        mapped_temperatures("/tmp/results", "/tmp/comparison/tfrecords")["uniform"]["dftopk"]
    """
    path = os.path.join(results_dir, "temperature_scale.json")
    if os.path.isfile(path):
        with open(path) as file:
            return json.load(file)["mapped"]
    from experiments.temperature_scale import OFFICIAL_TEMPERATURES, mapped_temperature, measure
    from pipelines.data_schema import read_data_schema

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


def train_one(key: RunKey, data_dir: str, work_dir: str, results_dir: str, sizes_name: str) -> dict:
    """Trains (or resumes) one run, scores it on the validation and test days, saves its record.

    Once the record is written, the run's per-epoch checkpoints are deleted (its final weights
    stay): a comparison's checkpoints would otherwise fill the disk.

    Example::

        train_one(RunKey("dftopk", "uniform", 0.1, 0, 0), "/tmp/w/tfrecords", "/tmp/w",
                  "/tmp/results", "tiny")["test"]["joint_recall"]
    """
    from models.cascade import load_cascade
    from models.model_folder import ModelDir
    from models.training.data import steps_per_pass
    from models.training.train import TrainOptions, run_training
    from pipelines.data_schema import read_data_schema

    sizes = SIZES[sizes_name]
    schema = read_data_schema(data_dir)
    days = sorted(schema["days"])
    if len(days) < 3:
        raise ValueError(f"the comparison needs 3 days or more (train, validation, test): {days}")
    train_days, validation_day, test_day = tuple(days[:-2]), days[-2], days[-1]
    steps = steps_per_pass(schema, list(train_days), sizes.batch_size)
    per_epoch = math.ceil(steps / CHECKPOINTS_PER_PASS)
    model_dir = os.path.join(work_dir, "models", key.name())
    started = time.perf_counter()
    layout = ModelDir(model_dir)
    if layout.has_weights() and not os.path.isdir(layout.backup_dir):
        model = load_cascade(model_dir)  # trained, stopped before its record was written
    else:
        options = TrainOptions(
            data_dir=data_dir,
            model_dir=model_dir,
            method=key.method,
            tau=key.temperature,
            negatives=key.negatives,
            epochs=CHECKPOINTS_PER_PASS,
            steps_per_epoch=per_epoch,
            batch_size=sizes.batch_size,
            embedding_init=key.embedding_init,
            rank_stage=False,
            seed=key.seed,
            train_days=train_days,
            eval_days=(validation_day,),
            evaluate=False,
            verbose=2,
        )
        model = run_training(options).model
    train_seconds = time.perf_counter() - started
    scores = _scores(model, data_dir, validation_day, test_day, sizes.eval_batches)
    record = {
        "sizes": sizes_name,
        "train_days": list(train_days),
        "validation_day": validation_day,
        "test_day": test_day,
        "train_steps": per_epoch * CHECKPOINTS_PER_PASS,
        "rank_stage": False,
        "batch_size": sizes.batch_size,
        "train_seconds": round(train_seconds, 1),
        **scores,
    }
    record = write_record(results_dir, key, record)
    # The per-epoch weights are no part of the result: a killed run resumes from
    # backup/, and the record holds the scores.
    shutil.rmtree(layout.checkpoints_dir, ignore_errors=True)
    return record


def rescore_one(name: str, data_dir: str, work_dir: str, results_dir: str, sizes_name: str) -> dict:
    """Scores a finished run's saved model again under the current ``PROTOCOL_VERSION``.

    The record keeps its training fields; its validation and test scores are replaced, and the
    replaced ones move to ``rescored["previous"]``. A run whose model folder is gone (another
    machine) has its record removed and trains again.

    Example::

        rescore_one("dftopk-uniform-t0.1-neg0-seed0", "/tmp/w/tfrecords", "/tmp/w",
                    "/tmp/results", "tiny")["protocol_version"]
    """
    from models.cascade import load_cascade
    from models.model_folder import ModelDir

    path = os.path.join(runs_dir(results_dir), name + ".json")
    with open(path) as file:
        record = json.load(file)
    model_dir = os.path.join(work_dir, "models", name)
    if not ModelDir(model_dir).has_weights():
        os.remove(path)
        return train_one(
            RunKey.from_dict(record["key"]), data_dir, work_dir, results_dir, sizes_name
        )
    previous = {
        part: record[part] for part in ("protocol_version", "validation", "test") if part in record
    }
    scores = _scores(
        load_cascade(model_dir),
        data_dir,
        record["validation_day"],
        record["test_day"],
        SIZES[sizes_name].eval_batches,
    )
    record |= scores | {
        "rescored": {
            "commit": git_commit(),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "previous": {"protocol_version": 1} | previous,
        }
    }
    write_json(path, record)
    return record


def _scores(model, data_dir: str, validation_day: str, test_day: str, eval_batches: int) -> dict:
    """The record's score fields: validation and test metrics, requests, protocol version."""
    from models.protocol import PROTOCOL_VERSION
    from models.training.evaluate import EVALUATION_NEGATIVES, evaluate_model

    scores = {
        name: evaluate_model(model, data_dir, [day], 1024, EVALUATION_NEGATIVES, 42, eval_batches)
        for name, day in (("validation", validation_day), ("test", test_day))
    }
    return {
        "protocol_version": PROTOCOL_VERSION,
        "validation": _numeric(scores["validation"]),
        "test": _numeric(scores["test"]),
        "evaluated_requests": scores["test"]["evaluation"]["requests"],
    }


def _numeric(metrics: Mapping) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items() if name != "evaluation"}


def run_comparison(
    results_dir: str,
    work_dir: str,
    sizes_name: str = "paper",
    stop_after_s: float | None = None,
    max_runs: int | None = None,
) -> list[str]:
    """Rescores stale records, then runs the planned runs without a record, each in a process.

    Stops when none is left, after ``max_runs`` runs, or when starting another would begin
    after ``stop_after_s`` seconds. Returns the names of the runs it finished.

    Example::

        run_comparison("/tmp/results", "/tmp/comparison", "tiny", max_runs=1)
    """
    sizes = SIZES[sizes_name]
    os.makedirs(results_dir, exist_ok=True)  # temperature_scale.json; train_one adds runs/
    data_dir = prepare_data(work_dir, sizes)
    mapped = mapped_temperatures(results_dir, data_dir)
    started = time.monotonic()
    finished: list[str] = []
    while max_runs is None or len(finished) < max_runs:
        if stop_after_s is not None and time.monotonic() - started > stop_after_s:
            break
        records = read_records(results_dir)
        # Scores under an older protocol come first: the plan picks temperatures from them.
        stale = stale_records(records)
        if stale:
            name, task = stale[0], ["--rescore", stale[0]]
            print(f"[comparison] {len(stale)} to rescore; next {name}", flush=True)
        else:
            plan = planned_runs(records, sizes, mapped)
            pending = [key for key in plan if key.name() not in records]
            if not pending:
                break
            name, task = pending[0].name(), ["--one", json.dumps(pending[0].to_dict())]
            print(
                f"[comparison] {len(records)} done, {len(pending)} planned; next {name}",
                flush=True,
            )
        command = [sys.executable, "-m", "experiments.method_comparison", "--results"]
        command += [results_dir, "--work-dir", work_dir, "--sizes", sizes_name, *task]
        subprocess.run(command, check=True)
        finished.append(name)
    return finished


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
    parser.add_argument("--max-runs", type=int, default=None, help="finish at most this many runs")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # one run, as JSON
    parser.add_argument("--rescore", default=None, help=argparse.SUPPRESS)  # one run's name
    arguments = add_entry_flags(parser).parse_args(argv)
    if arguments.rescore is not None:
        data_dir = prepare_data(arguments.work_dir, SIZES[arguments.sizes])
        rescore_one(
            arguments.rescore, data_dir, arguments.work_dir, arguments.results, arguments.sizes
        )
        return [arguments.rescore]
    if arguments.one is not None:
        key = RunKey.from_dict(json.loads(arguments.one))
        data_dir = prepare_data(arguments.work_dir, SIZES[arguments.sizes])
        train_one(key, data_dir, arguments.work_dir, arguments.results, arguments.sizes)
        return [key.name()]
    return run_comparison(
        arguments.results,
        arguments.work_dir,
        arguments.sizes,
        arguments.stop_after,
        arguments.max_runs,
    )


if __name__ == "__main__":
    run_command(main, "python -m experiments.method_comparison")
