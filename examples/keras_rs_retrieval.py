"""Keras 3 two-tower retrieval on keras-rs, trained with DFTopK and served by TF Serving.

The whole path a Keras 3 user takes, on a small synthetic catalogue
(``examples.synthetic_catalogue``):

1. Two towers (Keras 3 layers) embed requests and items; ``keras_rs.layers.BruteForceRetrieval``
   scores them (its ``compute_score``, a dot product) and retrieves the top items at serving time.
2. Training is in-batch, as in keras-rs retrieval: each request's engaged items are its positives
   and every other item of the batch is a negative. ``dftopk_tf.DFTopKLoss(k=POSITIVES)`` asks the
   request's soft top-k over the batch's items to be exactly its positives. ``y_true`` is keras-rs's
   ``{"labels", "mask"}`` dict: an item that appears twice in a batch is masked out after its first
   occurrence (the multi-positive form of keras-rs's ``RemoveAccidentalHits``).
3. Evaluation over the whole catalogue with ``dftopk_tf.RecallAtKM`` and ``dftopk_tf.NDCG`` against
   the hidden true relevance, items already in the request's history masked out (``"mask"``).
4. Export with Keras 3's ``model.export()`` as a SavedModel in the TF Serving layout
   ``EXPORT/retrieval/<version>/`` with the ``retrieval`` signature of ``serving.signatures``
   (``docs/CONTRACTS.md``), so that ``serving.backends`` (``rest``, ``grpc``) and the cascade can
   call it. The export carries no ``SignatureDef.defaults``: requests send ``top_n``.

Run (Keras 3: ``TF_USE_LEGACY_KERAS`` unset or 0)::

    python -m examples.keras_rs_retrieval --export-dir runs/keras_rs_retrieval
    # then, against TF Serving serving that folder (see BUILD.md, "Export and serving"):
    python -m examples.keras_rs_retrieval --export-dir runs/keras_rs_retrieval \\
        --rest-url http://127.0.0.1:8501 --grpc-target 127.0.0.1:8500

Example:
    >>> catalogue = SyntheticCatalogue.create(np.random.default_rng(0), users=20, items=60)
    >>> log = catalogue.requests(np.random.default_rng(1), count=3)
    >>> in_batch_targets(log["positives"])["labels"].shape
    TensorShape([3, 12])
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")

import argparse
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import keras_rs
import numpy as np
import tensorflow as tf
from keras import ops

import dftopk_tf
from dftopk_tf.keras_compat import IS_KERAS_3
from examples.synthetic_catalogue import (
    CONTEXT_VOCABULARY,
    POSITIVES,
    SyntheticCatalogue,
)
from serving import signatures as sig
from serving.backends import GrpcBackend, PredictBackend, RestBackend
from serving.export_layout import TEMPORARY_PREFIX, check_version_free, version_dir
from serving.graph_ops import serving_problems

if not IS_KERAS_3:
    raise ImportError(
        "examples.keras_rs_retrieval runs on Keras 3 (keras-rs needs it): unset "
        "TF_USE_LEGACY_KERAS or set it to 0"
    )

EMBEDDING_DIM = 32
#: Width of each id field's embedding (context fields: CONTEXT_FIELD_DIM) and of the hidden layer.
FIELD_DIM = 16
CONTEXT_FIELD_DIM = 4
HIDDEN_DIM = 64
#: DFTopK temperature of the in-batch loss.
TAU = 0.5
#: Evaluation: Recall@10@50 (the true top 10 among the model's 50) and NDCG@10.
EVAL_K = 10
EVAL_M = 50


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
        self.retrieval = keras_rs.layers.BruteForceRetrieval(k=EVAL_M, return_scores=True)
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


@keras.saving.register_keras_serializable(package="examples")
class RetrievalServable(keras.Model):
    """The ``retrieval`` signature of ``serving.signatures`` over a fixed catalogue.

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
    (``serving.graph_ops.serving_problems``) and renamed into place; an existing version is
    never overwritten (``serving.export_layout.VersionExistsError``).

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


