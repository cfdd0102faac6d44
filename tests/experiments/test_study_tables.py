"""Tables and plots of the training studies, from given outcomes: means, spreads, layout."""

import numpy as np
import pytest
from dftopk_cascade.models.objectives import default_tau

from experiments.report.main_table import main_table_rows, main_table_section, run_main_table
from experiments.report.negative_sampling import negatives_rows, run_negative_sampling
from experiments.report.streaming import streaming_rows, streaming_section
from experiments.report.tau_sensitivity import run_tau_sensitivity, tau_rows, tau_section
from experiments.report.training_runs import RunOutcome, mean_and_spread
from experiments.run_records import RunKey

METRICS = ("joint_recall", "recall@10@20", "recall@10@30", "ndcg@10")


def outcome(method: str, seed: int, value: float, seconds: float = 1.0, **settings) -> RunOutcome:
    return RunOutcome(RunKey(method, seed=seed, **settings), dict.fromkeys(METRICS, value), seconds)


def test_mean_and_spread_is_the_sample_standard_deviation() -> None:
    values = [0.2, 0.5, 0.6]
    assert mean_and_spread(values) == pytest.approx((np.mean(values), np.std(values, ddof=1)))
    assert mean_and_spread([0.3]) == (0.3, 0.0)
    with pytest.raises(ValueError, match="no values"):
        mean_and_spread([])


def test_default_temperature_is_written_out() -> None:
    dftopk_tau = default_tau("dftopk")
    assert RunKey("dftopk", seed=0).resolved() == RunKey("dftopk", seed=0, temperature=dftopk_tau)
    assert RunKey("lcron-diffsort", seed=0).resolved().temperature == 10.0
    assert RunKey("lapsum", seed=0, temperature=3.0).resolved().temperature == 3.0


def test_main_table_means_and_spreads_over_seeds() -> None:
    outcomes = {
        "dftopk": [outcome("dftopk", s, v, t) for s, v, t in ((0, 0.5, 2.0), (1, 0.7, 4.0))],
        "bce": [outcome("bce", 0, 0.4, 1.0)],
    }
    columns, rows = main_table_rows(outcomes)
    assert columns[:4] == ["method", "seeds", "joint_recall", "joint_recall std"]
    assert columns[-2:] == ["seconds_per_epoch", "seconds_per_epoch std"]
    assert len(columns) == 2 + 2 * (len(METRICS) + 1)
    dftopk = dict(zip(columns, rows[0], strict=True))
    assert dftopk["seeds"] == 2
    assert dftopk["ndcg@10"] == pytest.approx(0.6)
    assert dftopk["ndcg@10 std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert dftopk["seconds_per_epoch"] == pytest.approx(3.0)
    assert rows[1][:4] == ["bce", 1, 0.4, 0.0]


def test_preference_recall_is_a_column_only_when_every_run_has_it() -> None:
    with_preference = outcome("dftopk", 0, 0.5)
    with_preference.metrics["preference_joint_recall"] = 0.3
    columns, _ = main_table_rows({"dftopk": [with_preference]})
    assert "preference_joint_recall" in columns
    columns, _ = main_table_rows({"dftopk": [with_preference], "bce": [outcome("bce", 0, 0.4)]})
    assert "preference_joint_recall" not in columns


def test_tau_negatives_and_streaming_rows() -> None:
    runs = [outcome("lapsum", seed, value, temperature=3.0) for seed, value in ((0, 0.2), (1, 0.4))]
    tau_runs = {("lapsum", 3.0): runs}
    columns, rows = tau_rows(tau_runs)
    assert columns[:5] == ["method", "knob", "tau", "joint_recall", "joint_recall std"]
    assert rows[0][:4] == ["lapsum", "alpha", 3.0, pytest.approx(0.3)]

    negative_runs = {("dftopk", 160): [outcome("dftopk", 0, 0.5, 7.0, negatives=160)]}
    assert negatives_rows(negative_runs)[1] == [["dftopk", 160, 200, 0.5, 0.0, 7.0, 0.0]]

    per_seed = [
        [
            outcome(
                "bce", seed, 0.1 * (day + seed), train_days=(f"d{day}",), eval_days=(f"d{day + 1}",)
            )
            for day in (1, 2)
        ]
        for seed in (0, 1)
    ]
    columns, rows = streaming_rows({"bce": per_seed})
    assert [row[:3] for row in rows] == [["bce", "d1", "d2"], ["bce", "d2", "d3"]]
    assert rows[0][3] == pytest.approx(0.15) and rows[1][3] == pytest.approx(0.25)


def test_sections_link_their_pngs(tmp_path) -> None:
    per_seed = [[outcome("bce", 0, 0.3, train_days=("d1",), eval_days=("d2",))]]
    sections = [
        main_table_section({"bce": [outcome("bce", 0, 0.4)]}, str(tmp_path)),
        tau_section({("dftopk", 1.0): [outcome("dftopk", 0, 0.4, temperature=1.0)]}, str(tmp_path)),
        streaming_section({"bce": per_seed}, str(tmp_path)),
    ]
    for section in sections:
        for figure in section.figures:
            with open(tmp_path / figure, "rb") as file:
                assert file.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("study", "message"),
    [
        (lambda: run_main_table(None, [], [0]), "at least one method"),
        (lambda: run_tau_sensitivity(None, ["dftopk"], [0.0], [0]), "temperatures must be > 0"),
        (lambda: run_negative_sampling(None, ["dftopk"], [-1], [0]), "must be >= 0"),
    ],
)
def test_bad_study_settings_are_named(study, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        study()
