"""TFRS's basic retrieval tutorial on MovieLens-100K as an anchor, and DFTopK in its task.

The tutorial's model: a user-id tower and a movie-title tower (``StringLookup`` +
``Embedding(32)`` each), ``tfrs.tasks.Retrieval`` with ``tfrs.metrics.FactorizedTopK`` over every
movie, Adagrad(0.1), 3 epochs, batches of 8192 to train and 4096 to test. Three losses in its
task (in-batch: each user's rated movie against the batch's other movies):

- ``tfrs``: the tutorial's own (softmax cross-entropy, ``tfrs.tasks.Retrieval``'s default);
- ``dftopk``: ``dftopk_tf.DFTopKLoss(k=1, tau=T, reduction="sum")``;
- ``lapsum``: the best peer operator of ``docs/results/method_comparison/report.md``
  (``dftopk_tf.get_loss("lapsum", k=1, tau=T, reduction="sum")``).

Both take the task's own reduction: ``tfrs.tasks.Retrieval``'s default loss sums over the batch's
rows, and the tutorial's Adagrad(0.1) is tuned to steps of that size; the Keras default (the
batch mean) would shrink every step by the batch size, 8,192.

For each split (``experiments.tfrs_anchor_data``) the DFTopK and LapSum temperatures are swept
with seed 0 on a validation slice of the training part (the same split rule applied to it), and
the best by validation top-100 accuracy (a best at the grid's end extends the grid one step,
``extended_grid``) is trained on the whole training part with each seed and
scored on the held-out part. Each run writes one record (``experiments.run_records``) under
``RESULTS/<split>/sweep/runs`` or ``RESULTS/<split>/runs``; a re-run skips the finished ones, and
the report (``experiments.tfrs_anchor_report``) is rewritten after every run.

Example:
    >>> from tests.pipelines.movielens_fixture import fixture_tables
    >>> from experiments.tfrs_anchor_data import tutorial_ratings
    >>> ratings = tutorial_ratings(fixture_tables())
    >>> settings = AnchorSettings(epochs=1, train_batch=64, test_batch=64)
    >>> metrics = train_and_score(ratings, ratings, sorted(set(ratings["movie_title"])),
    ...                           LossChoice("tfrs"), seed=0, settings=settings)
    >>> sorted(metrics)
    ['top_10', 'top_100', 'top_50']
"""

import argparse
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines.movielens.tables import parse_tables
from dftopk_cascade.pipelines.movielens.wheel import (
    WHEEL_SHA256,
    download_wheel,
    read_members,
    verified_wheel,
)

import dftopk_tf
from experiments.run_records import RunKey, read_records, write_record
from experiments.tfrs_anchor_data import SPLITS, movie_titles, split_ratings, tutorial_ratings

#: The losses of the anchor: the tutorial's and the two top-k operators in its task.
METHODS = ("tfrs", "dftopk", "lapsum")
#: Temperature grids swept on the validation slice (the tutorial's loss has none).
TEMPERATURE_GRIDS: dict[str, tuple[float, ...]] = {
    "dftopk": (0.03, 0.1, 0.3),
    "lapsum": (0.03, 0.1, 0.3),
}
#: The factorized top-k accuracies reported, as ``top_K``.
TOP_KS = (10, 50, 100)
SELECTION_METRIC = "top_100"
#: A sweep whose best is at its grid's end is extended (``extended_grid``) within these.
TEMPERATURE_LIMITS = (0.001, 10.0)
#: The operators' batch reduction: ``tfrs.tasks.Retrieval``'s default loss sums over rows.
LOSS_REDUCTION = "sum"
EMBEDDING_DIMENSION = 32
DEFAULT_RESULTS = "docs/results/tfrs_anchor"


@dataclass(frozen=True)
class AnchorSettings:
    """The tutorial's training settings.

    Attributes:
        epochs: passes over the training ratings (the tutorial's 3).
        train_batch: training batch (8192), also the in-batch candidates of the loss.
        test_batch: evaluation batch (4096).
        learning_rate: Adagrad's learning rate (0.1).

    Example:
        >>> AnchorSettings().train_batch
        8192
    """

    epochs: int = 3
    train_batch: int = 8192
    test_batch: int = 4096
    learning_rate: float = 0.1


