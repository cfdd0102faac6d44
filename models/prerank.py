"""Pre-ranking: a DIN-style model scoring every candidate of a request with target attention.

Each candidate attends over the behaviour sequence (``CandidateFeatures``: a candidate-specific
user-interest vector), with bilinear attention or DIN's MLP attention (``attention``, one of
``dftopk_cascade.models.attention.TARGET_ATTENTIONS``); the context, user features, that interest
vector and the candidate's fields, 21 * d values, go through an MLP 128 -> 128 -> 32 -> 1, the
candidate's score. All candidates of a batch are scored in one forward over [batch, n, 21 * d].

Example:
    >>> from dftopk_cascade.models.contract import zero_features
    >>> from dftopk_cascade.models.config import example_schema
    >>> model = DINPrerank(**example_schema())
    >>> model(zero_features(batch_size=4)).shape.as_list()
    [4, 40]
"""

from collections.abc import Sequence

import tensorflow as tf
from dftopk_cascade.models.candidate_features import DEFAULT_ATTENTION_UNITS, CandidateFeatures
from dftopk_cascade.models.tf_keras import keras, register_serializable
from dftopk_cascade.models.towers import MLP

DEFAULT_PRERANK_UNITS: tuple[int, ...] = (128, 128, 32, 1)


@register_serializable
class DINPrerank(keras.Model):
    """DIN-style pre-ranking model: target attention features -> MLP -> one score per candidate.

    Args:
        vocab_sizes: field -> embedding table size (schema.json ``vocab_sizes``).
        columns: feature group -> field names (schema.json ``columns``).
        embedding_dim: id embedding size d.
        units: MLP sizes, the last 1 (the score).
        attention_units: size of the bilinear target attention's projections.
        embedding_layout: how the id tables are stored
        (``dftopk_cascade.models.embeddings.TABLE_LAYOUTS``). embedding_init: how the id tables
        start (``dftopk_cascade.models.embeddings.EMBEDDING_INITS``). attention: the target
        attention's form: ``bilinear`` or ``din`` (DIN's MLP over
            [behaviour, candidate], as in the official DFTopK/LCRON pre-ranking model).

    Call: ``model(features)`` with a contract batch's features; returns float32 scores [batch, n].

    Example:
        >>> from dftopk_cascade.models.contract import zero_features
        >>> from dftopk_cascade.models.config import example_schema
        >>> model = DINPrerank(**example_schema(), units=(16, 1), attention="din")
        >>> model(zero_features(batch_size=4)).shape.as_list()
        [4, 40]
    """

    def __init__(
        self,
        vocab_sizes: dict[str, int],
        columns: dict[str, list[str]],
        embedding_dim: int = 8,
        units: Sequence[int] = DEFAULT_PRERANK_UNITS,
        attention_units: int = DEFAULT_ATTENTION_UNITS,
        embedding_layout: str = "fused",
        embedding_init: str = "uniform",
        attention: str = "bilinear",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = [int(size) for size in units]
        if self.units[-1] != 1:
            raise ValueError(f"the last of units must be 1 (the score), got {self.units}")
        self.candidate_features = CandidateFeatures(
            vocab_sizes,
            columns,
            embedding_dim,
            attention_units,
            embedding_layout=embedding_layout,
            embedding_init=embedding_init,
            attention=attention,
            name="candidate_features",
        )
        self.mlp = MLP(self.units, name="mlp")

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        return self.mlp(self.candidate_features(features))[..., 0]

    def get_config(self) -> dict:
        inputs = self.candidate_features
        return {
            "vocab_sizes": inputs.vocab_sizes,
            "columns": inputs.columns,
            "embedding_dim": inputs.embedding_dim,
            "units": self.units,
            "attention_units": inputs.attention_units,
            "embedding_layout": inputs.embedding_layout,
            "embedding_init": inputs.embedding_init,
            "attention": inputs.attention_kind,
        }
