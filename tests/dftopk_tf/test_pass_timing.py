"""The one timing loop: the timed pass's gradient, a new input each round, rotated order."""

import pytest
import tensorflow as tf

from dftopk_tf import pass_timing


def test_forward_backward_step_returns_the_gradient_of_the_weighted_sum():
    upstream = tf.constant([[1.0, -2.0, 0.5]])
    step = pass_timing.forward_backward_step(tf.sigmoid, upstream, jit_compile=True)
    scores = tf.constant([[0.0, 1.0, -1.0]])
    expected = upstream * tf.sigmoid(scores) * (1.0 - tf.sigmoid(scores))
    tf.debugging.assert_near(step(scores), expected)


def test_every_timed_round_scores_a_new_input_after_the_warm_up_on_the_scores(monkeypatch):
    # An XLA program specialised to its input's values must not be timed on that input again.
    warmed: list[float] = []
    timed: list[float] = []

    def step(scores):
        warmed.append(float(scores[0, 0]))
        return scores

    def record(step, scores):
        timed.append(float(scores[0, 0]))
        return float(len(timed))

    monkeypatch.setattr(pass_timing, "milliseconds", record)
    medians = pass_timing.median_milliseconds({"a": step}, tf.zeros([2, 4]), repeats=3, warmup=2)
    assert warmed == [0.0, 0.0] and timed == [1.0, 2.0, 3.0]
    assert medians == {"a": 2.0}


def test_no_pass_is_always_the_first_on_a_new_input(monkeypatch):
    # The first pass of a round reads the new input from memory, the others from the cache.
    order: list[str] = []
    steps = {name: name for name in "abc"}

    def record(step, scores):
        order.append(step)
        return 1.0

    monkeypatch.setattr(pass_timing, "milliseconds", record)
    pass_timing.median_milliseconds(steps, tf.zeros([2, 4]), repeats=3, warmup=0)
    assert [order[i : i + 3] for i in (0, 3, 6)] == [list("abc"), list("bca"), list("cab")]


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (1, -1)])
def test_bad_counts_are_refused(repeats, warmup):
    step = pass_timing.forward_backward_step(tf.sigmoid, tf.ones([1, 2]))
    with pytest.raises(ValueError, match="repeats >= 1 and warmup >= 0"):
        pass_timing.median_milliseconds({"a": step}, tf.zeros([1, 2]), repeats, warmup)
