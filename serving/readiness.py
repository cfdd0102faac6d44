"""Readiness of a backend: is each model AVAILABLE at the version the front will call?

Liveness (``/healthz``) only says the front's process answers; readiness (``/readyz``) asks the
model server, through TF Serving's model status API (REST ``GET /v1/models/<name>[/versions/<v>]``,
gRPC ``ModelService.GetModelStatus``; ``PredictBackend.version_states``), for the state of every
version of the three models. A model is ready when the version the front calls is AVAILABLE: the
pinned one (``versions`` of the backend), else the newest AVAILABLE version, which is the one TF
Serving answers a request without a version with.

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import toy_backend
    >>> readiness = check_readiness(toy_backend())
    >>> readiness.ready, readiness.models["rank"].version, readiness.models["rank"].state
    (True, 1, 'AVAILABLE')
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends.base import BackendError, PredictBackend

AVAILABLE = "AVAILABLE"
#: The state of a model whose status could not be read (the server is down, or refused).
UNKNOWN = "UNKNOWN"
#: The state of a model the server tracks no (asked) version of.
NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class ModelReadiness:
    """One model's readiness: the version the front would call, its state, and why not ready.

    Example:
        >>> ModelReadiness("rank", 2, "LOADING").ready
        False
    """

    model: str
    version: int | None
    state: str
    error: str = ""

    @property
    def ready(self) -> bool:
        """True when the version the front calls is AVAILABLE.

        Example:
            >>> ModelReadiness("rank", 2, AVAILABLE).ready
            True
        """
        return self.state == AVAILABLE


@dataclass(frozen=True)
class Readiness:
    """The readiness of every model; ready when all are.

    Example:
        >>> Readiness({"rank": ModelReadiness("rank", 1, AVAILABLE)}).as_json()["status"]
        'ready'
    """

    models: Mapping[str, ModelReadiness]

    @property
    def ready(self) -> bool:
        """True when every model is ready.

        Example:
            >>> Readiness({"rank": ModelReadiness("rank", None, NOT_FOUND)}).ready
            False
        """
        return all(model.ready for model in self.models.values())

    def as_json(self) -> dict[str, Any]:
        """``{"status": "ready" | "not ready", "models": {name: {version, state, error}}}``.

        Example:
            >>> Readiness({"rank": ModelReadiness("rank", 3, AVAILABLE)}).as_json()["models"]
            {'rank': {'version': 3, 'state': 'AVAILABLE'}}
        """
        models = {}
        for name, model in self.models.items():
            fields = asdict(model)
            del fields["model"]
            if not fields["error"]:
                del fields["error"]
            models[name] = fields
        return {"status": "ready" if self.ready else "not ready", "models": models}


def model_readiness(
    model_name: str, states: Mapping[int, str], pinned: int | None
) -> ModelReadiness:
    """Readiness from the server's version states and the version the front pins (if any).

    Example:
        >>> model_readiness("rank", {1: "END", 2: "AVAILABLE", 3: "LOADING"}, None)
        ModelReadiness(model='rank', version=2, state='AVAILABLE', error='')
        >>> model_readiness("rank", {2: "AVAILABLE"}, pinned=3).state
        'NOT_FOUND'
    """
    if pinned is not None:
        if pinned not in states:
            return ModelReadiness(model_name, pinned, NOT_FOUND, f"no version {pinned} is served")
        return ModelReadiness(model_name, pinned, states[pinned])
    available = [version for version, state in states.items() if state == AVAILABLE]
    if available:
        return ModelReadiness(model_name, max(available), AVAILABLE)
    if not states:
        return ModelReadiness(model_name, None, NOT_FOUND, "the server tracks no version")
    newest = max(states)
    return ModelReadiness(model_name, newest, states[newest], "no version is AVAILABLE")


def check_readiness(
    backend: PredictBackend, model_names: tuple[str, ...] = sig.MODEL_NAMES
) -> Readiness:
    """Asks ``backend`` for the state of each model's versions; never raises a backend error.

    Example:
        >>> from dftopk_cascade.serving.backends import GrpcBackend
        >>> readiness = check_readiness(GrpcBackend("127.0.0.1:1", timeout_s=5.0))  # no server
        >>> readiness.ready, readiness.models["retrieval"].state
        (False, 'UNKNOWN')
    """
    pins = backend.versions
    models = {}
    for name in model_names:
        try:
            states = backend.version_states(name)
        except BackendError as error:
            models[name] = ModelReadiness(name, pins.get(name), UNKNOWN, str(error))
            continue
        models[name] = model_readiness(name, states, pins.get(name))
    return Readiness(models)
