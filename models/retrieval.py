"""Retrieval: a TFRS two-tower model (DSSM) scoring a request's candidates by a dot product.

User tower: the request context (3 fields), the user features (5) and the mean of the behaviour
sequence's embeddings (5 fields over the real steps), 13 * d values, through an MLP
128 -> 64 -> 32. Item tower: the 8 item fields, 8 * d values, through its own MLP 128 -> 64 -> 32.
The score of candidate i is <user, item_i>. A batch's whole candidate matrix is scored in one
forward: the item tower runs on [batch, n, 8 * d] at once, no loop over items.

The towers share the id embeddings (a video is one vector in the history and as a candidate).
Serving exports them separately: ``query_embeddings`` for the request side and
``item_embeddings`` to index the item corpus.

Trained alone (``compute_loss``), the model is the classic TFRS retrieval baseline: sampled
softmax over in-batch items (``InBatchSoftmax``, built on ``tfrs.tasks.Retrieval``), with
optional ``tfrs.metrics.FactorizedTopK`` metrics over an item corpus index in evaluation.

Example:
    >>> from dftopk_cascade.models.contract import zero_features
    >>> from dftopk_cascade.models.config import example_schema
    >>> model = TwoTowerRetrieval(**example_schema(), embedding_dim=8)
    >>> model(zero_features(batch_size=4)).shape.as_list()  # a batch as in docs/CONTRACTS.md
    [4, 40]
"""

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs
from dftopk_cascade.models.embeddings import FeatureEmbeddings, concat_fields
from dftopk_cascade.models.in_batch_softmax import InBatchSoftmax
from dftopk_cascade.models.tf_keras import keras, register_serializable
from dftopk_cascade.models.towers import MLP, masked_mean

DEFAULT_TOWER_UNITS: tuple[int, ...] = (128, 64, 32)