@dataclass(frozen=True)
class LossChoice:
    """A loss of the retrieval task: ``method`` (one of ``METHODS``) at ``temperature``.

    The operators' losses sum over the batch's rows, as the task's default loss does.

    Example:
        >>> type(LossChoice("dftopk", 0.1).loss()).__name__
        'DFTopKLoss'
        >>> LossChoice("lapsum", 0.1).loss().reduction
        'sum'
        >>> LossChoice("tfrs").loss() is None
        True
    """

    method: str
    temperature: float | None = None

    def loss(self) -> tf.keras.losses.Loss | None:
        """The Keras loss for ``tfrs.tasks.Retrieval`` (None: the task's default)."""
        if self.method == "tfrs":
            return None
        return dftopk_tf.get_loss(self.method, k=1, tau=self.temperature, reduction=LOSS_REDUCTION)


class TwoTowerModel(tfrs.Model):
    """The tutorial's user-id / movie-title two-tower with a ``Retrieval`` task.

    Example:
        >>> model = TwoTowerModel(["1", "2"], ["A", "B"], LossChoice("tfrs"))
        >>> model.user_model(tf.constant(["2"])).shape
        TensorShape([1, 32])
    """

    def __init__(self, user_ids: Sequence[str], titles: Sequence[str], choice: LossChoice):
        super().__init__()
        self.user_model = tower(user_ids)
        self.movie_model = tower(titles)
        candidates = tf.data.Dataset.from_tensor_slices(list(titles)).batch(128)
        metrics = tfrs.metrics.FactorizedTopK(
            candidates=candidates.map(self.movie_model), ks=TOP_KS
        )
        self.task = tfrs.tasks.Retrieval(loss=choice.loss(), metrics=metrics)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        users = self.user_model(features["user_id"])
        movies = self.movie_model(features["movie_title"])
        return self.task(users, movies, compute_metrics=not training)


def tower(vocabulary: Sequence[str]) -> tf.keras.Model:
    """``StringLookup(vocabulary)`` then ``Embedding(len + 1, 32)``, as in the tutorial.

    Example:
        >>> tower(["a", "b"])(tf.constant(["b", "unseen"])).shape
        TensorShape([2, 32])
    """
    unique = np.unique(np.asarray(vocabulary, dtype=object).astype(str))
    return tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=unique, mask_token=None),
            tf.keras.layers.Embedding(len(unique) + 1, EMBEDDING_DIMENSION),
        ]
    )


def _dataset(ratings: pd.DataFrame) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(
        {
            "user_id": ratings["user_id"].to_numpy().astype(str),
            "movie_title": ratings["movie_title"].to_numpy().astype(str),
        }
    )


def train_and_score(
    train: pd.DataFrame,
    held_out: pd.DataFrame,
    titles: Sequence[str],
    choice: LossChoice,
    seed: int,
    settings: AnchorSettings,
    user_ids: Sequence[str] | None = None,
) -> dict[str, float]:
    """Trains the tutorial's model with ``choice``'s loss; returns held-out ``top_K`` accuracies.

    ``titles`` are the candidates of ``FactorizedTopK`` (every movie), ``user_ids`` the user
    vocabulary (default: the users of ``train`` and ``held_out``). ``seed`` sets the weights'
    start and the training shuffle (the tutorial's shuffle has no seed).
    """
    tf.keras.utils.set_random_seed(seed)
    if user_ids is None:
        user_ids = pd.concat([train["user_id"], held_out["user_id"]]).unique()
    model = TwoTowerModel(user_ids, titles, choice)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=settings.learning_rate))
    training = _dataset(train).shuffle(len(train), seed=seed).batch(settings.train_batch).cache()
    model.fit(training, epochs=settings.epochs, verbose=0)
    scores = model.evaluate(
        _dataset(held_out).batch(settings.test_batch), return_dict=True, verbose=0
    )
    return {
        f"top_{k}": float(scores[f"factorized_top_k/top_{k}_categorical_accuracy"]) for k in TOP_KS
    }


def sweep_dir(results: str, split: str) -> str:
    """The sweep records' results folder of ``split``.

    Example:
        >>> sweep_dir("docs/results/tfrs_anchor", "random")
        'docs/results/tfrs_anchor/random/sweep'
    """
    return os.path.join(results, split, "sweep")


def held_out_dir(results: str, split: str) -> str:
    """The held-out runs' results folder of ``split``.

    Example:
        >>> held_out_dir("docs/results/tfrs_anchor", "temporal")
        'docs/results/tfrs_anchor/temporal'
    """
    return os.path.join(results, split)


