"""The pre-ranking model's cost per target attention, side by side (``benchmarks.bench_attention``).

Times the pre-ranking model (``dftopk_cascade.models.prerank.DINPrerank``, the paper's sizes) with
each target attention (``dftopk_cascade.models.attention.TARGET_ATTENTIONS``) on the same random
batch: a training pass (forward and backward of the summed scores over the stage candidates, 40 per
request) and an evaluation forward (over the evaluation's 200 candidates per request), each in one
``tf.function``. Passes of the attentions are interleaved, so that load from other processes hits
them alike; the table gives median milliseconds, the ratio to the first attention, and the size of
each attention's largest tensor in the evaluation forward, computed from the shapes ([batch,
candidates, length] for bilinear, [batch, candidates, length, units] for DIN's hidden layer, 4 bytes
a value).

Usage:
    python -m benchmarks.bench_attention
    python -m benchmarks.bench_attention --batch-size 1024 --repeats 3
    python -m benchmarks.bench_attention --jit-compile

Example:
    >>> sizes = [largest_tensor_bytes(name, 1024, 200, 50) for name in TARGET_ATTENTIONS]
    >>> [f"{size / 1e9:.2f} GB" for size in sizes]  # bilinear, din at batch 1024
    ['0.04 GB', '3.28 GB']
"""

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.models.attention import DIN_ATTENTION_UNITS, TARGET_ATTENTIONS
from dftopk_cascade.models.candidate_features import DEFAULT_ATTENTION_UNITS
from dftopk_cascade.models.contract import STAGE_CANDIDATES
from dftopk_cascade.models.prerank import DINPrerank
from dftopk_cascade.models.tables import markdown_table
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow

from benchmarks.machine import machine_description

#: Candidates per request in evaluation: the 40 stage candidates and 160 in-batch negatives.
EVALUATION_CANDIDATES = 200
#: Distinct values per id field of the random batch.
ID_COUNT = 1000


@dataclass(frozen=True)
class AttentionTiming:
    """Median milliseconds of one attention's passes and its largest evaluation tensor."""

    attention: str
    train_ms: float
    evaluate_ms: float
    largest_tensor_bytes: int


def random_features(batch_size: int, candidates: int, seed: int = 0) -> dict[str, tf.Tensor]:
    """A contract batch of random ids, every candidate real, 1 to 50 behaviours per request
    (padded behaviours hold id 0).

    Example:
        >>> random_features(2, 5)["items"].shape.as_list()
        [2, 5, 8]
    """
    specs = fmt.model_input_specs(candidates)
    generator = tf.random.Generator.from_seed(seed)
    features = {
        name: generator.uniform([batch_size, *spec.shape[1:]], 1, ID_COUNT, tf.int32)
        for name, spec in specs.items()
        if spec.dtype != tf.bool
    }
    lengths = generator.uniform([batch_size, 1], 1, 51, tf.int32)
    features["seq_mask"] = tf.range(specs["seq_mask"].shape[-1])[None] < lengths
    features["seq"] *= tf.cast(features["seq_mask"], tf.int32)[..., None]  # padding ids are 0
    features["item_mask"] = tf.ones([batch_size, candidates], tf.bool)
    return features


def largest_tensor_bytes(attention: str, batch_size: int, candidates: int, length: int) -> int:
    """Bytes of the attention's largest float32 tensor for these shapes.

    Example:
        >>> largest_tensor_bytes("din", 1, 2, 3) == 1 * 2 * 3 * DIN_ATTENTION_UNITS * 4
        True
    """
    per_pair = DIN_ATTENTION_UNITS if attention == "din" else 1
    return batch_size * candidates * length * per_pair * 4


def _passes(model: DINPrerank, jit_compile: bool) -> tuple[Callable, Callable]:
    @tf.function(jit_compile=jit_compile)
    def train(features: dict[str, tf.Tensor]) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(model(features))
        return tape.gradient(total, model.trainable_variables)

    @tf.function(jit_compile=jit_compile)
    def evaluate(features: dict[str, tf.Tensor]) -> tf.Tensor:
        return model(features)

    return train, evaluate


def _milliseconds(function: Callable, features: dict[str, tf.Tensor]) -> float:
    started = time.perf_counter()
    for value in tf.nest.flatten(function(features), expand_composites=True):
        value.numpy()  # waits for the pass: sparse embedding gradients come as their parts
    return (time.perf_counter() - started) * 1000.0


