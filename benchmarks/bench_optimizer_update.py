"""Adam's update of an embedding table, TensorFlow's executor against XLA, side by side.

The training step applies Adam to each item table. Keras's Adam decays both moments of every row and
moves every row at every step, so on a large table the update costs passes over the table and its
two moments. TensorFlow's executor runs them as separate kernels on the sparse gradient (one row per
looked-up id, de-duplicated); under XLA (``compile_optimizer_updates`` of
``dftopk_cascade.models.training.xla``, the trainer's default on one device) the step sums the
gradient into a dense table first (``dense_gradient_limit``) and the update is one fusion. The
executor is also timed on that dense gradient, its other form. Each form applies the same gradients
to its own copy of the table, the rounds interleaved; the table gives the median milliseconds of one
step's gradient and update and the ratio to the executor's. The default sizes are the step-budget
comparison's: its 40-day world's fused item table (6,151,879 rows of 8) and 1,024 requests x 80
candidates x 8 id fields looked up per step.

Usage:
    python -m benchmarks.bench_optimizer_update
    python -m benchmarks.bench_optimizer_update --rows 1306452 --repeats 9

Example:
    >>> rows = time_updates(rows=100, dim=2, looked_up=50, repeats=1)
    >>> [row.form for row in rows], rows[0].milliseconds > 0
    (['executor', 'executor-dense', 'xla'], True)
"""

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.sparse_gradients import (
    XLA_DENSE_GRADIENT_MAX_ELEMENTS,
    dense_gradient_limit,
    densify_small_gradients,
)
from dftopk_cascade.models.tables import markdown_table
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training.xla import compile_optimizer_updates

from benchmarks.machine import machine_description
from dftopk_tf.pass_timing import Step, median_milliseconds

#: Rows of the 40-day world's fused item table (``CHANGELOG.md``, "Paper-length runs").
DEFAULT_ROWS = 6_151_879
#: Ids looked up per step: 1,024 requests x 80 candidates x 8 id fields.
DEFAULT_LOOKED_UP = 1024 * 80 * 8
#: The forms timed, in their order in the table: the first is the ratios' base. ``executor`` is
#: the trainer's update without XLA (sparse gradient), ``executor-dense`` the executor on the
#: dense gradient XLA gets (the executor's own best form, if it is faster), ``xla`` the trainer's.
FORMS: tuple[str, ...] = ("executor", "executor-dense", "xla")


@dataclass(frozen=True)
class UpdateTiming:
    """Median milliseconds of one form's step: the gradient made dense where the form does, and
    ``apply_gradients``."""

    form: str
    milliseconds: float


def _update(form: str, ids: tf.Tensor, dim: int, rows: int) -> Step:
    table = tf.Variable(tf.random.stateless_normal([rows, dim], seed=[0, 0]) * 0.05)
    adam = keras.optimizers.Adam(1e-2)
    if form == "xla":
        compile_optimizer_updates(adam, tf.distribute.get_strategy(), [table])
    # The trainer's choice (dense for XLA's update, sparse for the executor's), or dense anyway.
    limit = (
        XLA_DENSE_GRADIENT_MAX_ELEMENTS if form == "executor-dense" else dense_gradient_limit(adam)
    )

    @tf.function
    def apply(values: tf.Tensor) -> tf.Tensor:
        gradient = tf.IndexedSlices(values, ids, tf.constant([rows, dim], tf.int64))
        (gradient,) = densify_small_gradients([gradient], [table], limit)
        adam.apply_gradients([(gradient, table)])
        return table[0, 0]  # read after the update: waiting for it waits for the update

    return apply


def time_updates(
    rows: int = DEFAULT_ROWS,
    dim: int = 8,
    looked_up: int = DEFAULT_LOOKED_UP,
    repeats: int = 5,
) -> list[UpdateTiming]:
    """Median ms of one Adam step of a [rows, dim] table per form, on the same gradients.

    The gradient's ``looked_up`` ids are uniform (with repeats, as a batch's ids come) and its
    rows random; the library's timing loop (``dftopk_tf.pass_timing.median_milliseconds``) runs
    one untimed step per form (tracing, compiling), then ``repeats`` interleaved rounds, each
    with new gradient values.

    Example:
        >>> [row.form for row in time_updates(rows=10, dim=1, looked_up=4, repeats=1)]
        ['executor', 'executor-dense', 'xla']
    """
    if min(rows, dim, looked_up, repeats) < 1:
        raise ValueError(
            "--rows, --dim, --looked-up and --repeats must be >= 1, got "
            f"{rows}, {dim}, {looked_up} and {repeats}"
        )
    generator = tf.random.Generator.from_seed(1)
    ids = generator.uniform([looked_up], 0, rows, tf.int64)
    steps = {form: _update(form, ids, dim, rows) for form in FORMS}
    times = median_milliseconds(steps, generator.normal([looked_up, dim]), repeats, warmup=1)
    return [UpdateTiming(form, times[form]) for form in FORMS]


def timing_table(rows: Sequence[UpdateTiming]) -> str:
    """The timings as a Markdown table, ratios to the first row's.

    Example:
        >>> print(timing_table([UpdateTiming("executor", 8.0), UpdateTiming("xla", 2.0)]))
        | form | update ms | speed-up over executor |
        |---|---|---|
        | executor | 8.0 | 1.00x |
        | xla | 2.0 | 4.00x |
    """
    first = rows[0]
    cells = [
        [row.form, f"{row.milliseconds:.1f}", f"{first.milliseconds / row.milliseconds:.2f}x"]
        for row in rows
    ]
    return markdown_table(["form", "update ms", f"speed-up over {first.form}"], cells)


def main(argv: Sequence[str] | None = None) -> list[UpdateTiming]:
    """Parses the flags, times the forms and prints the machine, the sizes and the table.

    Example::

        python -m benchmarks.bench_optimizer_update --repeats 9
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of the table")
    parser.add_argument("--dim", type=int, default=8, help="embedding size")
    parser.add_argument(
        "--looked-up",
        type=int,
        default=DEFAULT_LOOKED_UP,
        help="ids in one step's sparse gradient (uniform, with repeats)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed updates per form")
    add_entry_flags(parser)
    args = parser.parse_args(argv)
    rows = time_updates(args.rows, args.dim, args.looked_up, args.repeats)
    print(machine_description())
    print(
        f"Adam (tf-keras) on a [{args.rows:,}, {args.dim}] float32 table, sparse gradient of "
        f"{args.looked_up:,} ids; median of {args.repeats}"
    )
    print(timing_table(rows))
    return rows


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.bench_optimizer_update")
