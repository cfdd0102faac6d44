"""A cascade whose pre-ranking model uses DIN's attention exports and serves the Keras scores."""

import dataclasses

import numpy as np
import tensorflow as tf
from dftopk_cascade.models.cascade import build_cascade
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import LocalBackend
from dftopk_cascade.serving.export.graph_ops import serving_problems
from dftopk_cascade.serving.export.saved_models import export_cascade
from dftopk_cascade.serving.export.toy_servables import TOY_ID_COUNT, toy_cascade_config, toy_corpus


def test_a_din_prerank_exports_and_serves_the_keras_scores(tmp_path) -> None:
    rng = np.random.default_rng(5)
    seq_mask = np.arange(50)[None, :] < rng.integers(1, 50, size=(3, 1))
    seq_mask[0] = False  # a request without behaviours
    features = {
        sig.CONTEXT: rng.integers(1, 9, (3, 3)),
        sig.USER: rng.integers(1, TOY_ID_COUNT + 1, (3, 5)),
        sig.SEQ: rng.integers(1, TOY_ID_COUNT + 1, (3, 50, 5)) * seq_mask[..., None],
        sig.SEQ_MASK: seq_mask,
        sig.ITEMS: rng.integers(1, TOY_ID_COUNT + 1, (3, 12, 8)),
        sig.ITEM_MASK: np.ones((3, 12), bool),
    }
    features = {
        name: value if value.dtype == bool else value.astype(np.int32)
        for name, value in features.items()
    }
    model = build_cascade(dataclasses.replace(toy_cascade_config(), prerank_attention="din"))
    tensors = {name: tf.constant(value) for name, value in features.items()}
    keras_scores = model.stage_outputs(tensors)[sig.PRERANK].numpy()

    written = export_cascade(model, toy_corpus(), str(tmp_path), version=1)
    assert serving_problems(written[sig.PRERANK]) == []
    served = LocalBackend(str(tmp_path)).predict(sig.PRERANK, features | {sig.K: np.int32(4)})
    np.testing.assert_allclose(served[sig.SCORES], keras_scores, rtol=1e-5, atol=1e-6)
    assert np.ptp(keras_scores[1]) > 0  # the candidates are told apart
