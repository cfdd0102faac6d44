"""``tf.distribute`` strategies by name (``--strategy``), and the roles of a cluster's tasks.

- ``auto``: ``MirroredStrategy`` over every GPU when there is one, else the default strategy
  (one CPU).
- ``mirrored``: ``MirroredStrategy`` over every GPU, or over every logical CPU device when there
  is no GPU (tests configure 2 logical CPUs to run 2 replicas on one machine).
- ``multiworker``: ``MultiWorkerMirroredStrategy``: synchronous data parallelism over the
  workers of ``TF_CONFIG`` (the same command runs on every worker; worker 0, or the ``chief``,
  writes the model folder).
- ``parameter-server``: ``tf.distribute.experimental.ParameterServerStrategy`` with a
  ``TFConfigClusterResolver``: ``TF_CONFIG`` names a ``chief`` (the coordinator, which runs
  ``model.fit``), ``worker`` tasks and ``ps`` tasks. The same command runs on every task: on a
  worker or ps it starts a ``tf.distribute.Server`` and serves until killed
  (``serve_cluster_task``). Variables are sharded over the ps tasks (``MinSizePartitioner``);
  workers train asynchronously.
- ``cpu``: the default strategy on one CPU device, GPUs hidden (``OneDeviceStrategy`` would
  do the same, but ``BackupAndRestore`` does not support it).

In every case each replica draws its in-batch negatives from its own batch (see
``dftopk_cascade.models.cascade`` for the cross-replica option).

Example:
    >>> make_strategy("cpu").num_replicas_in_sync
    1
"""

import json
import os

import tensorflow as tf

STRATEGY_NAMES: tuple[str, ...] = ("auto", "mirrored", "multiworker", "parameter-server", "cpu")
#: ``TF_CONFIG`` task types that only serve a parameter-server cluster (no training loop).
SERVING_TASK_TYPES: tuple[str, ...] = ("worker", "ps")


def _tf_config() -> dict:
    """The parsed ``TF_CONFIG``; ``ValueError`` when it is missing or malformed."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "this strategy needs TF_CONFIG (the cluster and this task), e.g. "
            '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", '
            '"index": 0}}'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
    if "cluster" not in config or "task" not in config:
        raise ValueError(f"TF_CONFIG needs 'cluster' and 'task' entries, got {sorted(config)}")
    return config


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy called ``name`` (see the module docstring).

    Raises ``ValueError`` for an unknown name or a missing/malformed ``TF_CONFIG``.

    Example:
        >>> make_strategy("mirrored").num_replicas_in_sync  # every GPU, or every logical CPU
        1
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGY_NAMES)}")
    if name == "cpu":
        # Hide the GPUs (possible until TensorFlow initialises them): one CPU device.
        if tf.config.list_physical_devices("GPU"):
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError as error:
                raise RuntimeError(
                    "--strategy cpu must be chosen before TensorFlow uses the GPUs; or run with "
                    "CUDA_VISIBLE_DEVICES=-1"
                ) from error
        return tf.distribute.get_strategy()
    if name == "multiworker":
        # Before anything lists devices: collectives are configured as TensorFlow starts.
        _tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name in ("auto", "mirrored"):
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        if name == "auto":
            return tf.distribute.MirroredStrategy(gpus) if gpus else tf.distribute.get_strategy()
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(gpus or cpus)
    config = _tf_config()  # parameter-server
    ps_count = len(config["cluster"].get("ps", []))
    if ps_count == 0 or "chief" not in config["cluster"]:
        raise ValueError("parameter-server needs TF_CONFIG with 'chief' and 'ps' tasks")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=256 << 10, max_shards=ps_count
    )
    return tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=partitioner
    )


def cluster_task() -> tuple[str | None, int]:
    """This process's ``TF_CONFIG`` task type and index (None, 0 without ``TF_CONFIG``).

    Example:
        >>> _ = os.environ.pop("TF_CONFIG", None)
        >>> cluster_task()
        (None, 0)
    """
    if not os.environ.get("TF_CONFIG"):
        return None, 0
    task = _tf_config()["task"]
    return task.get("type"), int(task.get("index", 0))


def is_chief() -> bool:
    """True for the task that writes the model folder: the chief, or worker 0 without one.

    Example:
        >>> _ = os.environ.pop("TF_CONFIG", None)
        >>> is_chief()
        True
    """
    task_type, index = cluster_task()
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in _tf_config()["cluster"]
    return task_type == "worker" and index == 0 and not has_chief


def serve_cluster_task() -> None:
    """Runs this worker or ps task of a parameter-server cluster until the process is killed.

    Example:
        >>> serve_cluster_task()  # doctest: +SKIP
    """
    task_type, index = cluster_task()
    if task_type not in SERVING_TASK_TYPES:
        raise ValueError(
            f"task type {task_type!r} does not serve; expected one of {SERVING_TASK_TYPES}"
        )
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=task_type,
        task_index=index,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    server.join()
