"""The batch contract as the models see it: feature names, shapes, dtypes (docs/CONTRACTS.md).

Batches come from ``pipelines.input.make_dataset``; this module only states what the models
require of them, for building a model before it sees data (``zero_features``) and for serving
signatures (``feature_specs``).

Example:
    >>> zero_features(batch_size=2, candidates=40)["items"].shape.as_list()
    [2, 40, 8]
"""

import tensorflow as tf

#: Fields per feature group.
FIELD_COUNTS: dict[str, int] = {"context": 3, "user": 5, "seq": 5, "items": 8}
#: Behaviour sequence length.
SEQUENCE_LENGTH: int = 50
#: Candidates per request before in-batch negatives: 4 stage groups of 10.
STAGE_CANDIDATES: int = 40
#: Stage id of an in-batch negative in ``features["stage"]``.
IN_BATCH_NEGATIVE_STAGE: int = 4


def feature_specs(candidates: int | None = None) -> dict[str, tf.TensorSpec]:
    """``tf.TensorSpec`` of every model input, batch dimension None (``candidates`` None: any).

    Example:
        >>> feature_specs()["item_mask"]
        TensorSpec(shape=(None, None), dtype=tf.bool, name='item_mask')
    """
    return {
        "context": tf.TensorSpec([None, FIELD_COUNTS["context"]], tf.int32, "context"),
        "user": tf.TensorSpec([None, FIELD_COUNTS["user"]], tf.int32, "user"),
        "seq": tf.TensorSpec([None, SEQUENCE_LENGTH, FIELD_COUNTS["seq"]], tf.int32, "seq"),
        "seq_mask": tf.TensorSpec([None, SEQUENCE_LENGTH], tf.bool, "seq_mask"),
        "items": tf.TensorSpec([None, candidates, FIELD_COUNTS["items"]], tf.int32, "items"),
        "item_mask": tf.TensorSpec([None, candidates], tf.bool, "item_mask"),
    }


def zero_features(batch_size: int = 1, candidates: int = STAGE_CANDIDATES) -> dict[str, tf.Tensor]:
    """A batch of padding ids with every mask True: enough to create a model's variables.

    Example:
        >>> zero_features()["seq_mask"].dtype
        tf.bool
    """
    specs = feature_specs(candidates)
    return {
        name: tf.zeros([batch_size, *spec.shape[1:]], spec.dtype)
        if spec.dtype != tf.bool
        else tf.ones([batch_size, *spec.shape[1:]], tf.bool)
        for name, spec in specs.items()
    }
