"""Every docstring example in the benchmarks runs and prints what it says."""

import doctest
import importlib

import numpy as np
import pytest
import tensorflow as tf

MODULES = [
    "benchmarks.experiment_sizes",
    "benchmarks.gradient_conflict",
    "benchmarks.main_table",
    "benchmarks.negative_sampling",
    "benchmarks.operator_runtime",
    "benchmarks.report_document",
    "benchmarks.report_files",
    "benchmarks.reproduce",
    "benchmarks.streaming",
    "benchmarks.tau_sensitivity",
    "benchmarks.training_runs",
]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(
        module,
        extraglobs={"tf": tf, "np": np},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
