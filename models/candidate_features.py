"""Per-candidate inputs of the scoring stages (pre-ranking, ranking): request, interest, item.

For each candidate: the context (3 fields), the user features (5), a candidate-specific
user-interest vector from target attention over the behaviour sequence (5 fields) and the
candidate's own 8 fields, 21 * d values in all. Each candidate queries the sequence with the
fields the sequence holds (its video fields), so a candidate attends to similar past videos.

Example:
    >>> from dftopk_cascade.models.contract import zero_features
    >>> from dftopk_cascade.models.config import example_schema
    >>> layer = CandidateFeatures(**example_schema(), embedding_dim=8)
    >>> layer(zero_features(batch_size=4)).shape.as_list()  # 21 * 8
    [4, 40, 168]
"""

import tensorflow as tf
from dftopk_cascade.models.attention import check_target_attention, make_target_attention
from dftopk_cascade.models.embeddings import FeatureEmbeddings, concat_fields
from dftopk_cascade.models.tf_keras import keras, register_serializable

DEFAULT_ATTENTION_UNITS: int = 32


def broadcast_to_items(request_values: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
    """Repeats per-request values [batch, f] along the item axis of ``items`` [batch, n, ...].

    Example:
        >>> broadcast_to_items(tf.ones([2, 3]), tf.zeros([2, 5, 8])).shape.as_list()
        [2, 5, 3]
    """
    shape = tf.stack([tf.shape(items)[0], tf.shape(items)[1], tf.shape(request_values)[-1]])
    return tf.broadcast_to(request_values[:, None, :], shape)


def sequence_field_indices(columns: dict[str, list[str]]) -> list[int]:
    """Positions, among the item fields, of the fields the behaviour sequence holds.

    Raises ``ValueError`` when the sequence holds a field the items do not.

    Example:
        >>> sequence_field_indices({"seq": ["b", "a"], "items": ["a", "b", "c"]})
        [1, 0]
    """
    missing = [field for field in columns["seq"] if field not in columns["items"]]
    if missing:
        raise ValueError(f"sequence fields {missing} are not item fields {columns['items']}")
    return [columns["items"].index(field) for field in columns["seq"]]


@register_serializable
class CandidateFeatures(keras.layers.Layer):
    """Per-candidate inputs of the scoring stages: [context, user, interest, item], 21 * d values.

    Args:
        vocab_sizes: field -> embedding table size.
        columns: feature group -> field names.
        embedding_dim: id embedding size d.
        attention_units: size of the bilinear target attention's projections.
        embedding_layout: how the id tables are stored
        (``dftopk_cascade.models.embeddings.TABLE_LAYOUTS``). embedding_init: how the id tables
        start (``dftopk_cascade.models.embeddings.EMBEDDING_INITS``). attention: the target
        attention's form (``dftopk_cascade.models.attention.TARGET_ATTENTIONS``):
            ``bilinear``, or ``din``, DIN's MLP attention with its official size (which
            ignores ``attention_units``).

    Call: ``layer(features)`` with a contract batch's features; returns float32
    [batch, n, (c + u + s + i) * d] (c, u, s, i: the context, user, sequence and item fields).

    Example:
        >>> from dftopk_cascade.models.contract import zero_features
        >>> from dftopk_cascade.models.config import example_schema
        >>> layer = CandidateFeatures(**example_schema(), embedding_dim=8)
        >>> layer(zero_features(batch_size=4)).shape.as_list()
        [4, 40, 168]
    """

    def __init__(
        self,
        vocab_sizes: dict[str, int],
        columns: dict[str, list[str]],
        embedding_dim: int = 8,
        attention_units: int = DEFAULT_ATTENTION_UNITS,
        embedding_layout: str = "fused",
        embedding_init: str = "uniform",
        attention: str = "bilinear",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.attention_kind = check_target_attention(attention)
        self.vocab_sizes = dict(vocab_sizes)
        self.columns = {group: list(fields) for group, fields in columns.items()}
        self.embedding_dim = int(embedding_dim)
        self.attention_units = int(attention_units)
        self.query_fields = sequence_field_indices(self.columns)
        self.embedding_layout = embedding_layout
        self.embedding_init = embedding_init
        self.embeddings = FeatureEmbeddings(
            self.vocab_sizes,
            self.columns,
            self.embedding_dim,
            layout=embedding_layout,
            init=embedding_init,
            name="embeddings",
        )
        self.attention = make_target_attention(
            self.attention_kind, self.attention_units, name="target_attention"
        )

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        items = self.embeddings(features["items"], group="items")
        history = concat_fields(self.embeddings(features["seq"], group="seq"))
        queries = concat_fields(tf.gather(items, self.query_fields, axis=-2))
        interest = self.attention(queries, history, features["seq_mask"])
        request = tf.concat(
            [
                concat_fields(self.embeddings(features["context"], group="context")),
                concat_fields(self.embeddings(features["user"], group="user")),
            ],
            axis=-1,
        )
        items = concat_fields(items)
        return tf.concat([broadcast_to_items(request, items), interest, items], axis=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_sizes": self.vocab_sizes,
            "columns": self.columns,
            "embedding_dim": self.embedding_dim,
            "attention_units": self.attention_units,
            "embedding_layout": self.embedding_layout,
            "embedding_init": self.embedding_init,
            "attention": self.attention_kind,
        }
