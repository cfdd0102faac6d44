"""A tiny Keras cascade with the contract's features, standing in for ``models/`` in tests.

It has what serving needs from a trained cascade: a user tower, an item tower (for the corpus
index), and pre-ranking and ranking scorers over (request, candidates), all on tf-keras layers
whose embedding lookups fail on ids outside their tables (as real ones do on CPU), so the
out-of-vocabulary clipping of the exported graph is tested too.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.export.item_index import ExactItemIndex
from dftopk_cascade.serving.export.servables import RetrievalServable, ScorerServable
from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary

VOCABULARY = FeatureVocabulary(
    {
        sig.CONTEXT: [9, 26, 62],
        sig.USER: [30, 12, 5, 10, 8],
        sig.SEQ: [60, 20, 9, 6, 4],
        sig.ITEMS: [60, 20, 9, 6, 4, 9, 26, 62],
    }
)


class _FieldEmbedding(keras.layers.Layer):
    """Mean embedding of a feature's columns: one table, each column at its own offset."""

    def __init__(self, sizes: tuple[int, ...], dim: int, **kwargs):
        super().__init__(**kwargs)
        self.offsets = tf.constant(np.cumsum([0, *sizes[:-1]]), tf.int32)
        self.table = keras.layers.Embedding(sum(sizes), dim)
        self.sizes = sizes

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        tf.debugging.assert_less(ids, tf.constant(self.sizes, ids.dtype), "id outside its table")
        return tf.reduce_mean(self.table(ids + self.offsets), axis=-2)


class StandInCascade(keras.Model):
    """User tower, item tower and two candidate scorers over the contract's features."""

    def __init__(self, dim: int = 8, seed: int = 0):
        super().__init__()
        keras.utils.set_random_seed(seed)
        sizes = VOCABULARY.sizes
        self.context_embedding = _FieldEmbedding(sizes[sig.CONTEXT], dim)
        self.user_embedding = _FieldEmbedding(sizes[sig.USER], dim)
        self.seq_embedding = _FieldEmbedding(sizes[sig.SEQ], dim)
        self.item_embedding = _FieldEmbedding(sizes[sig.ITEMS], dim)
        self.user_tower = keras.layers.Dense(dim, activation="tanh")
        self.item_tower = keras.layers.Dense(dim, activation="tanh")
        self.prerank_head = keras.layers.Dense(1)
        self.rank_head = keras.layers.Dense(1)

    def user_vector(self, features: dict) -> tf.Tensor:
        mask = tf.cast(features[sig.SEQ_MASK], tf.float32)[..., tf.newaxis]
        history = tf.reduce_sum(self.seq_embedding(features[sig.SEQ]) * mask, axis=1)
        history /= tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        parts = [
            self.context_embedding(features[sig.CONTEXT]),
            self.user_embedding(features[sig.USER]),
            history,
        ]
        return self.user_tower(tf.concat(parts, axis=-1))

    def item_vector(self, items: tf.Tensor) -> tf.Tensor:
        return self.item_tower(self.item_embedding(items))

    def prerank_scores(self, features: dict) -> tf.Tensor:
        return self._scores(features, self.prerank_head)

    def rank_scores(self, features: dict) -> tf.Tensor:
        return self._scores(features, self.rank_head)

    def _scores(self, features: dict, head: keras.layers.Layer) -> tf.Tensor:
        user = self.user_vector(features)[:, tf.newaxis, :]
        item = self.item_vector(features[sig.ITEMS])
        user = tf.broadcast_to(user, tf.shape(item))
        return head(tf.concat([user * item, item], axis=-1))[..., 0]

    def call(self, features: dict) -> dict:
        return {
            sig.PRERANK: self.prerank_scores(features),
            sig.RANK: self.rank_scores(features),
        }


def random_corpus(count: int, seed: int = 1) -> np.ndarray:
    """int32 [count, 8] item features with ids inside the vocabulary (>= 1)."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(VOCABULARY.sizes[sig.ITEMS])
    return rng.integers(1, sizes - 1, size=(count, len(sizes))).astype(np.int32)


def random_request(batch: int, seed: int = 2, history: int = 20) -> dict[str, np.ndarray]:
    """Contract request features [batch, ...], ids inside the vocabulary, ``history`` behaviours."""
    rng = np.random.default_rng(seed)

    def ids(feature: str, shape: tuple[int, ...]) -> np.ndarray:
        sizes = np.asarray(VOCABULARY.sizes[feature])
        return rng.integers(1, sizes - 1, size=(*shape, len(sizes))).astype(np.int32)

    seq_mask = np.zeros((batch, sig.SEQUENCE_LENGTH), bool)
    seq_mask[:, sig.SEQUENCE_LENGTH - history :] = True
    return {
        sig.CONTEXT: ids(sig.CONTEXT, (batch,)),
        sig.USER: ids(sig.USER, (batch,)),
        sig.SEQ: ids(sig.SEQ, (batch, sig.SEQUENCE_LENGTH)) * seq_mask[..., None],
        sig.SEQ_MASK: seq_mask,
    }


#: The signatures' defaults: retrieval_keep (retrieval's top_n), prerank_keep and rank_keep.
DEFAULT_SIZES = (40, 12, 4)


def build_servables(
    model: StandInCascade, corpus: np.ndarray, sizes: tuple[int, int, int] = DEFAULT_SIZES
) -> dict[str, tf.Module]:
    """The three servables of the stand-in cascade over ``corpus``, with default ``sizes``."""
    top_n, m, k = sizes
    model(random_request(1) | {sig.ITEMS: corpus[None, :2], sig.ITEM_MASK: np.ones([1, 2], bool)})
    index = ExactItemIndex(model.item_vector(tf.constant(corpus)).numpy(), corpus)
    return {
        sig.RETRIEVAL: RetrievalServable(
            model.user_vector, model.variables, index, VOCABULARY, top_n
        ),
        sig.PRERANK: ScorerServable(model.prerank_scores, model.variables, VOCABULARY, m),
        sig.RANK: ScorerServable(model.rank_scores, model.variables, VOCABULARY, k),
    }
