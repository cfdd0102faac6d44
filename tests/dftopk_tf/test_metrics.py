"""Tests of the ranking metrics: the NumPy oracle on hand-computed cases, the Keras metrics on it.

The Keras metrics are streamed over several random batches with padding and ties and must equal the
NumPy weighted mean over all requests; padded items with any score must change nothing.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import metrics_numpy
from dftopk_tf.keras_compat import keras
from dftopk_tf.masking import PADDING_LABEL
from dftopk_tf.metrics import (
    NDCG,
    JointRecall,
    KendallTau,
    RecallAtKM,
    joint_recall_per_request,
    kendall_tau_per_request,
    ndcg_at_k_per_request,
    recall_at_k_m_per_request,
)

P = PADDING_LABEL
LOG2_3 = math.log2(3.0)


# --- the NumPy oracle on cases computed by hand -------------------------------------------------


def test_recall_hand_cases():
    recall = metrics_numpy.recall_at_k_m_per_request
    # Label top-2 = {0, 1}; score top-3 = {1, 2, 3}; the padded item's 9.0 is never chosen.
    labels, scores = [[5.0, 4.0, 3.0, 2.0, 1.0, P]], [[0.0, 3.0, 2.0, 1.0, 0.0, 9.0]]
    np.testing.assert_allclose(recall(labels, scores, k=2, m=3), [1 / 2])
    # 2 real items and k = 3: the denominator is min(3, 2) = 2.
    labels, scores = [[1.0, 0.0, P, P]], [[0.0, 1.0, 5.0, 5.0]]
    np.testing.assert_allclose(recall(labels, scores, k=3, m=3), [2 / 2])
    # Ties in labels and scores break by lower index: label top-2 = {0, 1}, score top-3 = {1, 2, 3}.
    labels, scores = [[1.0, 1.0, 1.0, 0.0, P]], [[0.0, 2.0, 2.0, 2.0, 0.0]]
    np.testing.assert_allclose(recall(labels, scores, k=2, m=3), [1 / 2])
    np.testing.assert_allclose(recall([[1.0, 1.0]], [[0.0, 0.0]], k=1, m=1), [1.0])
    # No real item: NaN per request, left out of the mean.
    labels, scores = [[3.0, 0.0, 1.0], [P, P, P]], [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]
    np.testing.assert_allclose(recall(labels, scores, k=1, m=2), [0.0, np.nan])
    assert metrics_numpy.recall_at_k_m(labels, scores, k=1, m=3) == 1.0


def test_joint_recall_hand_case():
    labels = np.array([[4.0, 3.0, 2.0, 1.0, 0.0, P]])  # label top-2 = {0, 1}
    stage1 = np.array([[5.0, 1.0, 4.0, 3.0, 0.0, 9.0]])  # top-3 = {0, 2, 3}
    stage2 = np.array([[1.0, 9.0, 0.0, 2.0, 8.0, 9.0]])  # of {0, 2, 3}: top-2 = {3, 0}
    assert metrics_numpy.joint_recall(labels, stage1, stage2, k=2, m1=3, m2=2) == 0.5
    # Stage 2 keeping more than stage 1 passed on keeps all of it.
    assert metrics_numpy.joint_recall(labels, stage1, stage2, k=2, m1=3, m2=10) == 0.5
    assert metrics_numpy.joint_recall(labels, stage1, stage2, k=2, m1=6, m2=6) == 1.0


def test_ndcg_hand_cases():
    labels = np.array([[3.0, 2.0, 0.0, P], [0.0, 0.0, 0.0, P]])
    scores = np.array([[0.0, 1.0, 2.0, 9.0], [0.0, 1.0, 2.0, 9.0]])
    # Score order 2, 1, 0: DCG@2 = 0/log2(2) + 2/log2(3); ideal order 0, 1: 3/1 + 2/log2(3).
    expected = [(2 / LOG2_3) / (3 + 2 / LOG2_3), np.nan]
    np.testing.assert_allclose(metrics_numpy.ndcg_at_k_per_request(labels, scores, k=2), expected)
    # k above the real count: all three real items count; DCG = 0 + 2/log2(3) + 3/log2(4).
    ideal = 3 + 2 / LOG2_3
    np.testing.assert_allclose(
        metrics_numpy.ndcg_at_k(labels, scores, k=10), (2 / LOG2_3 + 3 / 2) / ideal
    )


def test_kendall_tau_hand_cases():
    labels = np.array([[1.0, 2.0, 3.0, 4.0, P], [1.0, 1.0, 2.0, P, P], [2.0, 2.0, 2.0, P, P]])
    scores = np.array(
        [[1.0, 3.0, 2.0, 4.0, 0.0], [1.0, 2.0, 3.0, 5.0, 0.0], [1.0, 2.0, 3.0, 0.0, 0.0]]
    )
    # Row 0: 6 pairs, 1 discordant. Row 1: C = 2, D = 0, 1 label tie: 2 / sqrt(2 * 3). Row 2: NaN.
    expected = [4 / 6, 2 / math.sqrt(6), np.nan]
    np.testing.assert_allclose(metrics_numpy.kendall_tau_per_request(labels, scores), expected)
    np.testing.assert_allclose(metrics_numpy.kendall_tau(labels, scores), (4 / 6 + 2 / 6**0.5) / 2)
    inf_scores = np.array([[np.inf, np.inf, -np.inf]])
    # Equal infinities tie: pairs (0, 2), (1, 2) concordant, (0, 1) tied in the scores.
    np.testing.assert_allclose(
        metrics_numpy.kendall_tau(np.array([[2.0, 1.0, 0.0]]), inf_scores), 2 / math.sqrt(3 * 2)
    )


def test_weighted_mean_skips_nan_and_weights():
    values, weights = np.array([1.0, np.nan, 0.0]), np.array([3.0, 5.0, 1.0])
    assert metrics_numpy.weighted_mean(values, weights) == 0.75
    assert math.isnan(metrics_numpy.weighted_mean(np.array([np.nan])))
    assert math.isnan(metrics_numpy.weighted_mean(np.array([1.0]), np.array([0.0])))


def test_numpy_explicit_mask_equals_label_mask():
    labels = np.array([[2.0, P, 1.0, 0.0]])
    scores = np.array([[0.0, 5.0, 2.0, 1.0]])
    explicit = metrics_numpy.ndcg_at_k(np.maximum(labels, 0.0), scores, 2, mask=labels >= 0)
    assert explicit == metrics_numpy.ndcg_at_k(labels, scores, 2)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda y, s: metrics_numpy.recall_at_k_m(y, s, k=0, m=2), ValueError, "k must be >= 1"),
        (lambda y, s: metrics_numpy.recall_at_k_m(y, s, k=1, m=0), ValueError, "m must be >= 1"),
        (lambda y, s: metrics_numpy.ndcg_at_k(y, s, k=1.5), TypeError, "k must be an integer"),
        (lambda y, s: metrics_numpy.joint_recall(y, s, s, 1, 0, 1), ValueError, "m1 must be"),
        (lambda y, s: metrics_numpy.kendall_tau(y, s[:, :1]), ValueError, "scores shape"),
        (lambda y, s: metrics_numpy.kendall_tau(y[0], s[0]), ValueError, r"\[batch, n\]"),
        (lambda y, s: metrics_numpy.kendall_tau(y, s, mask=[[1, 1, 1]]), ValueError, "labels >= 0"),
        (lambda y, s: metrics_numpy.kendall_tau(y, s * np.nan), ValueError, "NaN"),
        (lambda y, s: metrics_numpy.kendall_tau(y, s, sample_weight=[1, 2]), ValueError, "weight"),
    ],
)
def test_numpy_bad_input_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(np.array([[1.0, 0.0, P]]), np.array([[0.5, 0.2, 0.1]]))


# --- the Keras metrics against the oracle ---------------------------------------------------------


def _random_batch(rng: np.random.Generator, batch: int, n: int):
    """Labels and scores with many ties, padding anywhere in a row, and edge-case rows."""
    labels = rng.integers(0, 4, size=(batch, n)).astype(np.float32)
    scores = (rng.integers(-4, 5, size=(batch, n, 2)) / 2).astype(np.float32)
    real = rng.random((batch, n)) < rng.uniform(0.2, 1.0, size=(batch, 1))
    real[0] = False  # no real item
    real[1] = np.arange(n) == 3  # one real item
    labels[2] = 0.0  # all gains 0
    labels[~real] = PADDING_LABEL
    scores[~real] = rng.normal(scale=100.0, size=(np.sum(~real), 2))
    weights = rng.uniform(0.0, 2.0, size=batch).astype(np.float32)
    return labels, scores, weights


def _numpy_recall(labels, scores, weights):
    return metrics_numpy.recall_at_k_m(labels, scores[..., 0], 3, 5, sample_weight=weights)


def _numpy_joint_recall(labels, scores, weights):
    stage1, stage2 = scores[..., 0], scores[..., 1]
    return metrics_numpy.joint_recall(labels, stage1, stage2, 3, 6, 4, sample_weight=weights)


def _numpy_ndcg(labels, scores, weights):
    return metrics_numpy.ndcg_at_k(labels, scores[..., 0], 4, sample_weight=weights)


def _numpy_kendall_tau(labels, scores, weights):
    return metrics_numpy.kendall_tau(labels, scores[..., 0], sample_weight=weights)


# (a fresh Keras metric, its NumPy mean over (labels, scores [batch, n, 2], weights))
CASES = [
    (lambda: RecallAtKM(k=3, m=5), _numpy_recall),
    (lambda: JointRecall(k=3, m1=6, m2=4), _numpy_joint_recall),
    (lambda: NDCG(k=4), _numpy_ndcg),
    (KendallTau, _numpy_kendall_tau),
]


def _y_pred(metric, scores: np.ndarray) -> np.ndarray:
    return scores if isinstance(metric, JointRecall) else scores[..., 0]


@pytest.mark.parametrize(("make_metric", "numpy_mean"), CASES)
def test_streamed_metric_equals_numpy_mean_over_all_requests(make_metric, numpy_mean):
    rng = np.random.default_rng(7)
    metric = make_metric()
    batches = [_random_batch(rng, batch, n=12) for batch in (8, 5, 9)]
    for labels, scores, weights in batches:
        metric.update_state(labels, _y_pred(metric, scores), sample_weight=weights)
    labels, scores, weights = (np.concatenate(parts) for parts in zip(*batches, strict=True))
    np.testing.assert_allclose(
        float(metric.result()), numpy_mean(labels, scores, weights), rtol=1e-5
    )
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.parametrize(("make_metric", "numpy_mean"), CASES)
def test_unweighted_and_column_weights(make_metric, numpy_mean):
    labels, scores, weights = _random_batch(np.random.default_rng(3), batch=10, n=9)
    unweighted = make_metric()
    unweighted.update_state(labels, _y_pred(unweighted, scores))
    np.testing.assert_allclose(float(unweighted.result()), numpy_mean(labels, scores, None), 1e-5)
    column = make_metric()
    column.update_state(labels, _y_pred(column, scores), sample_weight=weights[:, None])
    np.testing.assert_allclose(float(column.result()), numpy_mean(labels, scores, weights), 1e-5)


def test_per_request_functions_equal_numpy():
    labels, scores, _ = _random_batch(np.random.default_rng(11), batch=16, n=10)
    first, second = scores[..., 0], scores[..., 1]
    pairs = [
        (
            recall_at_k_m_per_request(labels, first, 4, 2),
            metrics_numpy.recall_at_k_m_per_request(labels, first, 4, 2),
        ),
        (
            joint_recall_per_request(labels, first, second, 2, 3, 1),
            metrics_numpy.joint_recall_per_request(labels, first, second, 2, 3, 1),
        ),
        (
            ndcg_at_k_per_request(labels, first, 3),
            metrics_numpy.ndcg_at_k_per_request(labels, first, 3),
        ),
        (
            kendall_tau_per_request(labels, first),
            metrics_numpy.kendall_tau_per_request(labels, first),
        ),
    ]
    for got, expected in pairs:
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, equal_nan=True)


def test_tf_explicit_mask_equals_label_mask():
    labels = tf.constant([[2.0, P, 1.0, 0.0]])
    scores = tf.constant([[0.0, 5.0, 2.0, 1.0]])
    explicit = ndcg_at_k_per_request(tf.maximum(labels, 0.0), scores, 2, mask=labels >= 0)
    np.testing.assert_allclose(explicit.numpy(), ndcg_at_k_per_request(labels, scores, 2).numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels >= 0"):
        ndcg_at_k_per_request(labels, scores, 2, mask=tf.ones_like(labels, dtype=tf.bool))


@pytest.mark.parametrize(("make_metric", "numpy_mean"), CASES)
def test_padded_items_change_no_metric(make_metric, numpy_mean):
    labels, scores, weights = _random_batch(np.random.default_rng(5), batch=10, n=8)
    extra_scores = np.array([np.inf, -np.inf, np.nan, 1e30, 0.0, 2.0], dtype=np.float32)
    padded_labels = np.concatenate([labels, np.full((10, 6), PADDING_LABEL, np.float32)], axis=1)
    padded_scores = np.concatenate(
        [scores, np.broadcast_to(extra_scores[None, :, None], (10, 6, 2))], axis=1
    )
    plain, padded = make_metric(), make_metric()
    plain.update_state(labels, _y_pred(plain, scores), sample_weight=weights)
    padded.update_state(padded_labels, _y_pred(padded, padded_scores), sample_weight=weights)
    assert float(padded.result()) == float(plain.result())
    assert numpy_mean(padded_labels, padded_scores, weights) == numpy_mean(labels, scores, weights)


@pytest.mark.parametrize(("make_metric", "numpy_mean"), CASES)
def test_config_round_trip(make_metric, numpy_mean):
    metric = make_metric()
    config = metric.get_config()
    rebuilt = type(metric).from_config(config)
    assert rebuilt.get_config() == config
    deserialized = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(deserialized) is type(metric)
    assert deserialized.get_config() == config
    labels, scores, _ = _random_batch(np.random.default_rng(2), batch=6, n=7)
    for each in (metric, rebuilt):
        each.update_state(labels, _y_pred(each, scores))
    assert float(rebuilt.result()) == float(metric.result())


def _per_request_zero_loss(y_true, y_pred):
    """A loss the metric tests need only because Keras 3 refuses to evaluate without one."""
    return 0.0 * tf.reduce_sum(tf.reshape(y_pred, [tf.shape(y_pred)[0], -1]), axis=-1)


@pytest.mark.parametrize(("make_metric", "numpy_mean"), CASES)
def test_metric_in_compiled_model_matches_numpy(make_metric, numpy_mean):
    rng = np.random.default_rng(13)
    n, requests = 8, 11
    labels, _, weights = _random_batch(rng, batch=requests, n=n)
    features = rng.normal(size=(requests, n)).astype(np.float32)
    metric = make_metric()
    inputs = keras.Input(shape=(n,))
    if isinstance(metric, JointRecall):
        outputs = keras.layers.Reshape((n, 2))(keras.layers.Dense(2 * n)(inputs))
    else:
        outputs = keras.layers.Dense(n)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(loss=_per_request_zero_loss, weighted_metrics=[metric])
    results = model.evaluate(
        features, labels, sample_weight=weights, batch_size=4, return_dict=True, verbose=0
    )
    predictions = model.predict(features, batch_size=4, verbose=0)
    scores = predictions if isinstance(metric, JointRecall) else predictions[..., None]
    # Metrics lie in [-1, 1]; the absolute tolerance covers a mean that lands near 0 (Kendall tau
    # of an untrained, unseeded model), where float32 summation order alone exceeds rtol.
    np.testing.assert_allclose(
        results[metric.name], numpy_mean(labels, scores, weights), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    ("make_metric", "error", "pattern"),
    [
        (lambda: RecallAtKM(k=0, m=5), ValueError, "k must be >= 1"),
        (lambda: RecallAtKM(k=2, m=0), ValueError, "m must be >= 1"),
        (lambda: RecallAtKM(k=2.0, m=3), TypeError, "k must be an integer"),
        (lambda: JointRecall(k=1, m1=0, m2=1), ValueError, "m1 must be >= 1"),
        (lambda: JointRecall(k=1, m1=3, m2=-1), ValueError, "m2 must be >= 1"),
        (lambda: NDCG(k=0), ValueError, "k must be >= 1"),
        (lambda: NDCG(k=True), TypeError, "k must be an integer"),
    ],
)
def test_bad_arguments_raise(make_metric, error, pattern):
    with pytest.raises(error, match=pattern):
        make_metric()


def test_bad_inputs_raise():
    labels = tf.constant([[1.0, 0.0, P]])
    with pytest.raises(ValueError, match=r"\[batch, n, 2\]"):
        JointRecall(k=1, m1=2, m2=1).update_state(labels, tf.zeros([1, 3]))
    with pytest.raises(ValueError, match="must equal labels"):
        RecallAtKM(k=1, m=2).update_state(labels, tf.zeros([1, 4]))
    with pytest.raises(ValueError, match=r"\[batch, n\]"):
        NDCG(k=1).update_state(labels[0], tf.zeros([3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        KendallTau().update_state(labels, tf.constant([[np.nan, 0.0, 0.0]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one weight per request"):
        NDCG(k=1).update_state(labels, tf.zeros([1, 3]), sample_weight=tf.ones([2]))