def time_attentions(
    batch_size: int = 256, repeats: int = 3, embedding_dim: int = 8, jit_compile: bool = False
) -> list[AttentionTiming]:
    """Median ms of a training pass and an evaluation forward per target attention.

    ``jit_compile`` compiles the passes with XLA (the trainer's ``--jit-compile on``), which can
    fuse DIN's hidden layer into its neighbours instead of writing it to memory.

    Example:
        >>> rows = time_attentions(batch_size=2, repeats=1, embedding_dim=2)
        >>> [row.attention for row in rows], rows[0].train_ms > 0
        (['bilinear', 'din'], True)
    """
    if batch_size < 1 or repeats < 1:
        raise ValueError(f"--batch-size and --repeats must be >= 1, got {batch_size}, {repeats}")
    vocab_sizes = fmt.vocab_sizes(dict.fromkeys(recflow.ID_FIELDS, ID_COUNT))
    train_batch = random_features(batch_size, STAGE_CANDIDATES)
    evaluation_batch = random_features(batch_size, EVALUATION_CANDIDATES, seed=1)
    passes = {}
    for attention in TARGET_ATTENTIONS:
        model = DINPrerank(vocab_sizes, fmt.COLUMNS, embedding_dim, attention=attention)
        train, evaluate = _passes(model, jit_compile)
        _milliseconds(train, train_batch)  # traces and builds: not timed
        _milliseconds(evaluate, evaluation_batch)
        passes[attention] = (train, evaluate)
    times = {attention: ([], []) for attention in TARGET_ATTENTIONS}
    for _ in range(repeats):
        for attention, (train, evaluate) in passes.items():
            times[attention][0].append(_milliseconds(train, train_batch))
            times[attention][1].append(_milliseconds(evaluate, evaluation_batch))
    length = evaluation_batch["seq_mask"].shape[-1]
    return [
        AttentionTiming(
            attention,
            statistics.median(train_ms),
            statistics.median(evaluate_ms),
            largest_tensor_bytes(attention, batch_size, EVALUATION_CANDIDATES, length),
        )
        for attention, (train_ms, evaluate_ms) in times.items()
    ]


def timing_table(rows: Sequence[AttentionTiming]) -> str:
    """The timings as a Markdown table, ratios to the first row.

    Example:
        >>> print(timing_table([AttentionTiming("bilinear", 2.0, 4.0, 1_000_000)]))
        | attention | train pass ms | ratio | evaluation forward ms | ratio | largest tensor MB |
        |---|---|---|---|---|---|
        | bilinear | 2.0 | 1.00 | 4.0 | 1.00 | 1 |
    """
    first = rows[0]
    columns = [
        "attention",
        "train pass ms",
        "ratio",
        "evaluation forward ms",
        "ratio",
        "largest tensor MB",
    ]
    cells = [
        [
            row.attention,
            f"{row.train_ms:.1f}",
            f"{row.train_ms / first.train_ms:.2f}",
            f"{row.evaluate_ms:.1f}",
            f"{row.evaluate_ms / first.evaluate_ms:.2f}",
            f"{row.largest_tensor_bytes / 1e6:.0f}",
        ]
        for row in rows
    ]
    return markdown_table(columns, cells)


def main(argv: Sequence[str] | None = None) -> list[AttentionTiming]:
    """Parses the flags, times the attentions and prints the machine and the table.

    Example::

        python -m benchmarks.bench_attention --batch-size 256 --repeats 3
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="requests per pass (DIN's evaluation forward holds batch x 200 x 50 x "
        f"{DIN_ATTENTION_UNITS} floats: mind the memory)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per attention")
    parser.add_argument("--jit-compile", action="store_true", help="compile the passes with XLA")
    add_entry_flags(parser)
    args = parser.parse_args(argv)
    rows = time_attentions(args.batch_size, args.repeats, jit_compile=args.jit_compile)
    print(machine_description())
    print(
        f"pre-ranking model, d = 8, bilinear units {DEFAULT_ATTENTION_UNITS}, DIN hidden units "
        f"{DIN_ATTENTION_UNITS}; batch {args.batch_size}; train over {STAGE_CANDIDATES} "
        f"candidates, evaluation over {EVALUATION_CANDIDATES}; median of {args.repeats}; "
        f"XLA {'on' if args.jit_compile else 'off'}"
    )
    print(timing_table(rows))
    return rows


if __name__ == "__main__":
    run_command(main, "python -m benchmarks.bench_attention")
