"""Trains the cascade end to end with ``model.fit``: ``python -m
dftopk_cascade.models.training.train``.

Retrieval, pre-ranking and ranking are trained together on converted RecFlow TFRecords
(``dftopk_cascade.pipelines.convert``) with the method given by ``--method``
(``dftopk_cascade.models.objectives``): DFTopK and every peer top-k operator in the LCRON cascade
scheme, pointwise BCE, or the TFRS baseline. Defaults follow the paper's protocol
(/work/shared/REFERENCE.md, section 4): Adam, learning rate 1e-2, batch 1024, embedding size 8, seed
42, k = 10 for both stages, one pass over every day but the last, and an evaluation on the last day
with 160 in-batch negatives per request. The default temperature is 0.1
(``dftopk_cascade.models.objectives`` says why it is not the paper's 500).

The run writes only into a new or empty model folder or one it wrote before (its
``.dftopk-model.json`` marker, ``dftopk_cascade.pipelines.owned_folder``), holds the folder's lock
while it runs (a second training into the same folder stops at once, naming the first), and
``--overwrite`` deletes only the files the marker lists. A full disk stops it with one line naming
the folder and the free space (``dftopk_cascade.models.training.full_disk``).

The run writes the model folder (layout in ``dftopk_cascade.models.model_folder``): ``config.json``
first, then a checkpoint every epoch, TensorBoard logs and ``history.csv``; a backup callback
(``dftopk_cascade.models.training.callbacks``) keeps the training state in ``backup/`` so that a
killed run, started again with the same command, resumes at the epoch after the last completed one.
TensorBoard logs are written by ``dftopk_cascade.models.training.callbacks`` (the ``tensorboard``
package is not installed here). At the end: ``weights/`` (what
``dftopk_cascade.models.cascade.load_cascade`` and ``serving/`` read) and ``metrics.json``
(``dftopk_cascade.models.training.evaluate``).

Distribution (``--strategy``, ``dftopk_cascade.models.training.strategies``): ``auto`` mirrors over
all GPUs or runs on the CPU; ``multiworker`` and ``parameter-server`` read the cluster from
``TF_CONFIG`` and run the same command on every task. ``--batch-size`` is the global batch; each
replica gets an equal share and draws in-batch negatives from it, unless
``--cross-replica-negatives``.

Example::

    python -m dftopk_cascade.models.training.train --data /tmp/recflow_tfrec --model-dir
    /tmp/dftopk_model \\
        --method dftopk --epochs 1
"""

import argparse
import contextlib
import dataclasses
import os
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf
from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.attention import TARGET_ATTENTIONS
from dftopk_cascade.models.cascade import CascadeModel
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.contract import STAGE_CANDIDATES, zero_features
from dftopk_cascade.models.embeddings import EMBEDDING_INITS
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.objectives import METHOD_NAMES
from dftopk_cascade.models.precision import (
    PRECISION_CHOICES,
    check_precision,
    mixed_precision_policy,
    training_optimizer,
)
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training.callbacks import (
    EpochSummaries,
    RefittableBackupAndRestore,
    completed_epochs,
)
from dftopk_cascade.models.training.data import split_days, steps_per_pass, training_input
from dftopk_cascade.models.training.evaluate import (
    EVALUATION_NEGATIVES,
    evaluate_model,
    metrics_table,
    write_metrics,
)
from dftopk_cascade.models.training.full_disk import reporting_full_disk
from dftopk_cascade.models.training.history import EpochHistory, trim_history
from dftopk_cascade.models.training.profiling import ProfileSteps, parse_profile_steps
from dftopk_cascade.models.training.strategies import (
    SERVING_TASK_TYPES,
    STRATEGY_NAMES,
    cluster_task,
    is_chief,
    make_strategy,
    serve_cluster_task,
)
from dftopk_cascade.models.training.xla import (
    JIT_COMPILE_CHOICES,
    compile_optimizer_updates,
    use_xla,
)
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.owned_folder import OwnedFolder, owned_folder

#: The writer named in the model folder's marker (``dftopk_cascade.pipelines.owned_folder``).
TRAIN_WRITER = "dftopk_cascade.models.training.train"


