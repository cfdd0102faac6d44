"""A run killed after an epoch and resumed trains exactly what an uninterrupted run trains."""

import numpy as np
import pytest
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.training.callbacks import completed_epochs
from dftopk_cascade.models.training.train import run_training

from tests.models.test_train import Interrupted, KillAfterEpoch, tiny_options


def test_resumed_equals_uninterrupted_with_epochs_shorter_than_a_pass(tiny_data, tmp_path):
    # The training day has 120 requests: 2 batches of 60 per pass, 1 batch per epoch, so each
    # epoch sees other batches and a resume that restarted the input would train on the wrong one.
    settings = {"epochs": 3, "steps_per_epoch": 1, "evaluate": False}
    straight = run_training(tiny_options(tiny_data, str(tmp_path / "straight"), **settings))

    options = tiny_options(tiny_data, str(tmp_path / "resumed"), **settings)
    with pytest.raises(Interrupted):
        run_training(options, callbacks=[KillAfterEpoch(1)])
    assert completed_epochs(ModelDir(options.model_dir).backup_dir) == 2
    resumed = run_training(options)

    assert resumed.history["loss"] == pytest.approx(straight.history["loss"][2:], rel=1e-5)
    for ours, theirs in zip(resumed.model.get_weights(), straight.model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
