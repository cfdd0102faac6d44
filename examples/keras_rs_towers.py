"""The two towers, in-batch targets and training model of the keras-rs example (Keras 3).

``QueryTower`` and ``CandidateTower`` embed requests and items of the serving contract's layout;
``TwoTowerRetrieval`` scores them with ``keras_rs.layers.BruteForceRetrieval.compute_score`` and
trains in-batch with ``dftopk_tf.DFTopKLoss`` on the ``in_batch_targets`` dict ``y_true``.
See ``examples.keras_rs_retrieval`` for the whole run.

Example:
    >>> positives = np.array([[[1], [2]], [[2], [3]]]) * np.ones([1, 1, 8], np.int64)
    >>> in_batch_targets(positives)["mask"].shape
    TensorShape([2, 4])
"""

from collections.abc import Mapping, Sequence

import keras
import keras_rs
import numpy as np
import tensorflow as tf
from keras import ops

import dftopk_tf
from dftopk_tf.keras_compat import IS_KERAS_3
from examples.synthetic_catalogue import CONTEXT_VOCABULARY, POSITIVES

if not IS_KERAS_3:
    raise ImportError(
        "the keras-rs example runs on Keras 3 (keras-rs needs it): unset TF_USE_LEGACY_KERAS or "
        "set it to 0 before TensorFlow is imported"
    )

EMBEDDING_DIM = 32
#: Width of each id field's embedding (context fields: CONTEXT_FIELD_DIM) and of the hidden layer.
FIELD_DIM = 16
CONTEXT_FIELD_DIM = 4
HIDDEN_DIM = 64
#: DFTopK temperature of the in-batch loss.
TAU = 0.5


def _embed_fields(embeddings: Sequence[keras.layers.Embedding], ids: tf.Tensor) -> list[tf.Tensor]:
    return [embedding(ids[..., field]) for field, embedding in enumerate(embeddings)]


