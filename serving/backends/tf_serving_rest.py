"""The ``rest`` backend: TF Serving's REST API ``POST /v1/models/<name>[/versions/<v>]:predict``.

Requests use the columnar ``{"signature_name": ..., "inputs": {name: value}}`` format (the only
one that carries the scalar ``top_n``/``k`` inputs); responses are ``{"outputs": {name: value}}``.
TF Serving's REST API needs every input of the signature (it does not feed
``SignatureDef.defaults``: "Missing named input: top_n in 'inputs' object"), so inputs a caller
leaves out are filled in here from the served signature's defaults, read from
``GET /v1/models/<name>[/versions/<v>]/metadata`` once per served version: such a call goes to
that version (``/versions/<v>``), and when the server no longer serves it (a new version was
exported and the old one unloaded) the new version's metadata is read and the call goes there.
A call that sends every input needs no metadata and goes to the served (or pinned) version.

Connection failures, HTTP 503 (UNAVAILABLE) and 429 (RESOURCE_EXHAUSTED) are retried with
backoff; 404 "Servable not found" (a model still loading, or a version not served) is retried for
``not_found_wait_s`` seconds, then ``BackendNotFoundError``; 504 (DEADLINE_EXCEEDED) is
``BackendTimeoutError``; other 4xx answers are ``BackendRequestError`` with TF Serving's ``error``
message.

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import (
    ...     toy_cascade_export, toy_corpus, toy_request)
    >>> inputs = toy_request() | {"items": toy_corpus()[None, :50],
    ...                           "item_mask": np.ones([1, 50], bool)}
    >>> backend = RestBackend("http://127.0.0.1:8501")  # TF Serving (docs/serving.md)
    >>> backend.predict("rank", inputs)["scores"].shape  # doctest: +SKIP
    (1, 50)
"""

import threading
from collections.abc import Mapping

import numpy as np
import requests
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends.base import (
    DEFAULT_BACKOFF_S,
    DEFAULT_NOT_FOUND_WAIT_S,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    SERVABLE_NOT_FOUND,
    BackendError,
    BackendNotFoundError,
    BackendRequestError,
    BackendTimeoutError,
    BackendUnavailableError,
    PredictBackend,
    with_retries,
)
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2

#: HTTP statuses retried with backoff: RESOURCE_EXHAUSTED and UNAVAILABLE.
RETRIED_STATUSES = (429, 503)
TIMEOUT_STATUS = 504
NOT_FOUND_STATUS = 404


def model_url(base_url: str, model_name: str, version: int | None = None) -> str:
    """The REST URL of a model (its latest version when ``version`` is None).

    Example:
        >>> model_url("http://127.0.0.1:8501", "rank", 2)
        'http://127.0.0.1:8501/v1/models/rank/versions/2'
    """
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "")
    return base_url.rstrip("/") + path


def predict_url(base_url: str, model_name: str, version: int | None = None) -> str:
    """The REST predict URL of a model (its latest version when ``version`` is None).

    Example:
        >>> predict_url("http://127.0.0.1:8501", "rank", 2)
        'http://127.0.0.1:8501/v1/models/rank/versions/2:predict'
    """
    return model_url(base_url, model_name, version) + ":predict"


def signature_defaults_from_metadata(metadata: dict, model_name: str) -> dict[str, np.ndarray]:
    """The ``serving_default`` signature's default inputs in a REST metadata answer.

    Raises ``BackendError`` when the answer lacks the signature or its inputs are not the
    contract's (``dftopk_cascade.serving.signatures``).

    Example:
        >>> from dftopk_cascade.serving.saved_model_proto import read_saved_model
        >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_scorer
        >>> saved = read_saved_model(save_toy_servable(toy_scorer(default_k=10)))
        >>> signatures = saved.meta_graphs[0].signature_def  # TF Serving answers them as JSON:
        >>> metadata = {"metadata": {"signature_def": {"signature_def": {
        ...     name: json_format.MessageToDict(signature) for name, signature in signatures.items()
        ... }}}}  # GET /v1/models/rank/metadata
        >>> signature_defaults_from_metadata(metadata, "rank")
        {'k': array(10, dtype=int32)}
    """
    try:
        signature = metadata["metadata"]["signature_def"]["signature_def"][sig.SIGNATURE_NAME]
        served_inputs = set(signature["inputs"])
        defaults = {
            name: tf.make_ndarray(json_format.ParseDict(proto, tensor_pb2.TensorProto()))
            for name, proto in signature.get("defaults", {}).items()
        }
    except (KeyError, TypeError, json_format.ParseError) as error:
        raise BackendError(
            f"the metadata of {model_name!r} has no readable {sig.SIGNATURE_NAME!r} signature "
            f"({type(error).__name__}: {error})"
        ) from None
    expected = set(sig.input_specs(model_name))
    if served_inputs != expected:
        raise BackendError(
            f"the served {model_name!r} takes inputs {sorted(served_inputs)}, "
            f"not the contract's {sorted(expected)}"
        )
    return defaults


