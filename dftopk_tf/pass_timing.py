"""Median milliseconds of forward+backward passes timed side by side: the one timing loop.

A pass is a ``tf.function`` ``scores -> gradient`` (``forward_backward_step``). Passes timed
together run untimed warm-up passes first (tracing, XLA compilation), then rounds interleaved
round-robin, so that load from other processes hits all of them alike. Every round scores a new
input (``repeat_inputs``: a program that XLA specialised to its input's values would compile
again on each round, and its median would show it), and each round starts with another pass,
after a read of the new input, so that no pass is always the one that reads it from memory.
``selection="auto"``'s calibration (``dftopk_tf.selection_autotune``) and the operator
benchmarks (``benchmarks.timing``) both time with it.

Example:
    >>> step = forward_backward_step(tf.sigmoid, tf.ones([2, 8]))
    >>> medians = median_milliseconds({"sigmoid": step}, tf.zeros([2, 8]), repeats=2, warmup=1)
    >>> list(medians) == ["sigmoid"] and medians["sigmoid"] > 0
    True
"""

import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

import tensorflow as tf

Step = Callable[[tf.Tensor], tf.Tensor]
Name = TypeVar("Name", bound=Hashable)


def forward_backward_step(
    probabilities: Callable[[tf.Tensor], tf.Tensor],
    upstream: tf.Tensor,
    jit_compile: bool = False,
) -> Step:
    """A ``tf.function`` ``scores -> d<probabilities(scores), upstream>/d scores``.

    Args:
        probabilities: ``scores -> probabilities`` of the same shape.
        upstream: the fixed weights of the probabilities, shaped like the scores.
        jit_compile: whether XLA compiles the whole pass (forward and backward).

    Example:
        >>> step = forward_backward_step(tf.sigmoid, tf.ones([1, 2]))
        >>> step(tf.zeros([1, 2])).numpy().tolist()
        [[0.25, 0.25]]
    """

    @tf.function(jit_compile=jit_compile, autograph=False)
    def step(scores: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(scores)
            objective = tf.reduce_sum(probabilities(scores) * upstream)
        return tape.gradient(objective, scores)

    return step


def repeat_inputs(scores: tf.Tensor, repeats: int) -> list[tf.Tensor]:
    """One input per timed round: ``scores`` shifted by 1, 2, ... (same order, other values).

    Example:
        >>> [float(x[0, 0]) for x in repeat_inputs(tf.zeros([1, 2]), 3)]
        [1.0, 2.0, 3.0]
    """
    return [scores + float(repeat) for repeat in range(1, repeats + 1)]


def milliseconds(step: Step, scores: tf.Tensor) -> float:
    """Wall milliseconds of one pass, its gradient read back (which waits for the whole pass).

    Example:
        >>> milliseconds(forward_backward_step(tf.sigmoid, tf.ones([1, 2])), tf.zeros([1, 2])) > 0
        True
    """
    start = time.perf_counter()
    step(scores).numpy()
    return 1000.0 * (time.perf_counter() - start)


def median_milliseconds(
    steps: Mapping[Name, Step], scores: tf.Tensor, repeats: int, warmup: int
) -> dict[Name, float]:
    """Median ms of each pass over ``repeats`` rounds, after ``warmup`` untimed passes each.

    The warm-up passes run on ``scores`` itself, the timed rounds on ``repeat_inputs``; round r
    times the passes in their order rotated by r.

    Args:
        steps: name -> pass (``forward_backward_step``); the names key the result.
        scores: float32 [batch, n].
        repeats: timed rounds (>= 1).
        warmup: untimed passes of each step first (>= 0).

    Example:
        >>> steps = {"relu": forward_backward_step(tf.nn.relu, tf.ones([1, 4]))}
        >>> median_milliseconds(steps, tf.zeros([1, 4]), repeats=1, warmup=0)["relu"] > 0
        True
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for step in steps.values():
        for _ in range(warmup):
            step(scores).numpy()
    timings: dict[Name, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_index, inputs in enumerate(repeat_inputs(scores, repeats)):
        # Each round starts with another pass, after a read of the input: otherwise the first
        # pass of every round alone would read the new input from memory rather than from the
        # cache the others find it in (rows of millions of scores fill the caches).
        tf.reduce_sum(inputs).numpy()
        start = round_index % len(names)
        for name in names[start:] + names[:start]:
            timings[name].append(milliseconds(steps[name], inputs))
    return {name: statistics.median(values) for name, values in timings.items()}
