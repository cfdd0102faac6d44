"""Training throughput of the cascade per method, side by side (``benchmarks.bench_train``).

Every method trains the same cascade (``dftopk_cascade.models.cascade.CascadeModel``: two-tower
retrieval, DIN pre-ranking, DCN-v2 ranking, the paper's layer sizes) on the same batches, held in
memory so that the input pipeline is not timed: one step is the forward of the three stages, the
method's loss, the backward and the Adam update, in one ``tf.function``
(``CascadeModel.train_step``). The batches come from a simulated RecFlow dataset
(``dftopk_cascade.pipelines.simulator.simulate`` + ``convert``) unless ``--data`` names a converted
folder. The towers cost the same for every method, so the table also times the method's own part
alone: the forward and backward of its loss (``dftopk_cascade.models.objectives``) over the same
three stages' scores [batch, n]. Steps of the methods are interleaved, each round starting one
method later, so that load from other processes and the position in a round hit every method alike;
the table gives median times, requests per second (batch / step time) and ratios to DFTopK, the
share of the step that the loss takes, with the machine it ran on.

``--compare`` also times, in the same rounds, each method's step compiled whole with XLA
(``xla``), and prints its requests per second; it also times each method's loss alone compiled
with XLA, since XLA fuses the permutation
losses' n x n work and a loss ratio is fair only against each loss's faster form.

``--mixed-precision mixed_bfloat16`` (or ``mixed_float16``) also times, in the same rounds, each
method's current step built under that Keras policy (``dftopk_cascade.models.precision``), and
prints its requests per second and its speed over the float32 step.

LCRON DiffSort costs O(n^3) per request (an odd-even sorting network of n layers of n x n
matrices); it is skipped when batch * n^3 exceeds ``--cubic-work`` and the table says so.

Usage:
    python -m benchmarks.bench_train --quick
    python -m benchmarks.bench_train --negatives 160 --steps 10
    python -m benchmarks.bench_train --negatives 40 --compare   # with and without XLA
    python -m benchmarks.bench_train --methods dftopk --mixed-precision mixed_bfloat16

Example:
    >>> rows = run_benchmark(data_dir, ["bce", "dftopk"], batch_size=16, negatives=0, steps=1,
    ...                      warmup=1)
    >>> [row.method for row in rows]
    ['bce', 'dftopk']
"""

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models import tables
from dftopk_cascade.models.cascade import CascadeModel
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.contract import STAGE_CANDIDATES, zero_features
from dftopk_cascade.models.objectives import METHOD_NAMES, TFRS_METHOD
from dftopk_cascade.models.precision import (
    PRECISION_CHOICES,
    mixed_precision_policy,
    training_optimizer,
)
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.input import make_dataset
from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords

from benchmarks.machine import machine_description
from dftopk_tf.operators import get_operator

DEFAULT_CUBIC_WORK = 2e9
CUBIC_METHOD = "lcron-diffsort"
#: The train steps timed: the model's own (``after``, always), the same compiled with XLA
#: (``--compare``) and the same under a mixed policy (``--mixed-precision``).
VARIANTS: tuple[str, ...] = ("after", "xla", "mixed")


@dataclass(frozen=True)
class ThroughputRow:
    """One method's line of the table (``step_ms`` None when the method was skipped).

    Example:
        >>> ThroughputRow("bce", "O(n)", 40, 1024, 250.0, 5.0).requests_per_second
        4096.0
    """

    method: str
    cost: str
    candidates: int
    batch_size: int
    step_ms: float | None
    loss_ms: float | None = None
    note: str = ""
    xla_ms: float | None = None
    mixed_ms: float | None = None
    loss_xla_ms: float | None = None

    @property
    def requests_per_second(self) -> float | None:
        return None if self.step_ms is None else self.batch_size / (self.step_ms / 1000.0)

    @property
    def best_ms(self) -> float | None:
        """The faster of the current step with and without XLA (without when XLA was not timed).

        Example:
            >>> ThroughputRow("x", "O(n)", 40, 1024, 500.0, xla_ms=400.0).best_ms
            400.0
        """
        timed = [ms for ms in (self.step_ms, self.xla_ms) if ms is not None]
        return min(timed) if timed else None

    @property
    def best_loss_ms(self) -> float | None:
        """The faster of the loss alone with and without XLA (without when XLA was not timed).

        Example:
            >>> ThroughputRow("x", "O(n^2)", 40, 1024, 500.0, 90.0, loss_xla_ms=30.0).best_loss_ms
            30.0
        """
        timed = [ms for ms in (self.loss_ms, self.loss_xla_ms) if ms is not None]
        return min(timed) if timed else None

    @property
    def loss_share(self) -> float | None:
        """The share of the train step that the loss's forward and backward take."""
        if self.step_ms is None or self.loss_ms is None:
            return None
        return self.loss_ms / self.step_ms


