"""The TF Serving stand-in answers as ``tensorflow_model_server`` does: codes and messages pinned.

The expected messages are TF Serving's and TensorFlow's own (json_tensor.cc, predict_util.cc,
basic_manager.cc, http_rest_api_handler.cc, cc/saved_model/util.cc, FunctionCallFrame::SetArgs),
so a test that passes here fails the same way against the real server.
"""

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends.tf_serving_grpc import tf_serving_channel
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.serving.stand_in_cascade import DEFAULT_SIZES, random_request
from tests.serving.stand_in_model_server import (
    MODELS_CONFIG,
    aspired_versions,
    read_model_config,
)
from tests.serving.tf_serving_stand_in import TFServingStandIn

TOP_N_FEED_INDEX = 3  # serving_default_top_n:0 among the sorted feed names of retrieval


@pytest.fixture(scope="module")
def stub(tf_serving):
    channel = grpc.insecure_channel(tf_serving.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _retrieval_inputs() -> dict[str, np.ndarray]:
    return random_request(2, seed=5)


def _grpc_request(model: str, inputs: dict, version: int | None = None, signature: str = ""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def _grpc_error(stub, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=30)
    return raised.value.code(), raised.value.details()


def _post(url: str, body) -> tuple[int, dict]:
    response = requests.post(url, json=body, timeout=30)
    return response.status_code, response.json()


def _json_inputs(inputs: dict) -> dict:
    return {name: np.asarray(value).tolist() for name, value in inputs.items()}


def test_rest_needs_every_named_input(tf_serving):
    url = f"{tf_serving.rest_url}/v1/models/retrieval:predict"
    status, answer = _post(url, {"inputs": _json_inputs(_retrieval_inputs())})
    assert (status, answer) == (400, {"error": "Missing named input: top_n in 'inputs' object."})
    status, answer = _post(url, {"inputs": _json_inputs(_retrieval_inputs()) | {"top_n": 7}})
    assert status == 200 and np.asarray(answer["outputs"][sig.ITEM_IDS]).shape == (2, 7)


def test_grpc_feeds_the_signature_defaults(stub):
    response = stub.Predict(_grpc_request(sig.RETRIEVAL, _retrieval_inputs()), timeout=30)
    assert tf.make_ndarray(response.outputs[sig.ITEM_IDS]).shape == (2, DEFAULT_SIZES[0])
    assert response.model_spec.version.value == 1


def test_grpc_refuses_a_dtype_the_signature_does_not_take(stub):
    inputs = _retrieval_inputs() | {sig.TOP_N: np.int64(5)}
    assert _grpc_error(stub, _grpc_request(sig.RETRIEVAL, inputs)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Expects arg[{TOP_N_FEED_INDEX}] to be int32 but int64 is provided",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (sig.TOP_N, 3.5, "JSON Value: 3.5 Type: Number is not of expected type: int32"),
        (sig.TOP_N, 3.0, "JSON Value: 3.0 Type: Number is not of expected type: int32"),
        (sig.TOP_N, True, "JSON Value: true Type: True is not of expected type: int32"),
        (sig.SEQ_MASK, [[1] * 50] * 2, "JSON Value: 1 Type: Number is not of expected type: bool"),
    ],
)
def test_rest_never_casts_json_values(tf_serving, name, value, message):
    inputs = _json_inputs(_retrieval_inputs()) | {sig.TOP_N: 5, name: value}
    status, answer = _post(f"{tf_serving.rest_url}/v1/models/retrieval:predict", {"inputs": inputs})
    assert (status, answer) == (400, {"error": message})


def test_a_version_not_served_is_not_found(tf_serving, stub):
    request = _grpc_request(sig.RANK, {}, version=7)
    message = "Servable not found for request: Specific(rank, 7)"
    assert _grpc_error(stub, request) == (grpc.StatusCode.NOT_FOUND, message)
    status, answer = _post(f"{tf_serving.rest_url}/v1/models/rank/versions/7:predict", {})
    assert (status, answer) == (404, {"error": message})


def test_a_loading_model_is_not_found(tf_serving, stub):
    tf_serving.reload(sig.RANK, 60.0)
    try:
        assert _grpc_error(stub, _grpc_request(sig.RANK, {})) == (
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(rank)",
        )
        status, _ = _post(f"{tf_serving.rest_url}/v1/models/rank:predict", {"inputs": {}})
        assert status == 404
    finally:
        tf_serving.reload(sig.RANK, 0.0)


def test_an_unknown_signature_is_refused(tf_serving, stub):
    request = _grpc_request(sig.RETRIEVAL, _retrieval_inputs(), signature="scores")
    assert _grpc_error(stub, request) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "scores" not found.',
    )
    status, answer = _post(
        f"{tf_serving.rest_url}/v1/models/retrieval:predict",
        {"signature_name": "scores", "inputs": {}},
    )
    assert (status, answer) == (
        400,
        {"error": 'Serving signature name: "scores" not found in signature def'},
    )


