"""Training and evaluating cascades for the experiments, through ``models.training.train``'s Python
API.

A ``TrainingRunner`` holds what every experiment shares (the data folder, epochs, batch sizes, the
evaluation protocol) and trains one cascade per ``RunKey`` (``experiments.run_records``: method,
seed, temperature, negatives, days) with ``models.training.train.run_training``, timing every
training step, and writes each run's record in the experiments' one format beside its model
folder. Outcomes are memoised by key, so the tau and negative-sampling studies reuse the main
table's runs at the default settings instead of training them again.

Example::

    runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
    outcome = runner.run(RunKey("dftopk", seed=0))
    outcome.metrics["joint_recall"], outcome.seconds_per_epoch
"""

import itertools
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from experiments.run_records import RunKey, write_record
from models.protocol import JOINT_RECALL, PROTOCOL_VERSION
from models.tf_keras import keras
from models.training.data import steps_per_pass, training_input
from models.training.evaluate import EVALUATION_NEGATIVES, evaluate_model
from models.training.train import TrainOptions, run_training
from pipelines.data_schema import read_data_schema


@dataclass(frozen=True)
class RunOutcome:
    """The evaluation metrics (means over requests) and the steady-state seconds per epoch.

    Example:
        >>> RunOutcome(RunKey("bce", seed=0), {"joint_recall": 0.5}, 2.0).seconds_per_epoch
        2.0
    """

    settings: RunKey
    metrics: dict[str, float]
    seconds_per_epoch: float


class StepTimer(keras.callbacks.Callback):
    """A Keras callback that times every training step, for a steady-state time per epoch.

    The first step of a ``fit`` traces and compiles the train function (seconds, independent of
    the data size), so it is left out: ``seconds_per_epoch`` is the median time of the other
    steps times the steps per epoch.

    Example:
        >>> timer = StepTimer()
        >>> timer.on_epoch_begin(0)
        >>> for step in range(3):
        ...     timer.on_train_batch_begin(step); timer.on_train_batch_end(step)
        >>> len(timer.step_seconds), timer.steps_per_epoch
        (3, 3)
    """

    def __init__(self) -> None:
        super().__init__()
        self.step_seconds: list[float] = []
        self.steps_per_epoch = 0
        self._steps_this_epoch = 0
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._steps_this_epoch = 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.step_seconds.append(time.perf_counter() - self._started)
        self._steps_this_epoch += 1
        self.steps_per_epoch = max(self.steps_per_epoch, self._steps_this_epoch)

    def seconds_per_epoch(self) -> float:
        """Median step time (first step left out when there are others) x steps per epoch.

        Example:
            >>> timer = StepTimer()
            >>> timer.step_seconds, timer.steps_per_epoch = [9.0, 1.0, 2.0, 1.0], 4
            >>> timer.seconds_per_epoch()
            4.0
        """
        if not self.step_seconds:
            raise RuntimeError("no training step was timed")
        steady = self.step_seconds[1:] or self.step_seconds
        return statistics.median(steady) * self.steps_per_epoch