@dataclass(frozen=True)
class TrainOptions:
    """Everything a training run needs; the fields mirror ``python -m
    dftopk_cascade.models.training.train`` flags.

    Example:
        >>> TrainOptions(data_dir="/tfrec", model_dir="/model").learning_rate
        0.01
    """

    data_dir: str
    model_dir: str
    method: str = "dftopk"
    tau: float | None = None
    k: int = 10
    retrieval_k: int | None = None
    prerank_k: int | None = None
    rank_k: int = 10
    label_k: int = 10
    negatives: int = 0
    cross_replica_negatives: bool = False
    epochs: int = 1
    batch_size: int = 1024
    learning_rate: float = 1e-2
    embedding_dim: int = 8
    embedding_init: str = "uniform"
    prerank_attention: str = "bilinear"
    rank_stage: bool = True
    strategy: str = "auto"
    seed: int = 42
    steps_per_epoch: int | None = None
    train_days: tuple[str, ...] | None = None
    eval_days: tuple[str, ...] | None = None
    eval_negatives: int = EVALUATION_NEGATIVES
    eval_batch_size: int = 1024
    validate: bool = False
    evaluate: bool = True
    overwrite: bool = False
    run_eagerly: bool = False
    jit_compile: str = "auto"
    mixed_precision: str = "off"
    profile_steps: tuple[int, int] | None = None
    verbose: int = 1

    def cascade_config(self, schema: dict[str, Any]) -> CascadeConfig:
        """The model's config for the data ``schema``, its ks checked against the candidates.

        Example:
            >>> from dftopk_cascade.models.config import example_schema
            >>> options = TrainOptions(data_dir="d", model_dir="m", k=50)
            >>> options.cascade_config(example_schema())
            Traceback (most recent call last):
            ...
            ValueError: retrieval_k = 50 is larger than the 40 candidates per request; ...
        """
        config = CascadeConfig.from_schema(
            schema,
            method=self.method,
            tau=self.tau,
            retrieval_k=self.retrieval_k or self.k,
            prerank_k=self.prerank_k or self.k,
            rank_k=self.rank_k,
            label_k=self.label_k,
            embedding_dim=self.embedding_dim,
            embedding_init=self.embedding_init,
            prerank_attention=self.prerank_attention,
            rank_stage=self.rank_stage,
        )
        config.check_candidates(STAGE_CANDIDATES + self.negatives)
        return config


@dataclass(frozen=True)
class TrainingResult:
    """What a run produced: the model, the epochs' logs and the final evaluation (or None).

    Example:
        >>> TrainingResult(model=None, history={"loss": [0.5]}, metrics=None).history["loss"]
        [0.5]
    """

    model: CascadeModel | None
    history: dict[str, list[float]]
    metrics: dict[str, Any] | None


def check_options(options: TrainOptions) -> None:
    """Raises ``ValueError`` naming the first invalid option.

    Example:
        >>> check_options(TrainOptions(data_dir="d", model_dir="m", strategy="tpu"))
        Traceback (most recent call last):
        ...
        ValueError: unknown strategy 'tpu'; expected one of auto, mirrored, ...

    The method is checked where the model's config is made (``CascadeConfig``).
    """
    if options.strategy not in STRATEGY_NAMES:
        raise ValueError(
            f"unknown strategy {options.strategy!r}; expected one of {', '.join(STRATEGY_NAMES)}"
        )
    positive = {
        "epochs": options.epochs,
        "batch_size": options.batch_size,
        "eval_batch_size": options.eval_batch_size,
        "learning_rate": options.learning_rate,
    }
    if options.steps_per_epoch is not None:
        positive["steps_per_epoch"] = options.steps_per_epoch
    bad = {name: value for name, value in positive.items() if not value > 0}
    if bad:
        raise ValueError(f"these options must be > 0: {bad}")
    if options.negatives < 0 or options.eval_negatives < 0:
        raise ValueError("negatives and eval_negatives must be >= 0")
    if options.cross_replica_negatives and options.negatives == 0:
        raise ValueError("cross_replica_negatives needs negatives > 0 (--negatives)")
    check_precision(options.mixed_precision)
    if os.path.realpath(options.data_dir) == os.path.realpath(options.model_dir):
        raise ValueError(
            f"--model-dir {options.model_dir} is the --data folder; use another folder"
        )


