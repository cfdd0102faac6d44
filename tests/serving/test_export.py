"""``python -m dftopk_cascade.serving.export`` on the real cascade of ``models/``: a model folder
and converted data in, three TF Serving SavedModels out whose scores equal the Keras model's."""

import os

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.models.cascade import build_cascade, load_cascade
from dftopk_cascade.models.config import CascadeConfig
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import GrpcBackend, LocalBackend
from dftopk_cascade.serving.cascade_inference import Cascade, CascadeSizes
from dftopk_cascade.serving.export import saved_models
from dftopk_cascade.serving.export.graph_ops import serving_problems
from dftopk_cascade.serving.export.item_corpus import collect_item_corpus, distinct_items
from dftopk_cascade.serving.export.publish import VersionExistsError
from dftopk_cascade.serving.export.saved_models import export_cascade
from dftopk_cascade.serving.export.toy_servables import toy_cascade, toy_corpus, toy_request
from dftopk_cascade.serving.export.warmup import read_warmup_requests
from dftopk_cascade.serving.saved_model_proto import signature_defaults
from tensorflow_serving.apis import model_pb2

from tests.pipelines.recflow_fixtures import convert_small, simulate_small
from tests.serving.tf_serving_stand_in import TFServingStandIn

TINY_LAYERS = {
    "embedding_dim": 4,
    "tower_units": (16, 8),
    "prerank_units": (16, 1),
    "rank_units": (16, 1),
    "rank_cross_layers": 1,
    "attention_units": 8,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Converted simulated data, a model folder (config + weights) and its export."""
    root = tmp_path_factory.mktemp("cascade")
    data_dir = str(root / "tfrec")
    convert_small(simulate_small(str(root / "recflow")), data_dir)
    config = CascadeConfig.from_schema(read_data_schema(data_dir), **TINY_LAYERS)
    model_dir = ModelDir(str(root / "model"))
    model = build_cascade(config)
    model.set_weights(
        [np.random.default_rng(i).normal(size=w.shape) for i, w in enumerate(model.get_weights())]
    )
    model_dir.save_weights(model)
    config.save(model_dir.config_path)
    export_dir = str(root / "export")
    arguments = ["--model-dir", model_dir.root, "--data", data_dir, "--export-dir", export_dir]
    written = saved_models.main(
        [*arguments, "--retrieval-keep", "60", "--prerank-keep", "20", "--rank-keep", "5"]
    )
    return {
        "data_dir": data_dir,
        "model_dir": model_dir.root,
        "export_dir": export_dir,
        "written": written,
        "model": load_cascade(model_dir.root),
        "backend": LocalBackend(export_dir),
    }


def _request(batch: int, candidates: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seq_mask = np.arange(50)[None, :] >= rng.integers(0, 50, size=(batch, 1))
    seq_mask[0] = False
    return {
        sig.CONTEXT: rng.integers(1, 9, (batch, 3)).astype(np.int32),
        sig.USER: rng.integers(1, 200, (batch, 5)).astype(np.int32) % [200, 200, 5, 10, 36],
        sig.SEQ: (rng.integers(1, 7, (batch, 50, 5)) * seq_mask[..., None]).astype(np.int32),
        sig.SEQ_MASK: seq_mask,
        sig.ITEMS: rng.integers(1, 7, (batch, candidates, 8)).astype(np.int32),
        sig.ITEM_MASK: np.ones((batch, candidates), bool),
    }


def test_the_three_models_are_written_as_version_1(trained):
    export_dir = trained["export_dir"]
    assert trained["written"] == {
        name: os.path.join(export_dir, name, "1") for name in sig.MODEL_NAMES
    }
    for path in trained["written"].values():
        assert serving_problems(path) == []
    defaults = {name: signature_defaults(path) for name, path in trained["written"].items()}
    assert defaults == {sig.RETRIEVAL: {"top_n": 60}, sig.PRERANK: {"k": 20}, sig.RANK: {"k": 5}}


@pytest.mark.parametrize("name", [sig.PRERANK, sig.RANK])
def test_served_scores_equal_the_keras_models(trained, name):
    features = _request(3, 25)
    features[sig.ITEM_MASK][1, 20:] = False
    keras_scores = (
        trained["model"]
        .stage_outputs({key: tf.constant(value) for key, value in features.items()})[name]
        .numpy()
    )
    served = trained["backend"].predict(name, features | {sig.K: np.int32(7)})
    real = features[sig.ITEM_MASK]
    np.testing.assert_allclose(served[sig.SCORES][real], keras_scores[real], rtol=1e-5, atol=1e-6)
    assert (served[sig.SCORES][~real] == np.finfo(np.float32).min).all()
    np.testing.assert_array_equal(served[sig.SELECTED].sum(axis=1), [7, 7, 7])


def test_retrieval_is_the_exact_top_n_of_the_two_towers_over_the_corpus(trained):
    model = trained["model"]
    corpus = collect_item_corpus(trained["data_dir"])
    features = _request(2, 1, seed=3)
    request = {key: features[key] for key in sig.REQUEST_SPECS}
    query = model.retrieval.query_embeddings(
        {key: tf.constant(value) for key, value in request.items()}
    ).numpy()
    scores = query @ model.retrieval.item_embeddings(tf.constant(corpus)).numpy().T
    best = np.argsort(-scores, axis=1, kind="stable")[:, :40]

    served = trained["backend"].predict(sig.RETRIEVAL, request | {sig.TOP_N: np.int32(40)})
    np.testing.assert_array_equal(served[sig.ITEM_FEATURES], corpus[served[sig.ITEM_IDS]])
    np.testing.assert_allclose(
        served[sig.SCORES], np.take_along_axis(scores, best, 1), rtol=1e-4, atol=1e-5
    )
    assert (np.diff(served[sig.SCORES], axis=1) <= 0).all()


def test_export_refuses_to_overwrite_a_version(trained):
    export_dir = trained["export_dir"]
    arguments = ["--model-dir", trained["model_dir"], "--data", trained["data_dir"]]
    stamp = os.path.getmtime(os.path.join(export_dir, "rank", "1", "saved_model.pb"))
    with pytest.raises(VersionExistsError, match="never overwrites"):
        saved_models.main([*arguments, "--export-dir", export_dir, "--version", "1"])
    assert os.path.getmtime(os.path.join(export_dir, "rank", "1", "saved_model.pb")) == stamp
    assert all(os.listdir(os.path.join(export_dir, name)) == ["1"] for name in sig.MODEL_NAMES)


def test_bad_default_sizes_are_refused_before_loading(trained, tmp_path):
    arguments = ["--model-dir", "/nonexistent", "--data", "/nonexistent"]
    with pytest.raises(ValueError, match="rank_keep <= prerank_keep <= retrieval_keep"):
        saved_models.main([*arguments, "--export-dir", str(tmp_path), "--prerank-keep", "500"])


def test_a_failed_export_removes_the_versions_it_wrote(trained, tmp_path, monkeypatch):
    original = saved_models.stage_version

    def fail_on_prerank(export_dir, name, *args):
        if name == sig.PRERANK:
            raise OSError("disk full")
        return original(export_dir, name, *args)

    monkeypatch.setattr(saved_models, "stage_version", fail_on_prerank)
    corpus = collect_item_corpus(trained["data_dir"])[:50]
    with pytest.raises(OSError, match="disk full"):
        saved_models.export_cascade(trained["model"], corpus, str(tmp_path), version=2)
    assert not any(os.path.exists(tmp_path / name / "2") for name in sig.MODEL_NAMES)
    assert not os.path.exists(tmp_path / sig.RETRIEVAL)  # the staged retrieval, and its folder


def test_unknown_ids_are_served(trained):
    features = _request(2, 6, seed=9)
    features[sig.USER][0] = [10**9, 10**8, 77, 10**5, 2**31 - 1]
    features[sig.SEQ][1, -1] = 10**7
    features[sig.ITEMS][0, 2] = 10**6
    backend = trained["backend"]
    request = {key: features[key] for key in sig.REQUEST_SPECS}
    retrieved = backend.predict(sig.RETRIEVAL, request | {sig.TOP_N: np.int32(5)})
    ranked = backend.predict(sig.RANK, features | {sig.K: np.int32(2)})
    assert np.isfinite(retrieved[sig.SCORES]).all() and np.isfinite(ranked[sig.SCORES]).all()


def test_the_corpus_has_one_row_per_video(trained):
    corpus = collect_item_corpus(trained["data_dir"])
    assert corpus.dtype == np.int32 and corpus.shape[1] == 8
    assert (np.diff(corpus[:, 0]) > 0).all() and corpus.min() >= 1
    with pytest.raises(ValueError, match="non-empty"):
        distinct_items(np.zeros([0, 8]))


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        saved_models.main(["--help"])
    text = capsys.readouterr().out
    flags = ("--model-dir", "--data", "--days", "--export-dir", "--version", "--retrieval-keep")
    for flag in (*flags, "--prerank-keep", "--rank-keep"):
        assert flag in text


def test_a_two_stage_cascade_is_refused_with_the_reason() -> None:
    from dftopk_cascade.serving.export.toy_servables import toy_cascade_config, toy_corpus

    config = CascadeConfig.from_dict(toy_cascade_config().to_dict() | {"rank_stage": False})
    with pytest.raises(ValueError, match="trained without a ranking stage"):
        saved_models.cascade_servables(build_cascade(config), toy_corpus())


def test_export_writes_a_warm_up_request_per_model_that_tf_serving_replays(tmp_path):
    """The stand-in replays each model's records on load, as TF Serving does; the first cascade
    call then runs no graph for the first time (the session's executors exist already)."""
    sizes = CascadeSizes(retrieval_keep=30, prerank_keep=12, rank_keep=4)
    export_cascade(toy_cascade(), toy_corpus(), str(tmp_path), sizes=sizes)
    for name in sig.MODEL_NAMES:
        (record,) = read_warmup_requests(str(tmp_path / name / "1"))
        request = record.predict_log.request
        assert set(request.inputs) == set(sig.input_specs(name))
    with TFServingStandIn(str(tmp_path)) as stand_in:
        served = {
            name: stand_in.core.servable(model_pb2.ModelSpec(name=name)) for name in sig.MODEL_NAMES
        }
        assert {name: version.warmup_replayed for name, version in served.items()} == {
            name: 1 for name in sig.MODEL_NAMES
        }
        assert {name: version.cold_runs for name, version in served.items()} == {
            name: 1 for name in sig.MODEL_NAMES
        }
        backend = GrpcBackend(stand_in.grpc_target)
        try:
            result = Cascade(backend, *sizes).recommend(toy_request(2))
        finally:
            backend.close()
        assert result.item_ids.shape == (2, 4)
        assert stand_in.core.predict_calls == 3
        assert {name: version.cold_runs for name, version in served.items()} == {
            name: 1 for name in sig.MODEL_NAMES
        }  # the first real calls found every model warm