def reported_splits(results: str, splits: Sequence[str]) -> list[str]:
    """The splits a report covers: ``splits`` and every other split with records in ``results``.

    A process that runs one split (``--splits temporal``) beside another's keeps the other's
    results in the report it rewrites.

    Example:
        >>> reported_splits("/nonexistent", ["temporal"])
        ['temporal']
    """
    return [
        split
        for split in SPLITS
        if split in splits
        or read_records(held_out_dir(results, split))
        or read_records(sweep_dir(results, split))
    ]


def best_temperature(records: dict[str, dict], method: str) -> float | None:
    """The swept temperature of ``method`` with the highest validation top-100 (None: no sweep).

    Example:
        >>> records = {"a": {"key": {"method": "dftopk", "temperature": 0.1},
        ...                  "validation": {"top_100": 0.3}},
        ...            "b": {"key": {"method": "dftopk", "temperature": 1.0},
        ...                  "validation": {"top_100": 0.2}}}
        >>> best_temperature(records, "dftopk")
        0.1
    """
    swept = [r for r in records.values() if r["key"]["method"] == method]
    if not swept:
        return None
    best = max(swept, key=lambda r: (r["validation"][SELECTION_METRIC], -r["key"]["temperature"]))
    return best["key"]["temperature"]


def swept_temperatures(records: dict[str, dict], method: str) -> list[float]:
    """The temperatures ``method`` was swept at, in order.

    Example:
        >>> swept_temperatures({"a": {"key": {"method": "lapsum", "temperature": 0.3}},
        ...                     "b": {"key": {"method": "lapsum", "temperature": 0.1}}}, "lapsum")
        [0.1, 0.3]
    """
    return sorted(r["key"]["temperature"] for r in records.values() if r["key"]["method"] == method)


def extended_grid(grid: Sequence[float], records: dict[str, dict], method: str) -> list[float]:
    """The next temperature to sweep when the best of ``grid`` is at its end, else nothing.

    The grid is extended one step past its best end on the 1-3-10 ladder (a best at the largest
    value adds 3x or 10/3x that value), up to ``TEMPERATURE_LIMITS``: a best on the grid's edge
    says the optimum may lie beyond it.

    Example:
        >>> records = {f"t{t}": {"key": {"method": "dftopk", "temperature": t},
        ...                      "validation": {"top_100": t}} for t in (0.1, 0.3)}
        >>> extended_grid([0.1, 0.3], records, "dftopk")
        [1.0]
        >>> extended_grid([0.1, 0.3, 1.0, 3.0, 10.0], records | {"t10": {"key": {"method":
        ...     "dftopk", "temperature": 10.0}, "validation": {"top_100": 9.0}}}, "dftopk")
        []
    """
    best = best_temperature(records, method)
    if best is None or len(grid) < 2:
        return []
    low, high = TEMPERATURE_LIMITS
    if best == grid[-1] and best < high:
        return [_ladder(best, up=True)]
    if best == grid[0] and best > low:
        return [_ladder(best, up=False)]
    return []