def evaluation_command(options: TrainOptions, eval_days: Sequence[str]) -> str:
    """The ``dftopk_cascade.models.training.evaluate`` command that gives the evaluation this run
    would give.

    It keeps every setting that changes the metrics: the days, the batch size, the negatives and
    the seed.

    Example:
        >>> options = TrainOptions("/d", "/m", eval_batch_size=60, eval_negatives=8)
        >>> evaluation_command(options, ["2024-01-14"])
        'python -m dftopk_cascade.models.training.evaluate --data /d --model-dir /m --days
        2024-01-14 \
--batch-size 60 --negatives 8 --seed 42'
    """
    return shlex.join(
        [
            *("python", "-m", "dftopk_cascade.models.training.evaluate"),
            *("--data", options.data_dir, "--model-dir", options.model_dir),
            *("--days", *eval_days),
            *("--batch-size", str(options.eval_batch_size)),
            *("--negatives", str(options.eval_negatives)),
            *("--seed", str(options.seed)),
        ]
    )


def check_resumable(
    layout: ModelDir, config: CascadeConfig, precision: str, finish_command: str
) -> None:
    """Raises ``ValueError`` unless the run in ``layout`` is an unfinished one of these settings.

    The settings are the model's config and the ``--mixed-precision`` value (a float16 run's
    optimizer state is a loss-scaled one's, which another run cannot resume). A run that stopped
    after its weights and before its evaluation is refused with ``finish_command``.

    Example:
        >>> folder = tempfile.mkdtemp()
        >>> CascadeConfig.for_examples(method="bce").save(f"{folder}/config.json")
        >>> check_resumable(ModelDir(folder), CascadeConfig.for_examples(), "off", "")
        Traceback (most recent call last):
        ...
        ValueError: ... other settings (setting: (there, now)): {'method': ('bce', 'dftopk')}; ...
    """
    previous = CascadeConfig.load(layout.config_path)
    if previous != config:
        changed = {
            name: (getattr(previous, name), getattr(config, name))
            for name in (field.name for field in dataclasses.fields(config))
            if getattr(previous, name) != getattr(config, name)
        }
        raise ValueError(
            f"{layout.root} holds a model trained with other settings (setting: (there, "
            f"now)): {changed}; use another --model-dir or --overwrite"
        )
    if layout.recorded_precision() != precision:
        raise ValueError(
            f"{layout.root} holds a run with --mixed-precision "
            f"{layout.recorded_precision()}; resume it with that value, or use another "
            "--model-dir or --overwrite"
        )
    if layout.has_weights() and not os.path.isfile(layout.metrics_path):
        raise ValueError(
            f"{layout.root} holds trained weights but no metrics.json (the run stopped "
            f"before its evaluation); finish it with: {finish_command} "
            "(or use --overwrite to train again)"
        )
    if layout.has_weights():
        raise ValueError(
            f"{layout.root} holds a completed training; use another --model-dir or "
            "--overwrite to train again"
        )


def prepare_model_dir(
    folder: OwnedFolder,
    config: CascadeConfig,
    data_dir: str | None = None,
    precision: str = "off",
    finish_command: str = "python -m dftopk_cascade.models.training.evaluate",
) -> None:
    """Writes ``config.json`` into the claimed ``folder``, or checks an unfinished run there.

    ``folder`` is claimed with ``owned_folder`` (``claim_model_dir``): new, empty or written by
    training, and locked; with ``--overwrite`` what training wrote there is gone already. An
    earlier run's ``config.json`` must match (``check_resumable``). Every path training writes is
    listed in the folder's manifest before it is written.

    Example:
        >>> config = CascadeConfig.for_examples()
        >>> path = tempfile.mkdtemp()
        >>> with claim_model_dir(path, overwrite=False) as folder:
        ...     prepare_model_dir(folder, config)
        >>> with claim_model_dir(path, overwrite=False) as folder:
        ...     prepare_model_dir(folder, config)  # resumable: same settings
        ...     folder.marker["manifest"][:3]
        ['backup', 'checkpoints', 'config.json']
    """
    layout = ModelDir(folder.path)
    if os.path.isfile(layout.config_path):
        check_resumable(layout, config, precision, finish_command)
    folder.record(*layout.entries())
    config.save(layout.config_path)
    layout.record_precision(precision)
    if data_dir:
        layout.record_data(data_dir)


def claim_model_dir(
    model_dir: str, overwrite: bool
) -> contextlib.AbstractContextManager[OwnedFolder]:
    """``owned_folder`` for a model folder written by this command (marker, manifest, lock).

    Example:
        >>> with claim_model_dir(tempfile.mkdtemp(), overwrite=False) as folder:
        ...     folder.marker["writer"]
        'dftopk_cascade.models.training.train'
    """
    return owned_folder(model_dir, kind="model", writer=TRAIN_WRITER, overwrite=overwrite)


