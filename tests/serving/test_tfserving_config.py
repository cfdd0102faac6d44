"""The TF Serving model config parses as TF Serving's own proto and names the exported models."""

import os

from dftopk_cascade.serving import signatures as sig
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "serving", "tfserving")


def test_models_config_lists_the_three_models_with_a_latest_version_policy():
    with open(os.path.join(CONFIG_DIR, "models.config")) as file:
        config = text_format.Parse(file.read(), model_server_config_pb2.ModelServerConfig())
    models = config.model_config_list.config
    assert [model.name for model in models] == list(sig.MODEL_NAMES)
    for model in models:
        assert model.base_path == f"/models/{model.name}"
        assert model.model_platform == "tensorflow"
        assert model.model_version_policy.latest.num_versions == 1


def test_monitoring_config_enables_prometheus():
    with open(os.path.join(CONFIG_DIR, "monitoring.config")) as file:
        text = file.read()
    assert "prometheus_config" in text and "enable: true" in text