def _ladder(value: float, up: bool) -> float:
    """The neighbour of ``value`` on the 1-3-10 ladder (..., 0.1, 0.3, 1, 3, 10, ...)."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10**exponent
    rungs = [1.0, 3.0, 10.0] if up else [0.3, 1.0, 3.0]
    if up:
        nxt = next(r for r in rungs if r > mantissa * (1 + 1e-6))
    else:
        nxt = next(r for r in reversed(rungs) if r < mantissa * (1 - 1e-6))
    return float(f"{nxt * 10**exponent:.3g}")


def _run_fields(metrics_name: str, metrics: dict, split: str, seconds: float, settings) -> dict:
    return {
        metrics_name: metrics,
        "split": split,
        "train_days": None,
        "epochs": settings.epochs,
        "batch_size": settings.train_batch,
        "test_batch_size": settings.test_batch,
        "optimizer": f"Adagrad({settings.learning_rate})",
        "loss_reduction": LOSS_REDUCTION,
        "seconds": round(seconds, 1),
    }


def run_split(
    ratings: pd.DataFrame,
    titles: Sequence[str],
    split: str,
    results: str,
    seeds: int,
    methods: Sequence[str],
    settings: AnchorSettings,
    on_record=None,
    temperatures: Sequence[float] | None = None,
) -> None:
    """Runs the sweeps and the seeds of ``split`` that have no record under ``results`` yet.

    ``temperatures`` replaces each swept method's ``TEMPERATURE_GRIDS`` grid when given.
    """
    user_ids = ratings["user_id"].unique()
    train, held_out = split_ratings(ratings, split)
    fit, validation = split_ratings(train, split)

    def run(folder: str, key: RunKey, fitted: pd.DataFrame, scored: pd.DataFrame, name: str):
        if key.name() in read_records(folder):
            return
        started = time.monotonic()
        choice = LossChoice(key.method, key.temperature)
        metrics = train_and_score(fitted, scored, titles, choice, key.seed, settings, user_ids)
        fields = _run_fields(name, metrics, split, time.monotonic() - started, settings)
        write_record(folder, key, fields)
        print(f"{split} {name} {key.name()}: {metrics}", flush=True)
        if on_record:
            on_record()

    # The tutorial's own loss first: it needs no sweep and anchors every paired difference.
    swept = [method for method in methods if method in TEMPERATURE_GRIDS]
    for seed in range(seeds):
        for method in methods:
            if method not in swept:
                run(
                    held_out_dir(results, split), RunKey(method, seed=seed), train, held_out, "test"
                )
    for method in swept:
        grid = list(temperatures or TEMPERATURE_GRIDS[method])
        while grid:
            for temperature in grid:
                key = RunKey(method, "uniform", temperature, 0, 0)
                run(sweep_dir(results, split), key, fit, validation, "validation")
            records = read_records(sweep_dir(results, split))
            grid = extended_grid(swept_temperatures(records, method), records, method)
    for seed in range(seeds):
        for method in swept:
            temperature = best_temperature(read_records(sweep_dir(results, split)), method)
            key = RunKey(method, "uniform", temperature, 0, seed)
            run(held_out_dir(results, split), key, train, held_out, "test")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.tfrs_anchor",
        description="TFRS's basic retrieval tutorial on MovieLens-100K (recbole wheel), with "
        "its loss, DFTopK and LapSum in the Retrieval task; random and temporal splits; "
        "resumable (finished runs are skipped).",
    )
    parser.add_argument("--results", default=DEFAULT_RESULTS, help="records and report folder")
    parser.add_argument(
        "--download-dir", default="runs/movielens", help="where the recbole wheel is kept"
    )
    parser.add_argument("--wheel", help="a local copy of the recbole wheel (no download)")
    parser.add_argument("--expected-sha256", default=WHEEL_SHA256, help=argparse.SUPPRESS)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), help="random, temporal")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="tfrs dftopk lapsum")
    parser.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        help="temperatures swept for dftopk and lapsum (default: TEMPERATURE_GRIDS)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method on the test split")
    parser.add_argument("--epochs", type=int, default=AnchorSettings.epochs)
    parser.add_argument("--train-batch", type=int, default=AnchorSettings.train_batch)
    parser.add_argument("--test-batch", type=int, default=AnchorSettings.test_batch)
    return add_entry_flags(parser)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m experiments.tfrs_anchor --help``.

    Example:
        >>> main(["--methods", "softmax"])
        Traceback (most recent call last):
        ...
        ValueError: --methods: unknown method 'softmax'; choose from tfrs, dftopk, lapsum
    """
    from experiments.tfrs_anchor_report import write_anchor_report

    args = _parser().parse_args(argv)
    for method in args.methods:
        if method not in METHODS:
            raise ValueError(
                f"--methods: unknown method {method!r}; choose from {', '.join(METHODS)}"
            )
    for split in args.splits:
        if split not in SPLITS:
            raise ValueError(f"--splits: unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if min(args.seeds, args.epochs, args.train_batch, args.test_batch) < 1:
        raise ValueError("--seeds, --epochs, --train-batch and --test-batch must be >= 1")
    if args.wheel:
        wheel = verified_wheel(args.wheel, args.expected_sha256)
    else:
        wheel = download_wheel(args.download_dir, args.expected_sha256)
    tables = parse_tables(read_members(wheel))
    ratings = tutorial_ratings(tables)
    titles = movie_titles(tables).tolist()
    settings = AnchorSettings(args.epochs, args.train_batch, args.test_batch)

    def report() -> None:
        splits = reported_splits(args.results, args.splits)
        write_anchor_report(args.results, args.methods, splits, args.seeds, args.temperatures)

    for split in args.splits:
        run_split(
            ratings,
            titles,
            split,
            args.results,
            args.seeds,
            args.methods,
            settings,
            report,
            args.temperatures,
        )
    print(os.path.join(args.results, "report.md"))
    report()


if __name__ == "__main__":
    run_command(main, "python -m experiments.tfrs_anchor")
