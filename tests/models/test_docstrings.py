"""Every docstring example in models/ runs and prints what it says."""

import numpy as np
import pytest
import tensorflow as tf

import models
from models.cascade import build_cascade
from models.config import CascadeConfig
from models.tf_keras import keras
from pipelines.input import load_schema
from tests.docstring_examples import assert_examples_pass, package_modules
from tests.models.batches import COLUMNS, TINY_LAYERS, VOCAB_SIZES, synthetic_batch, tiny_config

MODULES = package_modules(models)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str, tmp_path, tiny_data: str) -> None:
    features, labels = synthetic_batch(batch_size=4)
    globs = {
        "tf": tf,
        "np": np,
        "keras": keras,
        "features": features,
        "labels": labels,
        "vocab_sizes": VOCAB_SIZES,
        "columns": COLUMNS,
        # Pointwise BCE: the fastest method to build, so that the examples stay quick.
        "config": tiny_config(method="bce"),
        "tmp_dir": str(tmp_path),
        "data_dir": tiny_data,
        "build_cascade": build_cascade,
        "data_config": CascadeConfig.from_schema(load_schema(tiny_data), **TINY_LAYERS),
    }
    assert_examples_pass(module_name, globs)
