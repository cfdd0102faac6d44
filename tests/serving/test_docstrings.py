"""Every docstring example in serving/ runs and prints what it says, each on its own names.

The examples that need an exported cascade build it with
``dftopk_cascade.serving.export.toy_servables`` (exported once per process and shared); examples
calling a live TF Serving are skipped there.
"""

import pytest
from dftopk_cascade import serving

from tests.docstring_examples import assert_examples_pass, package_modules

MODULES = package_modules(serving)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    assert_examples_pass(module_name)
