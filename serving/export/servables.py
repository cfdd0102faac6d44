"""The exported models as ``tf.Module``s with the contract's ``serving_default`` signatures.

A servable wraps the trained parts (any callables over the contract's feature dicts) with what
serving needs around them: ids clipped to the out-of-vocabulary bucket, the item corpus index
(retrieval), the lowest score on padded candidates and the exact top-k mask (pre-ranking,
ranking), and the request's ``top_n``/``k`` as signature inputs with defaults. Only the model's
variables are tracked, not its Keras objects, so the SavedModel holds the signature functions and
nothing that needs Keras (or XLA) to load.

Example:
    >>> import tempfile
    >>> from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary
    >>> vocabulary = FeatureVocabulary({"user": [10] * 5})
    >>> servable = ScorerServable(lambda f: tf.cast(f["items"][..., 0], tf.float32), [],
    ...                           vocabulary, default_k=10)
    >>> folder = tempfile.mkdtemp()
    >>> tf.saved_model.save(servable, f"{folder}/rank/1", signatures=servable.signatures())
"""

from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.export.item_index import ExactItemIndex
from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary

from dftopk_tf.layers import DFTopK

FeatureFunction = Callable[[Mapping[str, tf.Tensor]], tf.Tensor]


def _check_default(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _with_input_signature(
    serve: Callable[..., dict[str, tf.Tensor]], specs: Mapping[str, tf.TensorSpec]
) -> tf.types.experimental.PolymorphicFunction:
    """``serve`` as a ``tf.function`` over ``specs`` (in ``serve``'s argument order).

    ``tf.saved_model.save`` records the tensor default of ``serve``'s last argument in the
    ``SignatureDef`` (``defaults``), which TF Serving's gRPC Predict feeds when a request omits that
    input (its REST API needs every input).
    """
    return tf.function(serve, input_signature=list(specs.values()))


class RetrievalServable(tf.Module):
    """User tower + exact item index: the request's top-N corpus items and their scores.

    Args:
        user_embedding: request features (``context``, ``user``, ``seq``, ``seq_mask``, ids
            already clipped) -> float [B, d] query embeddings.
        variables: the variables ``user_embedding`` reads (saved with the model).
        index: the item corpus, embedded by the item tower.
        vocabulary: table sizes for out-of-vocabulary clipping.
        default_top_n: ``top_n`` when a request leaves it out (recorded in the signature).

    Example:
        >>> import numpy as np
        >>> from dftopk_cascade.serving.export.item_index import ExactItemIndex
        >>> from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary
        >>> from dftopk_cascade.serving.export.toy_servables import toy_request
        >>> vocabulary = FeatureVocabulary({"items": [100] * 8})
        >>> index = ExactItemIndex(np.eye(8, dtype=np.float32), np.ones([8, 8], np.int32))
        >>> user_tower = lambda features: tf.one_hot(features["user"][:, 0], 8)
        >>> servable = RetrievalServable(user_tower, [], index, vocabulary)
        >>> request = {name: tf.constant(value) for name, value in toy_request().items()}
        >>> servable.serve(**request, top_n=tf.constant(5))["item_ids"].shape  # [B, 5]
        TensorShape([1, 5])
    """

    def __init__(
        self,
        user_embedding: FeatureFunction,
        variables: Sequence[tf.Variable],
        index: ExactItemIndex,
        vocabulary: FeatureVocabulary,
        default_top_n: int = 200,
        name: str | None = None,
    ):
        super().__init__(name=name)
        _check_default("default_top_n", default_top_n)
        self.model_variables = list(variables)
        self.index = index
        self.default_top_n = default_top_n
        self._user_embedding = user_embedding
        self._vocabulary = vocabulary

    def serve(
        self,
        context: tf.Tensor,
        user: tf.Tensor,
        seq: tf.Tensor,
        seq_mask: tf.Tensor,
        top_n: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """The ``serving_default`` body (see ``dftopk_cascade.serving.signatures``)."""
        features = self._vocabulary.clip_features(
            {sig.CONTEXT: context, sig.USER: user, sig.SEQ: seq, sig.SEQ_MASK: seq_mask}
        )
        scores, item_ids, item_features = self.index(self._user_embedding(features), top_n)
        return {sig.ITEM_IDS: item_ids, sig.ITEM_FEATURES: item_features, sig.SCORES: scores}

    def signatures(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        """``{"serving_default": ...}`` for ``tf.saved_model.save``.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_retrieval
            >>> list(toy_retrieval().signatures())
            ['serving_default']
        """
        default_top_n = tf.constant(self.default_top_n, tf.int32)

        def serve(context, user, seq, seq_mask, top_n=default_top_n):
            return self.serve(context, user, seq, seq_mask, top_n)

        return {sig.SIGNATURE_NAME: _with_input_signature(serve, sig.RETRIEVAL_SPECS)}


class ScorerServable(tf.Module):
    """A candidate scorer (pre-ranking or ranking): scores and the exact top-k mask.

    Args:
        score: request features plus ``items``/``item_mask`` (ids clipped) -> float [B, M]
            (or [B, M, 1]) candidate scores.
        variables: the variables ``score`` reads (saved with the model).
        vocabulary: table sizes for out-of-vocabulary clipping.
        default_k: ``k`` when a request leaves it out (recorded in the signature).

    Padded candidates (``item_mask`` False) get the lowest float32 score and are never selected;
    ``selected`` is ``DFTopK(hard=True)``'s exact mask of the k best real candidates (all of
    them when k >= their count).

    Example:
        >>> from dftopk_cascade.serving.export.vocabulary import FeatureVocabulary
        >>> from dftopk_cascade.serving.export.toy_servables import (
        ...     toy_cascade, toy_corpus, toy_request)
        >>> model = toy_cascade()  # models.cascade.CascadeModel
        >>> config = model.cascade_config
        >>> vocabulary = FeatureVocabulary.from_schema(config.columns, config.vocab_sizes)
        >>> servable = ScorerServable(model.rank, model.rank.variables, vocabulary)
        >>> features = {name: tf.constant(value) for name, value in toy_request().items()}
        >>> items, mask = tf.constant(toy_corpus()[None, :30]), tf.ones([1, 30], tf.bool)
        >>> outputs = servable.serve(**features, items=items, item_mask=mask, k=tf.constant(20))
        >>> float(tf.reduce_sum(outputs["selected"]))
        20.0
    """

    def __init__(
        self,
        score: FeatureFunction,
        variables: Sequence[tf.Variable],
        vocabulary: FeatureVocabulary,
        default_k: int = 10,
        name: str | None = None,
    ):
        super().__init__(name=name)
        _check_default("default_k", default_k)
        self.model_variables = list(variables)
        self.default_k = default_k
        self._score = score
        self._vocabulary = vocabulary

    def serve(
        self,
        context: tf.Tensor,
        user: tf.Tensor,
        seq: tf.Tensor,
        seq_mask: tf.Tensor,
        items: tf.Tensor,
        item_mask: tf.Tensor,
        k: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """The ``serving_default`` body (see ``dftopk_cascade.serving.signatures``)."""
        features = self._vocabulary.clip_features(
            {
                sig.CONTEXT: context,
                sig.USER: user,
                sig.SEQ: seq,
                sig.SEQ_MASK: seq_mask,
                sig.ITEMS: items,
                sig.ITEM_MASK: item_mask,
            }
        )
        scores = tf.reshape(tf.cast(self._score(features), tf.float32), tf.shape(item_mask))
        scores = tf.where(item_mask, scores, tf.float32.min)
        # Built at trace time: it has no variables, and untracked it adds nothing but its ops.
        selector = DFTopK(k=1, hard=True, jit_compile=False, name="selected")
        return {sig.SCORES: scores, sig.SELECTED: selector(scores, mask=item_mask, k=k)}

    def signatures(self) -> dict[str, tf.types.experimental.PolymorphicFunction]:
        """``{"serving_default": ...}`` for ``tf.saved_model.save``.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
            >>> list(toy_scorer().signatures())
            ['serving_default']
        """
        default_k = tf.constant(self.default_k, tf.int32)

        def serve(context, user, seq, seq_mask, items, item_mask, k=default_k):
            return self.serve(context, user, seq, seq_mask, items, item_mask, k)

        return {sig.SIGNATURE_NAME: _with_input_signature(serve, sig.SCORER_SPECS)}
