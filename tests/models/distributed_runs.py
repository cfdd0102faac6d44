"""Distributed training runs for tests/models/test_distributed.py, each in its own process.

Logical devices and TF_CONFIG must be set before TensorFlow starts, so every run is a subprocess:
``python -m tests.models.distributed_runs RUN DATA_DIR OUT_DIR``; it prints one JSON line with
its results. Runs:

- ``mirrored``: in-batch negatives drawn per replica and across replicas; then
  ``dftopk_cascade.models.training.train`` on one device and with MirroredStrategy over 2 logical
  CPUs, on the same data.
- ``multiworker``: one worker of a 2-worker MultiWorkerMirroredStrategy (TF_CONFIG from the
  test): steps on fixed global batches split between the workers, the same steps on one device
  (worker 0), then ``dftopk_cascade.models.training.train`` end to end.
"""

import json
import os
import socket
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

#: Global batches of the explicit multi-worker check: requests per batch, batches.
GLOBAL_BATCH = 8
BATCHES = 3


def train_options(data_dir: str, model_dir: str, **settings):
    from dftopk_cascade.models.training.train import TrainOptions

    values = {
        "batch_size": 40,
        "epochs": 2,
        "method": "bce",
        "embedding_dim": 4,
        "eval_batch_size": 60,
        "eval_negatives": 8,
        "evaluate": False,
        "run_eagerly": True,
        "verbose": 0,
    }
    return TrainOptions(data_dir, model_dir, **(values | settings))


def negative_sources(strategy: tf.distribute.Strategy, cross_replica: bool) -> list[list[int]]:
    """Video ids of the negatives each replica drew; replica r's own ids are 1000 r + 1..40."""
    from dftopk_cascade.pipelines.negatives import add_in_batch_negatives

    from tests.models.batches import synthetic_batch

    def replica_batch(context: tf.distribute.experimental.ValueContext):
        features, labels = synthetic_batch(batch_size=2)
        replica = context.replica_id_in_sync_group
        ids = 1000 * replica + tf.range(1, 41)[None, :] * tf.cast(features["item_mask"], tf.int32)
        features["items"] = tf.concat([ids[..., None], features["items"][..., 1:]], axis=-1)
        return features, labels

    inputs = strategy.experimental_distribute_values_from_function(replica_batch)

    def draw(batch):
        features, _ = add_in_batch_negatives(*batch, 16, seed=[1, 2], cross_replica=cross_replica)
        return features["items"][:, 40:, 0]

    drawn = strategy.experimental_local_results(strategy.run(draw, args=(inputs,)))
    return [sorted(set(np.asarray(values).ravel().tolist())) for values in drawn]


def mirrored(data_dir: str, out_dir: str) -> dict:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from dftopk_cascade.models.training.strategies import make_strategy
    from dftopk_cascade.models.training.train import run_training

    strategy = make_strategy("mirrored")
    results = {
        "replicas": strategy.num_replicas_in_sync,
        "per_replica_sources": negative_sources(strategy, cross_replica=False),
        "cross_replica_sources": negative_sources(strategy, cross_replica=True),
    }
    eager = train_options(data_dir, f"{out_dir}/eager", strategy="mirrored", run_eagerly=True)
    try:
        run_training(eager)
    except ValueError as error:
        results["eager_mirrored_error"] = str(error)
    # One device runs eagerly (quicker to start); the replicas in a graph, since eager
    # replicas may launch their collectives in different orders.
    for name, eager in (("cpu", True), ("mirrored", False)):
        options = train_options(data_dir, f"{out_dir}/{name}", strategy=name, run_eagerly=eager)
        results[name] = run_training(options).history["loss"]
    return results


def global_batches():
    """``BATCHES`` fixed global batches stacked on a leading axis."""
    from tests.models.batches import synthetic_batch

    batches = [synthetic_batch(GLOBAL_BATCH, group_size=3, seed=seed) for seed in range(BATCHES)]
    return tf.nest.map_structure(lambda *parts: tf.stack(parts), *batches)


def fit_fixed_batches(strategy: tf.distribute.Strategy | None, workers: int) -> list[float]:
    """Two epochs over the fixed batches; worker i of ``workers`` gets its slice of each."""
    from dftopk_cascade.models.cascade import CascadeModel
    from dftopk_cascade.models.contract import zero_features
    from dftopk_cascade.models.tf_keras import keras

    from tests.models.batches import tiny_config

    stacked = global_batches()
    share = GLOBAL_BATCH // workers

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        start = context.input_pipeline_id * share
        part = tf.nest.map_structure(lambda value: value[:, start : start + share], stacked)
        return tf.data.Dataset.from_tensor_slices(part).repeat()

    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(5)
    with strategy.scope():
        config = tiny_config(method="lapsum", retrieval_k=3, prerank_k=3, rank_k=3, label_k=3)
        model = CascadeModel(config)
        model(zero_features(1, 12))
        model.compile(optimizer=keras.optimizers.Adam(0.03), run_eagerly=True)
    history = model.fit(
        keras.utils.experimental.DatasetCreator(dataset_fn),
        epochs=2,
        steps_per_epoch=BATCHES,
        verbose=0,
    )
    return history.history["loss"]


def multiworker(data_dir: str, out_dir: str) -> dict:
    from dftopk_cascade.models.training.strategies import is_chief, make_strategy
    from dftopk_cascade.models.training.train import run_training

    strategy = make_strategy("multiworker")
    results = {"replicas": strategy.num_replicas_in_sync, "chief": is_chief()}
    results["distributed"] = fit_fixed_batches(strategy, workers=2)
    options = train_options(data_dir, f"{out_dir}/model", evaluate=True, epochs=1)
    results["train_loss"] = run_training(options, strategy=strategy).history["loss"]
    if results["chief"]:
        results["single_device"] = fit_fixed_batches(None, workers=1)
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RUNS = {"mirrored": mirrored, "multiworker": multiworker}


if __name__ == "__main__":
    run, data, out = sys.argv[1:4]
    print("RESULT " + json.dumps(RUNS[run](data, out)), flush=True)
