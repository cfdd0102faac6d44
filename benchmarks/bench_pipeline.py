"""Data pipeline throughput, and its margin over what training consumes.

Simulates a RecFlow-format dataset (``dftopk_cascade.pipelines.simulator.simulate``), converts it
(``dftopk_cascade.pipelines.convert``) and reads it back with
``dftopk_cascade.pipelines.input.make_dataset``, timing each: the simulator and the converter in
requests per second, the tf.data input in examples per second. Then it times one training step
(forward, backward, Adam update) of a DIN-size stand-in model on a batch held in memory: embeddings
of width 8 for every id field, target attention of each candidate over the 50-step behaviour
sequence, and the pre-ranking MLP 21*8 -> 128 -> 128 -> 32 -> 1 over all [B, 40 + negatives]
candidates. The margin is input examples/s divided by the examples/s one training step consumes; the
input must deliver at least ``REQUIRED_MARGIN`` times that, so that it is never the bottleneck.
Last, the same steps fed by the pipeline itself show whether it keeps up when both share the
machine.

Usage:
    python -m benchmarks.bench_pipeline --quick
    python -m benchmarks.bench_pipeline --days 2 --requests-per-day 20000 --workers 2

Example:
    >>> model = DinStandIn(read_data_schema(data_dir))
    >>> features, labels = next(iter(make_dataset(data_dir, 4)))
    >>> model(features).shape
    TensorShape([4, 40])
"""

import argparse
import itertools
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.convert import convert
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.input import make_dataset
from dftopk_cascade.pipelines.simulator.simulate import simulate

from benchmarks.machine import machine_description

REQUIRED_MARGIN = 5.0
EMBEDDING_DIM = 8
MLP_UNITS = (128, 128, 32)


