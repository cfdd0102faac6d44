"""A full disk while training writes: one line naming the folder and the free space, nothing
half-written left, and the same command resumes once there is space."""

import glob
import os
import subprocess

import pytest
import tensorflow as tf
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.training.train import run_training
from dftopk_cascade.pipelines.full_disk import DiskFullError

from tests.models.test_train import tiny_options


def _fill_the_disk(layout: ModelDir):
    """``ModelDir.save_weights`` as it fails on a full disk: TensorFlow's writer has begun."""

    def save_weights(self, model) -> None:
        partial = os.path.join(layout.weights_dir + ".tmp", "cascade_temp")
        os.makedirs(partial)
        with open(os.path.join(partial, "part-00000-of-00001.data-00000-of-00001"), "wb") as file:
            file.write(b"\0" * 100)
        raise tf.errors.ResourceExhaustedError(
            None,
            None,
            f"{partial}/part-00000-of-00001.data-00000-of-00001; No space left on device",
        )

    return save_weights


def test_a_full_disk_gives_one_line_and_leaves_nothing_half_written(
    tiny_data, tmp_path, monkeypatch
) -> None:
    options = tiny_options(tiny_data, str(tmp_path / "model"), epochs=2, steps_per_epoch=1)
    layout = ModelDir(options.model_dir)
    with monkeypatch.context() as patch:
        patch.setattr(ModelDir, "save_weights", _fill_the_disk(layout))
        with pytest.raises(DiskFullError) as error:
            run_training(options)
    message = str(error.value)
    assert "\n" not in message
    assert "the disk is full (" in message and "bytes free there" in message
    assert options.model_dir in message
    assert not os.path.exists(layout.weights_dir + ".tmp")
    assert not layout.has_weights()
    assert os.path.isfile(layout.checkpoint_pattern.format(epoch=2) + ".index")  # complete: kept

    result = run_training(options)  # space freed: the same command finishes the run
    assert layout.has_weights() and 0.0 <= result.metrics["joint_recall"] <= 1.0


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MiB tmpfs (a tiny run's model folder needs about 14 MiB); skipped without root."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount_point)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_real_full_disk_stops_with_one_line_and_the_run_resumes_on_more_space(
    tiny_data, small_disk
) -> None:
    options = tiny_options(tiny_data, str(small_disk / "model"), epochs=3, steps_per_epoch=1)
    with pytest.raises(DiskFullError, match=r"the disk is full \([\d,]+ bytes free there\)"):
        run_training(options)
    leftovers = [path for path in glob.glob(f"{small_disk}/**", recursive=True) if "_temp" in path]
    assert leftovers == [] and not os.path.exists(ModelDir(options.model_dir).weights_dir + ".tmp")
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    result = run_training(options)
    assert len(result.history["loss"]) >= 1 and 0.0 <= result.metrics["joint_recall"] <= 1.0
