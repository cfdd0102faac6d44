"""The one runner of the experiments: trains and scores one run and writes its record.

Every experiment trains through ``train_run``. The run's ``dftopk_cascade.models.training.train``
options come from its ``RunKey`` (method, embedding start, temperature, negatives, seed, days, step
budget, dataset) and the experiment's ``RunSettings`` (data folder, folders, batch sizes, training
length, evaluation). A killed run resumes from its last checkpoint (the run is split into Keras
epochs; ``dftopk_cascade.models.training.train`` backs each one up); a run whose weights were saved
before its record was written is scored from its saved model. The trained model is scored on the
split's validation day (where it has one) and on its test day with one evaluation seed, so every run
of an experiment is scored on the same requests and negatives. With ``curve_every`` the validation
joint recall is measured every that many steps: the record's ``curve`` (``[[step, joint recall],
...]``). The record (``experiments.run_records``) is written atomically when the run ends.

Training length: ``RunKey.steps`` (a step budget) or else ``RunSettings.passes`` passes over
the training days. A budget larger than one pass is reached by several passes (the input
repeats, reshuffled); an experiment that wants fresh requests instead gives data with more days
(``experiments.method_comparison`` simulates them). The record says which: ``step_budget_by``
``days`` (one pass or less) or ``passes``, with ``passes`` the passes trained.

Example::

    settings = RunSettings("/tmp/w/tfrecords", "/tmp/w", "/tmp/results", batch_size=128,
                           curve_every=2)
    record = train_run(RunKey("dftopk", "uniform", 0.1, 0, 0, steps=4), settings).record
    record["test"]["joint_recall"], record["curve"]
"""

import json
import math
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training.evaluate import EVALUATION_NEGATIVES
from dftopk_cascade.pipelines.atomic_files import write_json

from dftopk_tf.instruction_sets import usable_cpu_count
from experiments.run_records import RunKey, git_commit, write_record

#: A converted MovieLens folder names its training, validation and test windows here.
SPLITS_FILE = "movielens.json"
#: The evaluation seed of every run: the same requests and in-batch negatives for each.
EVALUATION_SEED = 42
#: The metric of the validation curve.
CURVE_METRIC = "joint_recall"


@dataclass(frozen=True)
class RunSettings:
    """What the runs of one experiment share.

    Attributes:
        data_dir: converted TFRecord folder (``dftopk_cascade.pipelines.convert``,
            ``dftopk_cascade.pipelines.movielens.convert``).
        work_dir: model folders go to ``work_dir/models/<key name>``.
        results_dir: records go to ``results_dir/runs/<key name>.json``.
        batch_size: training batch (requests).
        passes: training length without a step budget (``RunKey.steps``).
        checkpoints: Keras epochs of a run without a curve (a killed run resumes from the last).
        curve_every: measure the validation joint recall every this many steps (each a Keras
            epoch; the run is rounded up to a whole number of them); None: no curve.
        validation: hold out a validation day before the test day (scored, and the curve's).
        rank_stage: train the ranking stage too
        (``dftopk_cascade.models.config.CascadeConfig.rank_stage``). eval_batch_size: evaluation
        batch; its requests supply the in-batch negatives. eval_negatives: in-batch negatives per
        request in evaluation. eval_batches: evaluate at most this many batches of a day; None: the
        whole day. fresh: start every run over (its model folder's earlier training is deleted).
        keep_checkpoints: keep every per-epoch weights file, also once the record is written
            (else only the newest while the run trains, none after). verbose: Keras's
        ``fit`` verbosity. record_fields: more fields for every record (e.g. the experiment's sizes
        name).

    Example:
        >>> RunSettings("/d", "/w", "/r").model_dir(RunKey("bce", seed=1))
        '/w/models/bce-uniform-tdefault-neg0-seed1'
    """

    data_dir: str
    work_dir: str
    results_dir: str
    batch_size: int = 1024
    passes: int = 1
    checkpoints: int = 1
    curve_every: int | None = None
    validation: bool = True
    rank_stage: bool = True
    eval_batch_size: int = 1024
    eval_negatives: int = EVALUATION_NEGATIVES
    eval_batches: int | None = None
    fresh: bool = False
    keep_checkpoints: bool = False
    verbose: int = 0
    record_fields: Mapping[str, Any] = field(default_factory=dict)

    def model_dir(self, key: RunKey) -> str:
        """The run's model folder."""
        return os.path.join(self.work_dir, "models", key.name())