def _error_message(response: requests.Response) -> str:
    try:
        answer = response.json()
    except ValueError:
        return response.text
    return str(answer.get("error", response.text)) if isinstance(answer, dict) else response.text


class RestBackend(PredictBackend):
    """Calls TF Serving (or anything speaking its REST API) at ``base_url``.

    Args:
        base_url: e.g. ``http://127.0.0.1:8501`` (``tensorflow_model_server --rest_api_port``).
        versions: model name -> version to call; the server's latest otherwise.
        timeout_s: seconds to wait for each answer.
        retries: extra attempts after a connection failure, a 503 or a 429.
        backoff_s: first wait between attempts (doubled each time).
        not_found_wait_s: how long 404 "Servable not found" is retried (a model still loading).

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import toy_request
        >>> backend = RestBackend("http://127.0.0.1:1", timeout_s=5.0, retries=0)  # no server
        >>> backend.predict("retrieval", toy_request())
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.backends.base.BackendUnavailableError: ...
    """

    name = "rest"

    def __init__(
        self,
        base_url: str,
        versions: Mapping[str, int] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        not_found_wait_s: float = DEFAULT_NOT_FOUND_WAIT_S,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url
        self.versions = dict(versions or {})
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.not_found_wait_s = not_found_wait_s
        self._session = requests.Session()
        self._signatures: dict[str, tuple[int, dict[str, np.ndarray]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def predict(self, model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            arrays = sig.as_numpy_inputs(model_name, inputs)
        except ValueError as error:
            raise BackendRequestError(str(error)) from None
        pinned = self.versions.get(model_name)
        if set(arrays) == set(sig.input_specs(model_name)):
            return self._predict(model_name, arrays, pinned, self.not_found_wait_s)
        version, defaults = self._served_signature(model_name)
        if pinned is not None:
            return self._predict(model_name, defaults | arrays, pinned, self.not_found_wait_s)
        try:  # the version whose defaults these are, so no other version gets them
            return self._predict(model_name, defaults | arrays, version, 0.0)
        except BackendNotFoundError:  # that version is no longer served: read the new one's
            version, defaults = self._served_signature(model_name, stale_version=version)
        return self._predict(model_name, defaults | arrays, version, self.not_found_wait_s)

    def _predict(
        self,
        model_name: str,
        arrays: dict[str, np.ndarray],
        version: int | None,
        not_found_wait_s: float,
    ) -> dict[str, np.ndarray]:
        left_out = sorted(set(sig.input_specs(model_name)) - set(arrays))
        if left_out:
            raise BackendRequestError(
                f"{model_name}: {left_out} left out, and the served signature has no default"
            )
        url = predict_url(self.base_url, model_name, version)
        body = {
            "signature_name": sig.SIGNATURE_NAME,
            "inputs": {name: value.tolist() for name, value in arrays.items()},
        }
        answer = self._with_retries("POST", url, body, not_found_wait_s)
        outputs = answer.get("outputs")
        if not isinstance(outputs, dict):
            raise BackendError(f"POST {url}: the answer has no 'outputs' object")
        dtypes = sig.OUTPUT_DTYPES[model_name]
        missing = sorted(set(dtypes) - set(outputs))
        if missing:
            raise BackendError(f"{url} answered without the outputs {missing}")
        return {
            name: np.asarray(outputs[name], dtype.as_numpy_dtype) for name, dtype in dtypes.items()
        }

    def signature_defaults(self, model_name: str) -> dict[str, np.ndarray]:
        """The served signature's default inputs (of the version last read, see ``predict``).

        Example:
            >>> backend = RestBackend("http://127.0.0.1:8501")  # TF Serving's REST port
            >>> backend.signature_defaults("retrieval")  # doctest: +SKIP
            {'top_n': array(200, dtype=int32)}
        """
        return self._served_signature(model_name)[1]

    def _served_signature(
        self, model_name: str, stale_version: int | None = None
    ) -> tuple[int, dict[str, np.ndarray]]:
        """(version, defaults) of the served signature, read from the model's metadata once per
        version: again when ``stale_version`` is the one held. Each model has its own lock, so a
        metadata read never holds up another model's calls."""
        sig.input_specs(model_name)
        with self._locks_lock:
            lock = self._locks.setdefault(model_name, threading.Lock())
        with lock:
            held = self._signatures.get(model_name)
            if held is None or (stale_version is not None and held[0] == stale_version):
                url = model_url(self.base_url, model_name, self.versions.get(model_name))
                metadata = self._with_retries("GET", url + "/metadata")
                try:
                    version = int(metadata["model_spec"]["version"])
                except (KeyError, TypeError, ValueError):
                    raise BackendError(f"GET {url}/metadata: no model_spec.version") from None
                held = (version, signature_defaults_from_metadata(metadata, model_name))
                self._signatures[model_name] = held
            return held

    def version_states(self, model_name: str) -> dict[int, str]:
        """``GET /v1/models/<name>[/versions/<v>]`` (TF Serving's model status), once, no retry.

        Example:
            >>> backend = RestBackend("http://127.0.0.1:8501")  # TF Serving's REST port
            >>> backend.version_states("rank")  # doctest: +SKIP
            {1: 'AVAILABLE'}
        """
        url = model_url(self.base_url, model_name, self.versions.get(model_name))
        try:
            answer = self._send("GET", url, None)
        except BackendNotFoundError:
            return {}
        except BackendRequestError as error:
            if f"HTTP {NOT_FOUND_STATUS}:" in str(error):  # "Could not find (any) version(s)"
                return {}
            raise
        try:
            return {
                int(status["version"]): str(status["state"])
                for status in answer["model_version_status"]
            }
        except (KeyError, TypeError, ValueError) as error:
            raise BackendError(f"GET {url}: not a model status answer ({error!r})") from None

    def _with_retries(
        self, method: str, url: str, body: dict | None = None, not_found_wait_s: float | None = None
    ) -> dict:
        return with_retries(
            lambda: self._send(method, url, body),
            self.retries,
            self.backoff_s,
            f"{method} {url}",
            self.not_found_wait_s if not_found_wait_s is None else not_found_wait_s,
        )

    def _send(self, method: str, url: str, body: dict | None) -> dict:
        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout_s)
        except requests.Timeout as error:
            raise BackendTimeoutError(
                f"{method} {url}: no answer within {self.timeout_s} s"
            ) from error
        except requests.ConnectionError as error:
            raise BackendUnavailableError(f"cannot connect: {error}") from error
        status, message = response.status_code, _error_message(response)
        if status in RETRIED_STATUSES:
            raise BackendUnavailableError(f"HTTP {status}: {message}")
        if status == TIMEOUT_STATUS:
            raise BackendTimeoutError(f"{method} {url}: HTTP {status}: {message}")
        if status == NOT_FOUND_STATUS and message.startswith(SERVABLE_NOT_FOUND):
            raise BackendNotFoundError(f"{method} {url}: HTTP {status}: {message}")
        if 400 <= status < 500:
            raise BackendRequestError(f"{method} {url}: HTTP {status}: {message}")
        if status != 200:
            raise BackendError(f"{method} {url}: HTTP {status}: {message}")
        try:
            answer = response.json()
        except ValueError:
            raise BackendError(
                f"{method} {url}: the answer is not JSON: {response.text[:200]}"
            ) from None
        if not isinstance(answer, dict):
            raise BackendError(f"{method} {url}: the answer is not a JSON object")
        return answer

    def close(self) -> None:
        self._session.close()
