"""The one interface every backend implements, its errors, and the retries.

A backend runs one exported model's ``serving_default`` signature on a dict of NumPy inputs
and returns a dict of NumPy outputs (``dftopk_cascade.serving.signatures`` names both). Failures are
one of:

- ``BackendRequestError``: the server refused the request (bad input, unknown signature):
  never retried.
- ``BackendNotFoundError`` (a ``BackendRequestError``): the server does not serve the model or
  version, still after ``not_found_wait_s`` of retries (TF Serving answers NOT_FOUND "Servable
  not found for request" while a model loads, and for a version its policy no longer serves).
- ``BackendRequestTooLargeError`` / ``BackendAnswerTooLargeError`` (both ``BackendRequestError``):
  the request, or the answer it asks for, is over a message-size limit (gRPC
  RESOURCE_EXHAUSTED "message larger than max"): the request's fault, never retried.
- ``BackendUnavailableError``: the server could not be reached, answered UNAVAILABLE or was
  overloaded (RESOURCE_EXHAUSTED, HTTP 429), after every retry.
- ``BackendTimeoutError``: no answer within the timeout (DEADLINE_EXCEEDED, HTTP 504).
- ``BackendError``: anything else the server reported.

Example:
    >>> from dftopk_cascade.serving.backends import LocalBackend
    >>> from dftopk_cascade.serving.export.toy_servables import (
    ...     toy_cascade_export, toy_corpus, toy_request)
    >>> inputs = toy_request() | {"items": toy_corpus()[None, :50],
    ...                           "item_mask": np.ones([1, 50], bool)}
    >>> outputs = LocalBackend(toy_cascade_export()).predict("rank", inputs)
    >>> outputs["scores"].shape
    (1, 50)
"""

import abc
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

import numpy as np

Result = TypeVar("Result")

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.05
DEFAULT_NOT_FOUND_WAIT_S = 5.0
#: Longest wait between two attempts; shortest between two asking whether a model has loaded.
MAX_BACKOFF_S = 1.0
MIN_LOADING_POLL_S = 0.01
#: How TF Serving's NOT_FOUND for a model or version it does not serve (yet) begins; any other
#: NOT_FOUND is an error of the request, not a model still loading.
SERVABLE_NOT_FOUND = "Servable not found for request"


class BackendError(RuntimeError):
    """A model server failed to answer a predict call (base of the backend errors)."""


class BackendRequestError(BackendError):
    """The server refused the request itself (invalid input, unknown model or version)."""


class BackendNotFoundError(BackendRequestError):
    """The server does not serve the model or version asked for (NOT_FOUND, also while loading)."""


class BackendRequestTooLargeError(BackendRequestError):
    """The request is larger than a message-size limit of the client or the server."""


class BackendAnswerTooLargeError(BackendRequestError):
    """The answer the request asks for is larger than the client's message-size limit."""


class BackendUnavailableError(BackendError):
    """The server was unreachable, UNAVAILABLE or overloaded on every attempt."""


class BackendTimeoutError(BackendError):
    """The server did not answer within the timeout."""


class PredictBackend(abc.ABC):
    """Runs an exported model's ``serving_default`` signature.

    Example:
        >>> class Echo(PredictBackend):
        ...     name = "echo"
        ...     def predict(self, model_name, inputs):
        ...         return dict(inputs)
        ...     def version_states(self, model_name):
        ...         return {1: "AVAILABLE"}
        ...     def close(self):
        ...         pass
        >>> Echo().predict("rank", {"k": np.int32(3)})
        {'k': np.int32(3)}
    """

    #: Short name of the backend kind (``local``, ``rest``, ``grpc``).
    name: str = ""
    #: Model name -> the version called (none: the server's newest AVAILABLE version).
    versions: Mapping[str, int] = MappingProxyType({})

    @abc.abstractmethod
    def predict(self, model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs ``model_name`` on ``inputs``; raises a ``BackendError`` subclass on failure.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend, toy_request
            >>> backend = toy_backend()
            >>> inputs = toy_request() | {"top_n": np.int32(100)}
            >>> backend.predict("retrieval", inputs)["item_ids"].shape
            (1, 100)
        """

    @abc.abstractmethod
    def version_states(self, model_name: str) -> dict[int, str]:
        """Each version of ``model_name`` the server tracks -> its state (TF Serving's model
        status: ``LOADING``, ``AVAILABLE``, ``UNLOADING``, ``END``, ...); empty when it tracks
        none. Raises a ``BackendError`` subclass when the server cannot be asked.

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
            >>> toy_backend().version_states("rank")
            {1: 'AVAILABLE'}
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Releases what the backend holds (connections, loaded models).

        Example:
            >>> from dftopk_cascade.serving.backends import GrpcBackend
            >>> GrpcBackend("127.0.0.1:8500").close()
        """


def with_retries(
    call: Callable[[], Result],
    retries: int,
    backoff_s: float,
    description: str,
    not_found_wait_s: float = 0.0,
) -> Result:
    """Runs ``call``, retrying while the server is unavailable or does not serve the model yet.

    ``BackendUnavailableError`` is retried up to ``retries`` times; ``BackendNotFoundError`` is
    retried until ``not_found_wait_s`` seconds have passed since the first attempt. Waits
    ``backoff_s * 2**attempt`` between attempts (at least ``MIN_LOADING_POLL_S`` after a
    NOT_FOUND, at most ``MAX_BACKOFF_S``); the last error is
    re-raised with the attempts (and ``description``) or the time waited.

    Example:
        >>> with_retries(lambda: 7, retries=2, backoff_s=0.0, description="rank at 127.0.0.1")
        7
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if not_found_wait_s < 0:
        raise ValueError(f"not_found_wait_s must be >= 0, got {not_found_wait_s}")
    start = time.monotonic()
    attempt = unavailable = 0
    while True:
        try:
            return call()
        except BackendUnavailableError as error:
            if unavailable == retries:
                raise BackendUnavailableError(
                    f"{description}: unavailable after {retries + 1} attempt(s): {error}"
                ) from error
            unavailable += 1
            wait_s = backoff_s * 2**attempt
        except BackendNotFoundError as error:
            waited = time.monotonic() - start
            if waited >= not_found_wait_s:
                raise BackendNotFoundError(
                    f"{error} (still not served after {waited:.1f} s; "
                    f"not_found_wait_s={not_found_wait_s})"
                ) from error
            wait_s = max(backoff_s * 2**attempt, MIN_LOADING_POLL_S)
        time.sleep(min(wait_s, MAX_BACKOFF_S))
        attempt += 1