def test_grpc_names_missing_and_unknown_inputs(stub):
    inputs = _retrieval_inputs()
    del inputs[sig.USER]
    assert _grpc_error(stub, _grpc_request(sig.RETRIEVAL, inputs)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Signature input alias: user(feed name: serving_default_user:0) not found in request "
        "and no default value provided. Inputs expected to be in the request "
        "{context,seq,seq_mask}, or default input alias set: top_n",
    )
    inputs = _retrieval_inputs() | {"k": np.int32(3)}
    assert _grpc_error(stub, _grpc_request(sig.RETRIEVAL, inputs)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Inputs contains invalid name. Used request inputs: context,seq,seq_mask,user, "
        "request input: context,k,seq,seq_mask,user",
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        (
            "post",
            "/v1/models/rank:predicts",
            400,
            "Malformed request: POST /v1/models/rank:predicts",
        ),
        ("post", "/v1/models/rank/version/1:predict", 400, None),
        ("get", "/v1/models/rank/metadata/extra", 400, None),
        ("post", "/v2/models/rank:predict", 404, None),
    ],
)
def test_malformed_urls(tf_serving, method, path, status, error):
    response = requests.request(method, tf_serving.rest_url + path, json={}, timeout=30)
    assert response.status_code == status
    if status == 400:
        expected = error or f"Malformed request: {method.upper()} {path}"
        assert response.json() == {"error": expected}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    ],
)
def test_server_failures_have_tf_servings_http_status(tf_serving, stub, code, status):
    tf_serving.fail_next(2, code)
    assert _grpc_error(stub, _grpc_request(sig.RETRIEVAL, _retrieval_inputs()))[0] == code
    inputs = _json_inputs(_retrieval_inputs()) | {sig.TOP_N: 5}
    url = f"{tf_serving.rest_url}/v1/models/retrieval:predict"
    assert _post(url, {"inputs": inputs})[0] == status
    assert _post(url, {"inputs": inputs})[0] == 200


def test_rest_metadata_carries_the_signature_and_its_defaults(tf_serving, stub):
    answer = requests.get(f"{tf_serving.rest_url}/v1/models/rank/metadata", timeout=30).json()
    assert answer["model_spec"]["name"] == "rank" and answer["model_spec"]["version"] == "1"
    signature = answer["metadata"]["signature_def"]["signature_def"][sig.SIGNATURE_NAME]
    assert set(signature["inputs"]) == set(sig.SCORER_SPECS)
    assert signature["inputs"]["k"]["dtype"] == "DT_INT32"
    assert signature["defaults"]["k"]["int_val"] == [DEFAULT_SIZES[2]]
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = sig.RANK
    assert stub.GetModelMetadata(request, timeout=30).model_spec.version.value == 1


class _Totals(tf.Module):
    """A two-input model whose outputs show which version answered."""

    def __init__(self, version: int):
        super().__init__()
        self.version = tf.constant(float(version))

    @tf.function(
        input_signature=[tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([None], tf.int32)]
    )
    def serve(self, x, n):
        return {"total": tf.reduce_sum(x, axis=1) * self.version, "next": n + 1}


def _export_totals(root, version: int) -> None:
    module = _Totals(version)
    tf.saved_model.save(module, str(root / "totals" / str(version)), signatures=module.serve)