def make_callbacks(
    layout: ModelDir, chief: bool, profile_steps: tuple[int, int] | None = None
) -> list[keras.callbacks.Callback]:
    """(Chief) ``history.csv``, backup-and-restore, a checkpoint per epoch, (chief) TensorBoard.

    ``history.csv`` comes first: an epoch's row is written before its backup, so that a kill
    in between costs a row the resumed run rewrites, never a missing one
    (``dftopk_cascade.models.training.history``). With ``profile_steps`` the chief also writes a
    profiler trace of those steps to ``logs/profile``
    (``dftopk_cascade.models.training.profiling``).

    Example:
        >>> folder = tempfile.TemporaryDirectory()
        >>> [type(c).__name__ for c in make_callbacks(ModelDir(folder.name), chief=True)]
        ['EpochHistory', 'RefittableBackupAndRestore', 'ModelCheckpoint', 'EpochSummaries']
    """
    callbacks: list[keras.callbacks.Callback] = []
    if chief:
        callbacks.append(EpochHistory(layout.history_path))
    callbacks.append(RefittableBackupAndRestore(layout.backup_dir))
    callbacks.append(
        keras.callbacks.ModelCheckpoint(layout.checkpoint_pattern, save_weights_only=True)
    )
    if chief:
        callbacks.append(EpochSummaries(layout.logs_dir))
        if profile_steps:
            profile_dir = os.path.join(layout.logs_dir, "profile")
            callbacks.append(ProfileSteps(profile_dir, *profile_steps))
    return callbacks


@dataclass(frozen=True)
class TrainingData:
    """The data folder's schema and the days a run trains and evaluates on.

    Example:
        >>> TrainingData({"days": {}}, ("2024-01-13",), ("2024-01-14",)).eval_days
        ('2024-01-14',)
    """

    schema: dict[str, Any]
    train_days: tuple[str, ...]
    eval_days: tuple[str, ...]


def read_training_data(options: TrainOptions) -> TrainingData:
    """Reads ``options.data_dir``'s schema once and splits its days as ``options`` say.

    Example (tests/models/test_train.py runs it on a tiny dataset)::

        read_training_data(TrainOptions("/tmp/recflow_tfrec", "/tmp/dftopk_model")).eval_days
    """
    schema = read_data_schema(options.data_dir)
    train_days, eval_days = split_days(schema, options.train_days, options.eval_days)
    return TrainingData(schema, tuple(train_days), tuple(eval_days))


def check_distribution(options: TrainOptions, strategy: tf.distribute.Strategy) -> bool:
    """Checks ``options`` against ``strategy``'s replicas; returns whether to compile with XLA.

    Example:
        >>> options = TrainOptions(data_dir="d", model_dir="m", batch_size=7)
        >>> check_distribution(options, tf.distribute.get_strategy())
        False
    """
    replicas = strategy.num_replicas_in_sync
    local_replicas = isinstance(strategy, tf.distribute.MirroredStrategy) and replicas > 1
    if options.run_eagerly and local_replicas:
        raise ValueError(
            "--run-eagerly with several replicas on one machine: eager replicas may start "
            "their collective ops in different orders and fail; run without --run-eagerly"
        )
    jit_compile = False if options.run_eagerly else use_xla(options.jit_compile, strategy)
    if options.batch_size % replicas:
        raise ValueError(
            f"batch size {options.batch_size} does not split evenly over {replicas} replicas"
        )
    return jit_compile


def build_model(
    options: TrainOptions,
    config: CascadeConfig,
    strategy: tf.distribute.Strategy,
    jit_compile: bool,
) -> CascadeModel:
    """The seeded, built and compiled cascade, under ``strategy`` and the run's precision.

    Example:
        >>> config = CascadeConfig.for_examples(method="bce", tower_units=(16, 8))
        >>> options = TrainOptions(data_dir="d", model_dir="m", run_eagerly=True)
        >>> model = build_model(options, config, tf.distribute.get_strategy(), jit_compile=False)
        >>> model.run_eagerly
        True
    """
    keras.utils.set_random_seed(options.seed)
    with strategy.scope(), mixed_precision_policy(options.mixed_precision):
        model = CascadeModel(
            config,
            in_step_negatives=options.negatives if options.cross_replica_negatives else 0,
            seed=options.seed,
        )
        model(zero_features(1, STAGE_CANDIDATES))
        adam = compile_optimizer_updates(
            keras.optimizers.Adam(options.learning_rate), strategy, model.trainable_variables
        )
        model.compile(
            optimizer=training_optimizer(adam, options.mixed_precision),
            run_eagerly=options.run_eagerly,
            jit_compile=jit_compile,
        )
    return model


