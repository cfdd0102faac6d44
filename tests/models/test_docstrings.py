"""Every docstring example in models/ runs and prints what it says, each on its own names."""

import pytest

import models
from models.cascade import build_cascade
from models.tf_keras import keras
from tests.docstring_examples import assert_examples_pass, package_modules
from tests.models.batches import synthetic_batch, tiny_config

MODULES = package_modules(models)
#: Modules whose examples still take names from the test (not yet self-contained).
TAKES_TEST_NAMES = {"models.cascade"}


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str, tmp_path) -> None:
    if module_name not in TAKES_TEST_NAMES:
        assert_examples_pass(module_name)
        return
    features, labels = synthetic_batch(batch_size=4)
    assert_examples_pass(
        module_name,
        {
            "keras": keras,
            "features": features,
            "labels": labels,
            # Pointwise BCE: the fastest method to build, so that the examples stay quick.
            "config": tiny_config(method="bce"),
            "tmp_dir": str(tmp_path),
            "build_cascade": build_cascade,
        },
    )
