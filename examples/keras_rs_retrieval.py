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
   ``EXPORT/retrieval/<version>/`` with the ``retrieval`` signature of
   ``dftopk_cascade.serving.signatures`` (``docs/CONTRACTS.md``), so that
   ``dftopk_cascade.serving.backends`` (``rest``, ``grpc``) and the cascade can call it. The export
   carries no ``SignatureDef.defaults``: requests send ``top_n``.

Run (Keras 3: ``TF_USE_LEGACY_KERAS`` unset or 0)::

    python -m examples.keras_rs_retrieval --export-dir runs/keras_rs_retrieval
    # then, against TF Serving serving that folder (see BUILD.md, "Export and serve"):
    python -m examples.keras_rs_retrieval --export-dir runs/keras_rs_retrieval \\
        --rest-url http://127.0.0.1:8501 --grpc-target 127.0.0.1:8500

The towers and training model are in ``examples.keras_rs_towers``, the serving model and its
export in ``examples.keras_rs_servable``; this module evaluates, runs the whole path and asks
TF Serving.

Example:
    >>> sorted(evaluate(model, catalogue, log_batch))
    ['ndcg_at_10', 'recall_at_10_at_50']
"""

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import GrpcBackend, PredictBackend, RestBackend

import dftopk_tf
from examples.keras_rs_servable import RetrievalServable, export_servable, serving_request
from examples.keras_rs_towers import CandidateTower, QueryTower, TwoTowerRetrieval
from examples.synthetic_catalogue import SyntheticCatalogue

#: Evaluation: Recall@10@50 (the true top 10 among the model's 50) and NDCG@10.
EVAL_K = 10
EVAL_M = 50


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
    args = add_entry_flags(parser).parse_args(argv)
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
    run_command(main, "python -m examples.keras_rs_retrieval")
