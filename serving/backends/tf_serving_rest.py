"""The ``rest`` backend: TF Serving's REST API ``POST /v1/models/<name>[/versions/<v>]:predict``.

Requests use the columnar ``{"signature_name": ..., "inputs": {name: value}}`` format (the only
one that carries the scalar ``top_n``/``k`` inputs); responses are ``{"outputs": {name: value}}``.
Connection failures and HTTP 503 (UNAVAILABLE) are retried; 4xx answers are
``BackendRequestError`` with TF Serving's ``error`` message.

Example:
    >>> backend = RestBackend(rest_url)  # TF Serving's REST address, e.g. "http://127.0.0.1:8501"
    >>> backend.predict("rank", inputs)["scores"].shape
    (1, 50)
"""

from collections.abc import Mapping

import numpy as np
import requests

from serving import signatures as sig
from serving.backends.base import (
    DEFAULT_BACKOFF_S,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    BackendError,
    BackendRequestError,
    BackendTimeoutError,
    BackendUnavailableError,
    PredictBackend,
    with_retries,
)

UNAVAILABLE_STATUS = 503


def predict_url(base_url: str, model_name: str, version: int | None = None) -> str:
    """The REST predict URL of a model (its latest version when ``version`` is None).

    Example:
        >>> predict_url("http://127.0.0.1:8501", "rank", 2)
        'http://127.0.0.1:8501/v1/models/rank/versions/2:predict'
    """
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "")
    return base_url.rstrip("/") + path + ":predict"


def _error_message(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text


class RestBackend(PredictBackend):
    """Calls TF Serving (or anything speaking its REST API) at ``base_url``.

    Args:
        base_url: e.g. ``http://127.0.0.1:8501`` (``tensorflow_model_server --rest_api_port``).
        versions: model name -> version to call; the server's latest otherwise.
        timeout_s: seconds to wait for each answer.
        retries: extra attempts after a connection failure or a 503.
        backoff_s: first wait between attempts (doubled each time).

    Example:
        >>> RestBackend(rest_url, timeout_s=30.0).predict("retrieval", request)["item_ids"].shape
        (1, 200)
    """

    name = "rest"

    def __init__(
        self,
        base_url: str,
        versions: Mapping[str, int] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url
        self.versions = dict(versions or {})
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._session = requests.Session()

    def predict(self, model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            arrays = sig.as_numpy_inputs(model_name, inputs)
        except ValueError as error:
            raise BackendRequestError(str(error)) from None
        url = predict_url(self.base_url, model_name, self.versions.get(model_name))
        body = {
            "signature_name": sig.SIGNATURE_NAME,
            "inputs": {name: value.tolist() for name, value in arrays.items()},
        }
        outputs = with_retries(
            lambda: self._post(url, body), self.retries, self.backoff_s, f"POST {url}"
        )
        dtypes = sig.OUTPUT_DTYPES[model_name]
        missing = sorted(set(dtypes) - set(outputs))
        if missing:
            raise BackendError(f"{url} answered without the outputs {missing}")
        return {
            name: np.asarray(outputs[name], dtype.as_numpy_dtype) for name, dtype in dtypes.items()
        }

    def _post(self, url: str, body: dict) -> dict:
        try:
            response = self._session.post(url, json=body, timeout=self.timeout_s)
        except requests.Timeout as error:
            raise BackendTimeoutError(f"POST {url}: no answer within {self.timeout_s} s") from error
        except requests.ConnectionError as error:
            raise BackendUnavailableError(f"cannot connect: {error}") from error
        if response.status_code == UNAVAILABLE_STATUS:
            raise BackendUnavailableError(f"HTTP 503: {_error_message(response)}")
        if 400 <= response.status_code < 500:
            raise BackendRequestError(
                f"POST {url}: HTTP {response.status_code}: {_error_message(response)}"
            )
        if response.status_code != 200:
            raise BackendError(
                f"POST {url}: HTTP {response.status_code}: {_error_message(response)}"
            )
        try:
            answer = response.json()
        except ValueError:
            raise BackendError(
                f"POST {url}: the answer is not JSON: {response.text[:200]}"
            ) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("outputs"), dict):
            raise BackendError(f"POST {url}: the answer has no 'outputs' object")
        return answer["outputs"]

    def close(self) -> None:
        self._session.close()