def fit_model(
    model: CascadeModel,
    options: TrainOptions,
    data: TrainingData,
    chief: bool,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, list[float]]:
    """Fits ``model`` as ``options`` say, resuming a killed run's backup; returns the history.

    Example (tests/models/test_train.py runs it through ``run_training``)::

        fit_model(model, options, read_training_data(options), chief=True)["loss"]
    """
    layout = ModelDir(options.model_dir)
    input_negatives = 0 if options.cross_replica_negatives else options.negatives
    fit_arguments: dict[str, Any] = {}
    if options.validate:
        fit_arguments["validation_data"] = training_input(
            options.data_dir,
            data.eval_days,
            options.eval_batch_size,
            options.eval_negatives,
            options.seed,
            schema=data.schema,
        )
        fit_arguments["validation_steps"] = steps_per_pass(
            data.schema, data.eval_days, options.eval_batch_size
        )
    steps_per_epoch = options.steps_per_epoch or steps_per_pass(
        data.schema, data.train_days, options.batch_size
    )
    resumed_epochs = completed_epochs(layout.backup_dir)
    if chief:
        trim_history(layout.history_path, resumed_epochs)
    # A resumed run continues the input stream after the batches the killed run trained on.
    trained_batches = resumed_epochs * steps_per_epoch
    history = model.fit(
        training_input(
            options.data_dir,
            data.train_days,
            options.batch_size,
            input_negatives,
            options.seed,
            skip_batches=trained_batches,
            schema=data.schema,
        ),
        epochs=options.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[*make_callbacks(layout, chief, options.profile_steps), *callbacks],
        verbose=options.verbose,
        **fit_arguments,
    )
    return history.history


def evaluate_and_report(
    model: CascadeModel, options: TrainOptions, data: TrainingData
) -> dict[str, Any]:
    """Evaluates the trained ``model``, writes ``metrics.json`` and prints the metrics table.

    Example (tests/models/test_train.py runs it through ``run_training``)::

        evaluate_and_report(model, options, read_training_data(options))["joint_recall"]
    """
    metrics = evaluate_model(
        model,
        options.data_dir,
        data.eval_days,
        options.eval_batch_size,
        options.eval_negatives,
        options.seed,
        schema=data.schema,
    )
    write_metrics(options.model_dir, metrics)
    info = metrics["evaluation"]
    print(
        f"{model.cascade_config.method} on {', '.join(data.eval_days)}: {info['requests']} "
        f"requests x {info['candidates_per_request']} candidates"
    )
    print(metrics_table(metrics))
    return metrics


