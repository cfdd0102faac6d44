"""The ``grpc`` backend: TF Serving's ``PredictionService.Predict`` through tensorflow-serving-api.

Inputs travel as ``TensorProto``s (``tf.make_tensor_proto``), outputs come back through
``tf.make_ndarray``. UNAVAILABLE and RESOURCE_EXHAUSTED (overload) are retried ``retries`` times
with backoff; NOT_FOUND "Servable not found for request" (the model is loading, or the version is
not served) is retried for ``not_found_wait_s`` seconds, then ``BackendNotFoundError``; any other
NOT_FOUND, INVALID_ARGUMENT and FAILED_PRECONDITION (unknown signature) are
``BackendRequestError``; a RESOURCE_EXHAUSTED from a message-size limit is the request's fault and
never retried (``BackendRequestTooLargeError``, ``BackendAnswerTooLargeError``);
DEADLINE_EXCEEDED is ``BackendTimeoutError``. Inputs a request leaves out (``top_n``, ``k``) are
not sent: TF Serving's gRPC Predict feeds the SignatureDef's defaults.

The channel's message-size limits are set in one place (``tf_serving_channel``): both ways
``MAX_MESSAGE_BYTES`` unless given; TF Serving's own limit is INT32_MAX both ways
(``SetMaxMessageSize``), so the client's are the ones a large request or answer meets.

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import (
    ...     toy_cascade_export, toy_corpus, toy_request)
    >>> inputs = toy_request() | {"items": toy_corpus()[None, :50],
    ...                           "item_mask": np.ones([1, 50], bool)}
    >>> backend = GrpcBackend("127.0.0.1:8500")  # TF Serving (docs/serving.md)
    >>> backend.predict("rank", inputs)["selected"].shape  # doctest: +SKIP
    (1, 50)
"""

import re
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends.base import (
    DEFAULT_BACKOFF_S,
    DEFAULT_NOT_FOUND_WAIT_S,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    SERVABLE_NOT_FOUND,
    BackendAnswerTooLargeError,
    BackendError,
    BackendNotFoundError,
    BackendRequestError,
    BackendRequestTooLargeError,
    BackendTimeoutError,
    BackendUnavailableError,
    PredictBackend,
    with_retries,
)
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

#: Largest message either way: well above the answer to 64 requests of top_n 2,000.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
RETRIED_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
REQUEST_ERROR_CODES = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
)
#: gRPC's RESOURCE_EXHAUSTED for a message over a size limit: "CLIENT: Sent message larger than
#: max (N vs. M)", "SERVER: Received ..." (the request) or "CLIENT: Received ..." (the answer).
MESSAGE_SIZE = re.compile(r"(?:(CLIENT|SERVER): )?(Sent|Received) message larger than max")


def tf_serving_channel(target: str, max_message_bytes: int = MAX_MESSAGE_BYTES) -> grpc.Channel:
    """An insecure channel to ``target`` with both message-size limits set to
    ``max_message_bytes`` (gRPC's own default receive limit is 4 MiB).

    Example:
        >>> channel = tf_serving_channel("127.0.0.1:8500")  # TF Serving's gRPC port
        >>> channel.close()
    """
    if max_message_bytes < 1:
        raise ValueError(f"max_message_bytes must be >= 1, got {max_message_bytes}")
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ],
    )


def classify_rpc_error(code: grpc.StatusCode, details: str, message: str) -> BackendError:
    """The backend error for a failed call's status ``code`` and ``details`` (``message`` is
    what the error says).

    Example:
        >>> classify_rpc_error(grpc.StatusCode.NOT_FOUND, "Could not find version 3 of model rank",
        ...                    "rank").__class__.__name__  # not a model still loading
        'BackendRequestError'
        >>> classify_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
        ...     "CLIENT: Received message larger than max (8021 vs. 1000)", "rank"
        ... ).__class__.__name__
        'BackendAnswerTooLargeError'
    """
    size = MESSAGE_SIZE.search(details) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    if size:
        side, direction = size.groups()
        if direction == "Received" and side != "SERVER":
            return BackendAnswerTooLargeError(
                f"{message} (the answer is over the client's message limit: ask for fewer "
                "requests or items)"
            )
        return BackendRequestTooLargeError(f"{message} (the request is over a message limit)")
    if code in RETRIED_CODES:
        return BackendUnavailableError(message)
    if code == grpc.StatusCode.NOT_FOUND and details.startswith(SERVABLE_NOT_FOUND):
        return BackendNotFoundError(message)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return BackendTimeoutError(message)
    if code in REQUEST_ERROR_CODES:
        return BackendRequestError(message)
    return BackendError(message)


