"""The tf.data input pipeline the models consume: ``make_dataset``.

Reads the shards written by ``python -m dftopk_cascade.pipelines.convert``: days one after another
in the given order, each day's shards read interleaved (and shuffled when ``shuffle``), record
shuffling, batching, vectorised parsing of whole batches, optional in-batch negatives, prefetching.
Each element is ``(features, labels)`` exactly as in docs/CONTRACTS.md (B = batch, N = 40 +
negatives):

==================  =======  ============  ===============================================
key                 dtype    shape         content
==================  =======  ============  ===============================================
features context    int32    [B, 3]        request weekday, hour, minute, each + 1
features user       int32    [B, 5]        user_id, device_id, gender, age, province, + 1
features seq        int32    [B, 50, 5]    behaviour sequence, + 1, 0 where padded
features seq_mask   bool     [B, 50]       True on real behaviours
features items      int32    [B, N, 8]     candidates (slots 0-39: the four stage groups)
features item_mask  bool     [B, N]        True on real candidates
features stage      int32    [B, N]        0 rank_pos, 1 rank_neg, 2 coarse_neg,
                                           3 prerank_neg, 4 in-batch negative
labels label        float32  [B, N]        protocol label (``dftopk_cascade.pipelines.labels``), -1
padded labels preference   float32  [B, N]        simulator's true preference, 0 unknown, -1 padded
==================  =======  ============  ===============================================

For ``tf.distribute``, pass the ``tf.distribute.InputContext`` (from
``strategy.distribute_datasets_from_function``): shards (or, with fewer shards than input
pipelines, records) are split between pipelines and ``batch_size`` is the global batch.

Example:
    >>> dataset = make_dataset(data_dir, batch_size=16, negatives_per_request=160,
    ...                        days=["2024-01-14"], shuffle=False)
    >>> features, labels = next(iter(dataset))
    >>> features["items"].shape
    TensorShape([16, 200, 8])
"""

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.data_schema import load_schema_file, shard_paths
from dftopk_cascade.pipelines.labels import protocol_labels, stage_ids
from dftopk_cascade.pipelines.negatives import add_in_batch_negatives

from dftopk_tf.masking import PADDING_LABEL

DEFAULT_SEED = 42
DEFAULT_SHUFFLE_BUFFER = 8192
DEFAULT_CYCLE_LENGTH = 4
_READ_BUFFER_BYTES = 1 << 20


def features_and_labels(
    parsed: dict[str, tf.Tensor], has_preference: bool
) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """Turns parsed examples (``example_format.parse_examples``) into a contract batch.

    Example:
        >>> files = shard_paths(data_dir, load_schema_file(data_dir), ["2024-01-13"])
        >>> serialized = next(iter(tf.data.TFRecordDataset(files, fmt.COMPRESSION).batch(2)))
        >>> features, labels = features_and_labels(fmt.parse_examples(serialized, True), True)
        >>> labels["label"].shape
        TensorShape([2, 40])
    """
    item_mask = parsed[fmt.ITEM_MASK] > 0
    padding = tf.constant(PADDING_LABEL, tf.float32)
    if has_preference:
        preference = tf.where(item_mask, parsed[fmt.PREFERENCE], padding)
    else:
        preference = tf.where(item_mask, 0.0, padding)
    features = {
        fmt.CONTEXT: parsed[fmt.CONTEXT],
        fmt.USER: parsed[fmt.USER],
        fmt.SEQ: parsed[fmt.SEQ],
        fmt.SEQ_MASK: parsed[fmt.SEQ][..., 0] > 0,
        fmt.ITEMS: parsed[fmt.ITEMS],
        fmt.ITEM_MASK: item_mask,
        fmt.STAGE: stage_ids(tf.shape(item_mask)[0], fmt.GROUP_SIZE),
    }
    labels = {
        fmt.LABEL: protocol_labels(parsed[fmt.RANK_INDEX], item_mask),
        fmt.PREFERENCE: preference,
    }
    return features, labels


def _pipeline_shards(
    data_dir: str,
    schema: dict[str, Any],
    days: Sequence[str],
    shuffle: bool,
    seed: int,
    pipelines: int,
    pipeline_id: int,
) -> tuple[list[list[str]], bool]:
    """This input pipeline's shards, one list per day (shuffled within the day when ``shuffle``).

    Shards are dealt to pipelines round-robin over all days; with fewer shards than pipelines
    every pipeline keeps every shard and the second value says to split records instead.
    """
    rng = np.random.default_rng(seed)
    per_day = []
    for day in days:
        shards = shard_paths(data_dir, schema, [day])
        per_day.append([shards[i] for i in rng.permutation(len(shards))] if shuffle else shards)
    split_records = pipelines > 1 and sum(len(shards) for shards in per_day) < pipelines
    if pipelines == 1 or split_records:
        return per_day, split_records
    mine, position = [], 0
    for shards in per_day:
        mine.append([s for i, s in enumerate(shards, position) if i % pipelines == pipeline_id])
        position += len(shards)
    return mine, False


