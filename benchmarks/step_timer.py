"""Wall-clock time of one forward+backward pass of a selection operator.

The pass is a ``tf.function`` computing the operator's probabilities p for fixed scores and the
gradient of <p, g> for a fixed random upstream g (so no gradient is trivially zero). The first
calls (tracing, XLA compilation) are warm-up; the result is the median of the timed calls, each
synchronised by reading the gradient back to the host.

Example:
    >>> from dftopk_tf.operators import get_operator
    >>> ms = time_forward_backward(get_operator("dftopk"), tf.random.normal([2, 50]), k=25,
    ...                            temperature=1.0, repeats=2)
    >>> ms > 0
    True
"""

import statistics
import time

import tensorflow as tf

from dftopk_tf.operators import SelectionOperator


def forward_backward_step(
    operator: SelectionOperator, k: int, temperature: float, upstream: tf.Tensor
) -> tf.types.experimental.GenericFunction:
    """A ``tf.function`` ``scores -> d<p, upstream>/d scores`` for one operator.

    Example:
        >>> from dftopk_tf.operators import get_operator
        >>> step = forward_backward_step(get_operator("bce"), 1, 1.0, tf.ones([1, 2]))
        >>> step(tf.zeros([1, 2])).numpy().tolist()
        [[0.25, 0.25]]
    """

    @tf.function(autograph=False, reduce_retracing=True)
    def step(scores: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(scores)
            probabilities = operator.probabilities(scores, k, None, temperature)
            objective = tf.reduce_sum(probabilities * upstream)
        return tape.gradient(objective, scores)

    return step


def time_forward_backward(
    operator: SelectionOperator,
    scores: tf.Tensor,
    k: int,
    temperature: float,
    repeats: int = 5,
    warmup: int = 1,
) -> float:
    """Median milliseconds of one forward+backward pass on ``scores`` [batch, n].

    Args:
        operator: a registered operator (``dftopk_tf.operators.get_operator``).
        scores: float32 [batch, n], placed on the device the pass should run on.
        k: the operator's k.
        temperature: the operator's temperature knob.
        repeats: timed calls (>= 1).
        warmup: untimed calls first (tracing and compilation).

    Example:
        >>> from dftopk_tf.operators import get_operator
        >>> time_forward_backward(get_operator("bce"), tf.zeros([1, 4]), 2, 1.0, repeats=1) > 0
        True
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    upstream = tf.random.stateless_normal(tf.shape(scores), seed=[0, 1])
    step = forward_backward_step(operator, k, temperature, upstream)
    for _ in range(warmup):
        step(scores).numpy()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(scores).numpy()
        timings.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(timings)