class DinStandIn(tf.keras.Model):
    """A pre-ranking model of the protocol's DIN size, for timing a training step.

    Every id field gets a width-8 embedding (sized by ``schema["vocab_sizes"]``); each candidate
    attends over the behaviour sequence with its first five fields (the ones a behaviour has);
    the MLP sees context (3 x 8), user (5 x 8), candidate (8 x 8) and the attended sequence
    (5 x 8): 21 x 8 = 168 inputs -> 128 -> 128 -> 32 -> 1.

    Example:
        >>> model = DinStandIn(read_data_schema(data_dir))
        >>> model(features).shape  # features: a make_dataset batch of 8
        TensorShape([8, 40])
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__()
        sizes = schema["vocab_sizes"]
        fields = {
            name: list(schema["columns"][name]) for name in (fmt.CONTEXT, fmt.USER, fmt.ITEMS)
        }
        self.tables = {
            field: tf.keras.layers.Embedding(sizes[field], EMBEDDING_DIM, name=field)
            for field in dict.fromkeys(itertools.chain(*fields.values()))
        }
        self.fields = fields
        self.sequence_fields = list(schema["columns"][fmt.SEQ])
        self.mlp = [tf.keras.layers.Dense(units, activation="relu") for units in MLP_UNITS]
        self.score = tf.keras.layers.Dense(1)

    def _embed(self, ids: tf.Tensor, fields: Sequence[str]) -> tf.Tensor:
        """Embeds ids [..., len(fields)] into [..., len(fields) * 8]."""
        columns = [self.tables[field](ids[..., i]) for i, field in enumerate(fields)]
        return tf.concat(columns, axis=-1)

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        context = self._embed(features[fmt.CONTEXT], self.fields[fmt.CONTEXT])
        user = self._embed(features[fmt.USER], self.fields[fmt.USER])
        items = self._embed(features[fmt.ITEMS], self.fields[fmt.ITEMS])
        sequence = self._embed(features[fmt.SEQ], self.sequence_fields)
        query = items[..., : len(self.sequence_fields) * EMBEDDING_DIM]
        attention = tf.einsum("bnd,bsd->bns", query, sequence) / float(query.shape[-1]) ** 0.5
        attention = tf.where(features[fmt.SEQ_MASK][:, None, :], attention, -1e9)
        attended = tf.einsum("bns,bsd->bnd", tf.nn.softmax(attention, axis=-1), sequence)
        candidates = tf.shape(items)[1]
        per_request = tf.concat([context, user], axis=-1)[:, None, :]
        hidden = tf.concat([tf.repeat(per_request, candidates, axis=1), items, attended], axis=-1)
        for layer in self.mlp:
            hidden = layer(hidden)
        return tf.squeeze(self.score(hidden), axis=-1)


@dataclass(frozen=True)
class Measurement:
    """One row of the report.

    Example:
        >>> Measurement("simulate", "1,000 requests", 0.5, "2,000 requests/s").row()
        '| simulate | 1,000 requests | 0.50 | 2,000 requests/s |'
    """

    stage: str
    size: str
    seconds: float
    throughput: str

    def row(self) -> str:
        """The markdown table row."""
        return f"| {self.stage} | {self.size} | {self.seconds:.2f} | {self.throughput} |"


def input_examples_per_second(
    data_dir: str, batch_size: int, negatives: int, batches: int
) -> tuple[float, float]:
    """Reads ``batches`` training batches (after one warm-up batch); returns (examples/s, s).

    The dataset repeats, so short datasets are read several times.

    Example:
        >>> rate, seconds = input_examples_per_second(data_dir, 16, 8, batches=3)
        >>> rate > 0
        True
    """
    dataset = make_dataset(data_dir, batch_size, negatives, drop_remainder=True).repeat()
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    return batches * batch_size / seconds, seconds


def training_step(model: DinStandIn) -> Any:
    """A compiled training step: sigmoid cross-entropy of the scores against rank_pos, Adam.

    Example:
        >>> step = training_step(DinStandIn(read_data_schema(data_dir)))
        >>> float(step(features, labels)) > 0
        True
    """
    optimizer = tf.keras.optimizers.Adam(1e-2)

    @tf.function
    def step(features: dict[str, tf.Tensor], labels: dict[str, tf.Tensor]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            scores = model(features)
            targets = tf.cast(features[fmt.STAGE] == 0, tf.float32)
            losses = tf.nn.sigmoid_cross_entropy_with_logits(targets, scores)
            mask = tf.cast(features[fmt.ITEM_MASK], tf.float32)
            loss = tf.reduce_sum(losses * mask) / tf.reduce_sum(mask)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    return step


def step_seconds(step: Any, batches: Any, steps: int) -> float:
    """Median seconds of ``steps`` training steps over ``batches`` (an iterator), after warm-up.

    Example:
        >>> step = training_step(DinStandIn(read_data_schema(data_dir)))
        >>> step_seconds(step, iter([(features, labels)] * 3), steps=2) > 0
        True
    """
    features, labels = next(batches)
    step(features, labels).numpy()
    times = []
    for _ in range(steps):
        features, labels = next(batches)
        start = time.perf_counter()
        step(features, labels).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_benchmark(args: argparse.Namespace, work_dir: str) -> list[Measurement]:
    """Runs every measurement of the report; returns the table rows.

    Example:
        >>> args = _parse_args(["--days", "1", "--requests-per-day", "300", "--batch-size", "32",
        ...                     "--batches", "2", "--steps", "2", "--workers", "1",
        ...                     "--negatives", "4"])
        >>> for row in run_benchmark(args, tmp_dir):
        ...     print(row.stage, "|", row.size)
        simulate | 300 requests (1 days)
        convert (1 workers) | 300 requests (1 days)
        tf.data input, 4 negatives | B=32, N=44
        train step (DIN-size), 4 negatives | B=32, N=44
        margin input / training, 4 negatives | B=32, N=44
        train step fed by make_dataset, 4 negatives | B=32, N=44
    """
    recflow_root = os.path.join(work_dir, "recflow")
    data_dir = os.path.join(work_dir, "tfrec")
    rows = data_rows(args, recflow_root, data_dir)
    schema = read_data_schema(data_dir)
    for negatives in args.negatives:
        rows += input_rows(args, data_dir, schema, negatives)
    return rows


def data_rows(args: argparse.Namespace, recflow_root: str, data_dir: str) -> list[Measurement]:
    """Simulates RecFlow into ``recflow_root`` and converts it into ``data_dir``, timing both.

    Example:
        >>> args = _parse_args(["--days", "1", "--requests-per-day", "200", "--workers", "1"])
        >>> rows = data_rows(args, tmp_dir + "/rows/recflow", tmp_dir + "/rows/tfrec")
        >>> [row.stage for row in rows]
        ['simulate', 'convert (1 workers)']
    """
    requests = args.days * args.requests_per_day
    size = f"{requests:,} requests ({args.days} days)"
    summary = simulate(recflow_root, args.days, args.requests_per_day, args.seed, progress=False)
    rows = [
        Measurement(
            "simulate", size, summary.seconds, f"{requests / summary.seconds:,.0f} requests/s"
        )
    ]
    start = time.perf_counter()
    convert(recflow_root, data_dir, workers=args.workers, progress=False)
    seconds = time.perf_counter() - start
    rows.append(
        Measurement(
            f"convert ({args.workers} workers)",
            size,
            seconds,
            f"{requests / seconds:,.0f} requests/s",
        )
    )
    return rows


def input_rows(
    args: argparse.Namespace, data_dir: str, schema: dict[str, Any], negatives: int
) -> list[Measurement]:
    """The input rate, the in-memory DIN-size step, their margin and the fed step at ``negatives``.

    Example::

        input_rows(_parse_args([]), "/tmp/tfrec", read_data_schema("/tmp/tfrec"), 40)
    """
    candidates = fmt.NUM_CANDIDATES + negatives
    shape = f"B={args.batch_size}, N={candidates}"
    rate, seconds = input_examples_per_second(data_dir, args.batch_size, negatives, args.batches)
    rows = [
        Measurement(
            f"tf.data input, {negatives} negatives", shape, seconds, f"{rate:,.0f} examples/s"
        )
    ]
    dataset = make_dataset(data_dir, args.batch_size, negatives, drop_remainder=True)
    held = next(iter(dataset))
    step = training_step(DinStandIn(schema))
    in_memory = step_seconds(step, iter([held] * (args.steps + 1)), args.steps)
    consumed = args.batch_size / in_memory
    rows.append(
        Measurement(
            f"train step (DIN-size), {negatives} negatives",
            shape,
            in_memory,
            f"{consumed:,.0f} examples/s consumed",
        )
    )
    margin = rate / consumed
    verdict = "ok" if margin >= REQUIRED_MARGIN else f"BELOW {REQUIRED_MARGIN:g}x"
    rows.append(
        Measurement(
            f"margin input / training, {negatives} negatives",
            shape,
            0.0,
            f"{margin:.1f}x ({verdict})",
        )
    )
    fed = step_seconds(step, iter(dataset.repeat()), args.steps)
    rows.append(
        Measurement(
            f"train step fed by make_dataset, {negatives} negatives",
            shape,
            fed,
            f"{fed / in_memory:.2f}x the in-memory step time",
        )
    )
    return rows


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_pipeline",
        description="Throughput of the simulator and the converter (requests/s) and of the tf.data "
        "input (examples/s), against the examples/s one training step of a DIN-size model "
        f"consumes; the input must deliver >= {REQUIRED_MARGIN:g}x.",
    )
    parser.add_argument("--days", type=int, default=2, help="simulated days (default 2)")
    parser.add_argument(
        "--requests-per-day",
        type=int,
        default=20_000,
        help="simulated requests per day (default 20000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="conversion worker processes (default: CPU count)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1024, help="batch size, as in the protocol (default 1024)"
    )
    parser.add_argument(
        "--negatives",
        type=int,
        nargs="+",
        default=[0, 160],
        help="in-batch negatives per request to measure (default 0 160: the "
        "main training runs and the evaluation)",
    )
    parser.add_argument(
        "--batches", type=int, default=40, help="batches read to time the input (default 40)"
    )
    parser.add_argument(
        "--steps", type=int, default=10, help="training steps timed, median reported (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument(
        "--work-dir",
        default=None,
        help="where to write the dataset (default: a temporary folder, removed)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes for a smoke run: 2 days x 3000 requests, 10 batches, 3 steps",
    )
    args = add_entry_flags(parser).parse_args(argv)
    if args.quick:
        args.requests_per_day, args.batches, args.steps = 3000, 10, 3
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m benchmarks.bench_pipeline --help``.

    Example:
        >>> try:
        ...     main(["--help"])
        ... except SystemExit as exit:
        ...     print("exit code", exit.code)
        usage: python -m benchmarks.bench_pipeline [-h] ...
        exit code 0
    """
    args = _parse_args(argv)
    print(machine_description())
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_pipeline_")
    try:
        rows = run_benchmark(args, work_dir)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print("| stage | size | seconds | throughput |")
    print("|---|---|---|---|")
    for row in rows:
        print(row.row())
    print(f"load average after the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.bench_pipeline")
