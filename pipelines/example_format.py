"""The converted TFRecord format: feature names, the Example encoder and parser.

One ``tf.train.Example`` per request, every feature a flat list (row-major):

=============  =======  ==========  ========================================================
feature        dtype    shape       content
=============  =======  ==========  ========================================================
request_id     int64    [1]         RecFlow ``request_id`` (for tracing; not a model input)
context        int64    [3]         ``CONTEXT_FIELDS``, each + 1
user           int64    [5]         ``USER_FIELDS``, each + 1
seq            int64    [50, 5]     ``SEQUENCE_FIELDS`` per behaviour, + 1, 0 on padding
items          int64    [40, 8]     ``ITEM_FIELDS`` per candidate, + 1, 0 on padding; slots
                                    0-9 rank_pos, 10-19 rank_neg, 20-29 coarse_neg,
                                    30-39 prerank_neg
item_mask      int64    [40]        1 on real candidates
rank_index     int64    [10]        ``rank_index`` of the rank_pos candidates, 0 on padding
preference     float32  [40]        simulator's true preference (only when ``has_preference``)
=============  =======  ==========  ========================================================

A sequence row is real exactly when its ids are non-zero (every shifted id is >= 1), so the
sequence mask is not stored. Ids at or beyond their ``id_cnt.pkl`` count map to the field's
out-of-vocabulary bucket (``count + 1``); ``vocab_sizes`` include the padding 0 and that bucket.

Example:
    >>> paths = tf.io.gfile.glob(os.path.join(data_dir, "2024-01-13", "*" + SHARD_SUFFIX))
    >>> serialized = next(iter(tf.data.TFRecordDataset(paths, COMPRESSION).batch(4)))
    >>> parse_examples(serialized, has_preference=True)[ITEMS].shape
    TensorShape([4, 40, 8])
"""

import os
from typing import Any

import numpy as np
import tensorflow as tf
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.atomic_files import atomic_path

SCHEMA_FILE = "schema.json"
FORMAT_NAME = "dftopk-recflow-tfrecord"
#: 2: schema.json records each shard's size and sha256
#: (``dftopk_cascade.pipelines.shard_integrity``).
FORMAT_VERSION = 2
COMPRESSION = "GZIP"
SHARD_SUFFIX = ".tfrecord.gz"

GROUP_SIZE = 10
NUM_CANDIDATES = GROUP_SIZE * len(recflow.TRAINING_STAGES)
SEQUENCE_LENGTH = recflow.SEQUENCE_LENGTH

REQUEST_ID = "request_id"
CONTEXT = "context"
USER = "user"
SEQ = "seq"
ITEMS = "items"
ITEM_MASK = "item_mask"
RANK_INDEX = "rank_index"
PREFERENCE = "preference"
# Keys that only batches have (docs/CONTRACTS.md): derived when parsing, not stored.
SEQ_MASK = "seq_mask"
STAGE = "stage"
LABEL = "label"

REQUEST_WEEKDAY = "request_weekday"
REQUEST_HOUR = "request_hour"
REQUEST_MINUTE = "request_minute"
UPLOAD_WEEKDAY = "upload_weekday"
UPLOAD_HOUR = "upload_hour"
UPLOAD_MINUTE = "upload_minute"
CONTEXT_FIELDS = (REQUEST_WEEKDAY, REQUEST_HOUR, REQUEST_MINUTE)
USER_FIELDS = (recflow.USER_ID, recflow.DEVICE_ID, recflow.GENDER, recflow.AGE, recflow.PROVINCE)
SEQUENCE_FIELDS = (
    recflow.VIDEO_ID,
    recflow.AUTHOR_ID,
    recflow.CATEGORY_LEVEL_TWO,
    recflow.CATEGORY_LEVEL_ONE,
    recflow.UPLOAD_TYPE,
)
ITEM_FIELDS = (*SEQUENCE_FIELDS, UPLOAD_WEEKDAY, UPLOAD_HOUR, UPLOAD_MINUTE)
#: The fields of each id feature group, in stored order (``schema.json`` ``columns``).
COLUMNS: dict[str, list[str]] = {
    CONTEXT: list(CONTEXT_FIELDS),
    USER: list(USER_FIELDS),
    SEQ: list(SEQUENCE_FIELDS),
    ITEMS: list(ITEM_FIELDS),
}
#: Number of values of each time field (before the + 1 shift).
TIME_FIELD_VALUES = {
    REQUEST_WEEKDAY: 7,
    REQUEST_HOUR: 24,
    REQUEST_MINUTE: 60,
    UPLOAD_WEEKDAY: 7,
    UPLOAD_HOUR: 24,
    UPLOAD_MINUTE: 60,
}

#: Stored integer features: name -> shape per example.
INT_FEATURES: dict[str, tuple[int, ...]] = {
    REQUEST_ID: (1,),
    CONTEXT: (len(CONTEXT_FIELDS),),
    USER: (len(USER_FIELDS),),
    SEQ: (SEQUENCE_LENGTH, len(SEQUENCE_FIELDS)),
    ITEMS: (NUM_CANDIDATES, len(ITEM_FIELDS)),
    ITEM_MASK: (NUM_CANDIDATES,),
    RANK_INDEX: (GROUP_SIZE,),
}
PREFERENCE_SHAPE = (NUM_CANDIDATES,)
#: Fields per row of each id feature group the models embed: the last axis of ``INT_FEATURES``.
FIELD_COUNTS: dict[str, int] = {
    name: INT_FEATURES[name][-1] for name in (CONTEXT, USER, SEQ, ITEMS)
}
#: The model inputs that describe the request; ``ITEMS`` and ``ITEM_MASK`` describe its candidates.
REQUEST_INPUTS: tuple[str, ...] = (CONTEXT, USER, SEQ, SEQ_MASK)


