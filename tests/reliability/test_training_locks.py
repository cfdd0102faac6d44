"""Two trainings into one --model-dir: the second stops at once, naming the first process."""

import subprocess
import sys
import textwrap

import pytest
from dftopk_cascade.models.training.train import run_training
from dftopk_cascade.pipelines.owned_folder import FolderBusyError

from tests.models.test_train import tiny_options

ROOT = __file__.rsplit("/tests/", 1)[0]


def test_a_second_training_into_a_busy_model_folder_names_the_first(tiny_data, tmp_path) -> None:
    model_dir = str(tmp_path / "model")
    # The first training: a process that claims the folder as train does, then waits.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from dftopk_cascade.pipelines.owned_folder import owned_folder
                with owned_folder({model_dir!r}, "model",
                writer="dftopk_cascade.models.training.train"):
                    print("claimed", flush=True)
                    sys.stdin.read()
                """
            ),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with pytest.raises(
            FolderBusyError, match=rf"model is being written by process {holder.pid}"
        ):
            run_training(tiny_options(tiny_data, model_dir))
    finally:
        holder.communicate("", timeout=120)
    assert holder.returncode == 0