def predict_request(
    model_name: str, inputs: Mapping[str, np.ndarray], version: int | None = None
) -> predict_pb2.PredictRequest:
    """A ``PredictRequest`` for ``model_name``'s ``serving_default`` signature.

    Example:
        >>> predict_request("rank", {"k": np.int32(3)}, version=2).model_spec.version.value
        2
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = sig.SIGNATURE_NAME
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


class GrpcBackend(PredictBackend):
    """Calls TF Serving's gRPC PredictionService at ``target``.

    Args:
        target: ``host:port`` (``tensorflow_model_server --port``).
        versions: model name -> version to call; the server's latest otherwise.
        timeout_s: deadline of each call, in seconds.
        retries: extra attempts after UNAVAILABLE or RESOURCE_EXHAUSTED.
        backoff_s: first wait between attempts (doubled each time).
        not_found_wait_s: how long NOT_FOUND "Servable not found" is retried (a model or
            version still loading).
        max_message_bytes: the channel's send and receive limits (``tf_serving_channel``).

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import toy_request
        >>> backend = GrpcBackend("127.0.0.1:1", timeout_s=5.0, retries=0)  # nothing listens
        >>> backend.predict("retrieval", toy_request())
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.backends.base.BackendUnavailableError: ...
    """

    name = "grpc"

    def __init__(
        self,
        target: str,
        versions: Mapping[str, int] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        not_found_wait_s: float = DEFAULT_NOT_FOUND_WAIT_S,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ):
        if ":" not in target:
            raise ValueError(f"target must be host:port, got {target!r}")
        self.target = target
        self.versions = dict(versions or {})
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.not_found_wait_s = not_found_wait_s
        self._channel = tf_serving_channel(target, max_message_bytes)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._model_service = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def predict(self, model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            arrays = sig.as_numpy_inputs(model_name, inputs)
        except ValueError as error:
            raise BackendRequestError(str(error)) from None
        request = predict_request(model_name, arrays, self.versions.get(model_name))
        description = f"Predict {model_name} at {self.target}"
        response = with_retries(
            lambda: self._call(request, description),
            self.retries,
            self.backoff_s,
            description,
            self.not_found_wait_s,
        )
        dtypes = sig.OUTPUT_DTYPES[model_name]
        missing = sorted(set(dtypes) - set(response.outputs))
        if missing:
            raise BackendError(f"{description} answered without the outputs {missing}")
        return {name: tf.make_ndarray(response.outputs[name]) for name in dtypes}

    def _call(
        self, request: predict_pb2.PredictRequest, description: str
    ) -> predict_pb2.PredictResponse:
        try:
            return self._stub.Predict(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            message = f"{description}: {code.name}: {details}"
            raise classify_rpc_error(code, details, message) from None

    def version_states(self, model_name: str) -> dict[int, str]:
        """``ModelService.GetModelStatus`` of ``model_name`` (its pinned version only, if any),
        once, no retry.

        Example:
            >>> GrpcBackend("127.0.0.1:8500").version_states("rank")  # doctest: +SKIP
            {1: 'AVAILABLE'}
        """
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model_name
        if model_name in self.versions:
            request.model_spec.version.value = self.versions[model_name]
        try:
            response = self._model_service.GetModelStatus(request, timeout=self.timeout_s)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.NOT_FOUND:  # "Could not find (any) version(s) of model"
                return {}
            message = f"GetModelStatus {model_name} at {self.target}: {code.name}: {details}"
            raise classify_rpc_error(code, details, message) from None
        return {
            status.version: get_model_status_pb2.ModelVersionStatus.State.Name(status.state)
            for status in response.model_version_status
        }

    def close(self) -> None:
        self._channel.close()
