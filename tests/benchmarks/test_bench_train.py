"""benchmarks.bench_train: its docstring examples run; the table reads right."""

import doctest

import numpy as np
import tensorflow as tf
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords

from benchmarks import bench_train
from tests.fresh_interpreter import run_python_json
from tests.models.batches import TINY_LAYERS


def test_docstring_examples_run(tmp_path) -> None:
    data_dir = simulated_tfrecords(str(tmp_path / "data"), 1, 64, seed=0)
    globs = {
        "tf": tf,
        "np": np,
        "data_dir": data_dir,
        "data_config": CascadeConfig.from_schema(read_data_schema(data_dir), **TINY_LAYERS),
        "tmp_dir": str(tmp_path / "other"),
    }
    result = doctest.testmod(
        bench_train, extraglobs=globs, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0


def test_table_compares_each_method_to_dftopk() -> None:
    rows = [
        bench_train.ThroughputRow("dftopk", "O(n)", 40, 100, 50.0, 10.0),
        bench_train.ThroughputRow("lapsum", "O(n log n)", 40, 100, 100.0, 40.0),
        bench_train.ThroughputRow("lcron-diffsort", "O(n^3)", 40, 100, None, None, "skipped"),
    ]
    lines = bench_train.throughput_table(rows).splitlines()
    assert lines[2] == "| dftopk | O(n) | 40 | 100 | 50.0 | 2,000 | 1.00x | 10.0 | 1.00x | 20% |"
    assert lines[3] == (
        "| lapsum | O(n log n) | 40 | 100 | 100.0 | 1,000 | 0.50x | 40.0 | 0.25x | 40% |"
    )
    assert lines[4].endswith("| - | - | - | - | - | skipped |")


def test_compare_table_gives_xla_speeds_and_the_fair_ratio() -> None:
    row = bench_train.ThroughputRow(
        "dftopk", "O(n)", 40, 100, 50.0, 10.0, "", 25.0, loss_xla_ms=12.0
    )
    # XLA makes the peer's step faster (100 -> 60 ms): the fair ratio takes 60 against 25; and
    # its loss (30 -> 15 ms), while dftopk's loss is faster without XLA: 15 against 10.
    peer = bench_train.ThroughputRow(
        "peer", "O(n^2)", 40, 100, 100.0, 30.0, "", 60.0, loss_xla_ms=15.0
    )
    header, separator, line, peer_line = bench_train.throughput_table([row, peer]).splitlines()
    assert header.endswith(
        "| XLA: requests / s | dftopk vs method, each at its best | XLA: loss ms | loss: dftopk vs "
        "method, each at its best |"
    )
    assert separator.count("---") == header.count(" |")
    assert line.endswith("| 20% | 4,000 | 1.00x | 12.0 | 1.00x |")
    assert peer_line.endswith("| 30% | 1,667 | 2.40x | 15.0 | 1.50x |")


def test_compare_times_every_variant_on_the_same_batches(tmp_path) -> None:
    data_dir = simulated_tfrecords(str(tmp_path / "data"), 1, 16, seed=0)
    rows = bench_train.run_benchmark(
        data_dir, ["bce"], batch_size=8, steps=1, warmup=0, compare=True
    )
    assert rows[0].step_ms > 0 and rows[0].xla_ms > 0
    assert rows[0].loss_ms > 0 and rows[0].loss_xla_ms > 0


#: Each loss's value without and with XLA, printed as JSON by a separate Python process.
XLA_LOSS_SCRIPT = """
import json
import tensorflow as tf
from benchmarks.bench_train import loss_step
from dftopk_cascade.models.objectives import make_objective

scores = tf.random.stateless_normal([4, 50], seed=[1, 2])
outputs = {"retrieval": scores, "prerank": 0.5 * scores, "rank": -scores}
labels = tf.cast(tf.range(50)[::-1], tf.float32)[tf.newaxis] * tf.ones([4, 1])
values = {
    method: [
        float(loss_step(make_objective(method), labels, outputs, jit_compile=jit)()["loss"])
        for jit in (False, True)
    ]
    for method in ("dftopk", "lcron-neuralsort", "lapsum")
}
print(json.dumps(values))
"""


def test_the_loss_under_xla_computes_the_same_loss() -> None:
    # The XLA column times the same loss: its value agrees with the loss without XLA (to float32
    # rounding: XLA sums in another order, which moves LapSum's loss by about 7e-5). It runs in its
    # own process: compiled in the suite's process, these losses made a later XLA train step
    # (tests/models/test_step_compilation.py) crash TensorFlow 2.21 with a segmentation fault.
    values = run_python_json(XLA_LOSS_SCRIPT)
    assert sorted(values) == ["dftopk", "lapsum", "lcron-neuralsort"]
    for plain, compiled in values.values():
        np.testing.assert_allclose(compiled, plain, rtol=2e-4)


def test_mixed_precision_times_each_method_under_the_policy_in_the_same_rounds(tmp_path) -> None:
    data_dir = simulated_tfrecords(str(tmp_path / "data"), 1, 16, seed=0)
    rows = bench_train.run_benchmark(
        data_dir, ["dftopk"], batch_size=8, steps=1, warmup=0, mixed_precision="mixed_bfloat16"
    )
    assert rows[0].step_ms > 0 and rows[0].mixed_ms > 0 and rows[0].xla_ms is None
    table = bench_train.throughput_table(
        [bench_train.ThroughputRow("dftopk", "O(n)", 40, 100, 50.0, 10.0, mixed_ms=25.0)],
        "mixed_bfloat16",
    )
    header, _, line = table.splitlines()
    assert header.endswith("| mixed_bfloat16: requests / s | vs float32 |")
    assert line.endswith("| 20% | 4,000 | 2.00x |")
    model, _ = bench_train.build_trainer(
        CascadeConfig.from_schema(read_data_schema(data_dir), **TINY_LAYERS),
        0.01,
        "mixed",
        "mixed_float16",
    )
    assert model.prerank.compute_dtype == "float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizerV3"


def test_rounds_rotate_the_order_of_the_methods() -> None:
    calls = []

    def recording(name):
        def step():
            calls.append(name)
            return {"loss": tf.constant(0.0)}

        return step

    steps = {name: recording(name) for name in "abc"}
    bench_train.interleaved_medians(steps, [()] * 4, warmup=1)
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
