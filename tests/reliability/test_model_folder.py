"""models.training.train --overwrite clears only a model folder; an unfinished run says how to
finish."""

import os

import pytest

from models.model_folder import ModelDir
from models.training.data import read_data_schema
from models.training.train import TrainOptions, prepare_model_dir


@pytest.fixture
def config(tiny_data):
    return TrainOptions(tiny_data, "unused").cascade_config(read_data_schema(tiny_data))


def test_overwrite_refuses_a_folder_of_user_files(config, tiny_data, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ValueError, match=r"refusing to clear .*photos: it has no config\.json"):
        prepare_model_dir(ModelDir(str(folder)), config, overwrite=True, data_dir=tiny_data)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


def test_overwrite_refuses_the_data_folder_and_its_parents(config, tiny_data) -> None:
    for folder in (tiny_data, os.path.dirname(tiny_data)):
        with pytest.raises(ValueError, match=r"refusing to clear|is the --data folder"):
            prepare_model_dir(ModelDir(folder), config, overwrite=True, data_dir=tiny_data)
    assert read_data_schema(tiny_data)["counts"]["requests"] == 240


@pytest.mark.parametrize("place", ["home", "cwd", "root"])
def test_overwrite_refuses_home_cwd_and_root(config, tiny_data, place, monkeypatch, tmp_path):
    folder = {"home": str(tmp_path), "cwd": str(tmp_path), "root": os.sep}[place]
    (tmp_path / "config.json").write_text("{}")  # even with a config.json
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="refusing to clear"):
        ModelDir(folder).clear(protected=[tiny_data])
    assert (tmp_path / "config.json").exists()


def test_overwrite_clears_only_our_files_of_a_model_folder(config, tiny_data, tmp_path):
    layout = ModelDir(str(tmp_path / "model"))
    prepare_model_dir(layout, config, overwrite=False, data_dir=tiny_data)
    os.makedirs(layout.weights_dir)
    open(layout.weights_prefix + ".index", "w").close()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    prepare_model_dir(layout, config, overwrite=True, data_dir=tiny_data)
    assert sorted(os.listdir(layout.root)) == [
        "config.json",
        "data.json",
        "notes.txt",
        "precision.json",
    ]


def test_a_run_is_resumed_only_with_its_mixed_precision(config, tiny_data, tmp_path):
    layout = ModelDir(str(tmp_path / "model"))
    prepare_model_dir(layout, config, False, tiny_data, precision="mixed_float16")
    prepare_model_dir(layout, config, False, tiny_data, precision="mixed_float16")  # same: resumes
    with pytest.raises(ValueError, match="--mixed-precision mixed_float16; resume it with that"):
        prepare_model_dir(layout, config, False, tiny_data, precision="off")
    prepare_model_dir(layout, config, True, tiny_data, precision="off")  # --overwrite starts over
    assert layout.recorded_precision() == "off"


def test_a_run_stopped_before_evaluation_names_the_command_that_finishes_it(
    config, tiny_data, tmp_path
) -> None:
    layout = ModelDir(str(tmp_path / "model"))
    prepare_model_dir(layout, config, overwrite=False, data_dir=tiny_data)
    os.makedirs(layout.weights_dir)
    open(layout.weights_prefix + ".index", "w").close()  # killed after saving the weights
    with pytest.raises(ValueError) as error:
        prepare_model_dir(layout, config, overwrite=False, data_dir=tiny_data)
    assert (
        "finish it with: python -m models.training.evaluate "
        f"--data {tiny_data} --model-dir {layout.root}" in str(error.value)
    )
