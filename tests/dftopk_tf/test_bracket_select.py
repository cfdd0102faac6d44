"""The sample-bracket search (``dftopk_tf.bracket_select``) against a NumPy sort of the keys.

Small plans (a sample of 8 or 16 keys, blocks of 4 or 8, buffers of 8 or 16) force the bracket,
its window checks, its gather (with a padded last block) and its fallback on short rows, under
XLA and without it; rows are random, tied, sorted, constant, padded and NaN.
"""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import bracket_select, selection
from tests.dftopk_tf.test_selection import DISTRIBUTIONS, N, _random_case

PLANS = [
    bracket_select.BracketPlan(sample_size=8, block_size=4, buffer_size=8),
    bracket_select.BracketPlan(sample_size=16, block_size=8, buffer_size=16),
]


def _numpy_key_pair(keys: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """k-th and (k+1)-th largest real key per row (k <= count; the second where k < count)."""
    kth, next_kth = [], []
    for row_keys, row_k in zip(keys, k, strict=True):
        real = np.sort(row_keys[row_keys > selection.ABSENT_KEY])[::-1]
        kth.append(real[row_k - 1])
        next_kth.append(real[row_k] if row_k < real.size else selection.ABSENT_KEY)
    return np.array(kth), np.array(next_kth)


_SEARCHES: dict = {}


def _search(plan, jit_compile, fallback=None):
    """One traced search per (plan, XLA, fallback), so each compiles once per shape."""
    key = (plan, jit_compile, fallback)
    if key not in _SEARCHES:
        options = {} if fallback is None else {"fallback": fallback}

        def search(keys, k, key_count):
            return bracket_select.bracket_kth_key_pair(keys, k, key_count, plan=plan, **options)

        _SEARCHES[key] = tf.function(search, jit_compile=jit_compile, autograph=False)
    return _SEARCHES[key]


def _bracket_pair(scores, mask, k, plan, jit_compile, fallback=None):
    """Keys, usable k, key counts and the bracket's pair; rows without keys are dropped after
    the search (the search needs 1 <= k <= key count, which such rows cannot meet)."""
    keys, _, _, key_count = selection.row_keys(tf.constant(scores), tf.constant(mask))
    count = key_count.numpy()
    k = np.clip(k, 1, np.maximum(count, 1)).astype(np.int32)
    kth, next_kth = _search(plan, jit_compile, fallback)(keys, tf.constant(k), key_count)
    usable = count >= 1
    pair = kth.numpy()[usable], next_kth.numpy()[usable]
    return keys.numpy()[usable], k[usable], count[usable], *pair


def _assert_exact(keys, k, key_count, kth, next_kth):
    expected_kth, expected_next = _numpy_key_pair(keys, k)
    np.testing.assert_array_equal(kth, expected_kth)
    has_next = k < key_count
    np.testing.assert_array_equal(next_kth[has_next], expected_next[has_next])


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("plan", PLANS)
def test_bracket_pair_equals_a_sort_of_the_keys(plan, jit_compile):
    for distribution in DISTRIBUTIONS:
        for seed in range(2):
            scores, mask, k = _random_case(distribution, seed)
            _assert_exact(*_bracket_pair(scores, mask, k, plan, jit_compile))


def _adversarial_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    rows = [
        np.full(N, 2.5),  # every key tied
        np.arange(N, dtype=np.float64),  # sorted ascending
        -np.arange(N, dtype=np.float64),  # sorted descending
        np.where(np.arange(N) < N // 2, 1.0, -1.0),  # two values, a block each
        rng.normal(size=N),
        np.where(rng.random(N) < 0.3, np.nan, rng.normal(size=N)),  # NaN: no key
        rng.normal(size=N),  # mostly padded
        np.repeat(rng.normal(size=N // 5 + 1), 5)[:N],  # runs of ties
    ]
    mask = np.ones((len(rows), N), bool)
    mask[6, 3:] = False
    return np.array(rows, np.float32), mask, rng


@pytest.mark.parametrize("plan", PLANS)
def test_adversarial_rows_and_extreme_k_are_exact(plan):
    scores, mask, _ = _adversarial_rows()
    _, _, _, key_count = selection.row_keys(tf.constant(scores), tf.constant(mask))
    count = key_count.numpy()
    for k in (np.ones_like(count), count - 1, count, count // 2):  # first, 2nd last, last, middle
        _assert_exact(*_bracket_pair(scores, mask, k, plan, jit_compile=True))


def test_an_overflowing_bracket_sends_the_batch_to_the_fallback():
    plan = bracket_select.BracketPlan(sample_size=8, block_size=4, buffer_size=8)

    def marked_fallback(keys, k):
        return tf.fill(tf.shape(k), 7), tf.fill(tf.shape(k), 7)

    # The sample (every 5th item) sees 0, 10, .., 70; the 33 items between are all 35.
    tied_between = np.full((1, N), 35.0, np.float32)
    tied_between[0, : 8 * 5 : 5] = 10.0 * np.arange(8)
    constant = np.full((1, N), 2.5, np.float32)  # ties at a sample key: no overflow
    mask, k = np.ones((1, N), bool), np.array([N // 2])
    for scores in (constant, np.arange(N, dtype=np.float32)[np.newaxis]):
        _assert_exact(*_bracket_pair(scores, mask, k, plan, True, marked_fallback))
    *_, kth, next_kth = _bracket_pair(tied_between, mask, k, plan, True, marked_fallback)
    np.testing.assert_array_equal([kth, next_kth], [[7], [7]])
    _assert_exact(*_bracket_pair(tied_between, mask, k, plan, True))


def test_plan_sizes_grow_with_the_row_and_short_rows_take_the_radix_select():
    assert bracket_select.bracket_plan(bracket_select.BRACKET_MIN_N - 1) is None
    assert bracket_select.bracket_plan(None) is None
    for n in (bracket_select.BRACKET_MIN_N, 10**5, 10**6, 10**7):
        plan = bracket_select.bracket_plan(n)
        assert plan.sample_size <= n and plan.buffer_size <= n
        assert plan.buffer_size >= bracket_select.BUFFER_GAPS * n / plan.sample_size
    too_big = bracket_select.BracketPlan(sample_size=N + 1, block_size=4, buffer_size=8)
    with pytest.raises(ValueError, match="does not fit rows of 41 keys"):
        bracket_select.bracket_kth_key_pair(
            tf.zeros([1, N], tf.int32), tf.constant([1]), tf.constant([N]), plan=too_big
        )


@pytest.mark.parametrize("jit_compile", [True, False])
def test_bracket_method_on_long_rows_equals_the_radix_select(jit_compile):
    n = bracket_select.BRACKET_MIN_N
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(4, n)).astype(np.float32)
    scores[2, ::7] = np.nan
    mask = rng.random((4, n)) < 0.9
    k = np.array([1, n // 3, n // 2, 10])
    tied = scores.copy()
    tied[1] = np.round(tied[1])  # heavy ties at the bracket's ends
    for rows in (scores, tied):
        pairs = [
            selection.kth_largest_pair(rows, k, mask, selection=search, jit_compile=jit_compile)
            for search in ("bracket", "radix")
        ]
        for bracket_value, radix_value in zip(*pairs, strict=True):
            np.testing.assert_array_equal(bracket_value.numpy(), radix_value.numpy())
        assert np.isnan(pairs[0][0].numpy()[2])