def run_training(
    options: TrainOptions,
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Trains (or resumes) a cascade as ``options`` say; see the module docstring.

    Args:
        options: the run's settings.
        strategy: a strategy to use instead of ``options.strategy`` (e.g. one a caller made).
        callbacks: extra Keras callbacks, called after the run's own.

    Example (tests/models/test_train.py runs it on a tiny dataset)::

        result = run_training(TrainOptions("/tmp/recflow_tfrec", "/tmp/dftopk_model"))
        result.metrics["joint_recall"]
    """
    check_options(options)
    data = read_training_data(options)
    config = options.cascade_config(data.schema)
    config.check_candidates(STAGE_CANDIDATES + options.eval_negatives)
    strategy = strategy or make_strategy(options.strategy)
    jit_compile = check_distribution(options, strategy)
    if not is_chief():
        model = build_model(options, config, strategy, jit_compile)
        history = fit_model(model, options, data, False, callbacks)
        # Saving reads replica-synchronised variables: every worker takes part, one keeps it.
        with tempfile.TemporaryDirectory() as scratch:
            ModelDir(scratch).save_weights(model)
        return TrainingResult(model, history, None)
    layout = ModelDir(options.model_dir)
    with (
        claim_model_dir(options.model_dir, options.overwrite) as folder,
        reporting_full_disk(options.model_dir),
    ):
        finish = evaluation_command(options, data.eval_days)
        prepare_model_dir(folder, config, options.data_dir, options.mixed_precision, finish)
        model = build_model(options, config, strategy, jit_compile)
        history = fit_model(model, options, data, True, callbacks)
        layout.save_weights(model)
        metrics = evaluate_and_report(model, options, data) if options.evaluate else None
    return TrainingResult(model, history, metrics)


def parse_args(argv: Sequence[str] | None = None) -> TrainOptions:
    """``TrainOptions`` from command-line flags (``python -m dftopk_cascade.models.training.train
    --help``).

    Example:
        >>> parse_args(["--data", "d", "--model-dir", "m", "--method", "lapsum"]).method
        'lapsum'
    """
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.models.training.train",
        description="Train the retrieval -> pre-ranking -> ranking cascade end to end with "
        "model.fit on converted RecFlow TFRecords, with DFTopK or a peer method; checkpoints "
        "every epoch, resumes a killed run (same command), writes MODEL_DIR/weights, "
        "config.json and metrics.json (see models/model_folder.py for the layout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = TrainOptions(data_dir="", model_dir="")
    _add_folder_flags(parser.add_argument_group("data and model folder"))
    _add_method_flags(parser.add_argument_group("method and model"), defaults)
    _add_fit_flags(parser.add_argument_group("training"), defaults)
    _add_evaluation_flags(parser.add_argument_group("evaluation"), defaults)
    _add_execution_flags(parser.add_argument_group("execution"), defaults)
    return _options_from_flags(vars(add_entry_flags(parser).parse_args(argv)))


def _add_folder_flags(group: argparse._ArgumentGroup) -> None:
    """--data, --model-dir, --overwrite, --train-days, --eval-days."""
    group.add_argument(
        "--data", dest="data_dir", required=True, help="converted TFRecord folder (schema.json)"
    )
    group.add_argument("--model-dir", required=True, help="output folder of the trained model")
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a model folder this command wrote (a completed run, or other "
        "settings): deletes only the files its .dftopk-model.json manifest lists",
    )
    group.add_argument(
        "--train-days", nargs="+", default=None, help="training days (default: all but the last)"
    )
    group.add_argument(
        "--eval-days", nargs="+", default=None, help="evaluation days (default: the last day)"
    )


def _add_method_flags(group: argparse._ArgumentGroup, defaults: TrainOptions) -> None:
    """The training method, its temperature tau and ks, and the model's shape."""
    group.add_argument(
        "--method",
        default=defaults.method,
        choices=METHOD_NAMES,
        help="training method: a top-k operator in the LCRON cascade loss (dftopk, "
        "lcron-neuralsort, lcron-softsort, lcron-diffsort, lapsum, sparse-topk, bce), or tfrs "
        "(sampled softmax retrieval + pointwise BCE)",
    )
    add_renamed_flag(
        group,
        "--tau",
        "--temperature",
        type=float,
        default=None,
        help="the method's temperature (DFTopK tau, LapSum alpha, DiffSort steepness, ...); "
        "default: dftopk_cascade.models.objectives.default_tau (0.1; DiffSort steepness 10)",
    )
    group.add_argument("--k", type=int, default=defaults.k, help="k of both stages' top-k loss")
    group.add_argument("--retrieval-k", type=int, default=None, help="retrieval's k (default: --k)")
    group.add_argument("--prerank-k", type=int, default=None, help="pre-ranking's k (default: --k)")
    group.add_argument(
        "--rank-k", type=int, default=defaults.rank_k, help="k of the ranking stage's loss"
    )
    group.add_argument(
        "--label-k",
        type=int,
        default=defaults.label_k,
        help="ground truth size: the top-k candidates by label",
    )
    group.add_argument(
        "--embedding-dim", type=int, default=defaults.embedding_dim, help="id embedding size d"
    )
    group.add_argument(
        "--embedding-init",
        default=defaults.embedding_init,
        choices=EMBEDDING_INITS,
        help="how the id tables start: uniform U(-0.05, 0.05) or normal N(0, 1) (the official "
        "models' torch default); default %(default)s, which trained better in the method "
        "comparison (docs/results/method_comparison/report.md)",
    )
    group.add_argument(
        "--prerank-attention",
        default=defaults.prerank_attention,
        choices=TARGET_ATTENTIONS,
        help="the pre-ranking model's attention over the user's history: bilinear (default) or "
        "din (the official code's MLP over behaviour and candidate, softmax over real behaviours; "
        "slower without --jit-compile on)",
    )
    group.add_argument(
        "--no-rank-stage",
        action="store_true",
        help="train retrieval and pre-ranking only (the paper's two-stage cascade): about half "
        "the step, the same retrieval and pre-ranking training; the model cannot be exported",
    )


def _add_fit_flags(group: argparse._ArgumentGroup, defaults: TrainOptions) -> None:
    """Epochs, batches, negatives, optimiser and seed."""
    group.add_argument(
        "--negatives",
        type=int,
        default=defaults.negatives,
        help="in-batch negatives per request in training (the paper's main runs: 0)",
    )
    group.add_argument(
        "--cross-replica-negatives",
        action="store_true",
        help="draw the training negatives from every replica's batch (all-gather inside the "
        "train step) instead of each replica's own",
    )
    group.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the data")
    group.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="global batch (requests)"
    )
    group.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="Adam learning rate"
    )
    group.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    group.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="batches per epoch (default: one pass over the training days)",
    )


