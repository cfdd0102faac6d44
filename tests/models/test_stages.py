"""The three stages: shapes, per-candidate scoring, padding invariance, the sampled softmax."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs
from dftopk_cascade.models.in_batch_softmax import InBatchSoftmax, ground_truth_items
from dftopk_cascade.models.prerank import DINPrerank
from dftopk_cascade.models.rank import DCNRank
from dftopk_cascade.models.retrieval import TwoTowerRetrieval
from dftopk_cascade.models.tf_keras import keras

from tests.models.batches import COLUMNS, VOCAB_SIZES, synthetic_batch

SIZES = {"vocab_sizes": VOCAB_SIZES, "columns": COLUMNS, "embedding_dim": 4}


def make_stages() -> dict[str, keras.Model]:
    return {
        "retrieval": TwoTowerRetrieval(**SIZES, tower_units=(16, 8)),
        "prerank": DINPrerank(**SIZES, units=(16, 1), attention_units=8),
        "prerank_din": DINPrerank(**SIZES, units=(16, 1), attention="din"),
        "rank": DCNRank(**SIZES, cross_layers=2, units=(16, 1), attention_units=8),
    }


STAGES = make_stages()


@pytest.mark.parametrize("name", list(STAGES))
def test_scores_every_candidate(name: str) -> None:
    features, _ = synthetic_batch(batch_size=3, negatives=16)
    scores = STAGES[name](features)
    assert scores.shape == (3, 56) and scores.dtype == tf.float32
    assert np.isfinite(scores.numpy()).all()


@pytest.mark.parametrize("name", list(STAGES))
def test_a_candidates_score_does_not_depend_on_the_others(name: str) -> None:
    features, _ = synthetic_batch(batch_size=3)
    order = np.random.default_rng(0).permutation(40)
    permuted = dict(features)
    permuted["items"] = tf.gather(features["items"], order, axis=1)
    np.testing.assert_allclose(
        STAGES[name](permuted), tf.gather(STAGES[name](features), order, axis=1), rtol=1e-5
    )


@pytest.mark.parametrize("name", list(STAGES))
def test_padded_behaviours_do_not_change_scores(name: str) -> None:
    features, _ = synthetic_batch(batch_size=3)
    changed = dict(features)
    padded = ~features["seq_mask"][..., None]
    changed["seq"] = tf.where(padded, 3, features["seq"])
    np.testing.assert_allclose(STAGES[name](changed), STAGES[name](features), rtol=1e-5)


def test_retrieval_scores_are_dot_products_of_the_towers() -> None:
    features, _ = synthetic_batch(batch_size=2)
    model = STAGES["retrieval"]
    query = model.query_embeddings(features).numpy()
    items = model.item_embeddings(features["items"]).numpy()
    assert query.shape == (2, 8) and items.shape == (2, 40, 8)
    expected = np.einsum("bd,bnd->bn", query, items)
    np.testing.assert_allclose(model(features), expected, rtol=1e-5, atol=1e-8)


def test_scoring_stages_check_their_sizes() -> None:
    with pytest.raises(ValueError, match="the last of units must be 1"):
        DINPrerank(**SIZES, units=(16, 2))
    with pytest.raises(ValueError, match="unknown target attention 'mlp'"):
        DINPrerank(**SIZES, attention="mlp")
    with pytest.raises(ValueError, match="cross_layers must be >= 1"):
        DCNRank(**SIZES, cross_layers=0)


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_config_round_trip(name: str) -> None:
    config = STAGES[name].get_config()
    rebuilt = type(STAGES[name]).from_config(config)
    assert rebuilt.get_config() == config


def in_batch_softmax_reference(query, items, labels, label_k):
    """Mean over requests of -log softmax of the best item against other requests' top-k."""
    truth = []
    for row in range(labels.shape[0]):
        real = np.flatnonzero(labels[row] >= 0)
        truth.append(real[np.argsort(-labels[row, real], kind="stable")][:label_k])
    losses = []
    for row, top in enumerate(truth):
        if len(top) == 0:
            continue
        negatives = [
            items[other, item]
            for other in range(len(truth))
            if other != row
            for item in truth[other]
        ]
        logits = np.array([query[row] @ vector for vector in [items[row, top[0]], *negatives]])
        losses.append(np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[0])
    return np.mean(losses)


def test_in_batch_softmax_matches_the_formula() -> None:
    rng = np.random.default_rng(2)
    query = rng.normal(size=(4, 4)).astype(np.float32)
    items = rng.normal(size=(4, 5, 4)).astype(np.float32)
    labels = np.array(
        [
            [3.0, 1.0, 2.0, 0.0, -1.0],
            [0.0, -1.0, -1.0, -1.0, -1.0],
            [1.0, 5.0, 0.0, 4.0, 2.0],
            [-1.0, -1.0, -1.0, -1.0, -1.0],
        ],
        np.float32,
    )
    loss = InBatchSoftmax(label_k=2)(tf.constant(query), tf.constant(items), tf.constant(labels))
    expected = in_batch_softmax_reference(query, items, labels, 2)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_ground_truth_items_mark_missing_ones() -> None:
    labels = tf.constant([[2.0, -1.0, -1.0], [0.0, 3.0, 1.0]])
    items, valid, rows = ground_truth_items(tf.eye(3, batch_shape=[2]), labels, label_k=2)
    assert valid.numpy().tolist() == [True, False, True, True]
    assert rows.numpy().tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(items[2:], [[0, 1, 0], [0, 0, 1]])


def test_two_tower_model_trains_alone_with_sampled_softmax() -> None:
    features, labels = synthetic_batch(batch_size=8, group_size=3)
    model = TwoTowerRetrieval(**SIZES, tower_units=(16, 8), label_k=3)
    model.compile(optimizer=keras.optimizers.Adam(0.05), run_eagerly=True)
    before = model.compute_loss((features, labels))
    for _ in range(5):
        model.train_on_batch(features, labels)
    assert float(model.compute_loss((features, labels))) < float(before)


def test_two_tower_model_reports_factorized_top_k_over_a_corpus_index() -> None:
    features, labels = synthetic_batch(batch_size=4, group_size=3)
    index = tfrs.layers.factorized_top_k.BruteForce(k=5)
    metric = tfrs.metrics.FactorizedTopK(candidates=index, ks=(1, 5))
    model = TwoTowerRetrieval(**SIZES, tower_units=(16, 8), label_k=3, factorized_metrics=[metric])
    corpus = tf.reshape(features["items"], [-1, 8])
    index.index(model.item_embeddings(corpus))
    model.compile(optimizer="adam", run_eagerly=True)
    logs = model.evaluate(features, labels, verbose=0, return_dict=True)
    top_1, top_5 = (logs[f"factorized_top_k/top_{k}_categorical_accuracy"] for k in (1, 5))
    assert 0.0 <= top_1 <= top_5 <= 1.0