@dataclass(frozen=True)
class DataSplit:
    """The days a run trains on, picks on (validation) and is tested on.

    Example:
        >>> DataSplit(("d1",), "d2", "d3").record_fields()
        {'train_days': ['d1'], 'validation_day': 'd2', 'test_day': 'd3'}
    """

    train_days: tuple[str, ...]
    validation_day: str | None
    test_day: str

    def record_fields(self) -> dict[str, Any]:
        """The split as a record holds it."""
        fields: dict[str, Any] = {"train_days": list(self.train_days)}
        if self.validation_day is not None:
            fields["validation_day"] = self.validation_day
        return fields | {"test_day": self.test_day}


def data_split(data_dir: str, schema: Mapping, key: RunKey, validation: bool) -> DataSplit:
    """The split of ``key``'s run: its own days where it names them, else the data's split.

    The data's split is the one its ``movielens.json`` names, else the days in order: the last
    is the test day, the one before it the validation day (with ``validation``), the others are
    trained on.

    Example:
        >>> schema = {"days": dict.fromkeys(["d1", "d2", "d3"], {})}
        >>> data_split("/nonexistent", schema, RunKey("bce"), validation=True)
        DataSplit(train_days=('d1',), validation_day='d2', test_day='d3')
        >>> data_split("/nonexistent", schema, RunKey("bce", eval_days=("d2",)), False).train_days
        ('d1', 'd2')
    """
    days = sorted(schema["days"])
    named = os.path.join(data_dir, SPLITS_FILE)
    if os.path.isfile(named):
        with open(named) as file:
            splits = json.load(file)["splits"]
        train, held_out = list(splits["train"]), [*splits["validation"], *splits["test"]]
        if not validation:
            train, held_out = train + held_out[:-1], held_out[-1:]
    else:
        needed = 3 if validation else 2
        if len(days) < needed:
            raise ValueError(
                f"{data_dir}: {len(days)} days; the split needs {needed} or more (training, "
                f"{'validation, ' if validation else ''}test)"
            )
        cut = len(days) - (2 if validation else 1)
        train, held_out = days[:cut], days[cut:]
    if key.eval_days is not None:
        if len(key.eval_days) != 1:
            raise ValueError(f"a run is tested on one day, got {list(key.eval_days)}")
        held_out = [*held_out[:-1], key.eval_days[0]]
    if key.train_days is not None:
        train = list(key.train_days)
    return DataSplit(tuple(train), held_out[0] if validation else None, held_out[-1])


def dataset_name(data_dir: str) -> str:
    """The name a dataset's runs carry in their keys: ``movielens`` for a converted MovieLens
    folder (its ``movielens.json``), else the folder's own name.

    Example:
        >>> dataset_name("/data/recflow_real/")
        'recflow_real'
    """
    if os.path.isfile(os.path.join(data_dir, SPLITS_FILE)):
        return "movielens"
    return os.path.basename(os.path.normpath(os.path.abspath(data_dir)))


