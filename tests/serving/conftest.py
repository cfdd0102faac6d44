"""Shared fixtures: the stand-in cascade exported once per session, and the TF Serving stand-in."""

import pytest
from dftopk_cascade.serving.export.publish import write_version

from tests.serving.stand_in_cascade import StandInCascade, build_servables, random_corpus
from tests.serving.tf_serving_stand_in import TFServingStandIn

CORPUS_SIZE = 300


@pytest.fixture(scope="session")
def stand_in_model() -> StandInCascade:
    return StandInCascade()


@pytest.fixture(scope="session")
def corpus():
    return random_corpus(CORPUS_SIZE)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory, stand_in_model, corpus) -> str:
    """An export folder with version 1 of retrieval, prerank and rank."""
    root = str(tmp_path_factory.mktemp("export"))
    for name, servable in build_servables(stand_in_model, corpus).items():
        write_version(root, name, 1, servable, servable.signatures())
    return root


@pytest.fixture(scope="session")
def tf_serving(export_dir):
    with TFServingStandIn(export_dir) as stand_in:
        yield stand_in
