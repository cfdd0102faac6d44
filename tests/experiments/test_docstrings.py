"""Every docstring example in the experiments runs and prints what it says."""

import pytest

import experiments
from tests.docstring_examples import assert_examples_pass, package_modules

MODULES = package_modules(experiments)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str, tmp_path) -> None:
    assert_examples_pass(module_name, {"tmp_dir": str(tmp_path)})
