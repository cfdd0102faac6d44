"""Status codes of the TF Serving stand-in: a failing call is a gRPC code and a message.

The REST API answers the same failure with TF Serving's HTTP status for that code
(``tensorflow_serving/model_servers/http_server.cc``, ``ToHTTPStatusCode``) and the body
``{"error": message}``; TensorFlow run-time errors keep their own code and message.
"""

import grpc
import tensorflow as tf

#: TF Serving's HTTP status for each gRPC status code (500 for the codes not listed).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class StatusError(Exception):
    """A call that fails with ``code`` and ``message``, as the model server reports it."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    @classmethod
    def from_op_error(cls, error: tf.errors.OpError) -> "StatusError":
        """TensorFlow's run-time error with its own code (TF and gRPC share the numbers)."""
        return cls(_CODE_BY_NUMBER.get(error.error_code, grpc.StatusCode.UNKNOWN), error.message)


def invalid_argument(message: str) -> StatusError:
    return StatusError(grpc.StatusCode.INVALID_ARGUMENT, message)


def absl_status_string(error: StatusError) -> str:
    """``absl::Status::ToString()``: ``INVALID_ARGUMENT: message``."""
    return f"{error.code.name}: {error.message}"
