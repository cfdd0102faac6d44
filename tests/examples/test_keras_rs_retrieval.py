"""examples.keras_rs_retrieval: it learns, exports with model.export() and TF Serving answers it.

Keras 3 only (keras-rs needs it): scripts/test.sh runs this folder under TF_USE_LEGACY_KERAS=0;
the tf-keras run skips it.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import metrics_numpy
from dftopk_tf.keras_compat import IS_KERAS_3

if not IS_KERAS_3:
    pytest.skip("the keras-rs example runs on Keras 3 only", allow_module_level=True)

from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends import BackendRequestError, GrpcBackend, RestBackend
from dftopk_cascade.serving.export.publish import VersionExistsError
from dftopk_cascade.serving.saved_model_proto import signature_defaults

from examples import keras_rs_retrieval as example
from examples import keras_rs_servable, keras_rs_towers, synthetic_catalogue
from examples.keras_rs_servable import RetrievalServable, export_servable, serving_request
from examples.keras_rs_towers import CandidateTower, QueryTower, TwoTowerRetrieval
from examples.synthetic_catalogue import SyntheticCatalogue
from tests.docstring_examples import assert_examples_pass
from tests.serving.tf_serving_stand_in import TFServingStandIn


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("keras_rs_export"))


@pytest.fixture(scope="module")
def result(export_dir: str) -> example.ExampleResult:
    return example.train_and_export(export_dir, epochs=4, requests=4096)


@pytest.fixture(scope="module")
def stand_in(result: example.ExampleResult, export_dir: str):
    with TFServingStandIn(export_dir) as server:
        yield server


def test_dftopk_training_learns_the_hidden_preference(result: example.ExampleResult) -> None:
    before, after = result.untrained, result.metrics
    # A random model finds about m / items = 50 / 400 of the true top 10.
    assert before["recall_at_10_at_50"] < 0.25
    assert after["recall_at_10_at_50"] > 0.6
    assert after["ndcg_at_10"] > before["ndcg_at_10"] + 0.05


def test_export_has_the_retrieval_signature_of_the_contract(result: example.ExampleResult) -> None:
    signature = tf.saved_model.load(result.export_path).signatures[sig.SIGNATURE_NAME]
    inputs = signature.structured_input_signature[1]
    assert sorted(inputs) == sorted(sig.RETRIEVAL_SPECS)
    for name, spec in sig.RETRIEVAL_SPECS.items():
        assert inputs[name].dtype == spec.dtype
        assert inputs[name].shape.as_list() == spec.shape.as_list()
    outputs = signature.structured_outputs
    dtypes = {name: value.dtype for name, value in outputs.items()}
    assert dtypes == sig.OUTPUT_DTYPES[sig.RETRIEVAL]


@pytest.mark.parametrize("backend_kind", ["rest", "grpc"])
def test_rest_and_grpc_backends_answer_as_the_model_in_process(
    result: example.ExampleResult, stand_in: TFServingStandIn, backend_kind: str
) -> None:
    backend = (
        RestBackend(stand_in.rest_url, timeout_s=30.0)
        if backend_kind == "rest"
        else GrpcBackend(stand_in.grpc_target, timeout_s=30.0)
    )
    answer = example.ask_backend(backend, result.request)
    expected = result.expected
    assert answer[sig.ITEM_IDS].shape == (4, 20)
    np.testing.assert_array_equal(answer[sig.ITEM_IDS], expected[sig.ITEM_IDS])
    np.testing.assert_array_equal(answer[sig.ITEM_FEATURES], expected[sig.ITEM_FEATURES])
    np.testing.assert_allclose(answer[sig.SCORES], expected[sig.SCORES], rtol=1e-5, atol=1e-5)
    # Best first, and the features are the catalogue rows of the ids (video id = row + 1).
    assert (np.diff(answer[sig.SCORES], axis=1) <= 0).all()
    np.testing.assert_array_equal(answer[sig.ITEM_FEATURES][..., 0], answer[sig.ITEM_IDS] + 1)


def test_top_n_beyond_the_catalogue_returns_the_whole_catalogue(
    result: example.ExampleResult, stand_in: TFServingStandIn
) -> None:
    request = result.request | {sig.TOP_N: np.int32(10_000)}
    answer = example.ask_backend(GrpcBackend(stand_in.grpc_target, timeout_s=30.0), request)
    assert answer[sig.ITEM_IDS].shape == (4, 400)
    assert sorted(answer[sig.ITEM_IDS][0].tolist()) == list(range(400))


def test_export_never_overwrites_a_version(result: example.ExampleResult, export_dir: str) -> None:
    catalogue = SyntheticCatalogue.create(np.random.default_rng(3), users=10, items=30)
    model = TwoTowerRetrieval(
        QueryTower(catalogue.user_vocabulary(), catalogue.item_vocabulary()),
        CandidateTower(catalogue.item_vocabulary()),
    )
    servable = RetrievalServable(model.query_tower, model.candidate_tower, catalogue.items)
    before = os.listdir(os.path.dirname(result.export_path))
    with pytest.raises(VersionExistsError, match="never overwrites"):
        export_servable(servable, export_dir, version=1)
    assert os.listdir(os.path.dirname(result.export_path)) == before


def test_evaluation_leaves_out_the_history_and_matches_the_numpy_metrics() -> None:
    rng = np.random.default_rng(5)
    catalogue = SyntheticCatalogue.create(rng, users=12, items=80)
    log = catalogue.requests(rng, count=6)
    model = TwoTowerRetrieval(
        QueryTower(catalogue.user_vocabulary(), catalogue.item_vocabulary()),
        CandidateTower(catalogue.item_vocabulary()),
    )
    scores = model.catalogue_scores(log, catalogue.items).numpy()
    labels = catalogue.relevance(log["user"][:, 0] - 1)
    for row in range(len(labels)):
        history = log["seq"][row, log["seq_mask"][row], 0] - 1
        labels[row, history] = -1.0  # padding: a seen item is not a candidate
    got = example.evaluate(model, catalogue, log)
    assert got["recall_at_10_at_50"] == pytest.approx(
        metrics_numpy.recall_at_k_m(labels, scores, 10, 50), rel=1e-5
    )
    assert got["ndcg_at_10"] == pytest.approx(metrics_numpy.ndcg_at_k(labels, scores, 10), rel=1e-5)


def test_configs_round_trip() -> None:
    catalogue = SyntheticCatalogue.create(np.random.default_rng(4), users=10, items=30)
    query = QueryTower(catalogue.user_vocabulary(), catalogue.item_vocabulary(), dim=8)
    candidate = CandidateTower(catalogue.item_vocabulary(), dim=8)
    for layer in (
        query,
        candidate,
        TwoTowerRetrieval(query, candidate, tau=0.25),
        RetrievalServable(query, candidate, catalogue.items),
    ):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config
    rebuilt = TwoTowerRetrieval.from_config(
        TwoTowerRetrieval(query, candidate, tau=0.25).get_config()
    )
    assert rebuilt.tau == 0.25 and rebuilt.query_tower.dim == 8


def test_docstring_examples_run(
    result: example.ExampleResult, stand_in: TFServingStandIn, tmp_path
) -> None:
    rng = np.random.default_rng(0)
    catalogue = SyntheticCatalogue.create(rng, users=20, items=60)
    log_batch = catalogue.requests(rng, count=8)
    vocabulary = catalogue.item_vocabulary()
    model = TwoTowerRetrieval(
        QueryTower(catalogue.user_vocabulary(), vocabulary),
        CandidateTower(vocabulary),
    )
    model(log_batch)
    servable = RetrievalServable(model.query_tower, model.candidate_tower, catalogue.items)
    servable(serving_request(log_batch, top_n=5))
    assert_examples_pass(synthetic_catalogue.__name__)
    names = {
        "catalogue": catalogue,
        "log_batch": log_batch,
        "model": model,
        "servable": servable,
        "result": result,
        "rest_url": stand_in.rest_url,
        "tmp_dir": str(tmp_path),
    }
    for module in (keras_rs_towers, keras_rs_servable, example):
        assert_examples_pass(module.__name__, names)


def test_the_export_has_no_top_n_default_so_a_request_without_it_is_refused(
    result: example.ExampleResult, stand_in: TFServingStandIn
) -> None:
    assert signature_defaults(result.export_path) == {}
    request = {name: value for name, value in result.request.items() if name != sig.TOP_N}
    with pytest.raises(BackendRequestError, match="top_n"):
        example.ask_backend(RestBackend(stand_in.rest_url, timeout_s=30.0), request)