@dataclass(frozen=True)
class TrainingLength:
    """A run's Keras epochs and steps per epoch, from its step budget or passes.

    Example:
        >>> TrainingLength.of(steps=None, passes=1, pass_steps=1026, checkpoints=5, every=None)
        TrainingLength(epochs=5, steps_per_epoch=206, pass_steps=1026)
        >>> TrainingLength.of(5400, 1, 1026, 5, every=500).train_steps
        5500
    """

    epochs: int
    steps_per_epoch: int
    pass_steps: int

    @classmethod
    def of(
        cls, steps: int | None, passes: int, pass_steps: int, checkpoints: int, every: int | None
    ) -> "TrainingLength":
        """The length of a run of ``steps`` (else ``passes`` x ``pass_steps``)."""
        total = steps if steps is not None else passes * pass_steps
        if every is not None:
            return cls(math.ceil(total / every), every, pass_steps)
        return cls(checkpoints, math.ceil(total / checkpoints), pass_steps)

    @property
    def train_steps(self) -> int:
        """Steps the run trains."""
        return self.epochs * self.steps_per_epoch

    def record_fields(self) -> dict[str, Any]:
        """The length as a record holds it: steps, passes, and how a budget was reached.

        Example:
            >>> TrainingLength(11, 500, 5420).record_fields()["step_budget_by"]
            'passes'
        """
        passes = self.train_steps / self.pass_steps
        return {
            "train_steps": self.train_steps,
            "passes": round(passes, 3),
            "step_budget_by": "days" if self.train_steps <= self.pass_steps else "passes",
        }


class StepTimer(keras.callbacks.Callback):
    """A Keras callback that times every training step, for a steady-state time per step.

    The first step of a ``fit`` traces and compiles the train function (seconds, independent of
    the data size), so it is left out when there are others.

    Example:
        >>> timer = StepTimer()
        >>> timer.step_seconds = [9.0, 1.0, 2.0, 1.0]
        >>> timer.median_step_seconds()
        1.0
    """

    def __init__(self) -> None:
        super().__init__()
        self.step_seconds: list[float] = []
        self._started = 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step_seconds.append(time.perf_counter() - self._started)

    def median_step_seconds(self) -> float | None:
        """Median step time (first step left out when there are others); None: none timed."""
        if not self.step_seconds:
            return None
        return statistics.median(self.step_seconds[1:] or self.step_seconds)


class ValidationCurve(keras.callbacks.Callback):
    """Scores the model at the end of every Keras epoch and keeps the points in a JSON file.

    The file (``[[step, value], ...]``) outlives a killed run: the resumed run keeps the points of
    the epochs it does not train again. A kill between an epoch's backup and its point loses
    that one point (the record's curve then lacks that step).

    Args:
        score: the model -> the curve's value.
        steps_per_epoch: steps of one Keras epoch.
        path: the points' file.

    Example:
        >>> curve = ValidationCurve(lambda model: 0.5, 10, tmp_dir + "/curve.json")
        >>> curve.on_epoch_end(0); curve.on_epoch_end(1)
        >>> curve.points
        [[10, 0.5], [20, 0.5]]
    """

    def __init__(self, score: Callable[[Any], float], steps_per_epoch: int, path: str):
        super().__init__()
        self.score = score
        self.steps_per_epoch = steps_per_epoch
        self.path = path
        self.points: list[list] = []
        if os.path.isfile(path):
            with open(path) as file:
                self.points = json.load(file)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        step = (epoch + 1) * self.steps_per_epoch
        value = float(self.score(self.model))
        self.points = [point for point in self.points if point[0] < step] + [[step, value]]
        write_json(self.path, self.points)


class NewestCheckpointOnly(keras.callbacks.Callback):
    """Deletes the per-epoch checkpoints but the newest at the end of every Keras epoch.

    An experiment's run keeps no checkpoint once its record is written, and it resumes from its
    ``backup/`` folder, not from them; a large world's weights take a gigabyte or more per epoch.

    Example:
        >>> for name in ("epoch-0001.index", "epoch-0002.index", "checkpoint"):
        ...     open(os.path.join(tmp_dir, name), "w").close()
        >>> NewestCheckpointOnly(tmp_dir).on_epoch_end(1)
        >>> sorted(os.listdir(tmp_dir))
        ['checkpoint', 'epoch-0002.index']
    """

    def __init__(self, checkpoints_dir: str):
        super().__init__()
        self.checkpoints_dir = checkpoints_dir

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        names = os.listdir(self.checkpoints_dir) if os.path.isdir(self.checkpoints_dir) else []
        prefixes = {name.split(".")[0] for name in names if name.startswith("epoch-")}
        if not prefixes:
            return
        newest = max(prefixes)
        for name in names:
            if name.startswith("epoch-") and name.split(".")[0] != newest:
                os.remove(os.path.join(self.checkpoints_dir, name))


