"""Every docstring example in the benchmarks runs and prints what it says."""

import doctest
import importlib

import numpy as np
import pytest
import tensorflow as tf

MODULES = [
    "benchmarks.gradient_conflict",
    "benchmarks.operator_runtime",
    "benchmarks.report_files",
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
