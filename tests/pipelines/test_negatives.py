"""In-batch negatives: drawn from other requests' real candidates, labelled and masked right."""

import textwrap

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.labels import STAGE_IN_BATCH_NEGATIVE
from dftopk_cascade.pipelines.negatives import add_in_batch_negatives, sample_other_candidates

from tests.fresh_interpreter import run_python


def random_batch(batch_size: int, seed: int, empty_rows: tuple[int, ...] = ()):
    """A contract batch with random candidates; every candidate's first id is unique."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, fmt.NUM_CANDIDATES + 1, batch_size)
    counts[list(empty_rows)] = 0
    mask = np.arange(fmt.NUM_CANDIDATES)[None, :] < counts[:, None]
    items = rng.integers(1, 50, (batch_size, fmt.NUM_CANDIDATES, len(fmt.ITEM_FIELDS)))
    items[..., 0] = 1 + np.arange(batch_size * fmt.NUM_CANDIDATES).reshape(mask.shape)
    items[~mask] = 0
    features = {
        fmt.ITEMS: tf.constant(items, tf.int32),
        fmt.ITEM_MASK: tf.constant(mask),
        fmt.STAGE: tf.constant(np.repeat(np.arange(4), 10)[None].repeat(batch_size, 0), tf.int32),
        fmt.CONTEXT: tf.ones([batch_size, 3], tf.int32),
    }
    labels = {
        fmt.LABEL: tf.constant(np.where(mask, 5.0, -1.0), tf.float32),
        fmt.PREFERENCE: tf.constant(np.where(mask, 0.5, -1.0), tf.float32),
    }
    return features, labels, mask


def test_draws_only_other_requests_real_candidates():
    mask = np.random.default_rng(0).random((6, 7)) < 0.5
    mask[2] = False
    owner = np.repeat(np.arange(6), 7)
    for seed in range(20):
        indices, available = sample_other_candidates(tf.constant(mask), tf.range(6), 30, seed)
        indices, available = indices.numpy(), available.numpy()
        for row in range(6):
            others = mask.ravel() & (owner != row)
            assert available[row].all() == others.any()
            assert others[indices[row]].all(), (seed, row)


def test_draws_cover_every_other_candidate_uniformly():
    mask = np.array([[True, True, False], [True, False, False], [True, True, True]])
    indices, _ = sample_other_candidates(tf.constant(mask), tf.constant([0]), 30_000, seed=3)
    frequencies = np.bincount(indices.numpy().ravel(), minlength=9) / 30_000
    expected = np.array([0, 0, 0, 0.25, 0, 0, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(frequencies, expected, atol=0.015)


def test_no_other_candidate_gives_padding():
    mask = tf.constant([[True, True], [False, False]])
    indices, available = sample_other_candidates(mask, tf.constant([0, 1]), 4, seed=0)
    assert not available.numpy()[0].any()
    assert available.numpy()[1].all()
    assert set(indices.numpy()[1].tolist()) <= {0, 1}


def test_deterministic_for_a_seed():
    mask = tf.constant(np.random.default_rng(1).random((8, 40)) < 0.7)
    first, _ = sample_other_candidates(mask, tf.range(8), 16, seed=[5, 9])
    again, _ = sample_other_candidates(mask, tf.range(8), 16, seed=[5, 9])
    other, _ = sample_other_candidates(mask, tf.range(8), 16, seed=[5, 10])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_appended_negatives_are_labelled_and_masked():
    features, labels, mask = random_batch(5, seed=2, empty_rows=(3,))
    new_features, new_labels = add_in_batch_negatives(features, labels, 12, seed=7)
    items = new_features[fmt.ITEMS].numpy()
    assert items.shape == (5, 52, 8)
    np.testing.assert_array_equal(items[:, :40], features[fmt.ITEMS].numpy())
    np.testing.assert_array_equal(new_labels[fmt.LABEL][:, :40], labels[fmt.LABEL])
    source = features[fmt.ITEMS].numpy()
    by_id = {int(item[0]): (row, item) for row in range(5) for item in source[row, mask[row]]}
    for row in range(5):
        for negative in items[row, 40:]:
            owner, candidate = by_id[int(negative[0])]
            assert owner != row
            np.testing.assert_array_equal(negative, candidate)
    np.testing.assert_array_equal(new_features[fmt.ITEM_MASK][:, 40:], np.ones([5, 12], bool))
    np.testing.assert_array_equal(new_features[fmt.STAGE][:, 40:], STAGE_IN_BATCH_NEGATIVE)
    np.testing.assert_array_equal(new_labels[fmt.LABEL][:, 40:], np.zeros([5, 12]))
    np.testing.assert_array_equal(new_labels[fmt.PREFERENCE][:, 40:], np.zeros([5, 12]))
    assert new_features[fmt.CONTEXT] is features[fmt.CONTEXT]


def test_single_request_gets_padded_negatives():
    features, labels, _ = random_batch(1, seed=4)
    new_features, new_labels = add_in_batch_negatives(features, labels, 3, seed=0)
    assert not new_features[fmt.ITEM_MASK].numpy()[0, 40:].any()
    np.testing.assert_array_equal(new_labels[fmt.LABEL][0, 40:], [-1.0] * 3)
    np.testing.assert_array_equal(new_features[fmt.ITEMS][0, 40:], np.zeros([3, 8]))


def test_negative_count_is_checked():
    features, labels, _ = random_batch(2, seed=0)
    with pytest.raises(ValueError, match="num_negatives must be >= 0"):
        add_in_batch_negatives(features, labels, -1, seed=0)


CROSS_REPLICA_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    from dftopk_cascade.pipelines import example_format as fmt
    from dftopk_cascade.pipelines.negatives import add_in_batch_negatives
    from tests.pipelines.test_negatives import random_batch

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    batches = [random_batch(3, seed=replica) for replica in range(2)]
    for replica, (features, _, _) in enumerate(batches):  # ids unique across replicas
        items = features[fmt.ITEMS].numpy()
        items[..., 0] = np.where(items[..., 0] > 0, items[..., 0] + 1000 * replica, 0)
        features[fmt.ITEMS] = tf.constant(items)

    def per_replica(context):
        return batches[context.replica_id_in_sync_group][:2]

    inputs = strategy.experimental_distribute_values_from_function(per_replica)

    @tf.function
    def step(features, labels):
        return add_in_batch_negatives(features, labels, 64, seed=[1, 2], cross_replica=True)

    results = strategy.run(step, args=inputs)
    from_other_replica = 0
    for replica in range(2):
        features = strategy.experimental_local_results(results[0])[replica]
        own = batches[replica][0][fmt.ITEMS].numpy()[..., 0]
        negatives = features[fmt.ITEMS].numpy()[:, 40:, 0]
        for row in range(3):
            assert not set(negatives[row]) & set(own[row][own[row] > 0]), "own candidate"
        from_other_replica += int(((negatives // 1000) != replica).sum())
    assert from_other_replica > 0, "never sampled across replicas"
    print("ok")
    """
)


def test_cross_replica_negatives_come_from_every_replica():
    result = run_python(CROSS_REPLICA_SCRIPT)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