@dataclass(frozen=True)
class TrainedRun:
    """A finished run: its record and its model.

    Example:
        >>> TrainedRun({"test": {}}, None).record
        {'test': {}}
    """

    record: dict[str, Any]
    model: Any


def training_options(key: RunKey, settings: RunSettings, split: DataSplit, length: TrainingLength):
    """The ``dftopk_cascade.models.training.train`` options of ``key``'s run (no evaluation: the
    runner scores).

    Example:
        >>> options = training_options(RunKey("bce", seed=3, temperature=2.0),
        ...     RunSettings("/d", "/w", "/r"), DataSplit(("d1",), "d2", "d3"),
        ...     TrainingLength(2, 5, 10))
        >>> options.model_dir, options.epochs, options.steps_per_epoch, options.eval_days
        ('/w/models/bce-uniform-t2-neg0-seed3', 2, 5, ('d3',))
    """
    from dftopk_cascade.models.training.train import TrainOptions

    return TrainOptions(
        data_dir=settings.data_dir,
        model_dir=settings.model_dir(key),
        method=key.method,
        tau=key.temperature,
        negatives=key.negatives,
        embedding_init=key.embedding_init,
        prerank_attention=key.prerank_attention or TrainOptions.prerank_attention,
        epochs=length.epochs,
        steps_per_epoch=length.steps_per_epoch,
        batch_size=settings.batch_size,
        rank_stage=settings.rank_stage,
        seed=key.seed,
        train_days=split.train_days,
        eval_days=(split.test_day,),
        eval_negatives=settings.eval_negatives,
        eval_batch_size=settings.eval_batch_size,
        evaluate=False,
        overwrite=settings.fresh,
        verbose=settings.verbose,
    )


def evaluate_day(model, settings: RunSettings, day: str, schema: Mapping | None = None) -> dict:
    """The protocol's metrics of ``model`` on ``day`` (``dftopk_cascade.models.training.evaluate``),
    with the experiment's evaluation sizes and seed.

    Example (tests/experiments/test_runner.py runs it)::

        evaluate_day(model, settings, "2024-01-15")["joint_recall"]
    """
    from dftopk_cascade.models.training.evaluate import evaluate_model

    return evaluate_model(
        model,
        settings.data_dir,
        [day],
        settings.eval_batch_size,
        settings.eval_negatives,
        EVALUATION_SEED,
        settings.eval_batches,
        schema=None if schema is None else dict(schema),
    )


def score_model(model, settings: RunSettings, split: DataSplit) -> dict[str, Any]:
    """A record's score fields: validation (where the split has it) and test metrics, the
    requests scored and the protocol version.

    Example (tests/experiments/test_runner.py runs it)::

        score_model(model, settings, split)["test"]["joint_recall"]
    """
    from dftopk_cascade.models.protocol import PROTOCOL_VERSION

    scores: dict[str, Any] = {"protocol_version": PROTOCOL_VERSION}
    days = {"validation": split.validation_day, "test": split.test_day}
    for part, day in days.items():
        if day is not None:
            metrics = evaluate_day(model, settings, day)
            scores[part] = numeric_metrics(metrics)
            scores["evaluated_requests"] = metrics["evaluation"]["requests"]
    return scores


def numeric_metrics(metrics: Mapping) -> dict[str, float]:
    """The metric values of an evaluation (its ``evaluation`` details left out).

    Example:
        >>> numeric_metrics({"joint_recall": 1, "evaluation": {}})
        {'joint_recall': 1.0}
    """
    return {name: float(value) for name, value in metrics.items() if name != "evaluation"}