def _add_evaluation_flags(group: argparse._ArgumentGroup, defaults: TrainOptions) -> None:
    """The final evaluation and the per-epoch validation."""
    group.add_argument(
        "--eval-negatives",
        type=int,
        default=defaults.eval_negatives,
        help="in-batch negatives per request in evaluation (the protocol: 160)",
    )
    group.add_argument(
        "--eval-batch-size",
        type=int,
        default=defaults.eval_batch_size,
        help="requests per evaluation batch",
    )
    group.add_argument(
        "--validate", action="store_true", help="also evaluate the loss and metrics every epoch"
    )
    group.add_argument(
        "--no-evaluation", action="store_true", help="skip the final evaluation (metrics.json)"
    )


def _add_execution_flags(group: argparse._ArgumentGroup, defaults: TrainOptions) -> None:
    """Distribution, compilation, precision, profiling and progress output."""
    group.add_argument(
        "--strategy",
        default=defaults.strategy,
        choices=STRATEGY_NAMES,
        help="tf.distribute strategy: auto (all GPUs, else CPU), mirrored, multiworker "
        "(TF_CONFIG), parameter-server (TF_CONFIG with chief, worker and ps tasks), cpu",
    )
    group.add_argument(
        "--run-eagerly",
        action="store_true",
        help="run the train steps eagerly, without building a graph (debugging; slow per step)",
    )
    group.add_argument(
        "--jit-compile",
        default=defaults.jit_compile,
        choices=JIT_COMPILE_CHOICES,
        help="compile the train and test steps with XLA: auto does where every replica is a GPU "
        "or TPU (on CPUs XLA is slower than oneDNN, CHANGELOG.md); on, off force it",
    )
    group.add_argument(
        "--mixed-precision",
        default=defaults.mixed_precision,
        choices=PRECISION_CHOICES,
        help="train the stages in float16 (GPUs, with loss scaling) or bfloat16 (TPUs, CPUs with "
        "AVX-512 BF16 or AMX; on other CPUs, AVX2 for one, bfloat16 is emulated and can be "
        "slower than float32: a warning says so at start); variables, scores and losses stay "
        "float32 (models/precision.py). A killed run resumes only with the same "
        "value. Default off",
    )
    group.add_argument(
        "--profile-steps",
        type=parse_profile_steps,
        default=None,
        metavar="FIRST,LAST",
        help="write a TensorFlow profiler trace of training steps FIRST to LAST (from 1) to "
        "MODEL_DIR/logs/profile; sum it by stage with python -m benchmarks.step_profile",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar")


def _options_from_flags(values: dict[str, Any]) -> TrainOptions:
    """``TrainOptions`` from the parsed flags (the negated flags turned around)."""
    for entry_flag in ("debug", "verbose"):  # read by command_line, not training options
        values.pop(entry_flag)
    values["evaluate"] = not values.pop("no_evaluation")
    values["rank_stage"] = not values.pop("no_rank_stage")
    values["verbose"] = 0 if values.pop("quiet") else 1
    for name in ("train_days", "eval_days"):
        values[name] = tuple(values[name]) if values[name] else None
    return TrainOptions(**values)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m dftopk_cascade.models.training.train --help``."""
    options = parse_args(argv)
    task_type, _ = cluster_task()
    if options.strategy == "parameter-server" and task_type in SERVING_TASK_TYPES:
        serve_cluster_task()
        return
    run_training(options)
    if is_chief():
        print(f"trained {options.method}; model folder: {options.model_dir}")


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.models.training.train")
