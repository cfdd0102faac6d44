"""A stand-in for ``tensorflow_model_server`` in tests: its REST and gRPC APIs, as strict as it.

The TF Serving binary cannot be installed on these machines, so the ``rest`` and ``grpc``
backends are tested against this. It serves the models of the project's ``models.config``
(newest version only) from an export folder through ``stand_in_model_server.ModelServerCore``
(C++-style SavedModel loading, ``Session.run`` on the SignatureDef's tensor names, TF Serving's
status codes and messages) and answers

- REST on ``(?i)/v1/...``: ``POST /v1/models/<name>[/versions/<v>]:predict`` with the columnar
  (``inputs`` -> ``outputs``) or row (``instances`` -> ``predictions``) body of
  ``stand_in_json``, ``GET /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata`` and the
  model status ``GET /v1/models/<name>[/versions/<v>|/labels/<l>]``; errors as
  ``{"error": message}`` with TF Serving's HTTP status (400, 404, 429, 503, 504, ...); a
  ``/v1/`` path that is no API call, or another method than GET and POST (PUT, DELETE), is 400
  ``Malformed request: PUT <path>``, any other path 404; OPTIONS is a CORS preflight (400
  without an ``Origin``);
- gRPC ``tensorflow.serving.PredictionService`` ``Predict`` and ``GetModelMetadata``, and
  ``ModelService.GetModelStatus``, with the same codes and messages (inputs a request leaves
  out take ``SignatureDef.defaults`` here only: the REST API needs every input).

The gRPC server's message-size limit is INT32_MAX both ways, as the real server's (gRPC's own
default receive limit is 4 MiB). Both listen on 127.0.0.1 only. ``fail_next(n, code)`` makes the
next n Predict calls fail with ``code`` (UNAVAILABLE, RESOURCE_EXHAUSTED = HTTP 429,
DEADLINE_EXCEEDED = HTTP 504) and ``reload(name, seconds)`` makes a model NOT_FOUND while it
loads. docs/serving.md ("What only the real TF Serving can confirm") lists what it does
not cover.

As its own process (as the real server runs: the benchmark's client threads then do not share
its interpreter), ``python -m tests.serving.tf_serving_stand_in --export-dir DIR --ready-file
FILE`` serves until it is terminated; FILE gets ``{"rest_url": ..., "grpc_target": ...}`` once
both servers listen.

Example:
    >>> with TFServingStandIn(export_dir) as stand_in:
    ...     RestBackend(stand_in.rest_url).predict("rank", inputs)
"""

import argparse
import json
import os
import re
import signal
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.serving import stand_in_json
from tests.serving.stand_in_model_server import MODELS_CONFIG, ModelServerCore
from tests.serving.stand_in_status import StatusError, invalid_argument

API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_VERSION_OR_LABEL = r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
PREDICTION_PATH = re.compile(
    rf"/v1/models/(?P<name>[^/:]+){_VERSION_OR_LABEL}:(?P<method>classify|regress|predict)",
    re.IGNORECASE,
)
MODEL_PATH = re.compile(
    rf"/v1/models(?:/(?P<name>[^/:]+))?{_VERSION_OR_LABEL}(?:/(?P<resource>metadata))?",
    re.IGNORECASE,
)
INT64_MAX = 2**63 - 1
#: TF Serving's gRPC message-size limit both ways (``server.cc``: ``SetMaxMessageSize``).
INT32_MAX = 2**31 - 1
INJECTED_MESSAGE = "failure injected by the TF Serving stand-in"


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=unquote(match.group("name") or ""))
    version, label = match.group("version"), match.group("label")
    if version is not None:
        if int(version) > INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = int(version)
    if label is not None:
        spec.version_label = unquote(label)
    return spec


def _json_options() -> dict:
    return {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}


