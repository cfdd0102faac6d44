"""A resumed run's history.csv keeps the rows written before the kill: one row per epoch."""

import csv

import pytest
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.models.training.callbacks import RefittableBackupAndRestore
from dftopk_cascade.models.training.train import run_training

from tests.models.test_train import Interrupted, tiny_options


def _killed_at_epoch_end(method, epoch: int):
    """``method`` (a callback's on_epoch_end) that kills the run when it is called for ``epoch``."""

    def on_epoch_end(self, current, logs=None):
        if current == epoch:
            raise Interrupted(f"killed in {type(self).__name__} at the end of epoch {epoch}")
        return method(self, current, logs)

    return on_epoch_end


@pytest.mark.parametrize(
    "killed_in",
    [keras.callbacks.CSVLogger, RefittableBackupAndRestore, keras.callbacks.ModelCheckpoint],
)
def test_history_has_one_row_per_epoch_whenever_the_run_was_killed(
    killed_in, tiny_data, tmp_path, monkeypatch
) -> None:
    model_dir = str(tmp_path / "model")
    options = tiny_options(tiny_data, model_dir, epochs=3, steps_per_epoch=1, evaluate=False)
    with monkeypatch.context() as patch:
        patch.setattr(killed_in, "on_epoch_end", _killed_at_epoch_end(killed_in.on_epoch_end, 1))
        with pytest.raises(Interrupted):
            run_training(options)
    with open(ModelDir(options.model_dir).history_path) as file:
        before_kill = list(csv.DictReader(file))
    assert [row["epoch"] for row in before_kill][:1] == ["0"]

    run_training(options)
    with open(ModelDir(options.model_dir).history_path) as file:
        history = list(csv.DictReader(file))
    assert [row["epoch"] for row in history] == ["0", "1", "2"]
    assert history[0] == before_kill[0]  # the row written before the kill, kept as it was
