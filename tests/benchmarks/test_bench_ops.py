"""The operator benchmark's pieces: side-by-side timing, batch capping, skip rules and the table."""

import pytest
import tensorflow as tf

from benchmarks import bench_ops, timing


def test_time_side_by_side_times_every_operator_and_rejects_bad_counts():
    scores = tf.random.stateless_normal([3, 16], seed=[0, 0])
    operators = {"a": (tf.sigmoid, False), "b": (tf.nn.relu, True)}
    times = timing.time_side_by_side(operators, scores, repeats=2, warmup=1)
    assert sorted(times) == ["a", "b"] and all(ms > 0 for ms in times.values())
    assert timing.time_forward_backward(tf.sigmoid, scores, repeats=1, warmup=0) > 0
    with pytest.raises(ValueError, match="repeats >= 1"):
        timing.time_side_by_side(operators, scores, repeats=0)


def test_batch_is_capped_for_long_rows():
    assert bench_ops.batch_for(100, 256, 6_400_000) == 256
    assert bench_ops.batch_for(100_000, 256, 6_400_000) == 64
    assert bench_ops.batch_for(10**8, 256, 6_400_000) == 1


def test_quadratic_and_cubic_peers_are_skipped_beyond_their_limits():
    by_name = {contender.name: contender for contender in bench_ops.CONTENDERS}
    neuralsort, diffsort = by_name["lcron_neuralsort"], by_name["lcron_diffsort"]
    assert neuralsort.skip_reason(256, 100, 2.0, 3e8) is None
    assert neuralsort.skip_reason(256, 1_000, 2.0, 3e8) == "skipped (O(n^2) memory)"
    assert diffsort.skip_reason(256, 100, 2.0, 3e8) is None
    assert diffsort.skip_reason(256, 200, 2.0, 3e8) == "skipped (O(n^3) time)"
    assert by_name["dftopk"].skip_reason(256, 10**6, 2.0, 3e8) is None


def test_run_benchmark_fills_the_table_with_times_skips_and_ratios():
    rows = bench_ops.run_benchmark(
        [12],
        batch=3,
        repeats=1,
        warmup=1,
        max_elements=24,
        matrix_memory_gb=1e-6,
        cubic_work=1e9,
        report=lambda line: None,
    )
    assert [(row.n, row.k, row.batch) for row in rows] == [(12, 6, 2), (12, 10, 2)]
    names = {contender.name for contender in bench_ops.CONTENDERS}
    assert all(set(row.cells) == names for row in rows)
    assert isinstance(rows[0].cells["dftopk"], float)
    assert rows[0].cells["lcron_softsort"] == "skipped (O(n^2) memory)"
    table = bench_ops.timing_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert table[0].count("|") == table[-1].count("|") == len(names) + 8
    assert all(row.default_path == "radix xla (rule)" for row in rows)
    sigmoids = (bench_ops.SIGMOID, bench_ops.SIGMOID_XLA)
    assert table[-1].endswith(f"| {rows[-1].ratio(bench_ops.DFTOPK, sigmoids)} |")
    assert "skipped (O(n^2) memory)" in table[-1] and rows[-1].ratio("lcron_softsort", "x") == "-"
    winner = rows[-1].fastest(tuple(bench_ops.THRESHOLD_PATHS))
    assert winner in bench_ops.THRESHOLD_PATHS and f"| {winner} |" in table[-1]


def test_winner_is_the_fastest_threshold_path_and_ratios_take_the_fastest_of_a_group():
    cells = {
        bench_ops.DFTOPK: 2.0,
        bench_ops.RADIX_XLA: 3.0,
        bench_ops.RADIX: 9.0,
        bench_ops.TOP_K_XLA: 2.5,
        bench_ops.TOP_K: 4.0,
        bench_ops.SIGMOID: 1.0,
        bench_ops.SIGMOID_XLA: 0.5,
    }
    row = bench_ops.TableRow(100, 10, 8, cells)
    assert row.fastest(tuple(bench_ops.THRESHOLD_PATHS)) == bench_ops.TOP_K_XLA
    assert row.ratio(bench_ops.DFTOPK, bench_ops.TOP_K_PATHS) == "0.80x"
    assert row.ratio(bench_ops.DFTOPK, (bench_ops.SIGMOID, bench_ops.SIGMOID_XLA)) == "4.00x"
    table = bench_ops.timing_table([row]).splitlines()
    assert table[-1].endswith("| top_k xla | 0.80x | 4.00x |")


def test_the_default_check_names_every_row_slower_than_the_best_top_k_path_by_over_10_percent():
    fast = bench_ops.TableRow(10_000, 10, 8, {"dftopk": 1.09, "top_k xla": 1.0, "top_k": 1.5})
    slow = bench_ops.TableRow(10**6, 10, 4, {"dftopk": 3.0, "top_k xla": 2.7, "top_k": 2.5})
    skipped = bench_ops.TableRow(100, 10, 8, {"dftopk": 1.0, "top_k xla": "skipped"})
    assert bench_ops.default_check([fast, skipped]).endswith("every row (1 rows): yes")
    assert bench_ops.default_check([fast, slow, skipped]).endswith(
        "every row (2 rows): no: n=1000000 k=10 1.20x"
    )


def test_k_values_take_integers_below_n_and_half():
    assert bench_ops.k_values(1_000, [10, 100, 1_000, bench_ops.HALF]) == [10, 100, 500]
    assert bench_ops.k_values(2, [10]) == [1]
    with pytest.raises(SystemExit):
        bench_ops.main(["--ks", "0"])


def test_command_line_quick_run_prints_the_machine_and_the_table(capsys):
    quick = ["--sizes", "2", "--batch-size", "2", "--repeats", "1", "--warmup", "0"]
    bench_ops.main([*quick, "--matrix-memory-gb", "1e-9"])
    output = capsys.readouterr().out
    assert "CPU:" in output and f"TensorFlow {tf.__version__}" in output
    assert "| 2 | 1 | 2 |" in output and "load average after the run" in output
    assert "XLA_FLAGS=" in output and "ONEDNN_MAX_CPU_ISA=" in output
    assert "DFTOPK_TF_AUTOTUNE=0" in output and "default / best top_k path <=" in output
    bench_ops.main([*quick, "--no-peers"])
    header = capsys.readouterr().out.split("| n | k | batch |")[1].splitlines()[0]
    assert "lapsum" not in header and "radix xla" in header and "winner" in header
    with pytest.raises(SystemExit):
        bench_ops.main(["--sizes", "1"])
