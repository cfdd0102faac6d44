"""The ``local`` backend: the exported SavedModels loaded in this process (no server needed).

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export
    >>> backend = LocalBackend(toy_cascade_export())
    >>> backend.versions
    {'retrieval': 1, 'prerank': 1, 'rank': 1}
"""

import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.backends.base import BackendError, BackendRequestError, PredictBackend
from dftopk_cascade.serving.export_layout import (
    latest_version_dir,
    read_cascade_manifest,
    version_dir,
)
from dftopk_cascade.serving.saved_model_files import load_saved_model
from dftopk_cascade.serving.saved_model_proto import signature_defaults


class LocalBackend(PredictBackend):
    """Runs the ``serving_default`` signatures of SavedModels under a TF Serving export folder.

    Args:
        export_dir: the ``EXPORT`` folder of ``python -m dftopk_cascade.serving.export``.
        model_names: the models to load (default: retrieval, prerank, rank).
        versions: model name -> version to load; the latest version otherwise.

    A model of the published cascade is verified against the file sizes and sha256 that
    ``cascade.json`` records; a damaged SavedModel is an ``ExportReadError`` naming the file.
    Inputs are checked against the contract's names, dtypes and shapes
    (``BackendRequestError``); inputs left out take the signature's defaults, as TF Serving's
    gRPC API does; TensorFlow's own run-time errors (e.g. ``k`` < 1) are ``BackendRequestError``
    too. Calls are thread-safe.

    Example:
        >>> from dftopk_cascade.serving.export.toy_servables import (
        ...     toy_cascade_export, toy_corpus, toy_request)
        >>> inputs = toy_request() | {"items": toy_corpus()[None, :50],
        ...                           "item_mask": np.ones([1, 50], bool)}
        >>> LocalBackend(toy_cascade_export()).predict("rank", inputs)["selected"].sum(axis=1)
        array([10.], dtype=float32)
    """

    name = "local"

    def __init__(
        self,
        export_dir: str,
        model_names: Sequence[str] = sig.MODEL_NAMES,
        versions: Mapping[str, int] | None = None,
    ):
        versions = dict(versions or {})
        manifest = read_cascade_manifest(export_dir) or {"version": None}
        self.versions: dict[str, int] = {}
        self._signatures = {}
        for model_name in model_names:
            sig.input_specs(model_name)
            if model_name in versions:
                path = version_dir(export_dir, model_name, versions[model_name])
            else:
                path = latest_version_dir(export_dir, model_name)
            if not os.path.isdir(path):
                raise FileNotFoundError(f"no SavedModel of {model_name!r} at {path}")
            published = path == version_dir(export_dir, model_name, manifest["version"])
            records = manifest.get("files", {}).get(model_name) if published else None
            loaded = load_saved_model(path, records)
            if sig.SIGNATURE_NAME not in loaded.signatures:
                raise ValueError(f"{path} has no {sig.SIGNATURE_NAME!r} signature")
            self._signatures[model_name] = (
                loaded,
                loaded.signatures[sig.SIGNATURE_NAME],
                signature_defaults(path),
            )
            self.versions[model_name] = int(os.path.basename(path))

    def predict(self, model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if model_name not in self._signatures:
            raise BackendRequestError(
                f"model {model_name!r} is not loaded; loaded: {sorted(self._signatures)}"
            )
        _, signature, defaults = self._signatures[model_name]
        try:
            arrays = sig.as_numpy_inputs(model_name, inputs, defaults)
        except ValueError as error:
            raise BackendRequestError(str(error)) from None
        try:
            outputs = signature(**{name: tf.constant(value) for name, value in arrays.items()})
        except tf.errors.InvalidArgumentError as error:
            raise BackendRequestError(f"{model_name}: {error.message}") from None
        except tf.errors.OpError as error:
            raise BackendError(f"{model_name}: {error.message}") from None
        return {name: value.numpy() for name, value in outputs.items()}

    def version_states(self, model_name: str) -> dict[int, str]:
        """The loaded version of ``model_name`` is AVAILABLE (it loaded before serving).

        Example:
            >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export
            >>> LocalBackend(toy_cascade_export()).version_states("retrieval")
            {1: 'AVAILABLE'}
        """
        if model_name not in self.versions:
            raise BackendRequestError(
                f"model {model_name!r} is not loaded; loaded: {sorted(self.versions)}"
            )
        return {self.versions[model_name]: "AVAILABLE"}

    def close(self) -> None:
        self._signatures.clear()
