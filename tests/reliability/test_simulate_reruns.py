"""dftopk_cascade.pipelines.simulator.simulate: settings recorded, a mismatch refused, identical
days kept, bad sizes."""

import json
import os

import pytest
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.convert import convert
from dftopk_cascade.pipelines.owned_folder import ForeignFolderError
from dftopk_cascade.pipelines.simulator.simulate import SETTINGS_FILE, simulate


def small(root: str, days: int = 2, seed: int = 3, **settings):
    return simulate(root, days, 60, seed, chunk_size=30, users=50, progress=False, **settings)


def mtimes(root: str) -> dict[str, int]:
    """Modification times of the data files (the folder's marker and lock are rewritten per run)."""
    return {
        os.path.relpath(os.path.join(folder, name), root): os.stat(
            os.path.join(folder, name)
        ).st_mtime_ns
        for folder, _, names in os.walk(root)
        for name in names
        if not name.startswith(".dftopk-")
    }


def test_settings_are_recorded_and_a_mismatch_is_refused(tmp_path) -> None:
    root = str(tmp_path / "sim")
    small(root)
    with open(os.path.join(root, SETTINGS_FILE)) as file:
        recorded = json.load(file)
    assert recorded == {
        "seed": 3,
        "start_day": "2024-01-13",
        "requests_per_day": 60,
        "users": 50,
        "items": 5000,
        "chunk_size": 30,
        "days": ["2024-01-13", "2024-01-14"],
    }
    before = mtimes(root)
    with pytest.raises(ValueError, match=r"other settings .*'seed': \(3, 4\)"):
        small(root, seed=4)
    assert mtimes(root) == before  # nothing touched
    small(root, seed=4, overwrite=True)
    with open(os.path.join(root, SETTINGS_FILE)) as file:
        assert json.load(file)["seed"] == 4


def test_a_rerun_with_identical_settings_rewrites_no_day(tmp_path) -> None:
    root, out = str(tmp_path / "sim"), str(tmp_path / "tfrec")
    small(root, days=1)
    first_day = mtimes(root)
    summary = small(root, days=1)
    assert summary.skipped_days == ["2024-01-13"] and mtimes(root) == first_day
    convert(root, out, workers=1, requests_per_shard=60, progress=False)
    # One more day of the same world: day 1 is neither rewritten nor converted again.
    assert small(root, days=2).skipped_days == ["2024-01-13"]
    kept = [name for name in first_day if "2024-01-13" in name or "id_cnt" in name]
    assert len(kept) == 5 and all(mtimes(root)[name] == first_day[name] for name in kept)
    summary = convert(root, out, workers=1, requests_per_shard=60, progress=False)
    assert summary.skipped_days == ["2024-01-13"] and summary.requests == 120


@pytest.mark.parametrize("overwrite", [False, True])
def test_published_recflow_is_never_written_into(tmp_path, overwrite) -> None:
    root = str(tmp_path / "recflow")
    os.makedirs(os.path.join(root, recflow.ALL_STAGE_DIR))
    real_day = os.path.join(root, recflow.ALL_STAGE_DIR, "2024-01-13.feather")
    with open(real_day, "wb") as file:
        file.write(b"real RecFlow rows")
    with pytest.raises(ForeignFolderError, match="did not write it") as error:
        small(root, overwrite=overwrite)
    assert "--overwrite" not in str(error.value)
    with open(real_day, "rb") as file:
        assert file.read() == b"real RecFlow rows"
    assert sorted(os.listdir(root)) == [recflow.ALL_STAGE_DIR]  # left exactly as it was


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"users": 0}, "need at least 1 user"), ({"items": 1}, "5000 videos, got 50 and 1")],
)
def test_bad_world_sizes_are_refused_before_anything_is_written(tmp_path, settings, message):
    root = str(tmp_path / "sim")
    arguments = {"users": 50, **settings}
    with pytest.raises(ValueError, match=message):
        simulate(root, 1, 60, 3, chunk_size=30, progress=False, **arguments)
    assert not os.path.exists(root)
