"""The model-server core of the TF Serving stand-in: models.config, versions, sessions, Predict.

It does what ``tensorflow_model_server`` does between a request and TensorFlow, with the same
status codes and messages (from TF Serving's ``server_core.cc``, ``basic_manager.cc``,
``predict_util.cc`` and TensorFlow's ``cc/saved_model/util.cc``):

- the models and their version policies come from a real ``models.config``
  (``ModelServerConfig`` text proto); each ``base_path`` is looked up by its last folder name
  under the export folder. ``latest {num_versions: n}`` serves the n newest versions;
  ``poll()`` rescans the folders as ``--file_system_poll_wait_seconds`` does;
- every version is loaded as the server's C++ loader does: ``tf.compat.v1.saved_model.loader.load``
  into its own graph and session, and run with ``Session.run`` on the SignatureDef's tensor names,
  fed as they come (no casting: a wrong dtype fails in TensorFlow's own check);
- a request for a model or version that is not served is NOT_FOUND ``Servable not found for
  request: Specific(rank, 7)`` (or ``Latest(rank)``), also while a model loads;
- an unknown signature is FAILED_PRECONDITION; inputs left out take ``SignatureDef.defaults``;
- version labels come from ``models.config``'s ``version_labels`` (an unknown one is
  INVALID_ARGUMENT ``Unrecognized servable version label: stable``);
- ``model_status`` is ``GetModelStatus``: each tracked version AVAILABLE, LOADING or END;
- a version's warm-up records (``assets.extra/tf_serving_warmup_requests``) are replayed when it
  loads, before it serves.

Example:
    >>> core = ModelServerCore(export_dir)
    >>> core.served_versions("rank")
    [1]
"""

import os
import threading
import time
from dataclasses import dataclass, field

import grpc
import numpy as np
import tensorflow as tf
from dftopk_cascade.serving.export.warmup import MAX_WARMUP_RECORDS, WARMUP_FILE
from google.protobuf import any_pb2, text_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from tests.serving.stand_in_status import StatusError, invalid_argument

DEFAULT_SIGNATURE = "serving_default"
#: The project's TF Serving model config (newest version of retrieval, prerank and rank).
MODELS_CONFIG = os.path.join(
    os.path.dirname(__file__), "..", "..", "serving", "tfserving", "models.config"
)


def read_model_config(path: str) -> list[model_server_config_pb2.ModelConfig]:
    """The ``config`` entries of a ``--model_config_file``."""
    with open(path) as file:
        config = text_format.Parse(file.read(), model_server_config_pb2.ModelServerConfig())
    return list(config.model_config_list.config)


def aspired_versions(config: model_server_config_pb2.ModelConfig, present: list[int]) -> list[int]:
    """The versions (of those ``present``, ascending) that the config's version policy serves."""
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return list(present)
    if kind == "specific":
        return [version for version in present if version in set(policy.specific.versions)]
    newest = policy.latest.num_versions if kind == "latest" else 0
    return present[-max(newest, 1) :]


@dataclass
class ServedVersion:
    """One loaded version: its session and meta graph."""

    version: int
    session: tf.compat.v1.Session
    meta_graph: meta_graph_pb2.MetaGraphDef
    #: Warm-up records replayed on load.
    warmup_replayed: int = 0
    #: Runs that were the first with their feeds and fetches (a session builds and optimises an
    #: executor for each such set on its first run: the cost a warm-up moves to load time).
    cold_runs: int = 0
    _run_keys: set = field(default_factory=set)

    @classmethod
    def load(cls, path: str, version: int) -> "ServedVersion":
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(
                session, [tf.saved_model.SERVING], path
            )
        return cls(version, session, meta_graph)

    def run(self, feeds: dict[str, np.ndarray], fetches: list[str]) -> list[np.ndarray]:
        """``Session::Run`` on tensor names, the values fed unchanged.

        ``Session.run`` would cast each fed value to the placeholder's dtype and check its shape
        in Python, which the model server does not do; the session's own run call feeds them as
        they are, so a wrong dtype or shape fails in TensorFlow's C++ checks with their messages.
        """
        key = (tuple(sorted(feeds)), tuple(fetches))
        if key not in self._run_keys:
            self._run_keys.add(key)
            self.cold_runs += 1
        graph = self.session.graph
        feed = {
            graph.get_tensor_by_name(name)._as_tf_output(): value for name, value in feeds.items()
        }
        fetch = [graph.get_tensor_by_name(name)._as_tf_output() for name in fetches]
        try:
            return self.session._call_tf_sessionrun(None, feed, fetch, [], None)
        except tf.errors.OpError as error:
            raise StatusError.from_op_error(error) from None


def _request_string(spec: model_pb2.ModelSpec) -> str:
    if spec.HasField("version"):
        return f"Specific({spec.name}, {spec.version.value})"
    return f"Latest({spec.name})"


def _keys(names) -> str:
    return ",".join(sorted(names))


