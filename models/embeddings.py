"""Id embeddings: one table per id field, shared by every feature group that holds the field.

The behaviour sequence and the candidate items hold the same video fields (``video_id``,
``author_id``, the categories, ``upload_type``), so a video has one vector whether it appears in a
user's history or as a candidate; the request time and the upload time have their own tables.

Ids follow the batch contract (docs/CONTRACTS.md): every id is shifted by + 1 and 0 is padding.
Table sizes are schema.json's ``vocab_sizes`` (padding 0, the values, and one out-of-vocabulary
bucket, the last row). Ids outside ``[0, size)`` map to that bucket, never to an error: a served
request may carry an id the training data never had.

The tables are stored ``fused`` (``TABLE_LAYOUTS``): every field's table stacked into one variable,
row ranges one after another, and a feature group looked up with one gather of its ids shifted by
their field's first row; one variable's gradient costs a training step less than many small
tables' sparse gradients would.

Example:
    >>> embeddings = FeatureEmbeddings({"user_id": 10, "age": 5}, {"user": ["user_id", "age"]}, 4)
    >>> embeddings(tf.constant([[3, 99]]), group="user").shape.as_list()  # 99 -> OOV bucket
    [1, 2, 4]
"""

import itertools

import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras, register_serializable

#: How the tables are stored: one variable for all fields (the layout model configs record).
TABLE_LAYOUTS: tuple[str, ...] = ("fused",)
#: How the tables start: ``uniform`` U(-0.05, 0.05) (Keras's embedding default) or ``normal``
#: N(0, 1) (torch's ``nn.Embedding`` default, the official DFTopK/LCRON models' start).
EMBEDDING_INITS: tuple[str, ...] = ("uniform", "normal")


def embedding_initializer(init: str) -> keras.initializers.Initializer:
    """A fresh initializer for one table: ``uniform`` U(-0.05, 0.05) or ``normal`` N(0, 1).

    The scale of the starting embeddings sets the scale of the first scores, and with it how
    hard every temperature-based top-k operator starts
    (``docs/results/method_comparison/report.md``).

    Example:
        >>> values = embedding_initializer("normal")(shape=(10_000,))
        >>> 0.9 < float(tf.math.reduce_std(values)) < 1.1
        True
    """
    if init == "uniform":
        return keras.initializers.RandomUniform(-0.05, 0.05)
    if init == "normal":
        return keras.initializers.RandomNormal(0.0, 1.0)
    raise ValueError(f"unknown embedding init {init!r}; expected one of {EMBEDDING_INITS}")


def out_of_vocabulary_to_bucket(ids: tf.Tensor, vocab_size: int | tf.Tensor) -> tf.Tensor:
    """Maps ids outside ``[0, vocab_size)`` to the out-of-vocabulary bucket ``vocab_size - 1``.

    ``vocab_size`` may also be int32 sizes that broadcast against ``ids`` (one per field).

    Example:
        >>> out_of_vocabulary_to_bucket(tf.constant([0, 3, 7, -2]), 5).numpy().tolist()
        [0, 3, 4, 4]
    """
    ids = tf.cast(ids, tf.int32)
    return tf.where((ids >= 0) & (ids < vocab_size), ids, vocab_size - 1)


def concat_fields(embedded: tf.Tensor) -> tf.Tensor:
    """Flattens embeddings [..., fields, d] into [..., fields * d].

    Example:
        >>> concat_fields(tf.zeros([2, 3, 4])).shape.as_list()
        [2, 12]
    """
    fields, dim = embedded.shape[-2], embedded.shape[-1]
    return tf.reshape(embedded, tf.concat([tf.shape(embedded)[:-2], [fields * dim]], axis=0))