def evaluate(
    model: TwoTowerRetrieval, catalogue: SyntheticCatalogue, log: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Recall@10@50 and NDCG@10 over the whole catalogue, seen items masked out.

    Labels are the true relevance; ``y_true`` is ``{"labels", "mask"}`` with the request's
    history items masked (a retrieval model should not be credited for re-showing them).

    Example:
        >>> evaluate(model, catalogue, log_batch)["recall_at_10_at_50"] >= 0.0
        True
    """
    scores = model.catalogue_scores(log, catalogue.items)
    labels = catalogue.relevance(log["user"][:, 0] - 1)
    seen = np.zeros(labels.shape, bool)
    request_index, position = np.nonzero(log["seq_mask"])
    seen[request_index, log["seq"][request_index, position, 0] - 1] = True
    y_true = {"labels": labels, "mask": ~seen}
    metrics = [dftopk_tf.RecallAtKM(k=EVAL_K, m=EVAL_M), dftopk_tf.NDCG(k=EVAL_K)]
    for metric in metrics:
        metric.update_state(y_true, scores)
    return {metric.name: float(metric.result()) for metric in metrics}


@dataclass(frozen=True)
class ExampleResult:
    """What ``train_and_export`` produced.

    Attributes:
        untrained: metrics of the freshly initialised model.
        metrics: metrics after training.
        export_path: ``EXPORT/retrieval/<version>``.
        request: a held-out request batch in the serving signature's inputs (``top_n`` included).
        expected: the in-process servable's answer to ``request``.

    Example:
        >>> sorted(result.metrics), result.expected["item_ids"].shape
        (['ndcg_at_10', 'recall_at_10_at_50'], (4, 20))
    """

    untrained: dict[str, float]
    metrics: dict[str, float]
    export_path: str
    request: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]


def train_and_export(
    export_dir: str,
    epochs: int = 8,
    requests: int = 4096,
    seed: int = 0,
    version: int = 1,
) -> ExampleResult:
    """Builds the catalogue, trains, evaluates and exports; see the module docstring.

    Example:
        >>> result = train_and_export(tmp_dir)  # doctest: +SKIP
        >>> result.metrics["recall_at_10_at_50"] > result.untrained["recall_at_10_at_50"]
        True
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    catalogue = SyntheticCatalogue.create(rng, users=300, items=400)
    train_log = catalogue.requests(rng, count=requests)
    test_log = catalogue.requests(rng, count=512)
    model = TwoTowerRetrieval(
        QueryTower(catalogue.user_vocabulary(), catalogue.item_vocabulary()),
        CandidateTower(catalogue.item_vocabulary()),
    )
    # XLA compilation would take longer than this small model trains.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.005), jit_compile=False)
    untrained = evaluate(model, catalogue, test_log)
    model.fit(train_log, batch_size=128, epochs=epochs, verbose=0)
    metrics = evaluate(model, catalogue, test_log)
    servable = RetrievalServable(model.query_tower, model.candidate_tower, catalogue.items)
    request = serving_request({key: value[:4] for key, value in test_log.items()}, top_n=20)
    expected = {key: np.asarray(value) for key, value in servable(request).items()}
    export_path = export_servable(servable, export_dir, version)
    return ExampleResult(untrained, metrics, export_path, request, expected)


def ask_backend(
    backend: PredictBackend, request: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The ``retrieval`` model's answer from a backend (TF Serving over REST or gRPC).

    Example:
        >>> ask_backend(RestBackend(rest_url), result.request)["item_ids"].shape
        (4, 20)
    """
    try:
        return backend.predict(sig.RETRIEVAL, dict(request))
    finally:
        backend.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: train, evaluate and export; with a server address, ask it too.

    Example:
        >>> main(["--export-dir", tmp_dir, "--epochs", "1"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export-dir", default="runs/keras_rs_retrieval")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--rest-url", help="TF Serving REST address serving --export-dir")
    parser.add_argument("--grpc-target", help="TF Serving gRPC host:port serving --export-dir")
    args = parser.parse_args(argv)
    result = train_and_export(args.export_dir, args.epochs, seed=args.seed, version=args.version)
    for name in result.metrics:
        print(
            f"{name}: untrained {result.untrained[name]:.3f} -> trained {result.metrics[name]:.3f}"
        )
    print(f"exported {result.export_path}")
    backends = []
    if args.rest_url:
        backends.append(RestBackend(args.rest_url, timeout_s=30.0))
    if args.grpc_target:
        backends.append(GrpcBackend(args.grpc_target, timeout_s=30.0))
    for backend in backends:
        answer = ask_backend(backend, result.request)
        same = np.array_equal(answer[sig.ITEM_IDS], result.expected[sig.ITEM_IDS])
        top = answer[sig.ITEM_IDS][0, :5].tolist()
        print(f"{backend.name}: first request's top rows {top}; same as in process: {same}")


if __name__ == "__main__":
    main()
