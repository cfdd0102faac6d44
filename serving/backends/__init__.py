"""Backends running the exported models: ``local`` (in process), ``rest``, ``grpc`` (TF Serving).

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export, toy_request
    >>> backend = make_backend("local", export_dir=toy_cascade_export())
    >>> backend.versions
    {'retrieval': 1, 'prerank': 1, 'rank': 1}
    >>> backend.predict("retrieval", toy_request())["scores"].shape
    (1, 200)
    >>> make_backend("grpc", target="127.0.0.1:8500", timeout_s=30.0).name  # TF Serving's port
    'grpc'
"""

from dftopk_cascade.serving.backends.base import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    BackendAnswerTooLargeError,
    BackendError,
    BackendNotFoundError,
    BackendRequestError,
    BackendRequestTooLargeError,
    BackendTimeoutError,
    BackendUnavailableError,
    PredictBackend,
)
from dftopk_cascade.serving.backends.local import LocalBackend
from dftopk_cascade.serving.backends.tf_serving_grpc import GrpcBackend
from dftopk_cascade.serving.backends.tf_serving_rest import RestBackend

BACKEND_NAMES: tuple[str, ...] = ("local", "rest", "grpc")


def make_backend(
    kind: str,
    export_dir: str | None = None,
    url: str | None = None,
    target: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
) -> PredictBackend:
    """Builds a backend by name: ``local`` needs ``export_dir``, ``rest`` a ``url``, ``grpc`` a
    ``target`` (``host:port``); ``timeout_s`` and ``retries`` apply to the two remote ones.

    Example:
        >>> make_backend("rest", url="http://127.0.0.1:8501").name  # TF Serving's REST port
        'rest'
    """
    if kind == "local":
        if not export_dir:
            raise ValueError(
                "the local backend needs export_dir (the dftopk_cascade.serving.export folder)"
            )
        return LocalBackend(export_dir)
    if kind == "rest":
        if not url:
            raise ValueError("the rest backend needs url, e.g. http://127.0.0.1:8501")
        return RestBackend(url, timeout_s=timeout_s, retries=retries)
    if kind == "grpc":
        if not target:
            raise ValueError("the grpc backend needs target, e.g. 127.0.0.1:8500")
        return GrpcBackend(target, timeout_s=timeout_s, retries=retries)
    raise ValueError(f"unknown backend {kind!r}; choose one of {BACKEND_NAMES}")


__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "BackendAnswerTooLargeError",
    "BackendError",
    "BackendNotFoundError",
    "BackendRequestError",
    "BackendRequestTooLargeError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "GrpcBackend",
    "LocalBackend",
    "PredictBackend",
    "RestBackend",
    "make_backend",
]