@register_serializable
class FeatureEmbeddings(keras.layers.Layer):
    """Embedding tables for the id fields of the feature groups, looked up per group.

    Args:
        vocab_sizes: field name -> table size (schema.json ``vocab_sizes``), >= 2 each.
        columns: feature group (``context``, ``user``, ``seq``, ``items``) -> its field names, in
            the order of the group's last axis (schema.json ``columns``).
        embedding_dim: size of every embedding vector.
        layout: ``fused`` (one variable, one gather per group; see the module docstring).
        init: the tables' start, ``uniform`` or ``normal`` (``EMBEDDING_INITS``).

    Call: ``layer(ids, group=name)`` with int ids [..., len(columns[name])] returns float32
    [..., len(columns[name]), embedding_dim].

    Example:
        >>> layer = FeatureEmbeddings({"video_id": 50}, {"seq": ["video_id"],
        ...                                              "items": ["video_id"]}, 8)
        >>> same = layer(tf.constant([[7]]), group="seq") - layer(tf.constant([[7]]), group="items")
        >>> float(tf.reduce_max(tf.abs(same)))
        0.0
    """

    def __init__(
        self,
        vocab_sizes: dict[str, int],
        columns: dict[str, list[str]],
        embedding_dim: int = 8,
        layout: str = "fused",
        init: str = "uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if layout not in TABLE_LAYOUTS:
            raise ValueError(f"unknown table layout {layout!r}; expected one of {TABLE_LAYOUTS}")
        embedding_initializer(init)  # Refuses an unknown init before anything is built.
        for group, fields in columns.items():
            missing = [field for field in fields if field not in vocab_sizes]
            if missing:
                raise ValueError(
                    f"no vocab size for the {group} fields {missing}; vocab_sizes has "
                    f"{sorted(vocab_sizes)}"
                )
        too_small = {field: size for field, size in vocab_sizes.items() if size < 2}
        if too_small:
            raise ValueError(
                f"vocab sizes must be >= 2 (padding + out-of-vocabulary), got {too_small}"
            )
        self.vocab_sizes = {field: int(size) for field, size in vocab_sizes.items()}
        self.columns = {group: list(fields) for group, fields in columns.items()}
        self.embedding_dim = int(embedding_dim)
        self.layout = layout
        self.init = init
        self.fields = sorted({field for fields in self.columns.values() for field in fields})
        sizes = [self.vocab_sizes[field] for field in self.fields]
        #: The first row of each field's table in the fused table.
        starts = [0, *itertools.accumulate(sizes)][:-1]
        self.first_rows = dict(zip(self.fields, starts, strict=True))

    def build(self, input_shape=None) -> None:
        rows = sum(self.vocab_sizes[field] for field in self.fields)
        self.table = self.add_weight(
            name="embeddings",
            shape=(rows, self.embedding_dim),
            initializer=embedding_initializer(self.init),
            trainable=True,
        )
        super().build(input_shape)

    def field_table(self, field: str) -> tf.Tensor:
        """The current table of one field, [vocab_sizes[field], embedding_dim].

        Example:
            >>> layer = FeatureEmbeddings({"age": 5, "gender": 3}, {"user": ["age", "gender"]}, 2)
            >>> layer.build(None)
            >>> layer.field_table("gender").shape.as_list()
            [3, 2]
        """
        first = self.first_rows[field]
        return self.table[first : first + self.vocab_sizes[field]]

    def call(self, ids: tf.Tensor, group: str) -> tf.Tensor:
        if group not in self.columns:
            raise ValueError(
                f"unknown feature group {group!r}; expected one of {list(self.columns)}"
            )
        fields = self.columns[group]
        if ids.shape[-1] is not None and ids.shape[-1] != len(fields):
            raise ValueError(
                f"{group} ids have {ids.shape[-1]} fields on the last axis, expected "
                f"{len(fields)} ({', '.join(fields)})"
            )
        # One gather for the whole group: each field's ids shifted to its rows.
        sizes = tf.constant([self.vocab_sizes[field] for field in fields], tf.int32)
        first_rows = tf.constant([self.first_rows[field] for field in fields], tf.int32)
        # embedding_lookup also splits the lookup over a table sharded across ps tasks.
        return tf.nn.embedding_lookup(
            self.table, out_of_vocabulary_to_bucket(ids, sizes) + first_rows
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_sizes": self.vocab_sizes,
            "columns": self.columns,
            "embedding_dim": self.embedding_dim,
            "layout": self.layout,
            "init": self.init,
        }
