"""experiments.runner: a step-budget run with its validation curve, the data split, the curve
kept across a resume."""

import json
import os

import pytest
from dftopk_cascade.models.tf_keras import keras

from dftopk_tf.instruction_sets import usable_cpu_count
from experiments.method_comparison import comparison_settings
from experiments.run_records import RunKey, read_records
from experiments.runner import (
    SPLITS_FILE,
    DataSplit,
    TrainingLength,
    ValidationCurve,
    data_split,
    dataset_name,
    peak_resident_gib,
    train_run,
    training_options,
)


class CheckpointsAtEnd(keras.callbacks.Callback):
    """Lists the checkpoints folder when training ends."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder
        self.names: list[str] = []

    def on_train_end(self, logs: dict | None = None) -> None:
        self.names = os.listdir(self.folder)


def test_a_step_budget_run_records_its_curve_and_how_it_was_reached(
    tiny_comparison_data, tmp_path
) -> None:
    work, results = str(tmp_path / "work"), str(tmp_path / "results")
    data_dir = tiny_comparison_data  # 2 training days x 256 requests: 4 steps
    settings = comparison_settings(data_dir, work, results, "tiny", curve_every=3)
    key = RunKey("dftopk", "uniform", 0.1, 0, 0, steps=7)
    checkpoints = CheckpointsAtEnd(os.path.join(settings.model_dir(key), "checkpoints"))
    record = train_run(key, settings, [checkpoints]).record
    # 7 steps rounded up to whole curve intervals: 3 epochs of 3 steps, 2.25 passes over 4.
    assert (record["train_steps"], record["epochs"], record["steps_per_epoch"]) == (9, 3, 3)
    assert record["trained_steps"] == 9  # one process trained them all
    assert record["train_cpus"] == usable_cpu_count()  # unpinned: all this process may use
    # This process's peak so far (pytest's, here): at least what TensorFlow alone takes. The
    # record keeps 2 decimals, so compare it with the peak rounded the same way (rounding is
    # monotonic, and the peak can only grow).
    assert 0.2 < record["peak_memory_gib"] <= round(peak_resident_gib(), 2)
    # Only the newest per-epoch weights stay while training, none once the record is written.
    assert {name.split(".")[0] for name in checkpoints.names if name != "checkpoint"} == {
        "epoch-0003"
    }
    assert not os.path.exists(checkpoints.folder)
    assert record["step_budget_by"] == "passes" and record["passes"] == pytest.approx(2.25)
    assert [step for step, _ in record["curve"]] == [3, 6, 9]
    assert all(0.0 <= value <= 1.0 for _, value in record["curve"])
    # The last point scores the final model on the validation day, as the record does.
    assert record["curve"][-1][1] == pytest.approx(record["validation"]["joint_recall"], abs=1e-6)
    assert record["curve_every"] == 3 and record["test_day"] > record["validation_day"]
    # The budget is part of the run's name: the one-pass run of the same key is another run.
    assert list(read_records(results)) == ["dftopk-uniform-t0.1-neg0-seed0-steps7"]


def test_the_split_follows_movielens_json_and_the_key_s_days(tmp_path) -> None:
    windows = ["w1", "w2", "w3", "w4"]
    (tmp_path / SPLITS_FILE).write_text(
        json.dumps({"splits": {"train": ["w1", "w2"], "validation": ["w3"], "test": ["w4"]}})
    )
    schema = {"days": {window: {} for window in windows}}
    assert data_split(str(tmp_path), schema, RunKey("bce"), True) == DataSplit(
        ("w1", "w2"), "w3", "w4"
    )
    # Without a validation day, the validation window is trained on.
    assert data_split(str(tmp_path), schema, RunKey("bce"), False) == DataSplit(
        ("w1", "w2", "w3"), None, "w4"
    )
    key = RunKey("bce", train_days=("w1",), eval_days=("w2",))
    assert data_split(str(tmp_path), schema, key, False) == DataSplit(("w1",), None, "w2")
    assert dataset_name(str(tmp_path)) == "movielens"


def test_a_split_without_enough_days_is_refused_in_one_line(tmp_path) -> None:
    schema = {"days": {day: {} for day in ("d1", "d2")}}
    with pytest.raises(ValueError, match="2 days; the split needs 3 or more"):
        data_split(str(tmp_path), schema, RunKey("bce"), True)
    with pytest.raises(ValueError, match="tested on one day"):
        data_split(str(tmp_path), schema, RunKey("bce", eval_days=("d1", "d2")), False)


def test_a_resumed_curve_keeps_the_points_before_the_epoch_it_trains_again(tmp_path) -> None:
    path = tmp_path / "run.curve.json"
    path.write_text(json.dumps([[3, 0.1], [6, 0.2], [9, 0.3]]))  # a killed run's points
    curve = ValidationCurve(lambda model: 0.25, 3, str(path))
    curve.on_epoch_end(1)  # the resumed run trains the second epoch again
    assert curve.points == [[3, 0.1], [6, 0.25]]
    assert json.loads(path.read_text()) == [[3, 0.1], [6, 0.25]]


@pytest.mark.parametrize(("attention", "expected"), [(None, "bilinear"), ("din", "din")])
def test_the_key_s_attention_reaches_the_training_options(attention, expected) -> None:
    key = RunKey("dftopk", "uniform", 0.1, 0, 0, prerank_attention=attention)
    split = DataSplit(("d1",), "d2", "d3")
    settings = comparison_settings("/d", "/w", "/r", "tiny", None)
    options = training_options(key, settings, split, TrainingLength(1, 2, 2))
    assert options.prerank_attention == expected
