"""Training and evaluation commands: a resumed run, the model folder, metrics.json, errors."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
from dftopk_cascade.models.cascade import load_cascade
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training import evaluate, train
from dftopk_cascade.models.training.train import TrainOptions, run_training, training_input
from dftopk_cascade.pipelines import data_schema

from tests.models.batches import COLUMNS, VOCAB_SIZES

METRIC_KEYS = {
    "joint_recall",
    "recall@10@20",
    "recall@10@30",
    "ndcg@10",
    "kendall_tau",
    "rank_ndcg@10",
    "preference_joint_recall",
    "preference_recall@10@20",
    "preference_recall@10@30",
}


class Interrupted(Exception):
    """Stands for the process being killed."""


class KillAfterEpoch(keras.callbacks.Callback):
    """Raises at the end of epoch ``epoch`` (0-based), after the backup was written."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupted(f"killed after epoch {epoch}")


class EpochRecorder(keras.callbacks.Callback):
    """Records the 0-based index of every epoch that starts."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def tiny_options(data: str, model_dir: str, **settings) -> TrainOptions:
    """Small, eager runs: 2 steps of 60 requests per epoch, 8 evaluation negatives."""
    values = {
        "batch_size": 60,
        "eval_batch_size": 60,
        "eval_negatives": 8,
        "embedding_dim": 4,
        "strategy": "cpu",
        "run_eagerly": True,
        "verbose": 0,
    }
    return TrainOptions(data, model_dir, **(values | settings))


def test_a_killed_run_resumes_at_the_next_epoch(tiny_data, tmp_path, capsys, monkeypatch) -> None:
    model_dir = str(tmp_path / "model")
    layout = ModelDir(model_dir)
    # LapSum: a peer operator through the whole command (DFTopK is every other test's default).
    options = tiny_options(tiny_data, model_dir, epochs=3, method="lapsum", validate=True)
    with pytest.raises(Interrupted):
        run_training(options, callbacks=[KillAfterEpoch(0)])
    assert not layout.has_weights()
    assert os.listdir(layout.backup_dir)

    schema_reads = []
    read_schema = data_schema.load_schema_file
    monkeypatch.setattr(
        data_schema, "load_schema_file", lambda path: schema_reads.append(path) or read_schema(path)
    )
    recorder = EpochRecorder()
    result = run_training(options, callbacks=[recorder])
    assert recorder.epochs == [1, 2]
    # Training, validation and the final evaluation share the schema the run read once.
    assert len(schema_reads) == 1
    with open(layout.history_path) as file:
        history = list(csv.DictReader(file))
    assert [row["epoch"] for row in history] == ["0", "1", "2"]
    assert all(0.0 <= float(row["val_joint_recall"]) <= 1.0 for row in history)
    assert layout.has_weights()
    assert sorted(os.listdir(layout.checkpoints_dir)) == [
        "checkpoint",
        *[
            f"epoch-000{epoch}.{part}"
            for epoch in (1, 2, 3)
            for part in ("data-00000-of-00001", "index")
        ],
    ]
    assert sorted(os.listdir(layout.logs_dir)) == ["train", "validation"]
    with open(layout.metrics_path) as file:
        written = json.load(file)
    assert METRIC_KEYS <= set(written) and written == result.metrics
    assert written["evaluation"]["requests"] == 120
    assert written["evaluation"]["candidates_per_request"] == 48
    assert 0.0 <= written["joint_recall"] <= written["recall@10@30"] <= 1.0
    assert "| joint_recall |" in capsys.readouterr().out

    evaluated = evaluate.main(
        ["--data", tiny_data, "--model-dir", model_dir, "--batch-size", "60", "--negatives", "8"]
    )
    for key in METRIC_KEYS:
        assert evaluated[key] == pytest.approx(written[key], abs=1e-6)
    assert "| recall@10@20 |" in capsys.readouterr().out
    assert load_cascade(model_dir).cascade_config.method == "lapsum"

    with pytest.raises(ValueError, match="holds a completed training"):
        run_training(options)
    with pytest.raises(ValueError, match=r"other settings .*'method': \('lapsum', 'bce'\)"):
        run_training(tiny_options(tiny_data, model_dir, method="bce"))


def test_the_trained_model_can_be_trained_further(tiny_data, tmp_path) -> None:
    options = tiny_options(tiny_data, str(tmp_path / "model"), evaluate=False)
    model = run_training(options).model
    before = [weight.numpy() for weight in model.trainable_weights]
    data = training_input(tiny_data, ["2024-01-13"], batch_size=60, negatives=0, seed=0)
    history = model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [weight.numpy() for weight in model.trainable_weights]
    assert any(not np.array_equal(old, new) for old, new in zip(before, after, strict=True))


def test_missing_and_empty_data_folders_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no such data folder"):
        run_training(tiny_options(str(tmp_path / "nowhere"), str(tmp_path / "model")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="the data folder is empty"):
        run_training(tiny_options(str(tmp_path / "empty"), str(tmp_path / "model")))
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "2024-01-13").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no schema\.json"):
        run_training(tiny_options(str(tmp_path / "unfinished"), str(tmp_path / "model")))


def test_a_schema_that_breaks_the_contract_is_refused(tiny_data, tmp_path) -> None:
    data = str(tmp_path / "data")
    shutil.copytree(tiny_data, data)
    with open(os.path.join(data, "schema.json")) as file:
        schema = json.load(file)
    schema["columns"]["items"] = schema["columns"]["items"][:5]
    with open(os.path.join(data, "schema.json"), "w") as file:
        json.dump(schema, file)
    with pytest.raises(
        ValueError, match=r"columns\.items is \['video_id', .*\], the batch contract"
    ):
        run_training(tiny_options(data, str(tmp_path / "model")))


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"method": "softmax"}, ValueError, "unknown method 'softmax'"),
        ({"k": 41}, ValueError, "retrieval_k = 41 is larger than the 40 candidates"),
        ({"prerank_k": 50, "negatives": 8}, ValueError, "larger than the 48 candidates"),
        ({"strategy": "tpu"}, ValueError, "unknown strategy 'tpu'"),
        ({"batch_size": 0}, ValueError, "must be > 0"),
        ({"cross_replica_negatives": True}, ValueError, "needs negatives > 0"),
        ({"eval_days": ("2024-03-01",)}, ValueError, r"days \['2024-03-01'\] are not in the data"),
        ({"strategy": "multiworker"}, ValueError, "this strategy needs TF_CONFIG"),
    ],
)
def test_bad_options_get_clear_errors(tiny_data, tmp_path, settings, error, message) -> None:
    os.environ.pop("TF_CONFIG", None)
    with pytest.raises(error, match=message):
        run_training(tiny_options(tiny_data, str(tmp_path / "model"), **settings))
    assert not os.path.exists(tmp_path / "model")


def test_help_explains_every_flag(capsys) -> None:
    for module in (train, evaluate):
        with pytest.raises(SystemExit) as exit_info:
            module.parse_args(["--help"])
        assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--method",
        "--temperature",
        "--tau",
        "--negatives",
        "--strategy",
        "--steps-per-epoch",
        "--days",
    ):
        assert flag in text
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--model-dir", "m", "--method", "softmax"])
    assert "invalid choice: 'softmax'" in capsys.readouterr().err


def test_tau_flag_sets_the_temperature() -> None:
    options = train.parse_args(["--data", "d", "--model-dir", "m", "--tau", "0.5"])
    assert options.tau == 0.5 and options.data_dir == "d"


def test_temperature_flag_is_a_deprecated_name_of_tau(capsys) -> None:
    with pytest.warns(DeprecationWarning, match="use --tau instead"):
        options = train.parse_args(["--data", "d", "--model-dir", "m", "--temperature", "0.5"])
    assert options.tau == 0.5
    assert "--temperature is deprecated, use --tau instead" in capsys.readouterr().err


def test_the_two_stage_flag_drops_the_ranking_model() -> None:
    schema = {"vocab_sizes": VOCAB_SIZES, "columns": COLUMNS}
    two_stage = train.parse_args(["--data", "d", "--model-dir", "m", "--no-rank-stage"])
    assert two_stage.rank_stage is False and two_stage.cascade_config(schema).rank_stage is False
    assert train.parse_args(["--data", "d", "--model-dir", "m"]).rank_stage is True


def test_the_prerank_attention_flag_reaches_the_cascade_config() -> None:
    schema = {"vocab_sizes": VOCAB_SIZES, "columns": COLUMNS}
    din = train.parse_args(["--data", "d", "--model-dir", "m", "--prerank-attention", "din"])
    assert din.cascade_config(schema).prerank_attention == "din"
    default = train.parse_args(["--data", "d", "--model-dir", "m"])
    assert default.cascade_config(schema).prerank_attention == "bilinear"
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "d", "--model-dir", "m", "--prerank-attention", "mlp"])
