"""The evaluation protocol gives tied scores no credit from the candidates' stored order."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models.protocol import (
    STAGES,
    least_relevant_first,
    per_request_metrics,
    preference_per_request_metrics,
    streaming_metrics,
    update_streaming_metrics,
)

from dftopk_tf import metrics, metrics_numpy


def _stored_order_labels(batch_size: int = 3) -> np.ndarray:
    """40 candidates a request as the converter stores them: ranked ones first, padding last."""
    ranked = np.arange(30.0, 20.0, -1.0)
    row = np.concatenate([ranked, np.full(10, 7.0), np.full(10, 6.0), np.full(9, 5.0), [-1.0]])
    return np.tile(row, (batch_size, 1))


@pytest.mark.parametrize("module", [metrics, metrics_numpy], ids=["tensorflow", "numpy"])
def test_a_constant_scorer_gets_no_recall_from_the_stored_order(module) -> None:
    labels = _stored_order_labels()
    constant = dict.fromkeys(STAGES, np.zeros_like(labels))
    values = per_request_metrics(module, labels, constant)
    # Ties go to the less relevant candidates: the 30 kept are the 39 real ones minus the top 9.
    np.testing.assert_allclose(np.asarray(values["recall@10@30"]), 0.1)
    np.testing.assert_allclose(np.asarray(values["recall@10@20"]), 0.0)
    np.testing.assert_allclose(np.asarray(values["joint_recall"]), 0.0)
    assert np.all(np.asarray(values["ndcg@10"]) < 0.2)


@pytest.mark.parametrize("module", [metrics, metrics_numpy], ids=["tensorflow", "numpy"])
def test_scores_without_ties_score_the_same_in_any_candidate_order(module) -> None:
    rng = np.random.default_rng(0)
    labels = _stored_order_labels(batch_size=8)
    scores = {stage: rng.normal(size=labels.shape) for stage in STAGES}
    shuffle = np.stack([rng.permutation(labels.shape[1]) for _ in range(labels.shape[0])])
    shuffled = {stage: np.take_along_axis(value, shuffle, -1) for stage, value in scores.items()}
    expected = per_request_metrics(module, labels, scores)
    got = per_request_metrics(module, np.take_along_axis(labels, shuffle, -1), shuffled)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(value), rtol=1e-6, err_msg=key)
    preference = rng.uniform(size=labels.shape)
    np.testing.assert_allclose(
        np.asarray(
            preference_per_request_metrics(module, preference, scores)["preference_joint_recall"]
        ),
        np.asarray(
            preference_per_request_metrics(
                module, np.take_along_axis(preference, shuffle, -1), shuffled
            )["preference_joint_recall"]
        ),
    )


def test_the_streamed_keras_metrics_count_ties_against_the_model_too() -> None:
    labels = _stored_order_labels()
    constant = dict.fromkeys(STAGES, tf.zeros_like(labels, dtype=tf.float32))
    streamed = streaming_metrics()
    update_streaming_metrics(streamed, tf.constant(labels, tf.float32), constant)
    results = {metric.name: float(metric.result()) for metric in streamed}
    expected = per_request_metrics(
        metrics_numpy, labels, dict.fromkeys(STAGES, np.zeros_like(labels))
    )
    for key, value in results.items():
        assert value == pytest.approx(float(np.mean(expected[key])), abs=1e-6), key


def test_least_relevant_first_sorts_nan_labels_with_the_padding() -> None:
    labels = np.array([[2.0, np.nan, 0.0, -1.0]])
    ordered, scores = least_relevant_first(labels, {"prerank": np.array([[1.0, 2.0, 3.0, 4.0]])})
    np.testing.assert_array_equal(scores["prerank"], [[2.0, 4.0, 3.0, 1.0]])
    tf_ordered, tf_scores = least_relevant_first(
        tf.constant(labels), {"prerank": tf.constant([[1.0, 2.0, 3.0, 4.0]])}
    )
    np.testing.assert_array_equal(tf_scores["prerank"].numpy(), scores["prerank"])
    np.testing.assert_array_equal(tf_ordered.numpy(), ordered)


@pytest.mark.parametrize("module", [metrics, metrics_numpy], ids=["tensorflow", "numpy"])
def test_scores_a_few_ulps_apart_count_as_tied(module) -> None:
    # A collapsed tower on another CPU: every candidate alike, up to the kernels' last bits.
    labels = _stored_order_labels()
    rng = np.random.default_rng(1)
    ulps = rng.integers(-8, 9, size=labels.shape).astype(np.float32)
    noisy = np.float32(0.0107) * (1 + ulps * np.finfo(np.float32).eps)
    exact = per_request_metrics(module, labels, dict.fromkeys(STAGES, np.full_like(noisy, 0.0107)))
    got = per_request_metrics(module, labels, dict.fromkeys(STAGES, noisy))
    for key, value in exact.items():
        np.testing.assert_allclose(np.asarray(got[key]), np.asarray(value), rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(np.asarray(got["joint_recall"]), 0.0)


def test_the_streamed_metrics_tie_noisy_scores_like_the_reference() -> None:
    labels = _stored_order_labels()
    noisy = np.float32(-0.02) * (1 + np.float32(4e-7) * (np.arange(labels.shape[1]) % 3))
    scores = dict.fromkeys(STAGES, np.tile(noisy, (labels.shape[0], 1)))
    streamed = streaming_metrics()
    update_streaming_metrics(
        streamed,
        tf.constant(labels, tf.float32),
        {stage: tf.constant(value) for stage, value in scores.items()},
    )
    expected = per_request_metrics(metrics_numpy, labels, scores)
    for metric in streamed:
        assert float(metric.result()) == pytest.approx(
            float(np.mean(expected[metric.name])), abs=1e-6
        ), metric.name
    assert float(streamed[0].result()) == pytest.approx(0.0, abs=1e-6)
