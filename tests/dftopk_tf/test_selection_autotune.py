"""``selection="auto"``'s calibration: winners, the cache file, the switch, fallbacks, real runs.

Most tests inject a fake timer (``measure``) so that nothing is timed; one test times a small
bucket for real, one trains under a distribution strategy while the autotuner times, and one runs
the command line.
"""

import functools
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import selection, selection_autotune
from dftopk_tf.keras_compat import keras
from dftopk_tf.ops import dftopk

TOP_K_XLA, TOP_K, RADIX_XLA, BRACKET_XLA = (
    ("top_k", True),
    ("top_k", False),
    ("radix", True),
    ("bracket", True),
)
LOGGER = selection_autotune.logger.name


class FakeTimer:
    """A ``measure`` that returns fixed medians (by path name) and counts its calls."""

    def __init__(self, medians: dict[str, float] | None = None):
        self.medians = medians or {"top_k xla": 3.0, "top_k": 2.0, "radix xla": 5.0}
        self.calls: list[selection_autotune.Bucket] = []

    def __call__(self, bucket, paths):
        self.calls.append(bucket)
        linear = selection_autotune.candidate_name(paths[-1])
        medians = {**self.medians, linear: self.medians.get("radix xla", 5.0)}
        return {path: medians[selection_autotune.candidate_name(path)] for path in paths}


def _rule(n: int, k: int) -> tuple[str, bool]:
    return selection.resolve_selection("auto", n, k, jit_compile=True, autotune=False)


@pytest.fixture
def autotune_on(monkeypatch, tmp_path):
    """Autotuning switched on, with the default autotuner's cache file in ``tmp_path``."""
    monkeypatch.setenv(selection_autotune.AUTOTUNE_ENV, "1")
    monkeypatch.setenv(selection_autotune.CACHE_DIR_ENV, str(tmp_path / "cache"))

    def use(measure) -> selection_autotune.SelectionAutotuner:
        autotuner = selection_autotune.SelectionAutotuner(selection_autotune.cache_path(), measure)
        monkeypatch.setattr(selection_autotune, "default_autotuner", lambda: autotuner)
        return autotuner

    return use


def test_buckets_round_n_down_to_half_decades_and_k_up_to_powers_of_two():
    bucket_of = selection_autotune.bucket_of
    assert bucket_of(10_000, 1) == selection_autotune.Bucket(10_000, 1)
    assert bucket_of(31_622, 10) == selection_autotune.Bucket(10_000, 16)
    assert bucket_of(31_623, 16) == selection_autotune.Bucket(31_623, 16)
    assert bucket_of(99_999, 17) == selection_autotune.Bucket(31_623, 32)
    assert bucket_of(100_000, 256) == selection_autotune.Bucket(100_000, 256)
    assert bucket_of(999_999, 100) == selection_autotune.Bucket(316_228, 128)
    assert [bucket_of(n, 10).rows for n in (10_000, 100_000, 10**6, 10**7)] == [256, 40, 4, 1]
    candidates = selection_autotune.candidates
    assert candidates(bucket_of(99_999, 10)) == (TOP_K_XLA, TOP_K, RADIX_XLA)
    assert candidates(bucket_of(100_000, 10)) == (TOP_K_XLA, TOP_K, BRACKET_XLA)
    assert selection_autotune.is_autotuned(10_000, 256)
    assert not selection_autotune.is_autotuned(9_999, 10)
    assert not selection_autotune.is_autotuned(10**6, 257)


@pytest.mark.parametrize(
    ("medians", "winner"),
    [
        ({"top_k xla": 1.0, "top_k": 2.0, "radix xla": 3.0}, TOP_K_XLA),
        ({"top_k xla": 2.0, "top_k": 1.5, "radix xla": 3.0}, TOP_K),
        ({"top_k xla": 2.0, "top_k": 2.5, "radix xla": 1.9}, RADIX_XLA),
        # Faster than the rule's path, but by less than the margin: the rule's path stays.
        ({"top_k xla": 1.9, "top_k": 2.5, "radix xla": 2.0}, RADIX_XLA),
        ({"top_k xla": 1.79, "top_k": 2.5, "radix xla": 2.0}, TOP_K_XLA),
    ],
)
def test_the_winner_is_the_fastest_path_by_more_than_the_margin_else_the_rules(
    medians, winner, caplog
):
    autotuner = selection_autotune.SelectionAutotuner(None, FakeTimer(medians))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert autotuner.choose(20_000, 10, rule=RADIX_XLA) == winner
    (line,) = [record.getMessage() for record in caplog.records]
    name = selection_autotune.candidate_name(winner)
    assert "n=10000 k=16" in line and line.endswith(f"winner {name}")
    assert all(f"{path} {ms:.2f}" in line for path, ms in medians.items())


