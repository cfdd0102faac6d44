"""Forward+backward timing of top-k operators, side by side: what every operator benchmark shares.

One pass is ``p = operator(scores)`` and the gradient of ``<p, g>`` wrt the scores, for a fixed
random upstream g, inside one ``tf.function`` (optionally XLA-compiled). The timing loop is the
library's (``dftopk_tf.pass_timing.median_milliseconds``, which ``selection="auto"``'s calibration
uses too): repeats interleaved round-robin, each on a new input, the median milliseconds kept.
Used by ``python -m benchmarks.bench_ops`` and the report's operator runtime sweep
(``experiments.report.operator_runtime``).

Example:
    >>> ms = time_forward_backward(lambda s: tf.sigmoid(s), tf.zeros([2, 8]), repeats=2)
    >>> ms > 0
    True
"""

from collections.abc import Callable, Mapping

import tensorflow as tf

from dftopk_tf.pass_timing import forward_backward_step, median_milliseconds

Probabilities = Callable[[tf.Tensor], tf.Tensor]

#: Working n x n float32 matrices an O(n^2) peer keeps in forward+backward (an estimate).
MATRIX_COPIES = 8


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
            passes run on ``dftopk_tf.pass_timing.repeat_inputs``.

    Example:
        >>> times = time_side_by_side({"sigmoid": (tf.sigmoid, False)}, tf.zeros([2, 8]), 2, 1)
        >>> sorted(times)
        ['sigmoid']
    """
    upstream = tf.random.stateless_normal(tf.shape(scores), seed=[0, 1])
    steps = {
        name: forward_backward_step(probabilities, upstream, jit_compile)
        for name, (probabilities, jit_compile) in operators.items()
    }
    return median_milliseconds(steps, scores, repeats, warmup)


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
