"""Shared fixtures of the reliability tests: the tiny converted dataset of the model tests, and a
model folder "trained" on it."""

import numpy as np
import pytest
from dftopk_cascade.models.cascade import build_cascade
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.pipelines.data_schema import read_data_schema

from tests.models.conftest import make_tiny_data
from tests.serving.test_export import TINY_LAYERS


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """A converted TFRecord folder: 2 days x 120 simulated requests, 2 shards per day."""
    return make_tiny_data(str(tmp_path_factory.mktemp("tiny_data")))


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory, tiny_data):
    """A model folder (tiny config, random weights, data.json) trained "on" ``tiny_data``."""
    root = tmp_path_factory.mktemp("model")
    config = CascadeConfig.from_schema(read_data_schema(tiny_data), **TINY_LAYERS)
    layout = ModelDir(str(root / "model"))
    model = build_cascade(config)
    model.set_weights(
        [np.random.default_rng(i).normal(size=w.shape) for i, w in enumerate(model.get_weights())]
    )
    layout.save_weights(model)
    config.save(layout.config_path)
    layout.record_data(tiny_data)
    return layout.root, tiny_data
