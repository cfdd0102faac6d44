"""The simulator and convert write only folders they own, and lock them while they write.

Issue 29 item 3 (a simulated RecFlow folder never overwrites real files; convert refuses a folder
mixing simulated and real days) and item 4 (a second convert into a locked --data fails at once).
"""

import os
import shutil
import subprocess
import sys

import pytest
from dftopk_cascade.command_line.entry import USER_ERROR_EXIT_CODE, run_command
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.convert import convert, main
from dftopk_cascade.pipelines.owned_folder import (
    FolderBusyError,
    ForeignFolderError,
    owned_folder,
    read_marker,
)
from dftopk_cascade.pipelines.simulator.simulate import simulate

from tests.pipelines.recflow_fixtures import convert_small, simulate_small

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD_LOCK = """
import sys, time
from dftopk_cascade.pipelines.owned_folder import owned_folder
with owned_folder(sys.argv[1], kind="data", writer="dftopk_cascade.pipelines.convert"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> str:
    return simulate_small(str(tmp_path_factory.mktemp("sim") / "recflow"))


def small_simulation(root: str, **settings) -> None:
    simulate(root, 2, 60, 3, chunk_size=30, users=50, progress=False, **settings)


def test_the_simulated_folder_lists_the_days_it_wrote(simulated) -> None:
    manifest = read_marker(simulated, "recflow")["manifest"]
    for day in ("2024-01-13", "2024-01-14"):
        assert os.path.join(recflow.ALL_STAGE_DIR, f"{day}.feather") in manifest
        assert os.path.join(recflow.REQUEST_DICT_DIR, f"{day}.pkl") in manifest


def test_overwrite_never_replaces_a_real_day_copied_into_a_simulated_folder(tmp_path) -> None:
    root = str(tmp_path / "sim")
    small_simulation(root)
    real_day = os.path.join(root, recflow.ALL_STAGE_DIR, "2024-01-15.feather")
    with open(real_day, "wb") as file:
        file.write(b"a real RecFlow day")
    with pytest.raises(
        ForeignFolderError, match=r"2024-01-15\.feather was not written by"
    ) as error:
        simulate(root, 3, 60, 4, chunk_size=30, users=50, progress=False, overwrite=True)
    assert "--overwrite" not in str(error.value)
    with open(real_day, "rb") as file:
        assert file.read() == b"a real RecFlow day"
    # The simulation itself was not touched either: its settings and days are still there.
    assert os.path.isfile(os.path.join(root, recflow.ALL_STAGE_DIR, "2024-01-13.feather"))


def test_overwrite_deletes_only_what_the_simulator_wrote(tmp_path) -> None:
    root = str(tmp_path / "sim")
    small_simulation(root)
    notes = os.path.join(root, recflow.OTHERS_DIR, "my_notes.txt")
    with open(notes, "w") as file:
        file.write("mine")
    simulate(root, 1, 60, 4, chunk_size=30, users=50, progress=False, overwrite=True)
    assert open(notes).read() == "mine"
    assert not os.path.exists(os.path.join(root, recflow.ALL_STAGE_DIR, "2024-01-14.feather"))


def test_convert_refuses_a_folder_mixing_simulated_and_real_days(simulated, tmp_path) -> None:
    mixed = str(tmp_path / "mixed")
    shutil.copytree(simulated, mixed)
    for folder, suffix in (
        (recflow.ALL_STAGE_DIR, recflow.FEATHER_SUFFIX),
        (recflow.SEQUENCE_DIR, ".pkl"),
        (recflow.REQUEST_DICT_DIR, ".pkl"),
    ):  # a "real" day, 2024-01-15, dropped next to the simulated ones
        shutil.copy(
            os.path.join(mixed, folder, f"2024-01-14{suffix}"),
            os.path.join(mixed, folder, f"2024-01-15{suffix}"),
        )
    out = str(tmp_path / "tfrec")
    with pytest.raises(recflow.RecFlowError, match="did not write: 2024-01-15; convert"):
        convert_small(mixed, out)
    with pytest.raises(recflow.RecFlowError, match="2024-01-15"):
        convert_small(mixed, out, days=["2024-01-13"])  # the mix is refused whatever is asked
    assert not os.path.exists(os.path.join(out, "schema.json"))


def test_a_simulation_into_a_folder_being_simulated_fails_at_once(tmp_path) -> None:
    root = str(tmp_path / "sim")
    with owned_folder(root, kind="recflow", writer="dftopk_cascade.pipelines.simulator.simulate"):
        with pytest.raises(FolderBusyError, match=f"process {os.getpid()} "):
            small_simulation(root)
    small_simulation(root)  # the lock is released with its holder
    assert read_marker(root, "recflow")["writer"] == "dftopk_cascade.pipelines.simulator.simulate"


def test_convert_refuses_a_data_folder_it_did_not_write(simulated, tmp_path) -> None:
    out = tmp_path / "webapp"
    out.mkdir()
    (out / "config.json").write_text("{}")
    with pytest.raises(ForeignFolderError, match="nothing was changed"):
        convert_small(simulated, str(out))
    assert os.listdir(out) == ["config.json"]  # left exactly as it was, no lock file


def test_a_second_convert_into_a_locked_folder_fails_at_once_naming_the_first(
    simulated, tmp_path, capsys
) -> None:
    out = str(tmp_path / "tfrec")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, out],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusyError, match=f"process {holder.pid} "):
            convert(simulated, out, workers=1, progress=False)
        with pytest.raises(SystemExit) as exit_code:
            run_command(
                main,
                "python -m dftopk_cascade.pipelines.convert",
                ["--recflow", simulated, "--data", out],
            )
        assert exit_code.value.code == USER_ERROR_EXIT_CODE
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and f"process {holder.pid}" in error
    finally:
        holder.kill()
        holder.wait()
    assert convert(simulated, out, workers=1, progress=False).requests == 240  # lock released
