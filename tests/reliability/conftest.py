"""Shared fixtures of the reliability tests: the tiny converted dataset of the model tests."""

import pytest

from tests.models.conftest import make_tiny_data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """A converted TFRecord folder: 2 days x 120 simulated requests, 2 shards per day."""
    return make_tiny_data(str(tmp_path_factory.mktemp("tiny_data")))
