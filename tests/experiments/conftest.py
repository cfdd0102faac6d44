"""Shared fixtures of the experiment tests: the method comparison's tiny dataset, made once."""

import pytest

from experiments.method_comparison import SIZES, prepare_data


@pytest.fixture(scope="session")
def tiny_comparison_data(tmp_path_factory) -> str:
    """The TFRecord folder of ``SIZES["tiny"]`` (4 simulated days x 256 requests), read only.

    Tests that train on it keep their models and records under their own folders.
    """
    return prepare_data(str(tmp_path_factory.mktemp("comparison")), SIZES["tiny"])
