"""Clear errors: truncated weights name the file; DFTopKLoss checks labels and settings early."""

import glob
import os

import pytest
import tensorflow as tf

from dftopk_tf import DFTopKLoss, TopKSelectionLoss
from models.cascade import build_cascade, load_cascade
from models.data import read_data_schema
from models.model_dir import ModelDir
from models.train import TrainOptions


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


def test_labels_of_the_wrong_shape_are_called_labels() -> None:
    with pytest.raises(ValueError, match=r"labels \(y_true\) have shape \(2, 3\) but the scores"):
        DFTopKLoss(k=1)(tf.zeros([2, 3]), tf.zeros([2, 4]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tau": 0.0}, "tau must be > 0"),
        ({"tau": float("nan")}, "tau must be > 0"),
        ({"k": 2.5}, r"k and label_k must be >= 1 \(ints\), got k=2.5"),
        ({"k": True}, "k and label_k must be >= 1"),
        ({"label_k": 0}, "k and label_k must be >= 1"),
    ],
)
def test_bad_loss_settings_are_refused_at_construction(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        DFTopKLoss(**settings)


def test_a_peer_loss_refuses_a_non_positive_temperature() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        TopKSelectionLoss("lapsum", k=1, temperature=-1.0)
