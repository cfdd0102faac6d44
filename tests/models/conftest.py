"""Shared fixtures of the model tests: a tiny simulated and converted RecFlow dataset."""

import pytest
from dftopk_cascade.pipelines.convert import convert
from dftopk_cascade.pipelines.simulator.simulate import simulate

#: Two days (the first trained on, the second held out) of 120 requests each.
DAYS = ("2024-01-13", "2024-01-14")
REQUESTS_PER_DAY = 120


def make_tiny_data(root: str) -> str:
    """Simulates and converts the tiny dataset under ``root``; returns the TFRecord folder."""
    simulate(f"{root}/recflow", len(DAYS), REQUESTS_PER_DAY, seed=3, chunk_size=60, progress=False)
    convert(f"{root}/recflow", f"{root}/tfrec", workers=1, requests_per_shard=60, progress=False)
    return f"{root}/tfrec"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """A converted TFRecord folder: 2 days x 120 simulated requests, 2 shards per day."""
    return make_tiny_data(str(tmp_path_factory.mktemp("tiny_data")))