def method_cost(method: str) -> str:
    """The asymptotic cost per request of a method's top-k operator.

    Example:
        >>> method_cost("dftopk"), method_cost("tfrs")
        ('O(n)', 'softmax over the batch')
    """
    if method == TFRS_METHOD:
        return "softmax over the batch"
    return get_operator(method).cost


def held_batches(data_dir: str, batch_size: int, negatives: int, count: int) -> list:
    """``count`` full training batches of the first day, read once and kept in memory.

    Example:
        >>> len(held_batches(data_dir, 8, 0, 2))
        2
    """
    dataset = make_dataset(
        data_dir, batch_size, negatives, shuffle=False, deterministic=True, drop_remainder=True
    )
    batches = list(dataset.repeat().take(count))
    return batches


def build_trainer(
    config: CascadeConfig, learning_rate: float, variant: str = "after", precision: str = "off"
):
    """A compiled cascade and its train step as one ``tf.function``.

    ``variant`` (``VARIANTS``): ``after``, the model's train step; ``xla``, the same with
    ``jit_compile=True``; ``mixed``, the step of a model built under the Keras policy
    ``precision``.

    Example:
        >>> model, step = build_trainer(data_config, 0.01)
        >>> callable(step)
        True
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    precision = precision if variant == "mixed" else "off"
    with mixed_precision_policy(precision):
        model = CascadeModel(config)
        model(zero_features(1, STAGE_CANDIDATES))
        optimizer = training_optimizer(keras.optimizers.Adam(learning_rate), precision)
        model.compile(optimizer=optimizer)
    return model, tf.function(model.train_step, jit_compile=variant == "xla")


def loss_step(
    objective, labels: tf.Tensor, outputs: dict[str, tf.Tensor], jit_compile: bool = False
):
    """A ``tf.function`` of the forward and backward of ``objective`` alone on fixed scores,
    compiled with XLA when ``jit_compile``.

    Returns a callable of no argument giving the loss (its gradients are computed, not kept).

    Example:
        >>> from dftopk_cascade.models.objectives import make_objective
        >>> scores = {name: tf.zeros([2, 12]) for name in ("retrieval", "prerank", "rank")}
        >>> step = loss_step(make_objective("bce", 3, 3, 3, 3), tf.ones([2, 12]), scores)
        >>> float(step()["loss"]) > 0
        True
    """
    objective.build(None)
    variables = {name: tf.Variable(value, trainable=True) for name, value in outputs.items()}

    @tf.function(jit_compile=jit_compile)
    def step() -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = objective(labels, {name: var.read_value() for name, var in variables.items()})
        gradients = tape.gradient(loss["loss"], list(variables.values()))
        total = tf.add_n([tf.reduce_sum(g) for g in gradients if g is not None])
        with tf.control_dependencies([total]):
            return {"loss": tf.identity(loss["loss"])}

    return step


def _timed(step, *args) -> float:
    start = time.perf_counter()
    logs = step(*args)
    float(logs["loss"])  # reading the loss back waits for the whole step
    return 1000.0 * (time.perf_counter() - start)


def interleaved_medians(
    steps: dict[Any, Callable], inputs: Sequence[tuple], warmup: int
) -> dict[Any, float]:
    """Median ms of each step over ``inputs``, one call of each per round, rotating the order.

    Example:
        >>> one = lambda: {"loss": tf.constant(1.0)}
        >>> sorted(interleaved_medians({"a": one, "b": one}, [(), ()], warmup=1))
        ['a', 'b']
    """
    names = list(steps)
    for step in steps.values():
        for args in inputs[:warmup] or inputs[:1]:
            _timed(step, *args)
    timings: dict[Any, list[float]] = {name: [] for name in names}
    for round_index, args in enumerate(inputs[warmup:]):
        shift = round_index % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            timings[name].append(_timed(steps[name], *args))
    return {name: statistics.median(values) for name, values in timings.items()}


def profile_steps(step: Callable, inputs: Sequence[tuple], log_dir: str) -> None:
    """Writes a profiler trace of ``step`` over ``inputs`` to ``log_dir``
    (``python -m benchmarks.step_profile LOG_DIR --steps len(inputs)`` sums it by stage).

    Example:
        >>> profile_steps(lambda: {"loss": tf.constant(1.0)}, [()], tmp_dir + "/profile")
        >>> os.path.isdir(tmp_dir + "/profile/plugins/profile")
        True
    """
    tf.profiler.experimental.start(log_dir)
    try:
        for args in inputs:
            float(step(*args)["loss"])
    finally:
        tf.profiler.experimental.stop()


def run_benchmark(
    data_dir: str,
    methods: Sequence[str],
    batch_size: int = 1024,
    negatives: int = 0,
    steps: int = 10,
    warmup: int = 2,
    learning_rate: float = 1e-2,
    cubic_work: float = DEFAULT_CUBIC_WORK,
    compare: bool = False,
    profile_dir: str | None = None,
    mixed_precision: str = "off",
) -> list[ThroughputRow]:
    """Median training step time of each method on the same batches, interleaved round-robin.

    With ``compare`` every method's ``xla`` step (``build_trainer``) join the
    same rounds (and its loss alone compiled with XLA the loss rounds), and with
    ``mixed_precision`` (a policy name) its ``mixed`` step. With ``profile_dir``, each timed
    step of the first method is then profiled over 2 more batches into ``profile_dir/<variant>``.

    Example:
        >>> row = run_benchmark(data_dir, ["lcron-diffsort"], batch_size=8, steps=1, warmup=0,
        ...                     cubic_work=10.0)[0]
        >>> row.step_ms is None, row.note
        (True, 'skipped: batch * n^3 = 5.1e+05 > 1e+01')
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    schema = read_data_schema(data_dir)
    candidates = STAGE_CANDIDATES + negatives
    batches = held_batches(data_dir, batch_size, negatives, warmup + steps)
    trainers, losses, skipped, outputs = {}, {}, {}, None
    for method in methods:
        work = batch_size * float(candidates) ** 3
        if method == CUBIC_METHOD and work > cubic_work:
            skipped[method] = f"skipped: batch * n^3 = {work:.1e} > {cubic_work:.0e}"
            continue
        config = CascadeConfig.from_schema(schema, method=method)
        variants = ["after", *(("xla",) if compare else ())]
        variants += ["mixed"] if mixed_precision != "off" else []
        for variant in variants:
            keras.utils.set_random_seed(0)
            model, trainers[(method, variant)] = build_trainer(
                config, learning_rate, variant, mixed_precision
            )
            if variant == "after":
                if outputs is None:  # the same stage scores for every method's loss
                    outputs = model.stage_outputs(batches[0][0])
                labels = batches[0][1]["label"]
                losses[(method, "after")] = loss_step(model.objective, labels, outputs)
                if compare:
                    losses[(method, "xla")] = loss_step(model.objective, labels, outputs, True)
    step_ms = interleaved_medians(trainers, [(batch,) for batch in batches], warmup)
    loss_ms = interleaved_medians(losses, [()] * (warmup + steps), warmup)
    if profile_dir is not None:
        for (method, variant), step in trainers.items():
            if method == methods[0]:
                inputs = [(batch,) for batch in batches[:2]]
                profile_steps(step, inputs, os.path.join(profile_dir, variant))
    return [
        ThroughputRow(
            method,
            method_cost(method),
            candidates,
            batch_size,
            step_ms.get((method, "after")),
            loss_ms.get((method, "after")),
            skipped.get(method, ""),
            step_ms.get((method, "xla")),
            step_ms.get((method, "mixed")),
            loss_ms.get((method, "xla")),
        )
        for method in methods
    ]