def _read_days(
    per_day: Sequence[Sequence[str]], cycle_length: int, ordered: bool
) -> tf.data.Dataset | None:
    """The serialized records of the days' shards, day after day (None without any shard)."""
    day_records = [
        tf.data.Dataset.from_tensor_slices(list(shards)).interleave(
            lambda file: tf.data.TFRecordDataset(file, fmt.COMPRESSION, _READ_BUFFER_BYTES),
            cycle_length=max(1, min(cycle_length, len(shards))),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=ordered,
        )
        for shards in per_day
        if shards
    ]
    return functools.reduce(tf.data.Dataset.concatenate, day_records) if day_records else None


def _contract_batches(
    serialized_batches: tf.data.Dataset,
    has_preference: bool,
    negatives_per_request: int,
    seed: int,
    deterministic: bool,
) -> tf.data.Dataset:
    """Batches of serialized records -> contract ``(features, labels)``, with negatives."""
    batches = serialized_batches.map(
        lambda serialized: features_and_labels(
            fmt.parse_examples(serialized, has_preference), has_preference
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if not negatives_per_request:
        return batches
    return batches.enumerate().map(
        lambda index, batch: add_in_batch_negatives(
            *batch,
            negatives_per_request,
            tf.stack([tf.constant(seed, tf.int64), index]),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def make_dataset(
    data_dir: str,
    batch_size: int,
    negatives_per_request: int = 0,
    shuffle: bool = True,
    deterministic: bool = False,
    input_context: tf.distribute.InputContext | None = None,
    days: Sequence[str] | None = None,
    seed: int = DEFAULT_SEED,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    drop_remainder: bool = False,
    cycle_length: int = DEFAULT_CYCLE_LENGTH,
    schema: dict[str, Any] | None = None,
) -> tf.data.Dataset:
    """Returns a ``tf.data.Dataset`` of ``(features, labels)`` batches; one pass over ``days``.

    Args:
        data_dir: a converted TFRecord folder (written by ``python -m
        dftopk_cascade.pipelines.convert``). batch_size: global batch size (divided among replicas
        when ``input_context`` is given). negatives_per_request: in-batch negatives appended per
        request (``dftopk_cascade.pipelines.negatives``). shuffle: shuffle shards within each day
        and records in a ``shuffle_buffer`` window; days
            keep their order (the streaming protocol trains day after day).
        deterministic: the same order on every run (for a fixed ``seed``); False lets parallel
            reads and maps deliver out of order, which is faster.
        input_context: per-replica sharding for ``distribute_datasets_from_function``.
        days: days to read, in order (default: every converted day).
        seed: seed of the shuffles and of negative sampling.
        shuffle_buffer: records in the shuffle window.
        drop_remainder: drop a last, smaller batch (static batch dimension).
        cycle_length: shards read at the same time.
        schema: the folder's ``schema.json`` when the caller has read it already (a run reads
            it once, ``dftopk_cascade.models.training.train``); read here when None.

    Example:
        >>> dataset = make_dataset(data_dir, 64, days=["2024-01-13"], shuffle=False,
        ...                        deterministic=True)  # else batches may arrive out of order
        >>> [int(features["items"].shape[0]) for features, _ in dataset]
        [64, 56]
    """
    if batch_size < 1 or negatives_per_request < 0:
        raise ValueError(
            f"batch_size must be >= 1 and negatives_per_request >= 0, got {batch_size} and "
            f"{negatives_per_request}"
        )
    schema = load_schema_file(data_dir) if schema is None else schema
    days = list(days) if days is not None else list(schema["days"])
    has_preference = bool(schema["has_preference"])
    pipelines, pipeline_id = 1, 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
    pipeline_seed = seed + pipeline_id
    per_day, split_records = _pipeline_shards(
        data_dir, schema, days, shuffle, seed, pipelines, pipeline_id
    )
    # Record splitting needs the same record order in every pipeline.
    records = _read_days(per_day, cycle_length, deterministic or split_records)
    if records is None:
        raise ValueError(f"{data_dir}: no shards for days {days}")
    if split_records:
        records = records.shard(pipelines, pipeline_id)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=pipeline_seed)
    batches = _contract_batches(
        records.batch(batch_size, drop_remainder=drop_remainder),
        has_preference,
        negatives_per_request,
        pipeline_seed,
        deterministic,
    )
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)