def model_input_specs(candidates: int | None = None) -> dict[str, tf.TensorSpec]:
    """``tf.TensorSpec`` of every model input of a batch (docs/CONTRACTS.md), batch dimension None.

    The ids are int32 and the masks bool, as ``dftopk_cascade.pipelines.input`` makes them; the
    request inputs come first (``REQUEST_INPUTS``). ``candidates`` None: any number of candidates.

    Example:
        >>> model_input_specs()[ITEM_MASK]
        TensorSpec(shape=(None, None), dtype=tf.bool, name='item_mask')
        >>> model_input_specs(40)[ITEMS].shape
        TensorShape([None, 40, 8])
    """
    shapes = {
        CONTEXT: INT_FEATURES[CONTEXT],
        USER: INT_FEATURES[USER],
        SEQ: INT_FEATURES[SEQ],
        SEQ_MASK: (SEQUENCE_LENGTH,),
        ITEMS: (candidates, FIELD_COUNTS[ITEMS]),
        ITEM_MASK: (candidates,),
    }
    masks = (SEQ_MASK, ITEM_MASK)
    return {
        name: tf.TensorSpec([None, *shape], tf.bool if name in masks else tf.int32, name)
        for name, shape in shapes.items()
    }


def vocab_sizes(id_counts: dict[str, int]) -> dict[str, int]:
    """Returns the embedding table size of every field: values + padding 0 + one OOV bucket.

    Example:
        >>> vocab_sizes({name: 10 for name in recflow.ID_FIELDS})[REQUEST_HOUR]
        26
    """
    sizes = {field: count + 2 for field, count in id_counts.items() if field in recflow.ID_FIELDS}
    return sizes | {field: values + 2 for field, values in TIME_FIELD_VALUES.items()}


def encode_examples(features: dict[str, np.ndarray]) -> list[bytes]:
    """Serializes one ``tf.train.Example`` per request.

    Args:
        features: ``INT_FEATURES`` names (and optionally ``PREFERENCE``) -> arrays whose first
            dimension is the request and the rest the feature's shape.

    Example:
        >>> records = encode_examples(stored_features)  # from request_features.request_features
        >>> len(records) == len(stored_features[REQUEST_ID]) == 120
        True
    """
    names = [name for name in (*INT_FEATURES, PREFERENCE) if name in features]
    count = len(features[REQUEST_ID])
    rows = {name: np.asarray(features[name]).reshape(count, -1).tolist() for name in names}
    int_names = [name for name in names if name != PREFERENCE]
    records = []
    for index in range(count):
        feature = {
            name: tf.train.Feature(int64_list=tf.train.Int64List(value=rows[name][index]))
            for name in int_names
        }
        if PREFERENCE in rows:
            feature[PREFERENCE] = tf.train.Feature(
                float_list=tf.train.FloatList(value=rows[PREFERENCE][index])
            )
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        records.append(example.SerializeToString())
    return records


def write_shard(path: str, features: dict[str, np.ndarray]) -> int:
    """Writes the requests of ``features`` as one GZIP TFRecord file, atomically; returns the count.

    Example:
        >>> write_shard(os.path.join(tmp_dir, "part-00000-of-00001.tfrecord.gz"), stored_features)
        120
    """
    records = encode_examples(features)
    options = tf.io.TFRecordOptions(compression_type=COMPRESSION)
    with atomic_path(path) as temporary, tf.io.TFRecordWriter(temporary, options) as writer:
        for record in records:
            writer.write(record)
    return len(records)


def parse_examples(serialized: tf.Tensor, has_preference: bool) -> dict[str, tf.Tensor]:
    """Parses a batch of serialized examples into int32 tensors of their shapes.

    ``preference`` (float32 [batch, 40]) is present when ``has_preference``; other features are
    int32 [batch, *INT_FEATURES[name]] (``request_id`` stays int64 [batch]).

    Example:
        >>> parsed = parse_examples(tf.constant(encode_examples(stored_features)), True)
        >>> parsed[SEQ].shape, parsed[PREFERENCE].dtype
        (TensorShape([120, 50, 5]), tf.float32)
    """
    spec = {
        name: tf.io.FixedLenFeature([int(np.prod(shape))], tf.int64)
        for name, shape in INT_FEATURES.items()
    }
    if has_preference:
        spec[PREFERENCE] = tf.io.FixedLenFeature(list(PREFERENCE_SHAPE), tf.float32)
    parsed = tf.io.parse_example(serialized, spec)
    result = {
        name: tf.reshape(tf.cast(parsed[name], tf.int32), [-1, *shape])
        for name, shape in INT_FEATURES.items()
        if name != REQUEST_ID
    }
    result[REQUEST_ID] = parsed[REQUEST_ID][:, 0]
    if has_preference:
        result[PREFERENCE] = parsed[PREFERENCE]
    return result


def schema_path(data_dir: str) -> str:
    """Returns the path of ``schema.json`` in a converted folder.

    Example:
        >>> schema_path("/data/tfrec")
        '/data/tfrec/schema.json'
    """
    return os.path.join(data_dir, SCHEMA_FILE)


def feature_spec(has_preference: bool) -> dict[str, dict[str, Any]]:
    """Returns the stored features as ``{name: {"dtype", "shape"}}`` (as written in the schema).

    Example:
        >>> feature_spec(False)[ITEMS]
        {'dtype': 'int64', 'shape': [40, 8]}
    """
    spec = {name: {"dtype": "int64", "shape": list(shape)} for name, shape in INT_FEATURES.items()}
    if has_preference:
        spec[PREFERENCE] = {"dtype": "float32", "shape": list(PREFERENCE_SHAPE)}
    return spec