@pytest.fixture(scope="module")
def totals_server(tmp_path_factory):
    """Versions 1 and 2 of ``totals`` under ``latest {num_versions: 1}``."""
    root = tmp_path_factory.mktemp("totals")
    for version in (1, 2):
        _export_totals(root, version)
    config = root / "models.config"
    config.write_text(
        'model_config_list { config { name: "totals" base_path: "/models/totals" '
        'model_platform: "tensorflow" model_version_policy { latest { num_versions: 1 } } } }'
    )
    with TFServingStandIn(str(root), str(config)) as stand_in:
        yield root, stand_in


def test_only_the_newest_version_is_served(totals_server):
    root, stand_in = totals_server
    rows = {"instances": [{"x": [1.0, 2.0, 3.0], "n": 4}]}
    url = f"{stand_in.rest_url}/v1/models/totals"
    assert _post(f"{url}:predict", rows) == (200, {"predictions": [{"next": 5, "total": 12.0}]})
    assert _post(f"{url}/versions/1:predict", rows) == (
        404,
        {"error": "Servable not found for request: Specific(totals, 1)"},
    )
    _export_totals(root, 3)
    stand_in.core.poll()
    assert stand_in.core.served_versions("totals") == [3]
    assert _post(f"{url}:predict", rows)[1]["predictions"][0]["total"] == 18.0
    assert _post(f"{url}/versions/2:predict", rows)[0] == 404


def test_rest_row_format(totals_server):
    _, stand_in = totals_server
    url = f"{stand_in.rest_url}/v1/models/totals:predict"
    rows = [{"x": [1.0, 1.0, 1.0], "n": 0}, {"x": [0.5, 0.0, 0.0], "n": 9}]
    status, answer = _post(url, {"instances": rows})
    assert status == 200
    assert [row["next"] for row in answer["predictions"]] == [1, 10]
    status, columns = _post(url, {"inputs": {"x": [r["x"] for r in rows], "n": [0, 9]}})
    assert status == 200
    assert [row["total"] for row in answer["predictions"]] == columns["outputs"]["total"]

    status, answer = _post(url, {"instances": [{"x": [1.0, 1.0, 1.0]}]})
    assert (status, answer["error"]) == (
        400,
        "Failed to process element: 0 of 'instances' list. JSON object: {\n"
        '    "x": [1.0, 1.0, 1.0]\n} keys must be equal to: n,x',
    )
    status, answer = _post(url, {"instances": [{"x": [1.0, 1.0], "n": 1}, {"x": [1.0], "n": 1}]})
    assert (status, answer["error"]) == (
        400,
        "Failed to process element: 1 key: x of 'instances' list. Error: "
        "INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1",
    )
    status, answer = _post(url, {"instances": [1.0, 2.0]})
    assert (status, answer["error"]) == (
        400,
        "instances is a plain list, but expecting list of objects as multiple input tensors "
        "required as per tensorinfo_map",
    )


def test_the_projects_models_config_serves_the_newest_version_of_each_model():
    configs = read_model_config(MODELS_CONFIG)
    assert [config.name for config in configs] == list(sig.MODEL_NAMES)
    for config in configs:
        assert aspired_versions(config, [1, 3, 7]) == [7]


def test_a_wrong_shape_reaches_the_graph_as_in_the_servers_session(stub):
    """No Python-side shape check (``Session.run`` has one, the server's C++ session has not):
    the graph's own kernels refuse the vector ``top_n``."""
    inputs = _retrieval_inputs() | {sig.TOP_N: np.int32([5, 5])}
    code, message = _grpc_error(stub, _grpc_request(sig.RETRIEVAL, inputs))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("In[0] should be a scalar: [2]\n\t [[{{function_node __inference_")


