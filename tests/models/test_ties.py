"""Scores within float noise of each other tie; scores further apart keep their order."""

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models.ties import TIE_RTOL, distinct_scores, tie_ranks


def _ranks_both_ways(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``tie_ranks`` by NumPy, after checking that the tensor path and XLA agree with it."""
    expected = tie_ranks(scores, mask)
    graph = tie_ranks(tf.constant(scores, tf.float32), tf.constant(mask)).numpy()
    compiled = tf.function(tie_ranks, jit_compile=True)(
        tf.constant(scores, tf.float32), tf.constant(mask)
    )
    np.testing.assert_array_equal(graph, expected)
    np.testing.assert_array_equal(compiled.numpy(), expected)
    return expected


def test_well_separated_scores_keep_their_order_as_ranks() -> None:
    rng = np.random.default_rng(0)
    scores = rng.permutation(np.arange(40, dtype=np.float32))[None] * 0.01 - 0.2
    ranks = _ranks_both_ways(scores, np.ones(scores.shape, bool))
    np.testing.assert_array_equal(ranks, np.argsort(np.argsort(scores)) + 1.0)


def test_copies_of_one_item_a_few_ulps_apart_share_one_rank() -> None:
    eps = np.finfo(np.float32).eps
    base = np.float32(-0.0107492)
    row = [base, base * (1 + 6 * eps), base * (1 - 3 * eps), np.float32(0.3), np.float32(-5.0)]
    ranks = _ranks_both_ways(np.array([row], np.float32), np.ones((1, 5), bool))
    np.testing.assert_array_equal(ranks, [[2.0, 2.0, 2.0, 3.0, 1.0]])


def test_the_tolerance_is_relative_to_the_request_scale() -> None:
    gap = 10 * TIE_RTOL  # apart at scale 1, tied at scale 1000
    scores = np.array([[0.5, 0.5 + gap, 1.0], [0.5, 0.5 + gap, 1000.0]], np.float32)
    ranks = _ranks_both_ways(scores, np.ones(scores.shape, bool))
    np.testing.assert_array_equal(ranks, [[1.0, 2.0, 3.0], [1.0, 1.0, 2.0]])


def test_padding_never_joins_a_group_and_nan_scores_stay_nan() -> None:
    scores = np.array([[0.1, np.nan, 0.1, 9.0], [np.inf, 1.0, np.inf, np.nan]], np.float32)
    mask = np.array([[True, False, True, False], [True, True, True, False]])
    ranks = _ranks_both_ways(scores, mask)
    np.testing.assert_array_equal(ranks[0], [1.0, np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(ranks[1], [2.0, 1.0, 2.0, np.nan])
    assert np.isnan(tie_ranks(np.array([[np.nan, 1.0]]), np.array([[True, True]]))[0, 0])


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 0), ([0.25], 1), ([1.0, 1.0 + 1e-7, 1.0 - 1e-7], 1), ([1.0, 1.5, 1.0 + 1e-7], 2)],
)
def test_distinct_scores_counts_tied_groups(values, expected) -> None:
    assert distinct_scores(np.array(values)) == expected
