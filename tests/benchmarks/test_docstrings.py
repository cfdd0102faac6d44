"""Every docstring example in the benchmarks runs and prints what it says."""

import pytest

import benchmarks
from tests.docstring_examples import assert_examples_pass, package_modules

# These take fixtures (simulated data, exported models): their own tests run their examples.
WITH_OWN_EXAMPLE_TESTS = {
    "benchmarks.bench_pipeline",
    "benchmarks.bench_serving",
    "benchmarks.bench_train",
}
MODULES = [name for name in package_modules(benchmarks) if name not in WITH_OWN_EXAMPLE_TESTS]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str, tmp_path) -> None:
    assert_examples_pass(module_name, {"tmp_dir": str(tmp_path)})