class _RestHandler(BaseHTTPRequestHandler):
    server: "_RestServer"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_OPTIONS(self) -> None:
        self._serve("OPTIONS")

    def _serve(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?", 1)[0]
        if not API_PATH.fullmatch(path):
            self._answer(404, b"Not Found")
            return
        if method == "OPTIONS":  # a CORS preflight (http_server.cc): an empty answer
            if re.search(r"https?://", self.headers.get("Origin", "")):
                self._answer(200, b"")
            else:
                message = "Origin header is missing in CORS preflight"
                self._answer(400, json.dumps({"error": message}).encode())
            return
        try:
            answer = self._dispatch(method, path, body)
        except StatusError as error:
            self._answer(error.http_status, json.dumps({"error": error.message}).encode())
        except Exception as error:  # an INTERNAL error of the stand-in itself: 500, as the server
            self._answer(500, json.dumps({"error": f"stand-in failure: {error!r}"}).encode())
        else:
            self._answer(200, json.dumps(answer).encode())

    def _dispatch(self, method: str, path: str, body: bytes) -> dict:
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        core = self.server.core
        if method not in ("POST", "GET"):
            raise malformed
        if method == "POST":
            match = PREDICTION_PATH.fullmatch(path)
            if not match:
                raise malformed
            spec = _model_spec(match)
            if match.group("method").lower() != "predict":
                raise StatusError(
                    grpc.StatusCode.UNIMPLEMENTED, "the stand-in serves predict calls only"
                )
            return self._predict(spec, body)
        match = MODEL_PATH.fullmatch(path)
        if not match:
            raise malformed
        spec = _model_spec(match)
        if not spec.name:
            raise invalid_argument("Missing model name in request.")
        if match.group("resource") is None:
            return json_format.MessageToDict(
                core.model_status(spec), always_print_fields_with_no_presence=True
            )
        response = core.metadata(spec)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)
        return {
            "model_spec": json_format.MessageToDict(response.model_spec, **_json_options()),
            "metadata": {
                "signature_def": json_format.MessageToDict(signature_defs, **_json_options())
            },
        }

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> dict:
        document = stand_in_json.parse_body(body)
        request = predict_pb2.PredictRequest(model_spec=spec)
        request.model_spec.signature_name = stand_in_json.signature_name(document)
        tensor_infos = self.server.core.signature_inputs(
            request.model_spec, request.model_spec.signature_name
        )
        form = stand_in_json.fill_predict_request(document, tensor_infos, request)
        response = self.server.core.predict(request)
        return stand_in_json.outputs_to_json(response.outputs, form)

    def _answer(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        """Quiet: tests read answers, not access logs."""


class _RestServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, core: ModelServerCore):
        super().__init__(("127.0.0.1", 0), _RestHandler)
        self.core = core


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ModelServerCore):
        self.core = core

    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        try:
            return self.core.predict(request)
        except StatusError as error:
            context.abort(error.code, error.message)

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            for field in request.metadata_field:
                if field != "signature_def":
                    raise invalid_argument(f"Metadata field {field} is not supported")
            return self.core.metadata(request.model_spec)
        except StatusError as error:
            context.abort(error.code, error.message)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ModelServerCore):
        self.core = core

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            return self.core.model_status(request.model_spec)
        except StatusError as error:
            context.abort(error.code, error.message)


class TFServingStandIn:
    """REST and gRPC servers over an export folder, on 127.0.0.1 free ports.

    Args:
        export_dir: the ``dftopk_cascade.serving.export`` folder.
        model_config: a TF Serving ``--model_config_file`` (default: the project's
            ``serving/tfserving/models.config``); base paths are looked up by their last folder
            name under ``export_dir``.

    Attributes:
        rest_url: ``http://127.0.0.1:<port>``.
        grpc_target: ``127.0.0.1:<port>``.
        core: the ``ModelServerCore`` (``poll()`` picks up newly exported versions).
    """

    def __init__(self, export_dir: str, model_config: str = MODELS_CONFIG):
        self.core = ModelServerCore(export_dir, model_config)
        self._rest = _RestServer(self.core)
        self.rest_url = f"http://127.0.0.1:{self._rest.server_address[1]}"
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            options=[
                ("grpc.max_receive_message_length", INT32_MAX),
                ("grpc.max_send_message_length", INT32_MAX),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.core), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(self.core), self._grpc
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
        self.core.close()

    def fail_next(
        self,
        count: int,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        message: str = INJECTED_MESSAGE,
    ) -> None:
        """The next ``count`` Predict calls (REST or gRPC) fail with ``code``."""
        self.core.fail_next(count, code, message)

    def reload(self, model_name: str, seconds: float) -> None:
        """``model_name`` loads for ``seconds``: meanwhile its requests answer NOT_FOUND."""
        self.core.reload(model_name, seconds)

    def __enter__(self) -> "TFServingStandIn":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serve_until_terminated(export_dir: str, ready_file: str) -> None:
    """Serves ``export_dir`` until SIGTERM or SIGINT; writes the addresses to ``ready_file``.

    The file is written under a temporary name and renamed, so a reader never sees half of it.

    Example::

        serve_until_terminated("/tmp/export", "/tmp/stand_in.json")
    """
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    with TFServingStandIn(export_dir) as stand_in:
        addresses = {"rest_url": stand_in.rest_url, "grpc_target": stand_in.grpc_target}
        with open(ready_file + ".tmp", "w") as file:
            json.dump(addresses, file)
        os.replace(ready_file + ".tmp", ready_file)
        stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m tests.serving.tf_serving_stand_in",
        description="The TF Serving stand-in as its own process, until terminated.",
    )
    parser.add_argument("--export-dir", required=True, help="the export folder to serve")
    parser.add_argument("--ready-file", required=True, help="gets the addresses when serving")
    arguments = parser.parse_args()
    serve_until_terminated(arguments.export_dir, arguments.ready_file)