def peak_resident_gib() -> float:
    """This process's peak resident memory so far, in GiB (``ru_maxrss``: KiB on Linux, bytes
    on macOS).

    Example:
        >>> peak_resident_gib() > 0
        True
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def train_run(
    key: RunKey, settings: RunSettings, callbacks: Sequence[keras.callbacks.Callback] = ()
) -> TrainedRun:
    """Trains (or resumes) ``key``'s run, scores it, writes its record; see the module docstring.

    Unless ``settings.keep_checkpoints``, only the newest per-epoch weights stay while the run
    trains, and none once the record is written (its final weights stay): an experiment's
    checkpoints would otherwise fill the disk.

    Example (tests/experiments/test_runner.py runs it on tiny data)::

        train_run(RunKey("dftopk", "uniform", 0.1, 0, 0), settings).record["test"]
    """
    from dftopk_cascade.models.cascade import load_cascade
    from dftopk_cascade.models.model_folder import ModelDir
    from dftopk_cascade.models.training.data import steps_per_pass
    from dftopk_cascade.models.training.train import run_training
    from dftopk_cascade.pipelines.data_schema import read_data_schema

    git_commit()  # the code's commit, pinned before this run's results can be committed
    schema = read_data_schema(settings.data_dir)
    split = data_split(settings.data_dir, schema, key, settings.validation)
    length = TrainingLength.of(
        key.steps,
        settings.passes,
        steps_per_pass(schema, list(split.train_days), settings.batch_size),
        settings.checkpoints,
        settings.curve_every,
    )
    model_dir = settings.model_dir(key)
    curve_path = model_dir + ".curve.json"
    layout = ModelDir(model_dir)
    timer = StepTimer()
    started = time.perf_counter()
    if not settings.fresh and layout.has_weights() and not os.path.isdir(layout.backup_dir):
        model = load_cascade(model_dir)  # trained, stopped before its record was written
    else:
        run_callbacks = [timer, *callbacks]
        if not settings.keep_checkpoints:
            run_callbacks.append(NewestCheckpointOnly(layout.checkpoints_dir))
        if settings.curve_every is not None:
            if settings.fresh and os.path.isfile(curve_path):
                os.remove(curve_path)
            run_callbacks.append(
                ValidationCurve(
                    lambda model: evaluate_day(model, settings, split.validation_day, schema)[
                        CURVE_METRIC
                    ],
                    length.steps_per_epoch,
                    curve_path,
                )
            )
        model = run_training(training_options(key, settings, split, length), None, run_callbacks)
        model = model.model
    record = {
        **settings.record_fields,
        "data_dir": settings.data_dir,
        "model_dir": model_dir,
        **split.record_fields(),
        **length.record_fields(),
        "epochs": length.epochs,
        "steps_per_epoch": length.steps_per_epoch,
        "rank_stage": settings.rank_stage,
        "batch_size": settings.batch_size,
        "eval_batch_size": settings.eval_batch_size,
        "eval_negatives": settings.eval_negatives,
        "train_seconds": round(time.perf_counter() - started, 1),
        # The steps train_seconds covers: fewer than train_steps when this process resumed a
        # stopped run, 0 when it only scored a model trained before.
        "trained_steps": len(timer.step_seconds),
        "step_seconds": timer.median_step_seconds(),
        # The CPUs this process could run on: fewer than the machine's when runs trained side
        # by side (method_comparison --workers), which makes its steps slower.
        "train_cpus": usable_cpu_count(),
    }
    if settings.curve_every is not None:
        with open(curve_path) as file:
            record |= {"curve_every": settings.curve_every, "curve": json.load(file)}
    record |= score_model(model, settings, split)
    # This process's peak so far: the run's own training and scoring where the process trains
    # one run (method_comparison; a resumed run: its last process's), an upper bound where it
    # trained other runs before (experiments.reproduce).
    record["peak_memory_gib"] = round(peak_resident_gib(), 2)
    record = write_record(settings.results_dir, key, record)
    if not settings.keep_checkpoints:
        shutil.rmtree(layout.checkpoints_dir, ignore_errors=True)
    return TrainedRun(record, model)