def test_a_fresh_autotuner_reads_the_cache_file_and_times_nothing(tmp_path):
    path = str(tmp_path / "cache" / selection_autotune.CACHE_FILE_NAME)
    first = FakeTimer({"top_k xla": 3.0, "top_k": 1.0, "radix xla": 5.0})
    autotuner = selection_autotune.SelectionAutotuner(path, first)
    assert autotuner.choose(10_000, 10, RADIX_XLA) == TOP_K
    assert autotuner.choose(20_000, 16, RADIX_XLA) == TOP_K  # same bucket: from memory
    assert len(first.calls) == 1
    assert os.listdir(tmp_path / "cache") == [selection_autotune.CACHE_FILE_NAME]
    document = selection_autotune.read_cache_document(path)
    (machine,) = document["machines"].values()
    assert machine["signature"] == selection_autotune.machine_signature()
    assert machine["buckets"]["n=10000 k=16"]["winner"] == "top_k"
    assert machine["buckets"]["n=10000 k=16"]["medians_ms"]["top_k"] == 1.0
    again = FakeTimer()
    fresh = selection_autotune.SelectionAutotuner(path, again)
    assert fresh.choose(15_000, 9, RADIX_XLA) == TOP_K and again.calls == []


def test_the_cache_file_is_replaced_whole_or_left_as_it_was(tmp_path, monkeypatch):
    path = str(tmp_path / selection_autotune.CACHE_FILE_NAME)
    selection_autotune.SelectionAutotuner(path, FakeTimer()).choose(10_000, 10, RADIX_XLA)
    before = open(path, encoding="utf-8").read()
    replaced = []
    monkeypatch.setattr(
        selection_autotune.os, "replace", lambda src, dst: replaced.append((src, dst))
    )
    selection_autotune.SelectionAutotuner(path, FakeTimer()).choose(10**6, 10, BRACKET_XLA)
    ((temporary, target),) = replaced
    assert target == path and os.path.dirname(temporary) == str(tmp_path)
    assert json.load(open(temporary, encoding="utf-8"))["machines"]  # complete before the rename
    assert open(path, encoding="utf-8").read() == before
    monkeypatch.undo()
    os.remove(temporary)
    with pytest.raises(TypeError):  # a write that fails half-way leaves the old file alone
        selection_autotune.write_cache_document(path, {"machines": object()})
    assert open(path, encoding="utf-8").read() == before
    assert os.listdir(tmp_path) == [selection_autotune.CACHE_FILE_NAME]


def test_entries_written_by_another_process_meanwhile_are_kept(tmp_path):
    path = str(tmp_path / selection_autotune.CACHE_FILE_NAME)
    ours = selection_autotune.SelectionAutotuner(path, FakeTimer())
    theirs = selection_autotune.SelectionAutotuner(path, FakeTimer())
    ours.choose(10_000, 10, RADIX_XLA)
    theirs.choose(10**6, 100, BRACKET_XLA)
    ours.choose(100_000, 10, BRACKET_XLA)
    (machine,) = selection_autotune.read_cache_document(path)["machines"].values()
    assert set(machine["buckets"]) == {"n=10000 k=16", "n=100000 k=16", "n=1000000 k=128"}