def test_grpc_takes_messages_over_grpcs_default_4_mib_as_the_real_server(tf_serving):
    """TF Serving sets its gRPC message limit to INT32_MAX both ways (server.cc)."""
    candidates = 140_000  # items int32 [1, 140000, 8]: 4.5 MB, over gRPC's default 4 MiB
    inputs = random_request(1, seed=3) | {
        sig.ITEMS: np.ones([1, candidates, 8], np.int32),
        sig.ITEM_MASK: np.ones([1, candidates], bool),
        sig.K: np.int32(3),
    }
    request = _grpc_request(sig.RANK, inputs)
    assert request.ByteSize() > 4 * 1024 * 1024
    channel = tf_serving_channel(tf_serving.grpc_target)
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=60)
    finally:
        channel.close()
    assert tf.make_ndarray(response.outputs[sig.SCORES]).shape == (1, candidates)


def _status_request(name: str, version: int | None = None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return request


def test_model_status_over_rest_and_grpc(tf_serving):
    available = {"version": "1", "state": "AVAILABLE"}
    available["status"] = {"error_code": "OK", "error_message": ""}
    for path in ("/v1/models/rank", "/v1/models/rank/versions/1", "/v1/models/rank/labels/x"):
        response = requests.get(tf_serving.rest_url + path, timeout=30)
        assert (response.status_code, response.json()) == (
            200,
            {"model_version_status": [available]},
        ), path
    assert requests.get(tf_serving.rest_url + "/v1/models/rank/versions/7", timeout=30).json() == {
        "error": "Could not find version 7 of model rank"
    }
    response = requests.get(tf_serving.rest_url + "/v1/models/ranker", timeout=30)
    assert (response.status_code, response.json()) == (
        404,
        {"error": "Could not find any versions of model ranker"},
    )
    channel = grpc.insecure_channel(tf_serving.grpc_target)
    try:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        answer = stub.GetModelStatus(_status_request(sig.RANK), timeout=30)
        assert [(s.version, s.state) for s in answer.model_version_status] == [
            (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        ]
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetModelStatus(_status_request(sig.RANK, 7), timeout=30)
        assert (raised.value.code(), raised.value.details()) == (
            grpc.StatusCode.NOT_FOUND,
            "Could not find version 7 of model rank",
        )
        tf_serving.reload(sig.RANK, 60.0)
        answer = stub.GetModelStatus(_status_request(sig.RANK), timeout=30)
        assert (
            answer.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.LOADING
        )
    finally:
        tf_serving.reload(sig.RANK, 0.0)
        channel.close()


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_other_methods_are_malformed_requests(tf_serving, method):
    path = "/v1/models/rank:predict"
    response = requests.request(method, tf_serving.rest_url + path, json={}, timeout=30)
    assert (response.status_code, response.json()) == (
        400,
        {"error": f"Malformed request: {method} {path}"},
    )
    assert response.headers["Content-Type"] == "application/json"


def test_a_cors_preflight_needs_an_origin(tf_serving):
    url = tf_serving.rest_url + "/v1/models/rank:predict"
    response = requests.options(url, timeout=30)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Origin header is missing in CORS preflight"},
    )
    assert requests.options(url, headers={"Origin": "http://x"}, timeout=30).status_code == 200


def test_version_labels_of_the_model_config(tmp_path):
    for version in (1, 2):
        _export_totals(tmp_path, version)
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "totals" base_path: "/models/totals" '
        'model_platform: "tensorflow" model_version_policy { specific { versions: [1, 2] } } '
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }'
    )
    rows = {"instances": [{"x": [1.0, 2.0, 3.0], "n": 4}]}
    with TFServingStandIn(str(tmp_path), str(config)) as stand_in:
        url = f"{stand_in.rest_url}/v1/models/totals/labels"
        assert _post(f"{url}/stable:predict", rows)[1]["predictions"][0]["total"] == 6.0
        assert _post(f"{url}/canary:predict", rows)[1]["predictions"][0]["total"] == 12.0
        assert _post(f"{url}/beta:predict", rows) == (
            400,
            {"error": "Unrecognized servable version label: beta"},
        )
        channel = grpc.insecure_channel(stand_in.grpc_target)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "totals"
        request.model_spec.version_label = "beta"
        try:
            code, message = _grpc_error(
                prediction_service_pb2_grpc.PredictionServiceStub(channel), request
            )
        finally:
            channel.close()
        assert (code, message) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: beta",
        )