class ModelServerCore:
    """The served versions of the models of ``models.config`` under ``export_dir``, and Predict.

    Example:
        >>> ModelServerCore(export_dir).served_versions("retrieval")
        [1]
    """

    def __init__(self, export_dir: str, model_config: str = MODELS_CONFIG):
        self.export_dir = export_dir
        self.configs = {config.name: config for config in read_model_config(model_config)}
        self._lock = threading.Lock()
        self._served: dict[str, dict[int, ServedVersion]] = {name: {} for name in self.configs}
        self._retired: list[ServedVersion] = []
        self._ended: dict[str, set[int]] = {name: set() for name in self.configs}
        self._loading_until: dict[str, float] = {}
        self._failures: list[tuple[grpc.StatusCode, str]] = []
        self._metadata_holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        #: Predict calls received (REST and gRPC), failed ones included.
        self.predict_calls = 0
        self.poll()

    def base_path(self, name: str) -> str:
        """Where the config's ``base_path`` is here: its last folder under ``export_dir``."""
        return os.path.join(self.export_dir, os.path.basename(self.configs[name].base_path))

    def poll(self) -> None:
        """Loads the versions the policies now serve and unloads the others (a file-system poll)."""
        for name, config in self.configs.items():
            base = self.base_path(name)
            present = sorted(
                int(entry)
                for entry in (os.listdir(base) if os.path.isdir(base) else [])
                if entry.isdigit()
            )
            wanted = aspired_versions(config, present)
            loaded = {
                version: self._served[name].get(version)
                or self._load(os.path.join(base, str(version)), version)
                for version in wanted
            }
            with self._lock:
                self._retired += [v for k, v in self._served[name].items() if k not in loaded]
                self._ended[name] |= set(self._served[name]) - set(loaded)
                self._ended[name] -= set(loaded)
                self._served[name] = loaded
            self._check_labels(name)

    def _load(self, path: str, version: int) -> ServedVersion:
        """Loads a version and replays its warm-up records before it serves (as the server's
        ``saved_model_warmup.cc``: predict records only here, at most 1,000, each once)."""
        served = ServedVersion.load(path, version)
        warmup_path = os.path.join(path, WARMUP_FILE)
        if not os.path.isfile(warmup_path):
            return served
        for count, record in enumerate(tf.data.TFRecordDataset(warmup_path), start=1):
            if count > MAX_WARMUP_RECORDS:
                raise invalid_argument(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at "
                    f"{warmup_path}"
                )
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            kind = log.WhichOneof("log_type")
            if kind != "predict_log":
                raise StatusError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"the stand-in replays predict warm-up records only, not {kind}",
                )
            self._predict_on(served, log.predict_log.request)
            served.warmup_replayed += 1
        return served

    def _check_labels(self, name: str) -> None:
        """A label must name a served version (``ServerCore::UpdateModelVersionLabelMap``)."""
        for version in self.configs[name].version_labels.values():
            if version not in self._served[name]:
                raise StatusError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Request to assign label to version {version} of model {name}, which is "
                    "not currently available for inference",
                )

    def version_states(self, name: str) -> dict[int, str]:
        """Each version the server has tracked: AVAILABLE (served), LOADING (while ``reload``),
        END (unloaded), as ``ServableStateMonitor`` reports them."""
        with self._lock:
            loading = time.monotonic() < self._loading_until.get(name, 0.0)
            states = {version: "END" for version in self._ended.get(name, set())}
            for version in self._served.get(name, {}):
                states[version] = "LOADING" if loading else "AVAILABLE"
            return states

    def model_status(
        self, spec: model_pb2.ModelSpec
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """``GetModelStatus`` (``get_model_status_impl.cc``): a version's state, or every
        version's when none is asked for (a version label is not looked at)."""
        states = self.version_states(spec.name)
        if spec.HasField("version"):
            version = spec.version.value
            if version not in states:
                raise StatusError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {version} of model {spec.name}",
                )
            states = {version: states[version]}
        elif not states:
            raise StatusError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state in sorted(states.items()):
            status = response.model_version_status.add(version=version)
            status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            status.status.SetInParent()  # the servable's health: OK, with an empty message
        return response

    def served_versions(self, name: str) -> list[int]:
        """The versions of ``name`` that answer requests now, ascending."""
        with self._lock:
            if time.monotonic() < self._loading_until.get(name, 0.0):
                return []
            return sorted(self._served.get(name, {}))

    def reload(self, name: str, seconds: float) -> None:
        """``name`` is loading for ``seconds``: until then no version of it is served (as when
        a model is added to ``models.config``), so requests for it answer NOT_FOUND."""
        with self._lock:
            self._loading_until[name] = time.monotonic() + seconds

    def hold_metadata(self, name: str) -> tuple[threading.Event, threading.Event]:
        """Metadata calls for ``name`` set the first event and wait until the second is set."""
        held = (threading.Event(), threading.Event())
        self._metadata_holds[name] = held
        return held

    def fail_next(self, count: int, code: grpc.StatusCode, message: str) -> None:
        """The next ``count`` Predict calls fail with ``code`` and ``message``."""
        with self._lock:
            self._failures = [(code, message)] * count

    def servable(self, spec: model_pb2.ModelSpec) -> ServedVersion:
        """The loaded version a ``ModelSpec`` asks for: its version, else the newest served."""
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        if spec.WhichOneof("version_choice") == "version_label":
            spec = self._labelled(spec)
        versions = self.served_versions(spec.name)
        version = spec.version.value if spec.HasField("version") else max(versions, default=None)
        if version not in versions:
            raise StatusError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {_request_string(spec)}",
            )
        with self._lock:
            return self._served[spec.name][version]

    def _labelled(self, spec: model_pb2.ModelSpec) -> model_pb2.ModelSpec:
        """The spec with its version label replaced by the label's version (labels come from
        ``models.config``'s ``version_labels``; version labels are allowed by default)."""
        config = self.configs.get(spec.name)
        labels = config.version_labels if config is not None else {}
        if spec.version_label not in labels:
            raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
        resolved = model_pb2.ModelSpec(name=spec.name, signature_name=spec.signature_name)
        resolved.version.value = labels[spec.version_label]
        return resolved

    def signature_inputs(self, spec: model_pb2.ModelSpec, name: str) -> dict:
        """The signature's TensorInfo per input, as the REST API reads it before converting JSON."""
        name = name or DEFAULT_SIGNATURE
        signatures = self.servable(spec).meta_graph.signature_def
        if name not in signatures:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        inputs = dict(signatures[name].inputs)
        if not inputs:
            raise invalid_argument(f"Failed to get input map for signature: {name}")
        return inputs

    def metadata(
        self, spec: model_pb2.ModelSpec
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """``GetModelMetadata`` with the ``signature_def`` field (the only one TF Serving has)."""
        held = self._metadata_holds.get(spec.name)
        if held is not None:
            arrived, release = held
            arrived.set()
            release.wait(60.0)
        served = self.servable(spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = served.version
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in served.meta_graph.signature_def.items():
            signature_defs.signature_def[key].CopyFrom(signature)
        packed = any_pb2.Any()
        packed.Pack(signature_defs)
        response.metadata["signature_def"].CopyFrom(packed)
        return response

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        """TF Serving's Predict: signature lookup, input checks, defaults, Session.run."""
        with self._lock:
            self.predict_calls += 1
            failure = self._failures.pop() if self._failures else None
        if failure:
            raise StatusError(*failure)
        served = self.servable(request.model_spec)
        return self._predict_on(served, request)

    def _predict_on(
        self, served: ServedVersion, request: predict_pb2.PredictRequest
    ) -> predict_pb2.PredictResponse:
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in served.meta_graph.signature_def:
            raise StatusError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
            )
        signature = served.meta_graph.signature_def[name]
        feeds = self._feeds(signature, request)
        aliases = self._output_aliases(signature, request)
        values = served.run(feeds, [signature.outputs[alias].name for alias in aliases])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = served.version
        response.model_spec.signature_name = name
        for alias, value in zip(aliases, values, strict=True):
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    @staticmethod
    def _feeds(
        signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
    ) -> dict[str, np.ndarray]:
        sent, wanted = set(request.inputs), set(signature.inputs)
        if len(sent) > len(wanted) or (len(sent) < len(wanted) and not signature.defaults):
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{_keys(sent)}}}) != len({{{_keys(wanted)}}}). "
                f"Sent extra: {{{_keys(sent - wanted)}}}. "
                f"Missing but required: {{{_keys(wanted - sent)}}}."
            )
        feeds, used = {}, set()
        for alias in sorted(wanted):
            feed_name = signature.inputs[alias].name
            if alias in request.inputs:
                proto = request.inputs[alias]
                used.add(alias)
            elif alias in signature.defaults:
                proto = signature.defaults[alias]
            else:
                raise invalid_argument(
                    f"Signature input alias: {alias}(feed name: {feed_name}) not found in request "
                    f"and no default value provided. Inputs expected to be in the request "
                    f"{{{_keys(sent)}}}, or default input alias set: {_keys(signature.defaults)}"
                )
            try:
                feeds[feed_name] = tf.make_ndarray(proto)
            except (TypeError, ValueError):
                raise invalid_argument(f"tensor parsing error: {alias}") from None
        if sent and used != sent:
            raise invalid_argument(
                f"Inputs contains invalid name. Used request inputs: {_keys(used)}, "
                f"request input: {_keys(sent)}"
            )
        return feeds

    @staticmethod
    def _output_aliases(
        signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
    ) -> list[str]:
        aliases: list[str] = []
        for alias in request.output_filter:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{_keys(signature.outputs)}}}."
                )
            if alias in aliases:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            aliases.append(alias)
        return aliases or sorted(signature.outputs)

    def close(self) -> None:
        with self._lock:
            versions = [v for served in self._served.values() for v in served.values()]
            versions += self._retired
            self._served = {name: {} for name in self.configs}
            self._retired = []
        for served in versions:
            served.session.close()
