"""score_ties finds a collapsed stage: one distinct score per request, no spread."""

import numpy as np
from dftopk_cascade.models.cascade import build_cascade

from experiments.score_ties import score_ties
from tests.models.batches import synthetic_batch, tiny_config


def test_a_collapsed_prerank_tower_has_one_distinct_score_and_retrieval_is_untouched() -> None:
    features, _ = synthetic_batch(batch_size=3, negatives=20, seed=1)
    model = build_cascade(tiny_config(method="bce"))
    trained = score_ties(model, features)
    for variable in model.prerank.trainable_variables:
        variable.assign(np.zeros(variable.shape, variable.dtype.as_numpy_dtype))
    collapsed = score_ties(model, features)
    assert collapsed["prerank"]["distinct"] == 1.0 and collapsed["prerank"]["std"] == 0.0
    assert trained["prerank"]["distinct"] > 10 and trained["prerank"]["std"] > 0.0
    assert collapsed["retrieval"] == trained["retrieval"]
    assert trained["retrieval"]["distinct"] <= trained["retrieval"]["items"]
