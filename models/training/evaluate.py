"""Evaluates a trained cascade with the paper's protocol: ``python -m
dftopk_cascade.models.training.evaluate``.

Every request of the held-out days is ranked over its 40 stage candidates plus 160 in-batch
negatives (200 candidates), and the stages are scored on their own and as a cascade with the
metrics of ``dftopk_cascade.models.protocol``, under its keys (``joint_recall``, ``recall@10@20``,
``recall@10@30``, ``ndcg@10``, ``kendall_tau``, ``rank_ndcg@10``). On simulated data the three
recalls are also computed against the simulator's true preference (top-10 by
``labels["preference"]``, over the 40 stage candidates whose preference is known), under the same
keys prefixed ``preference_``.

Each value is the mean over requests where it is defined (``dftopk_tf.metrics``). The first
batch is checked against the NumPy reference (``dftopk_tf.metrics_numpy``); a disagreement is an
error. Results go to ``MODEL_DIR/metrics.json`` (written atomically; the keys above, plus an
``evaluation`` entry with the days, request count and settings) and print as a markdown table.

Example::

    python -m dftopk_cascade.models.training.evaluate --data /tmp/recflow_tfrec --model-dir
    /tmp/dftopk_model
"""

import argparse
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models import protocol, tables
from dftopk_cascade.models.cascade import CascadeModel, load_cascade
from dftopk_cascade.models.contract import IN_BATCH_NEGATIVE_STAGE
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.training.data import check_days, evaluation_dataset
from dftopk_cascade.pipelines.atomic_files import write_json
from dftopk_cascade.pipelines.data_schema import read_data_schema

from dftopk_tf import metrics as tf_metrics
from dftopk_tf import metrics_numpy
from dftopk_tf.masking import PADDING_LABEL

#: The paper's evaluation: 160 in-batch negatives, 200 candidates per request.
EVALUATION_NEGATIVES: int = 160
#: Tolerance of the NumPy cross-check (TF computes in float32, NumPy in float64).
CROSS_CHECK_TOLERANCE: float = 1e-5


