"""Every docstring example in serving/ runs and prints what it says.

The examples run on one tiny cascade of ``models/`` (random weights) over converted simulated
data, exported once for the module with the default sizes (top_n 200, m 50, k 10), served by the
local backend and by the TF Serving stand-in (REST and gRPC).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

import serving
from models.cascade import build_cascade, load_cascade
from models.config import CascadeConfig
from models.training.model_dir import ModelDir
from pipelines.input import load_schema
from serving import signatures as sig
from serving.backends import LocalBackend
from serving.cascade_inference import DEFAULT_SIZES, Cascade
from serving.export.item_corpus import collect_item_corpus
from serving.export.saved_models import export_cascade
from serving.export.servables import ScorerServable
from serving.export.vocabulary import FeatureVocabulary
from serving.micro_batcher import CascadeBatcher
from serving.recommend_api import parse_recommend_body
from serving.server import RecommendService
from tests.docstring_examples import assert_examples_pass, package_modules
from tests.models.batches import TINY_LAYERS
from tests.pipelines.recflow_fixtures import convert_small, simulate_small
from tests.serving.tf_serving_stand_in import TFServingStandIn

MODULES = package_modules(serving)
#: Modules whose examples still take the exported cascade, backends and stand-in from the test
#: (not yet self-contained); the others build what they use.
TAKES_TEST_NAMES = {
    "serving",
    "serving.backends",
    "serving.backends.base",
    "serving.backends.local",
    "serving.backends.tf_serving_grpc",
    "serving.backends.tf_serving_rest",
    "serving.cascade_inference",
    "serving.export.saved_models",
    "serving.micro_batcher",
    "serving.export.servables",
    "serving.server",
}

#: One request as a client sends it to ``POST /v1/recommend`` (raw RecFlow ids).
REQUEST_BODY = b'{"requests": [{"user": [3, 1, 1, 2, 4], "context": [2, 14, 30],'
REQUEST_BODY += b' "history": [[10, 3, 2, 1, 0], [22, 7, 5, 2, 1]]}]}'

#: Candidates of the ``inputs`` example request (pre-ranking and ranking models).
CANDIDATES = 50


@pytest.fixture(scope="module")
def shared_globals(tmp_path_factory):
    """A trained-shape cascade's model folder, data, export, backends, cascade and service."""
    root = tmp_path_factory.mktemp("cascade")
    data_dir = str(root / "tfrec")
    convert_small(simulate_small(str(root / "recflow")), data_dir)
    config = CascadeConfig.from_schema(load_schema(data_dir), **TINY_LAYERS)
    model_dir = ModelDir(str(root / "model"))
    model_dir.save_weights(build_cascade(config))
    config.save(model_dir.config_path)
    model = load_cascade(model_dir.root)
    corpus = collect_item_corpus(data_dir)
    export_dir = str(root / "export")
    export_cascade(model, corpus, export_dir)

    call = parse_recommend_body(REQUEST_BODY, DEFAULT_SIZES)
    request = call.features
    inputs = request | {
        sig.ITEMS: corpus[None, :CANDIDATES],
        sig.ITEM_MASK: np.ones([1, CANDIDATES], bool),
    }
    backend = LocalBackend(export_dir)
    cascade = Cascade(backend, *DEFAULT_SIZES)
    batcher = CascadeBatcher(cascade)
    toy_scorer = ScorerServable(
        lambda features: tf.cast(features[sig.ITEMS][..., 0], tf.float32),
        [],
        FeatureVocabulary({sig.ITEMS: [100] * sig.ITEM_WIDTH}),
        default_k=2,
    )
    with TFServingStandIn(export_dir) as tf_serving:
        yield {
            "data_dir": data_dir,
            "model_dir": model_dir.root,
            "model": model,
            "corpus": corpus,
            "export_dir": export_dir,
            "request": request,
            "inputs": inputs,
            "backend": backend,
            "cascade": cascade,
            "result": cascade.recommend(request),
            "batcher": batcher,
            "service": RecommendService(batcher, DEFAULT_SIZES),
            "servable": toy_scorer,
            "rest_url": tf_serving.rest_url,
            "grpc_target": tf_serving.grpc_target,
        }
    batcher.close()
    backend.close()


@pytest.mark.parametrize("module_name", sorted(TAKES_TEST_NAMES))
def test_docstring_examples_run_on_the_shared_cascade(module_name, shared_globals, tmp_path):
    os.makedirs(tmp_path / "work")
    assert_examples_pass(module_name, {**shared_globals, "tmp_dir": str(tmp_path / "work")})


@pytest.mark.parametrize("module_name", [name for name in MODULES if name not in TAKES_TEST_NAMES])
def test_self_contained_docstring_examples_run(module_name):
    assert_examples_pass(module_name)