class TrainingRunner:
    """Trains and evaluates cascades on one data folder with shared settings.

    Args:
        data_dir: converted TFRecord folder (``pipelines.convert``).
        work_dir: where each run's model folder (``<work_dir>/models/<key name>``) and record
            (``<work_dir>/runs/<key name>.json``, ``experiments.run_records``) go: the
            method comparison's layout.
        epochs: passes over the training days.
        batch_size: training batch (requests).
        eval_batch_size: evaluation batch; the evaluation's in-batch negatives come from it.
        eval_negatives: in-batch negatives per request in evaluation (protocol: 160).
        log: called with one line per finished run.

    Example::

        runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
        runner.run(RunKey("bce", seed=0)) is runner.run(RunKey("bce", seed=0))  # True: memoised
    """

    def __init__(
        self,
        data_dir: str,
        work_dir: str,
        epochs: int = 1,
        batch_size: int = 1024,
        eval_batch_size: int = 1024,
        eval_negatives: int = EVALUATION_NEGATIVES,
        log: Callable[[str], None] = print,
    ):
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.eval_negatives = eval_negatives
        self.log = log
        self._outcomes: dict[RunKey, RunOutcome] = {}

    def options(self, settings: RunKey) -> TrainOptions:
        """The ``models.training.train`` options of a run (a fresh model folder, CPU or all GPUs).

        Example:
            >>> TrainingRunner("/d", "/w").options(RunKey("bce", seed=3, temperature=2.0)).model_dir
            '/w/models/bce-uniform-t2-neg0-seed3'
        """
        return TrainOptions(
            data_dir=self.data_dir,
            model_dir=os.path.join(self.work_dir, "models", settings.name()),
            method=settings.method,
            tau=settings.temperature,
            negatives=settings.negatives,
            embedding_init=settings.embedding_init,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=settings.seed,
            train_days=settings.train_days,
            eval_days=settings.eval_days,
            eval_negatives=self.eval_negatives,
            eval_batch_size=self.eval_batch_size,
            overwrite=True,
            verbose=0,
        )

    def run(self, settings: RunKey) -> RunOutcome:
        """Trains and evaluates one cascade (or returns the outcome of an identical earlier run).

        Example::

            runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
            runner.run(RunKey("dftopk", seed=0, temperature=3.0)).metrics["joint_recall"]
        """
        settings = settings.resolved()
        if settings not in self._outcomes:
            timer = StepTimer()
            result = run_training(self.options(settings), callbacks=[timer])
            outcome = RunOutcome(settings, _numeric(result.metrics), timer.seconds_per_epoch())
            self._outcomes[settings] = outcome
            self.save(outcome, self.epochs, self.options(settings).model_dir)
            self.log(
                f"{settings.name()}: joint recall {outcome.metrics[JOINT_RECALL]:.4f}, "
                f"{outcome.seconds_per_epoch:.1f} s per epoch"
            )
        return self._outcomes[settings]

    def save(self, outcome: RunOutcome, epochs: int, model_dir: str) -> dict:
        """Writes ``outcome``'s record (``experiments.run_records``) under ``work_dir/runs``.

        The metrics are the record's ``test``; its settings are the data folder, the training
        days (None: every day but the last), the epochs, the batch sizes and the model folder
        (a streaming run's later days continue the first day's model).

        Example:
            >>> runner = TrainingRunner("/d", tmp_dir, batch_size=64)
            >>> outcome = RunOutcome(RunKey("bce", seed=1), {"joint_recall": 0.5}, 2.0)
            >>> runner.save(outcome, 1, tmp_dir + "/models/bce")["test"]
            {'joint_recall': 0.5}
        """
        key = outcome.settings
        return write_record(
            self.work_dir,
            key,
            {
                "data_dir": self.data_dir,
                "model_dir": model_dir,
                "train_days": None if key.train_days is None else list(key.train_days),
                "epochs": epochs,
                "batch_size": self.batch_size,
                "eval_batch_size": self.eval_batch_size,
                "eval_negatives": self.eval_negatives,
                "seconds_per_epoch": outcome.seconds_per_epoch,
                "protocol_version": PROTOCOL_VERSION,
                "test": outcome.metrics,
            },
        )

    def run_streaming(self, method: str, seed: int, days: tuple[str, ...]) -> list[RunOutcome]:
        """One model trained day after day: after training on day d it is tested on day d + 1.

        The first day is trained by ``models.training.train``; each later day continues training the
        same model (one pass over that day) before it is tested on the next. Returns one outcome per
        tested day (``len(days) - 1``), each with that day's training seconds.

        Example::

            runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
            days = ("2024-01-13", "2024-01-14", "2024-01-15")
            [o.settings.eval_days for o in runner.run_streaming("dftopk", 0, days)]
            # [('2024-01-14',), ('2024-01-15',)]
        """
        if len(days) < 2:
            raise ValueError(f"streaming needs at least two days, got {list(days)}")
        first = RunKey(method, seed=seed, train_days=days[:1], eval_days=days[1:2]).resolved()
        timer = StepTimer()
        options = replace(self.options(first), epochs=1)
        result = run_training(options, callbacks=[timer])
        outcomes = [RunOutcome(first, _numeric(result.metrics), timer.seconds_per_epoch())]
        self.save(outcomes[0], 1, options.model_dir)
        schema = read_data_schema(self.data_dir)
        for train_day, test_day in itertools.pairwise(days[1:]):
            timer = StepTimer()
            # fit needs the training state that the first run's BackupAndRestore removed from
            # the model when it ended; a fresh BackupAndRestore sets it up again.
            backup = keras.callbacks.BackupAndRestore(
                os.path.join(options.model_dir, f"backup-{train_day}")
            )
            result.model.fit(
                training_input(self.data_dir, [train_day], self.batch_size, 0, seed),
                epochs=1,
                steps_per_epoch=steps_per_pass(schema, [train_day], self.batch_size),
                callbacks=[backup, timer],
                verbose=0,
            )
            metrics = evaluate_model(
                result.model,
                self.data_dir,
                [test_day],
                self.eval_batch_size,
                self.eval_negatives,
                seed,
            )
            settings = replace(first, train_days=(train_day,), eval_days=(test_day,))
            outcomes.append(RunOutcome(settings, _numeric(metrics), timer.seconds_per_epoch()))
            self.save(outcomes[-1], 1, options.model_dir)
        self.log(
            f"streaming {method} seed {seed}: joint recall "
            + ", ".join(f"{o.metrics[JOINT_RECALL]:.4f}" for o in outcomes)
        )
        return outcomes


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of one metric over seeds.

    Example:
        >>> [round(value, 4) for value in mean_and_spread([0.5, 0.7])]
        [0.6, 0.1414]
    """
    if not values:
        raise ValueError("no values to average")
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread


def _numeric(metrics: dict | None) -> dict[str, float]:
    """The metric values of an evaluation (its ``evaluation`` details left out)."""
    if metrics is None:
        raise RuntimeError("the training run returned no evaluation")
    return {name: float(value) for name, value in metrics.items() if name != "evaluation"}