@pytest.mark.parametrize("content", ["{not json", '{"format": "other", "version": 1}', "[]"])
def test_a_corrupt_or_foreign_cache_file_is_ignored_with_one_warning_and_rewritten(
    tmp_path, caplog, content
):
    path = tmp_path / selection_autotune.CACHE_FILE_NAME
    path.write_text(content)
    timer = FakeTimer()
    autotuner = selection_autotune.SelectionAutotuner(str(path), timer)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert autotuner.choose(10_000, 10, RADIX_XLA) == TOP_K
        assert autotuner.choose(10**6, 10, BRACKET_XLA) == TOP_K
    (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert str(path) in warning.getMessage() and "replaced" in warning.getMessage()
    assert len(timer.calls) == 2
    (machine,) = selection_autotune.read_cache_document(str(path))["machines"].values()
    assert set(machine["buckets"]) == {"n=10000 k=16", "n=1000000 k=16"}


def test_a_cache_folder_that_cannot_be_written_means_memory_only(tmp_path, monkeypatch):
    def read_only_folder(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(selection_autotune.tempfile, "mkstemp", read_only_folder)
    timer = FakeTimer()
    autotuner = selection_autotune.SelectionAutotuner(str(tmp_path / "cache.json"), timer)
    assert autotuner.choose(10_000, 10, RADIX_XLA) == TOP_K
    assert autotuner.choose(10_000, 10, RADIX_XLA) == TOP_K
    assert len(timer.calls) == 1 and os.listdir(tmp_path) == []
    (tmp_path / "a file").write_text("")  # a cache folder that cannot be created
    beneath_a_file = str(tmp_path / "a file" / "cache" / "cache.json")
    autotuner = selection_autotune.SelectionAutotuner(beneath_a_file, timer)
    assert autotuner.choose(10_000, 10, RADIX_XLA) == TOP_K and len(timer.calls) == 2


def test_machines_with_other_signatures_do_not_share_entries(tmp_path):
    path = str(tmp_path / selection_autotune.CACHE_FILE_NAME)
    native_signature = selection_autotune.machine_signature()
    # A cap other than this process's own: the suite also runs under XLA_FLAGS=...=AVX2.
    cap = "SSE4_2" if "AVX2" in native_signature["XLA_FLAGS"] else "AVX2"
    capped = {**native_signature, "XLA_FLAGS": f"--xla_cpu_max_isa={cap}"}
    native_timer, capped_timer = FakeTimer(), FakeTimer({"top_k xla": 1.0, "top_k": 2.0})
    native = selection_autotune.SelectionAutotuner(path, native_timer)
    emulated = selection_autotune.SelectionAutotuner(path, capped_timer, signature=capped)
    assert native.choose(10_000, 10, RADIX_XLA) == TOP_K
    assert emulated.choose(10_000, 10, RADIX_XLA) == TOP_K_XLA
    assert len(native_timer.calls) == len(capped_timer.calls) == 1
    assert len(selection_autotune.read_cache_document(path)["machines"]) == 2
    again = FakeTimer()
    reread = selection_autotune.SelectionAutotuner(path, again, signature=capped)
    assert reread.choose(10_000, 10, RADIX_XLA) == TOP_K_XLA and again.calls == []


def test_resolve_selection_times_only_where_the_rule_is_uncertain_and_the_switch_is_on(
    autotune_on, monkeypatch
):
    timer = FakeTimer({"top_k xla": 3.0, "top_k": 4.0, "radix xla": 1.0})
    autotune_on(timer)
    resolve = selection.resolve_selection
    assert resolve("auto", 10_000, 10, jit_compile=True) == RADIX_XLA
    assert len(timer.calls) == 1
    untimed = [
        resolve("auto", 9_999, 10, jit_compile=True),
        resolve("auto", 10_000, 257, jit_compile=True),
        resolve("auto", 10_000, None, jit_compile=True),
        resolve("auto", None, 10, jit_compile=True),
        resolve("auto", 10**6, 10, jit_compile=False),
        resolve("auto", 10**6, 10, jit_compile=True, device="GPU"),
        resolve("auto", 10**6, 10, jit_compile=True, autotune=False),
        resolve("auto", 10_000, 100, jit_compile=True, autotune=False),
        resolve("top_k", 10**6, 10, jit_compile=True),
    ]
    assert untimed[4:] == [TOP_K, TOP_K_XLA, TOP_K_XLA, RADIX_XLA, TOP_K_XLA]
    assert len(timer.calls) == 1
    monkeypatch.setenv(selection_autotune.AUTOTUNE_ENV, "0")
    assert resolve("auto", 10**6, 10, jit_compile=True) == _rule(10**6, 10)
    assert len(timer.calls) == 1
    monkeypatch.setenv(selection_autotune.AUTOTUNE_ENV, "yes")
    with pytest.raises(ValueError, match=r"DFTOPK_TF_AUTOTUNE='yes': set it to 1 .* or 0"):
        resolve("auto", 10**6, 10, jit_compile=True)


def test_resolve_selection_falls_back_to_the_rule_when_timing_fails(autotune_on, caplog):
    calls = []

    def broken_timer(bucket, paths):
        calls.append(bucket)
        raise RuntimeError("no XLA here")

    autotune_on(broken_timer)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert selection.resolve_selection("auto", 10**6, 10, True) == _rule(10**6, 10)
        assert selection.resolve_selection("auto", 10**6, 10, True) == _rule(10**6, 10)
    (warning,) = [record.getMessage() for record in caplog.records]
    assert "n=1000000 k=16 failed (RuntimeError: no XLA here)" in warning
    assert "timing-free rule" in warning and len(calls) == 1


def test_a_timer_that_asks_for_auto_gets_the_rule_not_a_recursion(autotune_on):
    inner = []

    def timer_calling_auto(bucket, paths):
        inner.append(selection.resolve_selection("auto", bucket.n, bucket.k, jit_compile=True))
        return FakeTimer()(bucket, paths)

    autotune_on(timer_calling_auto)
    assert selection.resolve_selection("auto", 10**6, 10, jit_compile=True) == TOP_K
    assert inner == [_rule(10**6, 16)]


def test_a_real_timing_picks_a_candidate_and_auto_keeps_the_radix_values(autotune_on):
    measure = functools.partial(selection_autotune.time_candidates, repeats=2, warmup=1)
    autotuner = autotune_on(measure)
    bucket = selection_autotune.bucket_of(10_000, 10)
    # The timed shape: the programs the timing compiled serve the calls below too.
    scores = tf.random.stateless_normal([bucket.rows, 10_000], seed=[4, 2])
    auto = dftopk(scores, 10, tau=0.1)
    assert autotuner.cached(bucket) in selection_autotune.candidates(bucket)
    assert selection_autotune.cached_winner(10_000, 10) == autotuner.cached(bucket)
    radix = dftopk(scores, 10, tau=0.1, selection="radix")
    np.testing.assert_allclose(auto.numpy(), radix.numpy(), rtol=1e-6, atol=1e-7)


def test_bad_timing_counts_are_refused_in_the_caller_s_thread():
    bucket = selection_autotune.Bucket(16, 2)
    with pytest.raises(ValueError, match="repeats >= 1 and warmup >= 0, got 0 and 1"):
        selection_autotune.time_candidates(bucket, [("radix", False)], repeats=0, warmup=1)


def test_a_keras_loss_trains_under_a_distribution_strategy_while_the_autotuner_times(
    autotune_on, caplog
):
    timer_calls = []

    def measure(bucket, paths):
        # The real timer runs in the replica's context, on a small shape and one path (cheap);
        # XLA's top_k is made the winner, the path that compiles fastest for the training.
        timer_calls.append(bucket)
        small = selection_autotune.Bucket(64, bucket.k)
        (ms,) = selection_autotune.time_candidates(small, [TOP_K_XLA], 1, 1).values()
        return {path: ms + index for index, path in enumerate(paths)}

    def loss(selected, scores):  # squared error of DFTopK's probabilities
        return tf.reduce_mean(tf.square(dftopk(scores, 10, tau=0.5) - selected), axis=-1)

    autotuner = autotune_on(measure)
    n, rows = 10_000, 16
    features = np.random.default_rng(0).normal(size=(rows, 4)).astype(np.float32)
    selected = np.zeros((rows, n), np.float32)
    selected[:, :10] = 1.0
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(n)])
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        history = model.fit(features, selected, batch_size=8, epochs=4, verbose=0)
    losses = history.history["loss"]
    messages = [f"{record.name}: {record.getMessage()}" for record in caplog.records]
    assert not [line for line in messages if LOGGER in line or "AutoGraph" in line]
    assert timer_calls == [selection_autotune.Bucket(n, 16)]
    assert autotuner.cached(timer_calls[0]) == TOP_K_XLA
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_the_command_line_times_buckets_prints_the_table_and_clears_the_cache(autotune_on, capsys):
    arguments = ["--sizes", "10000", "20000", "--ks", "10", "--repeats", "1", "--warmup", "1"]
    selection_autotune.main(arguments)
    output = capsys.readouterr().out
    path, row_bucket = selection_autotune.cache_path(), selection_autotune.Bucket(10_000, 16)
    assert output.count("timing bucket n=10000 k=16") == 1 and f"cache file: {path}" in output
    (row,) = [line for line in output.splitlines() if line.startswith("| 20000 | 10 |")]
    assert "| 10000 | 16 | 256 |" in row and "top_k xla" in row and "radix xla" in row
    timer = FakeTimer()
    stored = selection_autotune.SelectionAutotuner(path, timer).winner(row_bucket)
    assert row.endswith(f"| {selection_autotune.candidate_name(stored)} |") and not timer.calls
    selection_autotune.main(["--clear"])
    assert not os.path.exists(path) and "deleted the cache file" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        selection_autotune.main(["--sizes", "100"])
    assert exit_info.value.code == 2
