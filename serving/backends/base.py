"""The one interface every backend implements, its errors, and the retry on UNAVAILABLE.

A backend runs one exported model's ``serving_default`` signature on a dict of NumPy inputs
and returns a dict of NumPy outputs (``serving.signatures`` names both). Failures are one of:

- ``BackendRequestError``: the request is wrong (bad input, unknown model or version): never
  retried; the HTTP front answers 400.
- ``BackendUnavailableError``: the server could not be reached or answered UNAVAILABLE, after
  every retry.
- ``BackendTimeoutError``: no answer within the timeout (DEADLINE_EXCEEDED).
- ``BackendError``: anything else the server reported.

Example:
    >>> outputs = backend.predict("rank", inputs)
    >>> outputs["scores"].shape
    (1, 50)
"""

import abc
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

Result = TypeVar("Result")

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.05


class BackendError(RuntimeError):
    """A model server failed to answer a predict call (base of the backend errors)."""


class BackendRequestError(BackendError):
    """The server refused the request itself (invalid input, unknown model or version)."""


class BackendUnavailableError(BackendError):
    """The server was unreachable or UNAVAILABLE on every attempt."""


class BackendTimeoutError(BackendError):
    """The server did not answer within the timeout."""


class PredictBackend(abc.ABC):
    """Runs an exported model's ``serving_default`` signature.

    Example:
        >>> class Echo(PredictBackend):
        ...     name = "echo"
        ...     def predict(self, model_name, inputs):
        ...         return dict(inputs)
        ...     def close(self):
        ...         pass
        >>> Echo().predict("rank", {"k": np.int32(3)})
        {'k': np.int32(3)}
    """

    #: Short name of the backend kind (``local``, ``rest``, ``grpc``).
    name: str = ""

    @abc.abstractmethod
    def predict(self, model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs ``model_name`` on ``inputs``; raises a ``BackendError`` subclass on failure.

        Example:
            >>> backend.predict("retrieval", request | {"top_n": np.int32(100)})["item_ids"].shape
            (1, 100)
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Releases what the backend holds (connections, loaded models).

        Example:
            >>> from serving.backends import GrpcBackend
            >>> GrpcBackend(grpc_target).close()
        """


def with_retries(
    call: Callable[[], Result],
    retries: int,
    backoff_s: float,
    description: str,
) -> Result:
    """Runs ``call``, retrying up to ``retries`` times while it raises ``BackendUnavailableError``.

    Waits ``backoff_s * 2**attempt`` between attempts; the last error is re-raised naming
    ``description`` and the number of attempts.

    Example:
        >>> with_retries(lambda: 7, retries=2, backoff_s=0.0, description="rank at 127.0.0.1")
        7
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    attempt = 0
    while True:
        try:
            return call()
        except BackendUnavailableError as error:
            if attempt == retries:
                raise BackendUnavailableError(
                    f"{description}: unavailable after {retries + 1} attempt(s): {error}"
                ) from error
            time.sleep(backoff_s * 2**attempt)
            attempt += 1
