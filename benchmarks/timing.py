"""Forward+backward timing of top-k operators, side by side: what every operator benchmark shares.

One pass is ``p = operator(scores)`` and the gradient of ``<p, g>`` wrt the scores, for a fixed
random upstream g, inside one ``tf.function`` (optionally XLA-compiled). Operators timed together
have their repeats interleaved round-robin, so that load from other processes hits all of them
alike; the result is the median milliseconds. Every timed repeat scores a different input
(``repeat_inputs``): a program that XLA specialised to its input's values (an input it folded
into a constant) would compile again on each repeat, and the table would show it. Used by
``python -m benchmarks.bench_ops`` and the report's operator runtime sweep
(``experiments.report.operator_runtime``).

Example:
    >>> ms = time_forward_backward(lambda s: tf.sigmoid(s), tf.zeros([2, 8]), repeats=2)
    >>> ms > 0
    True
"""

import statistics
import time
from collections.abc import Callable, Mapping

import tensorflow as tf

Probabilities = Callable[[tf.Tensor], tf.Tensor]

#: Working n x n float32 matrices an O(n^2) peer keeps in forward+backward (an estimate).
MATRIX_COPIES = 8


def forward_backward_step(
    probabilities: Probabilities, upstream: tf.Tensor, jit_compile: bool = False
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A ``tf.function`` ``scores -> d<probabilities(scores), upstream>/d scores``.

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


def _milliseconds(step: Callable[[tf.Tensor], tf.Tensor], scores: tf.Tensor) -> float:
    start = time.perf_counter()
    step(scores).numpy()  # reading the gradient back waits for the whole pass
    return 1000.0 * (time.perf_counter() - start)


def repeat_inputs(scores: tf.Tensor, repeats: int) -> list[tf.Tensor]:
    """One input per timed repeat: ``scores`` shifted by 1, 2, ... (same order, other values).

    Example:
        >>> [float(x[0, 0]) for x in repeat_inputs(tf.zeros([1, 2]), 3)]
        [1.0, 2.0, 3.0]
    """
    return [scores + float(repeat) for repeat in range(1, repeats + 1)]


def time_side_by_side(
    operators: Mapping[str, tuple[Probabilities, bool]],
    scores: tf.Tensor,
    repeats: int = 7,
    warmup: int = 2,
) -> dict[str, float]:
    """Median ms of a forward+backward pass of each operator, repeats interleaved round-robin.

    Round r times the operators in their order rotated by r, so that none is always first on a
    new input.

    Args:
        operators: name -> (``scores -> probabilities``, whether to XLA-compile the whole pass).
        scores: float32 [batch, n].
        repeats: timed passes per operator (>= 1).
        warmup: untimed passes first (tracing, XLA compilation), on ``scores`` itself; the timed
            passes run on ``repeat_inputs``.

    Example:
        >>> times = time_side_by_side({"sigmoid": (tf.sigmoid, False)}, tf.zeros([2, 8]), 2, 1)
        >>> sorted(times)
        ['sigmoid']
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    upstream = tf.random.stateless_normal(tf.shape(scores), seed=[0, 1])
    steps = {
        name: forward_backward_step(probabilities, upstream, jit_compile)
        for name, (probabilities, jit_compile) in operators.items()
    }
    for step in steps.values():
        for _ in range(warmup):
            step(scores).numpy()
    timings: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_index, inputs in enumerate(repeat_inputs(scores, repeats)):
        # Each round starts with another operator, after a read of the input: otherwise the
        # first operator of every round alone would read the new input from memory rather than
        # from the cache the others find it in (rows of millions of scores fill the caches).
        tf.reduce_sum(inputs).numpy()
        start = round_index % len(names)
        for name in names[start:] + names[:start]:
            timings[name].append(_milliseconds(steps[name], inputs))
    return {name: statistics.median(values) for name, values in timings.items()}


def time_forward_backward(
    probabilities: Probabilities,
    scores: tf.Tensor,
    repeats: int = 7,
    warmup: int = 2,
    jit_compile: bool = False,
) -> float:
    """Median ms of one forward+backward pass of ``probabilities`` on ``scores`` [batch, n].

    Example:
        >>> from dftopk_tf.ops import dftopk
        >>> time_forward_backward(lambda s: dftopk(s, 2), tf.zeros([2, 8]), repeats=1) > 0
        True
    """
    operators = {"operator": (probabilities, jit_compile)}
    return time_side_by_side(operators, scores, repeats, warmup)["operator"]
