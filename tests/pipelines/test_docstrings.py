"""Every docstring example in pipelines/ runs and prints what it says."""

import os

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade import pipelines
from dftopk_cascade.pipelines.input import make_dataset
from dftopk_cascade.pipelines.recflow import read_id_counts
from dftopk_cascade.pipelines.recflow_day import load_day
from dftopk_cascade.pipelines.request_features import request_features
from dftopk_cascade.pipelines.simulator.simulated_cascade import StageModels, run_cascade
from dftopk_cascade.pipelines.simulator.simulated_world import SimulatedWorld, scaled_world_size

from tests.docstring_examples import assert_examples_pass, package_modules
from tests.pipelines.recflow_fixtures import convert_small, simulate_small

MODULES = package_modules(pipelines)


@pytest.fixture(scope="module")
def shared_globals(tmp_path_factory) -> dict:
    """Objects the examples use: a tiny simulated RecFlow root, its conversion, a world."""
    root = simulate_small(str(tmp_path_factory.mktemp("sim")))
    data_dir = str(tmp_path_factory.mktemp("tfrec"))
    convert_small(root, data_dir)
    world = SimulatedWorld.create(scaled_world_size(1000), np.random.default_rng(0), 10**9)
    models = StageModels.create(world.size.items, np.random.default_rng(1))
    day = load_day(root, "2024-01-13")
    features, labels = next(iter(make_dataset(data_dir, 8, shuffle=False)))
    return {
        "np": np,
        "tf": tf,
        "recflow_root": root,
        "data_dir": data_dir,
        "world": world,
        "models": models,
        "outcome": run_cascade(
            world, models, np.arange(3), np.array([9, 12, 21]), np.random.default_rng(2)
        ),
        "day": day,
        "id_counts": read_id_counts(root),
        "stored_features": request_features(day, read_id_counts(root))[0],
        "features": features,
        "labels": labels,
    }


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, shared_globals, tmp_path):
    os.makedirs(tmp_path / "work")
    assert_examples_pass(module_name, {**shared_globals, "tmp_dir": str(tmp_path / "work")})
