"""Every command: user errors on one line with exit code 2, --debug tracebacks, quiet start-up."""

import os
import re
import subprocess
import sys

import pytest
from dftopk_cascade import command_line
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.command_line.start_up import quiet_start_up

from tests.docstring_examples import assert_examples_pass, package_modules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: TensorFlow's C++ log lines (I/W/E + date) and absl's pre-initialisation warning.
START_UP_LINE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl)", re.MULTILINE)


def run_module(*argv: str) -> subprocess.CompletedProcess:
    """``python -m argv...`` from the project root, without the suite's TF_CPP_MIN_LOG_LEVEL."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment["PYTHONPATH"] = ROOT
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_user_error_is_one_line_with_exit_code_2_and_no_start_up_noise(tmp_path) -> None:
    missing = str(tmp_path / "missing")
    result = run_module(
        "dftopk_cascade.models.training.train",
        "--data",
        missing,
        "--model-dir",
        str(tmp_path / "m"),
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"python -m dftopk_cascade.models.training.train: error: {missing}: no such data folder; "
        "write one with: "
        "python -m dftopk_cascade.pipelines.simulator.simulate --recflow SIM_DIR ... && "
        "python -m dftopk_cascade.pipelines.convert --recflow SIM_DIR --data TFREC_DIR"
    ]


def test_debug_shows_the_traceback(tmp_path) -> None:
    result = run_module(
        "dftopk_cascade.pipelines.simulator.simulate",
        "--recflow",
        str(tmp_path),
        "--days",
        "0",
        "--requests-per-day",
        "5",
        "--debug",
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: days, requests_per_day and chunk_size must be >= 1" in result.stderr
    assert not START_UP_LINE.search(result.stderr)  # quiet start-up without --verbose


def test_run_command_reports_user_errors_and_keeps_bugs(capsys) -> None:
    def bad_value(argv):
        raise ValueError("--days must be >= 1,\n  got 0")

    with pytest.raises(SystemExit) as exit_info:
        run_command(bad_value, "python -m tool", ["--days", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "python -m tool: error: --days must be >= 1, got 0\n"

    def bug(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_command(bug, "python -m tool", [])
    with pytest.raises(ValueError):
        run_command(bad_value, "python -m tool", ["--debug"])


def test_entry_flags_are_documented() -> None:
    import argparse

    text = add_entry_flags(argparse.ArgumentParser()).format_help()
    assert "--debug" in text and "--verbose" in text


@pytest.mark.parametrize(("argv", "expected"), [(["--verbose"], "False None"), ([], "True 2")])
def test_quiet_start_up_unless_verbose(argv, expected) -> None:
    code = (
        "import os, sys; sys.argv = ['-m', *sys.argv[1:]]\n"
        "from dftopk_cascade.command_line.start_up import quiet_module_start_up\n"
        "quiet = quiet_module_start_up()\n"
        "import tensorflow as tf\n"
        "tf.constant(1.0) + 1.0\n"
        "print(quiet, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment["PYTHONPATH"] = ROOT
    result = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip() == expected, result.stderr
    if not argv:
        assert not START_UP_LINE.search(result.stderr), result.stderr


def test_a_command_without_tensorflow_does_not_import_it() -> None:
    code = (
        "import sys; sys.argv = ['-m']\n"
        "import dftopk_cascade.pipelines.simulator.simulate\n"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_quiet_start_up_leaves_an_imported_tensorflow_alone() -> None:
    import tensorflow  # noqa: F401

    assert quiet_start_up([]) is False


@pytest.mark.parametrize("module_name", package_modules(command_line))
def test_docstring_examples_run(module_name) -> None:
    assert_examples_pass(module_name)


def test_convert_and_its_worker_processes_start_quietly(tmp_path) -> None:
    from tests.pipelines.recflow_fixtures import simulate_small

    root = simulate_small(str(tmp_path / "recflow"))
    result = run_module(
        "dftopk_cascade.pipelines.convert",
        "--recflow",
        root,
        "--data",
        str(tmp_path / "tfrec"),
        "--workers",
        "2",
        "--requests-per-shard",
        "60",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("converted 240 requests of 2 days")
    assert not START_UP_LINE.search(result.stderr), result.stderr


ENTRY_MODULES = (
    "dftopk_cascade.pipelines.simulator.simulate",
    "dftopk_cascade.pipelines.convert",
    "dftopk_cascade.models.training.train",
    "dftopk_cascade.models.training.evaluate",
    "dftopk_cascade.serving.export.__main__",
    "dftopk_cascade.serving.server",
    "benchmarks.bench_ops",
    "benchmarks.bench_pipeline",
    "benchmarks.bench_serving",
    "benchmarks.bench_train",
    "experiments.compare_runs",
    "experiments.comparison_report",
    "experiments.method_comparison",
    "experiments.reproduce",
    "experiments.score_ties",
    "experiments.stage_collapse",
    "experiments.temperature_scale",
)


@pytest.mark.parametrize("module_name", ENTRY_MODULES)
def test_every_command_goes_through_the_shared_entry(module_name, capsys) -> None:
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    command = module_name.removesuffix(".__main__")  # a package run with -m
    assert f'run_command(main, "python -m {command}")' in source
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--debug" in text and "--verbose" in text
