"""Row passes over order-preserving keys (``dftopk_tf.key_passes``) against NumPy.

Each pass has a float32 fast path (a matrix product or a float reduction, exact below 2**24 items)
and an integer path for rows of unknown width; both must give NumPy's answer.
"""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import key_passes

ROWS, N = 6, 53


def _keys(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(-4, 5, size=(ROWS, N)).astype(np.float32)
    values[0, :3] = [np.inf, -np.inf, -0.0]
    return key_passes.order_keys(tf.constant(values)).numpy()


def _unknown_width(function):
    """``function`` traced on [None, None] inputs, so the integer paths run."""
    spec = tf.TensorSpec([None, None], tf.bool)
    return tf.function(function, input_signature=[spec])


@pytest.mark.parametrize("unknown_width", [False, True])
def test_row_count_and_first_index_match_numpy(unknown_width):
    indicator = np.random.default_rng(1).random((ROWS, N)) < 0.05
    indicator[0] = False
    indicator[1] = False
    indicator[1, 17] = True
    functions = [key_passes.row_count, key_passes.first_true_index]
    if unknown_width:
        functions = [_unknown_width(function) for function in functions]
    count, first = (f(tf.constant(indicator)) for f in functions)
    np.testing.assert_array_equal(count.numpy(), indicator.sum(axis=1))
    expected_first = np.where(indicator.any(axis=1), indicator.argmax(axis=1), N)
    np.testing.assert_array_equal(first.numpy(), expected_first)


def test_max_and_min_key_of_a_selection_are_exact():
    keys = _keys(2)
    selected = np.random.default_rng(3).random((ROWS, N)) < 0.5
    selected[:, 0] = True
    largest = key_passes.max_key(tf.constant(keys), tf.constant(selected)).numpy()
    smallest = key_passes.min_key(tf.constant(keys), tf.constant(selected)).numpy()
    np.testing.assert_array_equal(largest, np.where(selected, keys, np.iinfo(np.int32).min).max(1))
    np.testing.assert_array_equal(smallest, np.where(selected, keys, np.iinfo(np.int32).max).min(1))


def test_max_key_of_an_empty_selection_is_the_key_of_minus_infinity():
    keys = tf.constant(_keys(4))
    largest = key_passes.max_key(keys, tf.zeros([ROWS, N], tf.bool))
    np.testing.assert_array_equal(
        largest.numpy(), key_passes.order_keys(tf.fill([ROWS], -np.inf)).numpy()
    )


@pytest.mark.parametrize("seed", range(3))
def test_radix_kth_key_and_its_count_match_a_sort(seed):
    keys = _keys(seed)
    k = np.random.default_rng(seed).integers(1, N + 1, size=ROWS).astype(np.int32)
    kth, at_least = key_passes.radix_kth_key(tf.constant(keys), tf.constant(k))
    expected = -np.sort(-keys, axis=1)[np.arange(ROWS), k - 1]
    np.testing.assert_array_equal(kth.numpy(), expected)
    np.testing.assert_array_equal(at_least.numpy(), (keys >= expected[:, None]).sum(axis=1))