def throughput_table(rows: Sequence[ThroughputRow], mixed_precision: str = "off") -> str:
    """The rows as a markdown table, with each method's speed relative to DFTopK's.

    Rows timed with ``compare`` get four more columns: the ``xla`` step's requests per second,
    DFTopK's speed against the method when each runs its faster step (with or without XLA): the
    fair ratio, since XLA helps some methods' steps on CPU and slows others; then the loss alone
    under XLA and the same fair ratio for the loss alone. Rows timed with a
    ``mixed_precision`` policy get two more: that step's requests per second and its speed over
    the float32 step.

    Example:
        >>> table = throughput_table([ThroughputRow("dftopk", "O(n)", 40, 1024, 512.0, 10.0)])
        >>> print(table.splitlines()[-1])
        | dftopk | O(n) | 40 | 1024 | 512.0 | 2,000 | 1.00x | 10.0 | 1.00x | 2% |
    """
    reference = next((row for row in rows if row.method == "dftopk" and row.step_ms), None)
    compared = any(row.xla_ms is not None for row in rows)
    mixed = any(row.mixed_ms is not None for row in rows)
    columns = ["method", "operator cost", "n", "batch", "ms / step", "requests / s", "vs dftopk"]
    columns += ["loss ms", "loss vs dftopk", "loss share of step"]
    if compared:
        columns += [
            "XLA: requests / s",
            "dftopk vs method, each at its best",
            "XLA: loss ms",
            "loss: dftopk vs method, each at its best",
        ]
    if mixed:
        columns += [f"{mixed_precision}: requests / s", "vs float32"]
    table = []
    for row in rows:
        if row.step_ms is None:
            extra = (4 if compared else 0) + (2 if mixed else 0)
            cells = ["-", "-", "-", "-", "-", row.note] + ["-"] * extra
        else:
            # Speed ratios: above 1 is faster than DFTopK.
            step_ratio = f"{reference.step_ms / row.step_ms:.2f}x" if reference else "-"
            loss_ratio = f"{reference.loss_ms / row.loss_ms:.2f}x" if reference else "-"
            cells = [
                f"{row.step_ms:.1f}",
                f"{row.requests_per_second:,.0f}",
                step_ratio,
                f"{row.loss_ms:.1f}",
                loss_ratio,
                f"{row.loss_share:.0%}",
            ]
            if compared:
                cells += [
                    f"{row.batch_size / (row.xla_ms / 1000.0):,.0f}",
                    f"{row.best_ms / reference.best_ms:.2f}x" if reference else "-",
                    f"{row.loss_xla_ms:.1f}",
                    f"{row.best_loss_ms / reference.best_loss_ms:.2f}x" if reference else "-",
                ]
            if mixed:
                cells += [
                    f"{row.batch_size / (row.mixed_ms / 1000.0):,.0f}",
                    f"{row.step_ms / row.mixed_ms:.2f}x",
                ]
        table.append([row.method, row.cost, str(row.candidates), str(row.batch_size), *cells])
    return tables.markdown_table(columns, table)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_train",
        description="Training throughput (requests/s) of the cascade per method, on the same "
        "in-memory batches, steps interleaved across methods; prints a markdown table with the "
        "machine.",
    )
    parser.add_argument(
        "--data",
        dest="data_dir",
        default=None,
        help="converted TFRecord folder (default: simulate one day)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHOD_NAMES),
        choices=METHOD_NAMES,
        help="methods to time (default: all)",
    )
    parser.add_argument("--batch-size", type=int, default=1024, help="requests per step")
    parser.add_argument(
        "--negatives", type=int, default=0, help="in-batch negatives per request (n = 40 + this)"
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    parser.add_argument(
        "--cubic-work",
        type=float,
        default=DEFAULT_CUBIC_WORK,
        help="skip LCRON DiffSort when batch * n^3 exceeds this",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time each method's train step compiled with XLA and each loss alone "
        "compiled with XLA, in the same rounds",
    )
    parser.add_argument(
        "--profile-dir",
        default=None,
        help="also write a profiler trace of 2 steps of the first method (each --compare "
        "variant) to PROFILE_DIR/<variant>; python -m benchmarks.step_profile sums it",
    )
    parser.add_argument(
        "--mixed-precision",
        default="off",
        choices=PRECISION_CHOICES,
        help="also time each method's step built under this Keras mixed precision policy, in "
        "the same rounds (default off)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the simulated data")
    parser.add_argument(
        "--quick", action="store_true", help="batch 256, 4 timed steps: a quick look"
    )
    args = add_entry_flags(parser).parse_args(argv)
    if args.quick:
        args.batch_size, args.steps, args.warmup = 256, 4, 1
    return args


def main(argv: Sequence[str] | None = None) -> list[ThroughputRow]:
    """Command-line entry: ``python -m benchmarks.bench_train --help``."""
    args = _parse_args(argv)
    with tempfile.TemporaryDirectory() as work_dir:
        data_dir = args.data_dir or simulated_tfrecords(
            work_dir, 1, args.batch_size * (args.steps + args.warmup), args.seed
        )
        started = time.perf_counter()
        rows = run_benchmark(
            data_dir,
            args.methods,
            args.batch_size,
            args.negatives,
            args.steps,
            args.warmup,
            cubic_work=args.cubic_work,
            compare=args.compare,
            profile_dir=args.profile_dir,
            mixed_precision=args.mixed_precision,
        )
    print(machine_description())
    print(
        f"cascade train step (3 stages + loss + Adam) and the loss alone (forward + backward), "
        f"batch {args.batch_size}, n = {STAGE_CANDIDATES + args.negatives} candidates, median "
        f"of {args.steps} steps per method ({time.perf_counter() - started:.0f} s in all); "
        "ratios are speed relative to DFTopK (above 1: faster)"
        + ("; XLA: the step (or the loss alone) with jit_compile" if args.compare else "")
    )
    print(throughput_table(rows, args.mixed_precision))
    return rows


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.bench_train")
