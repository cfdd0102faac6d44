"""Tiny simulated RecFlow datasets and conversions shared by the pipeline tests."""

import os

from dftopk_cascade.pipelines.convert import convert
from dftopk_cascade.pipelines.simulator.simulate import simulate

DAYS = 2
REQUESTS_PER_DAY = 120
CHUNK_SIZE = 50
REQUESTS_PER_SHARD = 50


def simulate_small(root: str, seed: int = 3) -> str:
    """Simulates 2 days x 120 requests into ``root`` and returns it."""
    simulate(root, DAYS, REQUESTS_PER_DAY, seed, chunk_size=CHUNK_SIZE, progress=False)
    return root


def convert_small(root: str, out: str, workers: int = 1, days: list[str] | None = None):
    """Converts ``root`` into ``out`` with 50 requests per shard; returns the summary."""
    return convert(
        root, out, days=days, workers=workers, requests_per_shard=REQUESTS_PER_SHARD, progress=False
    )


def tree(root: str) -> dict[str, bytes]:
    """Every data file under ``root`` (relative path -> bytes), without the folder's marker and
    lock (``dftopk_cascade.pipelines.owned_folder``: they hold a random id and the writer's
    process)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.startswith(".dftopk-"):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as file:
                files[os.path.relpath(path, root)] = file.read()
    return files
