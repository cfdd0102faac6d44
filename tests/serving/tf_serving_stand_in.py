"""A stand-in for ``tensorflow_model_server`` in tests: its REST and gRPC predict protocols.

The TF Serving binary cannot be installed on these machines, so the ``rest`` and ``grpc``
backends are tested against this: every version of every model under an export folder, loaded
with ``tf.saved_model.load``, answering

- REST ``POST /v1/models/<name>[/versions/<v>]:predict`` with the columnar
  ``{"signature_name", "inputs"}`` body and ``{"outputs": {...}}`` answer, errors as
  ``{"error": message}`` with TF Serving's status mapping (400 invalid argument, 404 not found,
  503 unavailable);
- gRPC ``tensorflow.serving.PredictionService/Predict`` with ``TensorProto`` inputs and outputs
  and the same status codes.

Input dtypes come from each SavedModel's own signature, and inputs a request leaves out take the
signature's defaults (``SignatureDef.defaults``), as in TF Serving. Both listen on
127.0.0.1 only. ``fail_next(n)`` makes the next n predict calls answer UNAVAILABLE, to test
retries.

Example:
    >>> with TFServingStandIn("/tmp/export") as stand_in:
    ...     RestBackend(stand_in.rest_url).predict("rank", inputs)
"""

import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.saved_model_proto import signature_defaults

REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:predict$")
DEFAULT_SIGNATURE = "serving_default"


#: TF Serving's HTTP status for each gRPC status code a predict call fails with.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class PredictFailure(Exception):
    """A predict call that fails with a gRPC status code (mapped to HTTP for REST)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.http_status = HTTP_STATUS.get(code, 500)


class ModelStore:
    """Every version of every model under ``export_dir``, and predict over their signatures."""

    def __init__(self, export_dir: str):
        self.models: dict[str, dict[int, object]] = {}
        for name in sorted(os.listdir(export_dir)):
            base = os.path.join(export_dir, name)
            versions = [v for v in os.listdir(base) if v.isdigit()] if os.path.isdir(base) else []
            self.models[name] = {
                int(v): (
                    tf.saved_model.load(os.path.join(base, v)),
                    signature_defaults(os.path.join(base, v)),
                )
                for v in versions
            }
        self._lock = threading.Lock()
        self._failures_left = 0

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures_left = count

    def predict(
        self, name: str, version: int | None, signature_name: str, inputs: dict[str, np.ndarray]
    ) -> tuple[int, dict[str, np.ndarray]]:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                raise PredictFailure(grpc.StatusCode.UNAVAILABLE, "stand-in told to fail")
        versions = self.models.get(name)
        if not versions:
            raise PredictFailure(grpc.StatusCode.NOT_FOUND, f"Servable not found for {name}")
        version = max(versions) if version is None else version
        if version not in versions:
            raise PredictFailure(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for {name} version {version}"
            )
        loaded, defaults = versions[version]
        signatures = loaded.signatures
        if signature_name not in signatures:
            raise PredictFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'Serving signature name: "{signature_name}" not found in signature def',
            )
        signature = signatures[signature_name]
        specs = signature.structured_input_signature[1]
        inputs = defaults | dict(inputs)
        missing = sorted(set(specs) - set(inputs))
        extra = sorted(set(inputs) - set(specs))
        if missing or extra:
            raise PredictFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input names mismatch: missing {missing}, unexpected {extra}",
            )
        try:
            tensors = {
                key: tf.constant(np.asarray(value, spec.dtype.as_numpy_dtype))
                for key, value in inputs.items()
                for spec in [specs[key]]
            }
            outputs = signature(**tensors)
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
            message = getattr(error, "message", str(error))
            raise PredictFailure(grpc.StatusCode.INVALID_ARGUMENT, message) from None
        return version, {key: value.numpy() for key, value in outputs.items()}


class _RestHandler(BaseHTTPRequestHandler):
    server: "_RestServer"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        match = REST_PATH.match(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not match:
            self._answer(404, {"error": f"Malformed request: POST {self.path}"})
            return
        try:
            request = json.loads(body)
            if "inputs" not in request:
                raise PredictFailure(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "the stand-in speaks the columnar format only: send 'inputs'",
                )
            version = match.group("version")
            _, outputs = self.server.store.predict(
                match.group("name"),
                None if version is None else int(version),
                request.get("signature_name", DEFAULT_SIGNATURE),
                request["inputs"],
            )
        except json.JSONDecodeError as error:
            self._answer(400, {"error": f"JSON Parse error: {error}"})
        except PredictFailure as failure:
            self._answer(failure.http_status, {"error": str(failure)})
        else:
            self._answer(200, {"outputs": {key: value.tolist() for key, value in outputs.items()}})

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        """Quiet: tests read answers, not access logs."""


class _RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: ModelStore):
        super().__init__(("127.0.0.1", 0), _RestHandler)
        self.store = store


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store: ModelStore):
        self.store = store

    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        try:
            version, outputs = self.store.predict(
                spec.name,
                spec.version.value if spec.HasField("version") else None,
                spec.signature_name or DEFAULT_SIGNATURE,
                {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()},
            )
        except PredictFailure as failure:
            context.abort(failure.code, str(failure))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = spec.signature_name or DEFAULT_SIGNATURE
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


class TFServingStandIn:
    """REST and gRPC predict servers over an export folder, on 127.0.0.1 free ports.

    Attributes:
        rest_url: ``http://127.0.0.1:<port>``.
        grpc_target: ``127.0.0.1:<port>``.
    """

    def __init__(self, export_dir: str):
        self.store = ModelStore(export_dir)
        self._rest = _RestServer(self.store)
        self.rest_url = f"http://127.0.0.1:{self._rest.server_address[1]}"
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.store), self._grpc
        )
        self.grpc_target = f"127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"
        self._rest_thread = threading.Thread(target=self._rest.serve_forever, daemon=True)

    def start(self) -> "TFServingStandIn":
        self._rest_thread.start()
        self._grpc.start()
        return self

    def stop(self) -> None:
        self._rest.shutdown()
        self._rest.server_close()
        self._grpc.stop(grace=None)

    def fail_next(self, count: int) -> None:
        """The next ``count`` predict calls (REST or gRPC) answer UNAVAILABLE."""
        self.store.fail_next(count)

    def __enter__(self) -> "TFServingStandIn":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
