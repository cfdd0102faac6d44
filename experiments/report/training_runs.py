"""The training studies' runs (main table, temperature, negatives, streaming) on the one runner.

A ``TrainingRunner`` holds what the studies share (the data folder, epochs, batch sizes, the
evaluation) as the one runner's settings (``experiments.runner.RunSettings``: every day but the
last trained on, the last one the test day, no validation day) and trains one cascade per
``RunKey`` with ``experiments.runner.train_run``, which writes each run's record
(``experiments.run_records``) under ``work_dir/runs``. Outcomes are memoised by key, so the tau
and negative-sampling studies reuse the main table's runs at the default settings instead of
training them again.

Example::

    runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
    outcome = runner.run(RunKey("dftopk", seed=0))
    outcome.metrics["joint_recall"], outcome.seconds_per_epoch
"""

import itertools
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from dftopk_cascade.models.protocol import JOINT_RECALL, PROTOCOL_VERSION
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training.data import steps_per_pass, training_input
from dftopk_cascade.models.training.evaluate import EVALUATION_NEGATIVES
from dftopk_cascade.pipelines.data_schema import read_data_schema

from experiments.run_records import RunKey, write_record
from experiments.runner import (
    RunSettings,
    StepTimer,
    evaluate_day,
    numeric_metrics,
    train_run,
)


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


def seconds_per_epoch(record: Mapping) -> float:
    """A record's steady-state seconds per epoch: its median step time x steps per epoch.

    Example:
        >>> seconds_per_epoch({"step_seconds": 0.5, "steps_per_epoch": 4})
        2.0
    """
    if record.get("step_seconds") is None:
        raise RuntimeError("no training step was timed")
    return record["step_seconds"] * record["steps_per_epoch"]


class TrainingRunner:
    """Trains and evaluates cascades on one data folder with shared settings (the one runner's).

    Args:
        data_dir: converted TFRecord folder (``dftopk_cascade.pipelines.convert``).
        work_dir: where each run's model folder (``<work_dir>/models/<key name>``) and record
            (``<work_dir>/runs/<key name>.json``, ``experiments.run_records``) go.
        epochs: passes over the training days (one Keras epoch each).
        batch_size: training batch (requests).
        eval_batch_size: evaluation batch; the evaluation's in-batch negatives come from it.
        eval_negatives: in-batch negatives per request in evaluation (protocol: 160).
        log: called with one line per finished run.

    Example:
        >>> runner = TrainingRunner("/d", "/w", epochs=2)
        >>> runner.settings.passes, runner.settings.validation, runner.settings.fresh
        (2, False, True)
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
        self.settings = RunSettings(
            data_dir,
            work_dir,
            work_dir,
            batch_size=batch_size,
            passes=epochs,
            checkpoints=epochs,
            validation=False,
            eval_batch_size=eval_batch_size,
            eval_negatives=eval_negatives,
            fresh=True,
            keep_checkpoints=True,
        )
        self.log = log
        self._outcomes: dict[RunKey, RunOutcome] = {}

    def run(self, settings: RunKey) -> RunOutcome:
        """Trains and evaluates one cascade (or returns the outcome of an identical earlier run).

        Example::

            runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
            runner.run(RunKey("dftopk", seed=0, temperature=3.0)).metrics["joint_recall"]
        """
        settings = settings.resolved()
        if settings not in self._outcomes:
            record = train_run(settings, self.settings).record
            outcome = RunOutcome(settings, record["test"], seconds_per_epoch(record))
            self._outcomes[settings] = outcome
            self.log(
                f"{settings.name()}: joint recall {outcome.metrics[JOINT_RECALL]:.4f}, "
                f"{outcome.seconds_per_epoch:.1f} s per epoch"
            )
        return self._outcomes[settings]

    def run_streaming(self, method: str, seed: int, days: tuple[str, ...]) -> list[RunOutcome]:
        """One model trained day after day: after training on day d it is tested on day d + 1.

        The first day is trained by the one runner (one pass); each later day continues training
        the same model (one pass over that day) before it is tested on the next. Returns one
        outcome per tested day (``len(days) - 1``), each with that day's training seconds; each
        has its record, naming the first day's model folder.

        Example::

            runner = TrainingRunner("/tmp/tfrec", "/tmp/runs", epochs=1, batch_size=256)
            days = ("2024-01-13", "2024-01-14", "2024-01-15")
            [o.settings.eval_days for o in runner.run_streaming("dftopk", 0, days)]
            # [('2024-01-14',), ('2024-01-15',)]
        """
        if len(days) < 2:
            raise ValueError(f"streaming needs at least two days, got {list(days)}")
        first = RunKey(method, seed=seed, train_days=days[:1], eval_days=days[1:2]).resolved()
        settings = replace(self.settings, passes=1, checkpoints=1)
        trained = train_run(first, settings)
        outcomes = [RunOutcome(first, trained.record["test"], seconds_per_epoch(trained.record))]
        schema = read_data_schema(self.data_dir)
        model_dir = settings.model_dir(first)
        for train_day, test_day in itertools.pairwise(days[1:]):
            timer = StepTimer()
            steps = steps_per_pass(schema, [train_day], settings.batch_size)
            # fit needs the training state that the first run's BackupAndRestore removed from
            # the model when it ended; a fresh BackupAndRestore sets it up again.
            backup = keras.callbacks.BackupAndRestore(
                os.path.join(model_dir, f"backup-{train_day}")
            )
            trained.model.fit(
                training_input(self.data_dir, [train_day], settings.batch_size, 0, seed),
                epochs=1,
                steps_per_epoch=steps,
                callbacks=[backup, timer],
                verbose=0,
            )
            key = replace(first, train_days=(train_day,), eval_days=(test_day,))
            record = write_record(
                settings.results_dir,
                key,
                {
                    "data_dir": self.data_dir,
                    "model_dir": model_dir,
                    "continues": first.name(),
                    "train_days": [train_day],
                    "test_day": test_day,
                    "train_steps": steps,
                    "epochs": 1,
                    "steps_per_epoch": steps,
                    "batch_size": settings.batch_size,
                    "eval_batch_size": settings.eval_batch_size,
                    "eval_negatives": settings.eval_negatives,
                    "step_seconds": timer.median_step_seconds(),
                    "protocol_version": PROTOCOL_VERSION,
                    "test": numeric_metrics(
                        evaluate_day(trained.model, settings, test_day, schema)
                    ),
                },
            )
            outcomes.append(RunOutcome(key, record["test"], seconds_per_epoch(record)))
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
