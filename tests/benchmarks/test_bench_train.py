"""benchmarks.bench_train: its docstring examples run; the table reads right."""

import doctest

import numpy as np
import tensorflow as tf

from benchmarks import bench_train
from models.config import CascadeConfig
from pipelines.input import load_schema
from tests.models.batches import TINY_LAYERS


def test_docstring_examples_run(tmp_path) -> None:
    data_dir = bench_train.simulated_data(str(tmp_path / "data"), 64, seed=0)
    globs = {
        "tf": tf,
        "np": np,
        "data_dir": data_dir,
        "data_config": CascadeConfig.from_schema(load_schema(data_dir), **TINY_LAYERS),
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
    lines = bench_train.markdown_table(rows).splitlines()
    assert lines[2] == "| dftopk | O(n) | 40 | 100 | 50.0 | 2,000 | 1.00x | 10.0 | 1.00x |"
    assert lines[3] == "| lapsum | O(n log n) | 40 | 100 | 100.0 | 1,000 | 0.50x | 40.0 | 0.25x |"
    assert lines[4].endswith("| - | - | - | - | skipped |")


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
