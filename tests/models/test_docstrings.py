"""Every docstring example in models/ runs and prints what it says, each on its own names."""

import pytest
from dftopk_cascade import models

from tests.docstring_examples import assert_examples_pass, package_modules

MODULES = package_modules(models)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    assert_examples_pass(module_name)
