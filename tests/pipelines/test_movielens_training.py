"""MovieLens through the unchanged training and evaluation: a round trip on the tiny fixture."""

import json
import os

import numpy as np
from dftopk_cascade.models.cascade import load_cascade
from dftopk_cascade.models.training.data import evaluation_dataset
from dftopk_cascade.models.training.train import TrainOptions, run_training
from dftopk_cascade.pipelines.movielens.convert import CONVERSION_FILE, convert_movielens

from tests.pipelines.movielens_fixture import fixture_wheel

METRIC_KEYS = {
    "joint_recall",
    "recall@10@20",
    "recall@10@30",
    "ndcg@10",
    "kendall_tau",
    "rank_ndcg@10",
}


def test_a_converted_fixture_trains_and_evaluates(tmp_path) -> None:
    path, digest = fixture_wheel(str(tmp_path))
    data_dir = str(tmp_path / "tfrec")
    convert_movielens(path, data_dir, windows=4, expected_sha256=digest, progress=False)
    splits = json.load(open(os.path.join(data_dir, CONVERSION_FILE)))["splits"]
    model_dir = str(tmp_path / "model")
    options = TrainOptions(
        data_dir,
        model_dir,
        method="dftopk",
        batch_size=4,
        steps_per_epoch=3,
        negatives=4,
        train_days=tuple(splits["train"]),
        eval_days=tuple(splits["test"]),
        eval_batch_size=8,
        eval_negatives=8,
        embedding_dim=4,
        strategy="cpu",
        run_eagerly=True,
        verbose=0,
    )
    result = run_training(options)
    assert np.isfinite(result.history["loss"]).all()
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert METRIC_KEYS <= set(metrics)
    assert not any(key.startswith("preference") for key in metrics)  # real data: no preference
    for key in METRIC_KEYS - {"kendall_tau"}:
        assert 0.0 <= metrics[key] <= 1.0, key
    evaluation = metrics["evaluation"]
    assert evaluation["days"] == splits["test"]
    assert evaluation["candidates_per_request"] == 40 + 8
    features, _ = next(iter(evaluation_dataset(data_dir, splits["test"], 8, 8, seed=0)))
    served, trained = load_cascade(model_dir)(features), result.model(features)
    for stage in ("retrieval", "prerank", "rank"):
        np.testing.assert_allclose(served[stage], trained[stage], rtol=1e-5, atol=1e-6)
