"""The pipeline benchmark: its stand-in model has the protocol's DIN size, its examples run."""

import doctest

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.input import make_dataset

from benchmarks import bench_pipeline
from tests.pipelines.recflow_fixtures import convert_small, simulate_small


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    root = simulate_small(str(tmp_path_factory.mktemp("sim")))
    out = str(tmp_path_factory.mktemp("tfrec"))
    convert_small(root, out)
    return out


def test_stand_in_has_the_din_mlp_sizes(data_dir):
    features, labels = next(iter(make_dataset(data_dir, 8, negatives_per_request=3)))
    model = bench_pipeline.DinStandIn(read_data_schema(data_dir))
    scores = model(features)
    assert scores.shape == (8, 43)
    kernels = [layer.kernel.shape for layer in [*model.mlp, model.score]]
    assert kernels == [(21 * 8, 128), (128, 128), (128, 32), (32, 1)]
    step = bench_pipeline.training_step(model)
    first = float(step(features, labels))
    assert np.isfinite(first)
    assert float(step(features, labels)) < first  # Adam lowers the loss on a fixed batch


def test_docstring_examples_run(data_dir, tmp_path):
    features, labels = next(iter(make_dataset(data_dir, 8, shuffle=False)))
    result = doctest.testmod(
        bench_pipeline,
        extraglobs={
            "tf": tf,
            "data_dir": data_dir,
            "features": features,
            "labels": labels,
            "tmp_dir": str(tmp_path),
        },
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0