@register_serializable
class UserTower(keras.layers.Layer):
    """The request side of the two-tower model: embedded features -> user vector.

    Args:
        units: the MLP's layer sizes (the last is the embedding size shared with the item tower).

    Call: ``tower(context, user, seq, seq_mask)`` with the embedded context [batch, c, d], user
    [batch, u, d] and sequence [batch, length, s, d] and the sequence mask [batch, length];
    returns float32 [batch, units[-1]].

    Example:
        >>> tower = UserTower((16, 4))
        >>> tower(tf.ones([2, 3, 8]), tf.ones([2, 5, 8]), tf.ones([2, 50, 5, 8]),
        ...       tf.ones([2, 50], tf.bool)).shape.as_list()
        [2, 4]
    """

    def __init__(self, units: Sequence[int] = DEFAULT_TOWER_UNITS, **kwargs):
        super().__init__(**kwargs)
        self.units = [int(size) for size in units]
        self.mlp = MLP(self.units, name="mlp")

    def call(
        self, context: tf.Tensor, user: tf.Tensor, seq: tf.Tensor, seq_mask: tf.Tensor
    ) -> tf.Tensor:
        history = masked_mean(concat_fields(seq), seq_mask)
        return self.mlp(tf.concat([concat_fields(context), concat_fields(user), history], -1))

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@register_serializable
class ItemTower(keras.layers.Layer):
    """The candidate side of the two-tower model: embedded item fields -> item vectors.

    Args:
        units: the MLP's layer sizes (the last must equal the user tower's).

    Call: ``tower(items)`` with embedded items [..., fields, d]; returns float32 [..., units[-1]].

    Example:
        >>> ItemTower((16, 4))(tf.ones([2, 40, 8, 8])).shape.as_list()
        [2, 40, 4]
    """

    def __init__(self, units: Sequence[int] = DEFAULT_TOWER_UNITS, **kwargs):
        super().__init__(**kwargs)
        self.units = [int(size) for size in units]
        self.mlp = MLP(self.units, name="mlp")

    def call(self, items: tf.Tensor) -> tf.Tensor:
        return self.mlp(concat_fields(items))

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@register_serializable
class TwoTowerRetrieval(tfrs.Model):
    """TFRS two-tower retrieval model: scores [batch, n] = <user tower, item tower>.

    Args:
        vocab_sizes: field -> embedding table size (schema.json ``vocab_sizes``).
        columns: feature group -> field names (schema.json ``columns``).
        embedding_dim: id embedding size d.
        tower_units: MLP sizes of both towers.
        label_k: ground-truth size of the sampled-softmax loss (``compute_loss``).
        embedding_layout: how the id tables are stored
        (``dftopk_cascade.models.embeddings.TABLE_LAYOUTS``). embedding_init: how the id tables
        start (``dftopk_cascade.models.embeddings.EMBEDDING_INITS``). factorized_metrics:
        ``tfrs.metrics.FactorizedTopK`` metrics over a corpus index, updated
            by ``compute_loss`` outside training (not part of the config).

    Call: ``model(features)`` with a contract batch's features (``context``, ``user``, ``seq``,
    ``seq_mask``, ``items``); returns float32 scores [batch, n].

    Example:
        >>> from dftopk_cascade.models.contract import zero_features
        >>> from dftopk_cascade.models.config import example_schema
        >>> model = TwoTowerRetrieval(**example_schema())
        >>> labels = {"label": tf.one_hot([[0]] * 4, 40)[:, 0]}  # candidate 0 is the best
        >>> loss = model.compute_loss((zero_features(4), labels))  # softmax over in-batch items
        >>> bool(loss > 0)
        True
    """

    def __init__(
        self,
        vocab_sizes: dict[str, int],
        columns: dict[str, list[str]],
        embedding_dim: int = 8,
        tower_units: Sequence[int] = DEFAULT_TOWER_UNITS,
        label_k: int = 10,
        factorized_metrics: Sequence[tfrs.metrics.Factorized] = (),
        embedding_layout: str = "fused",
        embedding_init: str = "uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_sizes = dict(vocab_sizes)
        self.columns = {group: list(fields) for group, fields in columns.items()}
        self.embedding_dim = int(embedding_dim)
        self.tower_units = [int(size) for size in tower_units]
        self.label_k = int(label_k)
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
        self.user_tower = UserTower(self.tower_units, name="user_tower")
        self.item_tower = ItemTower(self.tower_units, name="item_tower")
        self.task = InBatchSoftmax(
            self.label_k, metrics=factorized_metrics, name="in_batch_softmax"
        )

    def query_embeddings(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """The user vectors float32 [batch, d_out] of a batch's request features.

        Example:
            >>> from dftopk_cascade.models.contract import zero_features
            >>> from dftopk_cascade.models.config import example_schema
            >>> model = TwoTowerRetrieval(**example_schema())
            >>> model.query_embeddings(zero_features(batch_size=4)).shape.as_list()
            [4, 32]
        """
        return self.user_tower(
            self.embeddings(features["context"], group="context"),
            self.embeddings(features["user"], group="user"),
            self.embeddings(features["seq"], group="seq"),
            features["seq_mask"],
        )

    def item_embeddings(self, items: tf.Tensor) -> tf.Tensor:
        """The item vectors float32 [..., d_out] of item ids [..., 8].

        Example:
            >>> from dftopk_cascade.models.contract import zero_features
            >>> from dftopk_cascade.models.config import example_schema
            >>> model = TwoTowerRetrieval(**example_schema())
            >>> model.item_embeddings(zero_features(batch_size=4)["items"]).shape.as_list()
            [4, 40, 32]
        """
        return self.item_tower(self.embeddings(items, group="items"))

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        query = self.query_embeddings(features)
        return tf.einsum("bd,bnd->bn", query, self.item_embeddings(features["items"]))

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """Sampled softmax over in-batch items for ``(features, labels)``; mean over real pairs.

        Outside training it also updates the factorized top-k metrics.
        """
        features, labels = inputs
        return self.task(
            self.query_embeddings(features),
            self.item_embeddings(features["items"]),
            labels["label"],
            compute_metrics=not training,
        )

    def get_config(self) -> dict:
        return {
            "vocab_sizes": self.vocab_sizes,
            "columns": self.columns,
            "embedding_dim": self.embedding_dim,
            "tower_units": self.tower_units,
            "label_k": self.label_k,
            "embedding_layout": self.embedding_layout,
            "embedding_init": self.embedding_init,
        }
