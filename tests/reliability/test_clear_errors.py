"""Clear errors: truncated weights name the file (the loss checks: tests/dftopk_tf)."""

import glob
import os

import pytest
from dftopk_cascade.models.cascade import build_cascade, load_cascade
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.training.train import TrainOptions
from dftopk_cascade.pipelines.data_schema import read_data_schema


def test_truncated_weights_name_the_file(tiny_data, tmp_path) -> None:
    config = TrainOptions(tiny_data, "unused").cascade_config(read_data_schema(tiny_data))
    layout = ModelDir(str(tmp_path))
    layout.save_weights(build_cascade(config))
    config.save(layout.config_path)
    (data_file,) = glob.glob(layout.weights_prefix + ".data-*")
    with open(data_file, "r+b") as file:
        file.truncate(os.path.getsize(data_file) // 2)
    with pytest.raises(ValueError, match=rf"{data_file}.*damaged or truncated"):
        load_cascade(str(tmp_path))