def per_request_metrics(labels: tf.Tensor, scores: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Per-request values [batch] of the protocol's metrics (NaN where undefined).

    Args:
        labels: float [batch, n], negative on padded candidates.
        scores: ``retrieval``, ``prerank`` and ``rank`` scores, float [batch, n].

    Example:
        >>> labels = tf.constant([[3.0, 2.0, 1.0]])
        >>> values = per_request_metrics(labels, {"retrieval": labels, "prerank": labels,
        ...                                       "rank": labels})
        >>> float(values["joint_recall"][0])
        1.0
    """
    return protocol.per_request_metrics(tf_metrics, labels, scores)


def reference_per_request_metrics(
    labels: np.ndarray, scores: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``per_request_metrics`` computed by the NumPy reference (``dftopk_tf.metrics_numpy``).

    Example:
        >>> labels = np.array([[3.0, 2.0, 1.0]])
        >>> values = reference_per_request_metrics(labels, {"retrieval": labels,
        ...                                                 "prerank": -labels, "rank": labels})
        >>> values["kendall_tau"].tolist()
        [-1.0]
    """
    return protocol.per_request_metrics(metrics_numpy, labels, scores)


def preference_labels(labels: dict[str, tf.Tensor], features: dict[str, tf.Tensor]) -> tf.Tensor:
    """The true preference on the stage candidates, padding elsewhere (in-batch negatives too).

    An in-batch negative is another request's candidate: its preference for this user is not
    known, so it takes no part in the preference metrics.

    Example:
        >>> labels = {"preference": tf.constant([[0.9, 0.2, 0.0]])}
        >>> features = {"stage": tf.constant([[0, 3, 4]]),
        ...             "item_mask": tf.constant([[True, True, True]])}
        >>> preference_labels(labels, features).numpy()
        array([[ 0.9,  0.2, -1. ]], dtype=float32)
    """
    known = features["item_mask"] & (features["stage"] != IN_BATCH_NEGATIVE_STAGE)
    return tf.where(known, labels["preference"], PADDING_LABEL)


def preference_metrics(preference: tf.Tensor, scores: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Per-request recalls against the true preference (``preference_labels``).

    Example:
        >>> preference = tf.constant([[0.9, 0.1, -1.0]])
        >>> values = preference_metrics(preference, {"retrieval": preference,
        ...                                          "prerank": preference})
        >>> float(values["preference_joint_recall"][0])
        1.0
    """
    return protocol.preference_per_request_metrics(tf_metrics, preference, scores)


class RequestMeans:
    """Running means over requests of per-request values, skipping NaN (undefined) ones.

    Example:
        >>> means = RequestMeans()
        >>> means.add({"recall": np.array([1.0, np.nan, 0.0])})
        >>> means.results()
        {'recall': 0.5}
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, values: dict[str, np.ndarray]) -> None:
        for name, per_request in values.items():
            total, count = metrics_numpy.defined_total(per_request)
            self.totals[name] = self.totals.get(name, 0.0) + total
            self.counts[name] = self.counts.get(name, 0.0) + count

    def results(self) -> dict[str, float]:
        return {
            name: self.totals[name] / self.counts[name] if self.counts[name] else math.nan
            for name in self.totals
        }


def cross_check(tf_values: dict[str, np.ndarray], labels: np.ndarray, scores: dict) -> None:
    """Raises ``RuntimeError`` when the TF per-request metrics differ from the NumPy reference.

    Example:
        >>> labels = np.array([[2.0, 1.0, 0.0]])
        >>> scores = {"retrieval": labels, "prerank": labels, "rank": labels}
        >>> cross_check(reference_per_request_metrics(labels, scores), labels, scores)
    """
    reference = reference_per_request_metrics(labels, scores)
    for name, expected in reference.items():
        if not np.allclose(tf_values[name], expected, atol=CROSS_CHECK_TOLERANCE, equal_nan=True):
            worst = np.nanmax(np.abs(tf_values[name] - expected))
            raise RuntimeError(
                f"{name}: the TF metric differs from the NumPy reference by up to {worst:.3g}"
            )


def evaluate_model(
    model: CascadeModel,
    data_dir: str,
    days: Sequence[str],
    batch_size: int = 1024,
    negatives: int = EVALUATION_NEGATIVES,
    seed: int = 42,
    max_batches: int | None = None,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The protocol's metrics of ``model`` on ``days`` of ``data_dir`` (means over requests).

    Returns the metric keys of the module docstring and ``evaluation``: days, requests,
    candidates per request, batches, seconds and the cross-checked request count. ``schema`` is
    the folder's (``read_data_schema``) when the caller has read it already; read here when None.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
        >>> folder = tempfile.TemporaryDirectory()  # two simulated days, converted
        >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
        >>> from dftopk_cascade.models.cascade import build_cascade
        >>> from dftopk_cascade.models.config import CascadeConfig
        >>> config = CascadeConfig.from_schema(read_data_schema(data_dir), method="bce")
        >>> results = evaluate_model(build_cascade(config), data_dir, ["2024-01-14"],
        ...                          batch_size=32, negatives=8, max_batches=1)
        >>> results["evaluation"]["requests"], results["evaluation"]["candidates_per_request"]
        (32, 48)
    """
    schema = read_data_schema(data_dir) if schema is None else schema
    model.cascade_config.check_data_schema(schema, data_dir)
    with_preference = bool(schema["has_preference"])
    forward = tf.function(lambda features: model(features), reduce_retracing=True)
    means = RequestMeans()
    requests = batches = cross_checked = candidates = 0
    started = time.perf_counter()
    for features, labels in evaluation_dataset(data_dir, days, batch_size, negatives, seed, schema):
        if max_batches is not None and batches >= max_batches:
            break
        scores = forward(features)
        values = per_request_metrics(labels["label"], scores)
        if with_preference:
            values |= preference_metrics(preference_labels(labels, features), scores)
        values = {name: value.numpy() for name, value in values.items()}
        if batches == 0:
            numpy_scores = {name: value.numpy() for name, value in scores.items()}
            cross_check(values, labels["label"].numpy(), numpy_scores)
            cross_checked = int(labels["label"].shape[0])
        means.add(values)
        requests += int(labels["label"].shape[0])
        candidates = int(labels["label"].shape[1])
        batches += 1
    if requests == 0:
        raise ValueError(f"{data_dir}: no requests on the days {list(days)}")
    return {
        **means.results(),
        "evaluation": {
            "days": list(days),
            "requests": requests,
            "candidates_per_request": candidates,
            "negatives_per_request": negatives,
            "batches": batches,
            "batch_size": batch_size,
            "seconds": round(time.perf_counter() - started, 2),
            "numpy_cross_checked_requests": cross_checked,
            "method": model.cascade_config.method,
        },
    }


def metrics_table(results: dict[str, Any]) -> str:
    """The metrics of ``evaluate_model``'s results as a markdown table.

    Example:
        >>> print(metrics_table({"joint_recall": 0.51234, "evaluation": {}}))
        | metric | value |
        |---|---|
        | joint_recall | 0.5123 |
    """
    rows = [[name, f"{value:.4f}"] for name, value in results.items() if name != "evaluation"]
    return tables.markdown_table(["metric", "value"], rows)


def write_metrics(model_dir: str, results: dict[str, Any]) -> str:
    """Writes ``results`` to ``MODEL_DIR/metrics.json`` atomically; returns the path.

    Example:
        >>> import tempfile
        >>> folder = tempfile.TemporaryDirectory()
        >>> write_metrics(folder.name, {"joint_recall": 0.5}).endswith("metrics.json")
        True
    """
    path = ModelDir(model_dir).metrics_path
    write_json(path, results)
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags of ``python -m dftopk_cascade.models.training.evaluate`` (see ``--help``).

    Example:
        >>> parse_args(["--data", "d", "--model-dir", "m"]).negatives
        160
    """
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.models.training.evaluate",
        description="Evaluate a trained cascade with the paper's protocol (200 candidates per "
        "request: 40 stage candidates + 160 in-batch negatives): recall@10@20 (pre-ranking), "
        "recall@10@30 (retrieval), joint recall, NDCG@10, Kendall tau, and recall against the "
        "simulator's true preference when the data has it. Writes MODEL_DIR/metrics.json and "
        "prints a markdown table.",
    )
    parser.add_argument(
        "--data", dest="data_dir", required=True, help="converted TFRecord folder (schema.json)"
    )
    parser.add_argument(
        "--model-dir", required=True, help="folder written by dftopk_cascade.models.training.train"
    )
    parser.add_argument(
        "--days",
        nargs="+",
        default=None,
        help="days to evaluate, YYYY-MM-DD (default: the last converted day)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        help="requests per batch; in-batch negatives are drawn from the batch (default 1024)",
    )
    parser.add_argument(
        "--negatives",
        type=int,
        default=EVALUATION_NEGATIVES,
        help=f"in-batch negatives per request (default {EVALUATION_NEGATIVES}, the protocol)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the negative sampling")
    parser.add_argument(
        "--max-batches",
        type=int,
        default=None,
        help="stop after this many batches (default: every request of the days)",
    )
    return add_entry_flags(parser).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry: ``python -m dftopk_cascade.models.training.evaluate --help``."""
    args = parse_args(argv)
    schema = read_data_schema(args.data_dir)
    days = args.days or list(schema["days"])[-1:]
    check_days(schema, days)
    model = load_cascade(args.model_dir)
    results = evaluate_model(
        model,
        args.data_dir,
        days,
        args.batch_size,
        args.negatives,
        args.seed,
        args.max_batches,
        schema=schema,
    )
    path = write_metrics(args.model_dir, results)
    info = results["evaluation"]
    print(
        f"{info['method']} on {', '.join(days)}: {info['requests']} requests x "
        f"{info['candidates_per_request']} candidates ({info['seconds']} s); wrote {path}"
    )
    print(metrics_table(results))
    return results


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.models.training.evaluate")
