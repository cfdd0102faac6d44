"""The keras-rs example's serving model and its ``model.export()`` in the TF Serving layout.

``RetrievalServable`` answers the ``retrieval`` signature of ``dftopk_cascade.serving.signatures``
through ``keras_rs.layers.BruteForceRetrieval``; ``export_servable`` writes it with Keras 3's
``model.export()`` as ``EXPORT/retrieval/<version>``, atomically and never over a version.

Example:
    >>> sorted(servable(serving_request(log_batch, top_n=3)))
    ['item_features', 'item_ids', 'scores']
"""

import os
import shutil
import uuid
from collections.abc import Mapping

import keras
import keras_rs
import numpy as np
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.export.graph_ops import serving_problems
from dftopk_cascade.serving.export.publish import check_version_free
from dftopk_cascade.serving.export_layout import TEMPORARY_PREFIX, version_dir
from keras import ops

from examples.keras_rs_towers import CandidateTower, QueryTower


@keras.saving.register_keras_serializable(package="examples")
class RetrievalServable(keras.Model):
    """The ``retrieval`` signature of ``dftopk_cascade.serving.signatures`` over a fixed catalogue.

    ``call`` takes the request features and ``top_n`` (int32 scalar) and returns the top
    ``min(top_n, catalogue size)`` corpus rows by score (``item_ids``), their ``item_features``
    and ``scores``, best first, through ``keras_rs.layers.BruteForceRetrieval`` over the
    candidate tower's embeddings of the catalogue.

    Example:
        >>> servable = RetrievalServable(model.query_tower, model.candidate_tower, catalogue.items)
        >>> servable(serving_request(log_batch, top_n=5))["item_ids"].shape
        TensorShape([8, 5])
    """

    def __init__(
        self, query_tower: QueryTower, candidate_tower: CandidateTower, items: np.ndarray, **kwargs
    ):
        super().__init__(**kwargs)
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.retrieval = keras_rs.layers.BruteForceRetrieval(k=len(items), return_scores=True)
        self.retrieval.update_candidates(candidate_tower(items))
        self.items = keras.Variable(items, dtype="int32", trainable=False, name="item_features")

    def call(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        scores, rows = self.retrieval(self.query_tower(inputs))
        n = ops.minimum(ops.cast(inputs["top_n"], "int32"), ops.shape(rows)[-1])
        rows = rows[:, :n]
        return {
            sig.ITEM_IDS: ops.cast(rows, "int32"),
            sig.ITEM_FEATURES: ops.take(self.items, rows, axis=0),
            sig.SCORES: ops.cast(scores[:, :n], "float32"),
        }

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "query_tower": keras.saving.serialize_keras_object(self.query_tower),
            "candidate_tower": keras.saving.serialize_keras_object(self.candidate_tower),
            "items": ops.convert_to_numpy(self.items).tolist(),
        }

    @classmethod
    def from_config(cls, config: dict) -> "RetrievalServable":
        config = dict(config)
        for key in ("query_tower", "candidate_tower"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        config["items"] = np.asarray(config["items"], np.int32)
        return cls(**config)


def serving_request(log: Mapping[str, np.ndarray], top_n: int) -> dict[str, np.ndarray]:
    """The ``retrieval`` model's inputs for logged requests: every input, ``top_n`` included.

    Example:
        >>> sorted(serving_request(log_batch, top_n=10))
        ['context', 'seq', 'seq_mask', 'top_n', 'user']
    """
    request = {name: np.asarray(log[name]) for name in sig.REQUEST_SPECS}
    return request | {sig.TOP_N: np.int32(top_n)}


def export_servable(servable: RetrievalServable, export_dir: str, version: int = 1) -> str:
    """Saves ``servable`` with ``model.export()`` as ``EXPORT/retrieval/<version>``; returns it.

    Written under a temporary name, checked to load in stock TF Serving
    (``dftopk_cascade.serving.export.graph_ops.serving_problems``) and renamed into place; an
    existing version is never overwritten
    (``dftopk_cascade.serving.export.publish.VersionExistsError``).

    Example:
        >>> export_servable(servable, tmp_dir, version=2)
        '.../retrieval/2'
    """
    check_version_free(export_dir, sig.RETRIEVAL, version)
    final = version_dir(export_dir, sig.RETRIEVAL, version)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    temporary = os.path.join(
        os.path.dirname(final), f"{TEMPORARY_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    )
    try:
        servable.export(
            temporary,
            format="tf_saved_model",
            input_signature=[dict(sig.RETRIEVAL_SPECS)],
            verbose=False,
        )
        problems = serving_problems(temporary)
        if problems:
            raise ValueError("the export would not load in TF Serving:\n  " + "\n  ".join(problems))
        check_version_free(export_dir, sig.RETRIEVAL, version)
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final
