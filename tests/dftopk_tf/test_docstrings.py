"""Every docstring example in the library runs and prints what it says."""

import pytest

import dftopk_tf
from tests.docstring_examples import assert_examples_pass, package_modules


@pytest.mark.parametrize("module_name", package_modules(dftopk_tf))
def test_docstring_examples_run(module_name: str) -> None:
    assert_examples_pass(module_name)
