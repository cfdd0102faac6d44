"""stage_collapse trains a fresh cascade and reports each stage's gradient and score spread."""

import math

from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords

from experiments import stage_collapse


def test_the_watch_reports_every_stage_and_trains_the_model(tmp_path, capsys) -> None:
    data_dir = simulated_tfrecords(str(tmp_path), days=4, requests_per_day=64)
    rows = stage_collapse.watch(data_dir, "dftopk", 0.1, steps=4, every=2, batch_size=32)
    assert [row[0] for row in rows[:2]] == [0, 2]
    for _, loss, stages in rows:
        assert set(stages) == {"retrieval", "prerank"} and math.isfinite(loss)
        for values in stages.values():
            assert values["gradient_norm"] > 0.0 and values["distinct"] > 1.0
    assert "step     0 loss" in capsys.readouterr().out
