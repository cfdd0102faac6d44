"""Dense gradients for small embedding tables: one segment sum instead of Adam's sparse path.

The gradient of a table lookup is a ``tf.IndexedSlices`` with one row per looked-up id: for the
candidate items of a batch of 1,024 requests x 80 candidates, 655,360 rows per table. Keras'
optimizers de-duplicate those rows (``tf.unique`` and a segment sum) and then update the table
sparsely, yet Adam's sparse update decays every row's moments anyway, so it costs a dense update
plus the de-duplication. For a table of at most ``DENSE_GRADIENT_MAX_ELEMENTS`` values the step
instead sums the rows into a dense gradient (one ``tf.math.unsorted_segment_sum``, no
``tf.unique``); the update is the same. The sum is compiled with XLA: TensorFlow's CPU kernel of
``UnsortedSegmentSum`` is single-threaded and much slower than XLA's on a step's rows
(``CHANGELOG.md``, 2026-11-26, "Where a training step's time goes", has the measurement).
Larger tables (a production video vocabulary) keep the sparse path, except under an optimizer
whose updates XLA compiles (``dense_gradient_limit``): XLA compiles a function once per input
shape, and a de-duplicated sparse gradient has another number of rows at every step, so each step
would compile the update again (and keep every compiled copy). There tables of up to
``XLA_DENSE_GRADIENT_MAX_ELEMENTS`` values get dense gradients, one shape for the whole run.
Under ``tf.distribute`` a dense gradient is all-reduced as one tensor instead of gathering every
replica's rows.

Example:
    >>> table = tf.Variable(tf.zeros([3, 2]))
    >>> with tf.GradientTape() as tape:
    ...     loss = tf.reduce_sum(tf.gather(table, [0, 2, 2]))
    >>> gradient = densify_small_gradients(tape.gradient(loss, [table]), [table])[0]
    >>> gradient.numpy().tolist()
    [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]
"""

from collections.abc import Sequence

import tensorflow as tf

#: Tables of at most this many values get dense gradients (4 MiB of float32).
DENSE_GRADIENT_MAX_ELEMENTS: int = 1 << 20
#: The same bound under an XLA-compiled optimizer update (512 MiB of float32).
XLA_DENSE_GRADIENT_MAX_ELEMENTS: int = 1 << 27


def dense_gradient_limit(optimizer: object) -> int:
    """The ``max_elements`` of ``densify_small_gradients`` for ``optimizer``'s updates: the XLA
    bound where XLA compiles them (``jit_compile``, of a ``LossScaleOptimizer``'s inner one too).

    Example:
        >>> class Optimizer:
        ...     jit_compile = True
        >>> dense_gradient_limit(Optimizer()) == XLA_DENSE_GRADIENT_MAX_ELEMENTS
        True
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    compiled = getattr(inner, "jit_compile", False) is True
    return XLA_DENSE_GRADIENT_MAX_ELEMENTS if compiled else DENSE_GRADIENT_MAX_ELEMENTS


def densify_small_gradients(
    gradients: Sequence[tf.Tensor | tf.IndexedSlices | None],
    variables: Sequence[tf.Variable],
    max_elements: int = DENSE_GRADIENT_MAX_ELEMENTS,
) -> list[tf.Tensor | tf.IndexedSlices | None]:
    """``gradients`` with every ``IndexedSlices`` of a variable of <= ``max_elements`` made dense.

    Example:
        >>> table = tf.Variable(tf.zeros([4, 8]))
        >>> sparse = tf.IndexedSlices(tf.ones([2, 8]), tf.constant([1, 1]), tf.constant([4, 8]))
        >>> dense = densify_small_gradients([sparse], [table])[0]
        >>> float(dense[1, 0]), type(densify_small_gradients([sparse], [table], 16)[0]).__name__
        (2.0, 'IndexedSlices')
    """
    dense = []
    for gradient, variable in zip(gradients, variables, strict=True):
        if isinstance(gradient, tf.IndexedSlices) and variable.shape.num_elements() is not None:
            if variable.shape.num_elements() <= max_elements:
                gradient = _SUM_ROWS(gradient.values, gradient.indices, variable.shape[0])
        dense.append(gradient)
    return dense


def _sum_rows(values: tf.Tensor, indices: tf.Tensor, rows: int) -> tf.Tensor:
    return tf.math.unsorted_segment_sum(values, indices, rows)


_SUM_ROWS = tf.function(_sum_rows, jit_compile=True, autograph=False)
