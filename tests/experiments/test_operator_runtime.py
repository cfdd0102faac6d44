"""Operator runtime sweep: skipping rules, slope fit, tables, and the timed pass's gradient."""

import math

import pytest
import tensorflow as tf

from benchmarks.timing import MATRIX_COPIES
from experiments.report.operator_runtime import (
    RuntimePoint,
    RuntimeResult,
    fitted_slope,
    measure_runtime,
    plot_runtime,
    runtime_table_rows,
    skip_reason,
    slope_rows,
)


def test_skip_reason_by_memory_and_predicted_time() -> None:
    working_set = 4 * MATRIX_COPIES * 1000**2 * 4  # batch 4, n = 1000, float32
    assert skip_reason("O(n^2)", 1000, 4, None, working_set, 1.0) is None
    assert "needs about" in skip_reason("O(n^2)", 1001, 4, None, working_set, 1.0)
    # O(n^3) from 0.1 s at n = 10 predicts 100 s at n = 100.
    assert "predicted 100 s" in skip_reason("O(n^3)", 100, 1, (10, 100.0), 1e12, 50.0)
    assert skip_reason("O(n)", 100, 1, (10, 100.0), 1e12, 50.0) is None
    with pytest.raises(ValueError, match="unknown cost"):
        skip_reason("O(2^n)", 10, 1, None, 1e9, 1.0)


def test_fitted_slope_recovers_power_laws() -> None:
    sizes = [100, 1000, 10_000]
    assert fitted_slope(sizes, [2e-3 * n for n in sizes]) == pytest.approx(1.0)
    assert fitted_slope(sizes, [1e-6 * n**2 for n in sizes]) == pytest.approx(2.0)
    # n log n: local slope 1 + 1 / ln n, between 1.1 and 1.22 on 100..10,000.
    assert 1.1 < fitted_slope(sizes, [n * math.log(n) for n in sizes]) < 1.22
    assert math.isnan(fitted_slope([10], [1.0]))


def test_slope_rows_fit_the_top_range_and_report_skips() -> None:
    # Linear above n = 100, flat overhead below: the fit must see only the linear part.
    points = [
        RuntimePoint("dftopk", "CPU", n, n // 2, 1, max(1.0, n / 100))
        for n in (5, 50, 100, 1000, 2000)
    ]
    result = RuntimeResult(points, {("dftopk", "CPU"): "n >= 5000 not run: memory"})
    assert slope_rows(result, fit_span=20) == [
        ["dftopk", "CPU", "O(n)", 1.0, "100..2000", "n >= 5000 not run: memory"]
    ]


def test_runtime_table_leaves_unrun_sizes_empty() -> None:
    points = [
        RuntimePoint("bce", "CPU", 5, 2, 1, 0.1),
        RuntimePoint("bce", "CPU", 50, 25, 1, 0.2),
        RuntimePoint("lapsum", "CPU", 5, 2, 1, 0.3),
    ]
    columns, rows = runtime_table_rows(RuntimeResult(points, {}))
    assert columns == ["n", "bce CPU ms", "lapsum CPU ms"]
    assert rows == [[5, 0.1, 0.3], [50, 0.2, None]]


def test_measure_runtime_times_and_skips() -> None:
    result = measure_runtime(
        ["dftopk", "lcron-neuralsort"],
        [5, 40, 400],
        batch=2,
        repeats=1,
        memory_limit_bytes=2 * MATRIX_COPIES * 40**2 * 4,
        devices=["CPU"],
    )
    measured = [(p.operator, p.n, p.k) for p in result.points]
    assert measured == [
        ("dftopk", 5, 2),
        ("dftopk", 40, 20),
        ("dftopk", 400, 200),
        ("lcron-neuralsort", 5, 2),
        ("lcron-neuralsort", 40, 20),
    ]
    assert all(math.isfinite(p.milliseconds) and p.milliseconds > 0 for p in result.points)
    assert list(result.skipped) == [("lcron-neuralsort", "CPU")]
    assert result.skipped[("lcron-neuralsort", "CPU")].startswith("n >= 400 not run")


@pytest.mark.parametrize(("sizes", "batch"), [([50, 5], 1), ([1, 5], 1), ([5], 0)])
def test_measure_runtime_rejects_bad_sizes(sizes, batch) -> None:
    with pytest.raises(ValueError, match=r"sizes must be|batch must be"):
        measure_runtime(["bce"], sizes, batch=batch)


def test_plot_is_a_png(tmp_path) -> None:
    path = str(tmp_path / "runtime.png")
    plot_runtime(RuntimeResult([RuntimePoint("bce", "CPU", 5, 2, 1, 0.1)], {}), path)
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_threshold_paths_are_series_with_their_own_costs() -> None:
    from experiments.report.operator_runtime import THRESHOLD_PATHS, series_cost, series_selection

    assert series_cost("dftopk radix") == "O(n)" and series_cost("dftopk top_k xla") == "O(n log n)"
    result = measure_runtime(list(THRESHOLD_PATHS), [6, 30], batch=2, repeats=1)
    assert {(p.operator, p.n) for p in result.points} == {
        (name, n) for name in THRESHOLD_PATHS for n in (6, 30)
    }
    assert {row[0]: row[2] for row in slope_rows(result)} == {
        name: cost for name, (_, _, cost) in THRESHOLD_PATHS.items()
    }
    scores = tf.random.stateless_normal([2, 9], seed=[1, 2])
    radix = series_selection("dftopk radix xla", 3)(scores)
    tf.debugging.assert_near(series_selection("dftopk top_k", 3)(scores), radix)