@keras.saving.register_keras_serializable(package="examples")
class QueryTower(keras.layers.Layer):
    """Embeds a request (``context``, ``user``, ``seq``, ``seq_mask``) into [batch, dim].

    The history is the mean of its real rows' video, author and category embeddings.

    Example:
        >>> tower = QueryTower(catalogue.user_vocabulary(), catalogue.item_vocabulary())
        >>> tower(log_batch).shape[-1]
        32
    """

    def __init__(
        self,
        user_vocabulary: Sequence[int],
        item_vocabulary: Sequence[int],
        dim: int = EMBEDDING_DIM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.user_vocabulary = list(user_vocabulary)
        self.item_vocabulary = list(item_vocabulary)
        self.dim = dim
        self.user_embeddings = [
            keras.layers.Embedding(size, FIELD_DIM) for size in self.user_vocabulary
        ]
        self.context_embeddings = [
            keras.layers.Embedding(size, CONTEXT_FIELD_DIM) for size in CONTEXT_VOCABULARY
        ]
        self.history_embeddings = [
            keras.layers.Embedding(size, FIELD_DIM) for size in self.item_vocabulary[:4]
        ]
        self.hidden = keras.layers.Dense(HIDDEN_DIM, activation="relu")
        self.projection = keras.layers.Dense(dim)

    def build(self, input_shape=None) -> None:
        for embedding in [*self.user_embeddings, *self.context_embeddings]:
            embedding.build((None,))
        for embedding in self.history_embeddings:
            embedding.build((None, None))
        width = FIELD_DIM * (len(self.user_embeddings) + len(self.history_embeddings))
        self.hidden.build((None, width + CONTEXT_FIELD_DIM * len(self.context_embeddings)))
        self.projection.build((None, HIDDEN_DIM))
        self.built = True

    def call(self, request: Mapping[str, tf.Tensor]) -> tf.Tensor:
        weights = ops.expand_dims(ops.cast(request["seq_mask"], "float32"), -1)
        history = [
            ops.sum(rows * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
            for rows in _embed_fields(self.history_embeddings, request["seq"])
        ]
        parts = [
            *_embed_fields(self.user_embeddings, request["user"]),
            *_embed_fields(self.context_embeddings, request["context"]),
            *history,
        ]
        return self.projection(self.hidden(ops.concatenate(parts, axis=-1)))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "user_vocabulary": self.user_vocabulary,
            "item_vocabulary": self.item_vocabulary,
            "dim": self.dim,
        }


@keras.saving.register_keras_serializable(package="examples")
class CandidateTower(keras.layers.Layer):
    """Embeds items (the 8 item fields, [..., 8]) into [..., dim] from video, author and categories.

    Example:
        >>> CandidateTower(catalogue.item_vocabulary())(catalogue.items[:3]).shape[-1]
        32
    """

    def __init__(self, item_vocabulary: Sequence[int], dim: int = EMBEDDING_DIM, **kwargs):
        super().__init__(**kwargs)
        self.item_vocabulary = list(item_vocabulary)
        self.dim = dim
        self.field_embeddings = [
            keras.layers.Embedding(size, FIELD_DIM) for size in self.item_vocabulary[:5]
        ]
        self.hidden = keras.layers.Dense(HIDDEN_DIM, activation="relu")
        self.projection = keras.layers.Dense(dim)

    def build(self, input_shape=None) -> None:
        for embedding in self.field_embeddings:
            embedding.build((None,))
        self.hidden.build((None, FIELD_DIM * len(self.field_embeddings)))
        self.projection.build((None, HIDDEN_DIM))
        self.built = True

    def call(self, items: tf.Tensor) -> tf.Tensor:
        parts = _embed_fields(self.field_embeddings, items)
        return self.projection(self.hidden(ops.concatenate(parts, axis=-1)))

    def get_config(self) -> dict:
        return {**super().get_config(), "item_vocabulary": self.item_vocabulary, "dim": self.dim}


def in_batch_targets(positives: tf.Tensor) -> dict[str, tf.Tensor]:
    """keras-rs-style ``y_true`` for in-batch retrieval over the batch's positives.

    Args:
        positives: int [batch, P, 8], each request's engaged items (distinct within a request).

    Returns:
        ``{"labels": float [batch, batch * P], "mask": bool [batch, batch * P]}``: label 1 where
        the item is one of the request's positives; the mask keeps each distinct item once (its
        first occurrence in the batch), so a duplicate is neither a negative nor a second positive.

    Example:
        >>> video = np.array([[[1], [2]], [[2], [3]]]) * np.ones([1, 1, 8], np.int64)
        >>> targets = in_batch_targets(video)
        >>> targets["labels"].numpy().tolist(), targets["mask"].numpy()[0].tolist()
        ([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]], [True, True, False, True])
    """
    ids = positives[..., 0]
    flat = ops.reshape(ids, [-1])
    labels = ops.any(ops.equal(ids[:, :, None], flat[None, None, :]), axis=1)
    positions = ops.arange(ops.shape(flat)[0])
    same_item = ops.equal(flat[:, None], flat[None, :])
    earlier = ops.less(positions[:, None], positions[None, :])
    first = ops.logical_not(ops.any(ops.logical_and(same_item, earlier), axis=0))
    mask = ops.broadcast_to(first[None, :], ops.shape(labels))
    return {"labels": ops.cast(labels, "float32"), "mask": mask}


@keras.saving.register_keras_serializable(package="examples")
class TwoTowerRetrieval(keras.Model):
    """Two towers, keras-rs brute-force scoring, and DFTopK's in-batch top-k selection loss.

    ``call`` maps a batch of requests with ``positives`` to ``{"query", "candidates"}``
    embeddings; ``compute_loss`` scores every request against every positive of the batch and
    applies ``DFTopKLoss(k=POSITIVES)`` with the ``in_batch_targets`` dict as ``y_true``.

    Example:
        >>> vocabulary = catalogue.item_vocabulary()
        >>> model = TwoTowerRetrieval(
        ...     QueryTower(catalogue.user_vocabulary(), vocabulary), CandidateTower(vocabulary))
        >>> model.compile(optimizer="adam", jit_compile=False)
        >>> history = model.fit(log_batch, epochs=1, verbose=0)
    """

    def __init__(
        self,
        query_tower: QueryTower,
        candidate_tower: CandidateTower,
        tau: float = TAU,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.tau = tau
        # Only its compute_score (keras-rs's dot product) is used here; RetrievalServable retrieves.
        self.retrieval = keras_rs.layers.BruteForceRetrieval(return_scores=True)
        self.selection_loss = dftopk_tf.DFTopKLoss(k=POSITIVES, tau=tau)

    def build(self, input_shape=None) -> None:
        for tower in (self.query_tower, self.candidate_tower):
            if not tower.built:
                tower.build()
        self.built = True

    def call(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        positives = ops.reshape(inputs["positives"], [-1, ops.shape(inputs["positives"])[-1]])
        return {"query": self.query_tower(inputs), "candidates": self.candidate_tower(positives)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        scores = self.retrieval.compute_score(y_pred["query"], y_pred["candidates"])
        return self.selection_loss(in_batch_targets(x["positives"]), scores)

    def catalogue_scores(self, request: Mapping[str, tf.Tensor], items: np.ndarray) -> tf.Tensor:
        """Scores [batch, items] of every catalogue item for each request (for evaluation).

        Example:
            >>> model.catalogue_scores(log_batch, catalogue.items).shape
            TensorShape([8, 60])
        """
        return self.retrieval.compute_score(self.query_tower(request), self.candidate_tower(items))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "query_tower": keras.saving.serialize_keras_object(self.query_tower),
            "candidate_tower": keras.saving.serialize_keras_object(self.candidate_tower),
            "tau": self.tau,
        }

    @classmethod
    def from_config(cls, config: dict) -> "TwoTowerRetrieval":
        config = dict(config)
        for key in ("query_tower", "candidate_tower"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
