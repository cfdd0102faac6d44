"""Tiny synthetic batches in the contract's format (docs/CONTRACTS.md), for fast model tests."""

import numpy as np
import tensorflow as tf
from dftopk_cascade.models.config import CascadeConfig

from dftopk_tf.masking import PADDING_LABEL

COLUMNS = {
    "context": ["request_weekday", "request_hour", "request_minute"],
    "user": ["user_id", "device_id", "gender", "age", "province"],
    "seq": ["video_id", "author_id", "category_level_two", "category_level_one", "upload_type"],
    "items": [
        "video_id",
        "author_id",
        "category_level_two",
        "category_level_one",
        "upload_type",
        "upload_weekday",
        "upload_hour",
        "upload_minute",
    ],
}
VOCAB_SIZES = {field: 12 for fields in COLUMNS.values() for field in fields} | {"video_id": 40}
GROUP_LABELS = (7.0, 6.0, 5.0)
#: Small layers: fast to build and train in tests.
TINY_LAYERS = {
    "embedding_dim": 4,
    "tower_units": (16, 8),
    "prerank_units": (16, 1),
    "rank_units": (16, 1),
    "rank_cross_layers": 1,
    "attention_units": 8,
}


def tiny_config(**settings) -> CascadeConfig:
    """A cascade config with small layers for the tiny vocabulary."""
    return CascadeConfig(VOCAB_SIZES, COLUMNS, **(TINY_LAYERS | settings))


def synthetic_batch(
    batch_size: int = 4, negatives: int = 0, seed: int = 0, group_size: int = 10
) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """A random contract batch: some padded candidates and behaviours in every request.

    Candidates follow the stage slots (``group_size`` each of rank_pos, rank_neg, coarse_neg,
    prerank_neg; the contract has 10) with the protocol's labels; ``negatives`` extra slots hold
    label 0 (stage 4); the last slot of every group is padded. Item ids are below the vocab
    sizes except one out-of-vocabulary id; request 0 has no behaviour.
    """
    rng = np.random.default_rng(seed)
    stage_slots = 4 * group_size
    n = stage_slots + negatives
    items = np.stack(
        [
            rng.integers(1, VOCAB_SIZES[field] - 1, size=(batch_size, n))
            for field in COLUMNS["items"]
        ],
        axis=-1,
    )
    items[0, 0, 0] = 10_000  # out of vocabulary: maps to the OOV bucket
    item_mask = np.ones((batch_size, n), bool)
    item_mask[:, group_size - 1 : stage_slots : group_size] = False
    stage = np.concatenate([np.repeat(np.arange(4), group_size), np.full(negatives, 4)])
    labels = np.zeros((batch_size, n), np.float32)
    ranks = np.stack([rng.permutation(group_size) for _ in range(batch_size)])
    labels[:, :group_size] = 30.0 - ranks
    for group, value in enumerate(GROUP_LABELS, start=1):
        labels[:, group * group_size : (group + 1) * group_size] = value
    items[~item_mask] = 0
    labels[~item_mask] = PADDING_LABEL
    seq_length = rng.integers(0, 51, size=batch_size)
    seq_length[0] = 0
    seq_mask = np.arange(50)[None, :] < seq_length[:, None]
    seq = (
        np.stack(
            [
                rng.integers(1, VOCAB_SIZES[field] - 1, size=(batch_size, 50))
                for field in COLUMNS["seq"]
            ],
            axis=-1,
        )
        * seq_mask[..., None]
    )
    features = {
        "context": rng.integers(1, 10, size=(batch_size, 3)),
        "user": rng.integers(1, 10, size=(batch_size, 5)),
        "seq": seq,
        "seq_mask": seq_mask,
        "items": items,
        "item_mask": item_mask,
        "stage": np.broadcast_to(stage, (batch_size, n)),
    }
    features = {
        name: tf.constant(value, tf.bool if value.dtype == bool else tf.int32)
        for name, value in features.items()
    }
    preference = np.where(item_mask, rng.random((batch_size, n)), PADDING_LABEL)
    label_dict = {
        "label": tf.constant(labels),
        "preference": tf.constant(preference, tf.float32),
    }
    return features, label_dict
