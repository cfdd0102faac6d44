"""Ranking: a DCN-v2 model (TFRS cross layers + a deep tower) scoring every candidate.

The per-candidate inputs are those of pre-ranking (``CandidateFeatures``: context, user, target
attention interest, item; 21 * d values), with its own weights. ``cross_layers`` full-rank DCN-v2
cross layers (``tfrs.layers.dcn.Cross``: x_{l+1} = x_0 * (W x_l + b) + x_l) model explicit
feature crosses; a deep tower (128 -> 64 -> 1) on top gives the score. The layers act on the last
axis, so the whole [batch, n, 21 * d] candidate matrix goes through in one forward.

Example:
    >>> from dftopk_cascade.models.contract import zero_features
    >>> from dftopk_cascade.models.config import example_schema
    >>> DCNRank(**example_schema())(zero_features(batch_size=4)).shape.as_list()
    [4, 40]
"""

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs
from dftopk_cascade.models.candidate_features import DEFAULT_ATTENTION_UNITS, CandidateFeatures
from dftopk_cascade.models.tf_keras import keras, register_serializable
from dftopk_cascade.models.towers import MLP

DEFAULT_RANK_UNITS: tuple[int, ...] = (128, 64, 1)
DEFAULT_CROSS_LAYERS: int = 2


@register_serializable
class DCNRank(keras.Model):
    """DCN-v2 ranking model: cross layers, then a deep tower, one score per candidate.

    Args:
        vocab_sizes: field -> embedding table size (schema.json ``vocab_sizes``).
        columns: feature group -> field names (schema.json ``columns``).
        embedding_dim: id embedding size d.
        cross_layers: number of DCN-v2 cross layers (>= 1).
        units: deep tower sizes, the last 1 (the score).
        attention_units: size of the target attention's projections.
        embedding_layout: how the id tables are stored
        (``dftopk_cascade.models.embeddings.TABLE_LAYOUTS``). embedding_init: how the id tables
        start (``dftopk_cascade.models.embeddings.EMBEDDING_INITS``).

    Call: ``model(features)`` with a contract batch's features; returns float32 scores [batch, n].

    Example:
        >>> from dftopk_cascade.models.contract import zero_features
        >>> from dftopk_cascade.models.config import example_schema
        >>> model = DCNRank(**example_schema(), cross_layers=1, units=(8, 1))
        >>> model(zero_features(batch_size=4)).shape.as_list()
        [4, 40]
    """

    def __init__(
        self,
        vocab_sizes: dict[str, int],
        columns: dict[str, list[str]],
        embedding_dim: int = 8,
        cross_layers: int = DEFAULT_CROSS_LAYERS,
        units: Sequence[int] = DEFAULT_RANK_UNITS,
        attention_units: int = DEFAULT_ATTENTION_UNITS,
        embedding_layout: str = "fused",
        embedding_init: str = "uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cross_layers < 1:
            raise ValueError(f"cross_layers must be >= 1, got {cross_layers}")
        self.units = [int(size) for size in units]
        if self.units[-1] != 1:
            raise ValueError(f"the last of units must be 1 (the score), got {self.units}")
        self.cross_layer_count = int(cross_layers)
        self.candidate_features = CandidateFeatures(
            vocab_sizes,
            columns,
            embedding_dim,
            attention_units,
            embedding_layout=embedding_layout,
            embedding_init=embedding_init,
            name="candidate_features",
        )
        self.cross_layers = [
            tfrs.layers.dcn.Cross(name=f"cross_{i}") for i in range(self.cross_layer_count)
        ]
        self.deep = MLP(self.units, name="deep")

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        x0 = self.candidate_features(features)
        crossed = x0
        for layer in self.cross_layers:
            crossed = layer(x0, crossed)
        return self.deep(crossed)[..., 0]

    def get_config(self) -> dict:
        inputs = self.candidate_features
        return {
            "vocab_sizes": inputs.vocab_sizes,
            "columns": inputs.columns,
            "embedding_dim": inputs.embedding_dim,
            "cross_layers": self.cross_layer_count,
            "units": self.units,
            "attention_units": inputs.attention_units,
            "embedding_layout": inputs.embedding_layout,
            "embedding_init": inputs.embedding_init,
        }
