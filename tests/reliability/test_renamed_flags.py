"""Flags renamed for one name per concept still work under their old names, with a warning."""

import argparse

import pytest
from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.pipelines import convert
from dftopk_cascade.pipelines.movielens import convert as movielens_convert
from dftopk_cascade.pipelines.simulator import simulate
from dftopk_cascade.serving import server
from dftopk_cascade.serving.export import saved_models


def test_a_renamed_flag_fills_the_new_flag_and_says_what_to_use(capsys) -> None:
    parser = argparse.ArgumentParser(prog="tool")
    add_renamed_flag(parser, "--report-dir", "--out", required=True)
    with pytest.warns(DeprecationWarning, match="--out is deprecated, use --report-dir instead"):
        assert parser.parse_args(["--out", "r"]).report_dir == "r"
    assert (
        capsys.readouterr().err == "tool: warning: --out is deprecated, use --report-dir instead\n"
    )


def test_a_required_renamed_flag_is_still_required(capsys) -> None:
    parser = argparse.ArgumentParser(prog="tool")
    add_renamed_flag(parser, "--report-dir", "--out", required=True)
    with pytest.raises(SystemExit):
        parser.parse_args([])
    assert "one of the arguments --report-dir --out is required" in capsys.readouterr().err


def test_simulate_out_is_a_deprecated_name_of_recflow() -> None:
    with pytest.warns(DeprecationWarning, match="use --recflow instead"):
        args = simulate._parser().parse_args(
            ["--out", "r", "--days", "1", "--requests-per-day", "5"]
        )
    assert args.recflow == "r"


@pytest.mark.parametrize("module", [convert, movielens_convert])
def test_convert_out_is_a_deprecated_name_of_data(module, tmp_path) -> None:
    missing = str(tmp_path / "missing")
    source = ["--recflow", missing] if module is convert else ["--wheel", missing]
    arguments = ["--out", str(tmp_path / "tfrec"), *source]
    with pytest.warns(DeprecationWarning, match="--out is deprecated, use --data instead"):
        with pytest.raises((OSError, ValueError)):
            module.main(arguments)


@pytest.mark.parametrize(
    ("old", "new", "value"),
    [("--top-n", "retrieval_keep", 300), ("--m", "prerank_keep", 40), ("--k", "rank_keep", 5)],
)
def test_the_old_size_flags_still_set_the_sizes(old, new, value) -> None:
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
        args = server._parser().parse_args(["--port", "0", old, str(value)])
    assert getattr(args, new) == value
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
        args = saved_models._parser().parse_args(
            ["--model-dir", "m", "--export-dir", "e", old, str(value)]
        )
    assert getattr(args, new) == value


def test_max_top_n_is_a_deprecated_name_of_max_retrieval_keep() -> None:
    with pytest.warns(DeprecationWarning, match="use --max-retrieval-keep instead"):
        args = server._parser().parse_args(["--port", "0", "--max-top-n", "300"])
    assert args.max_retrieval_keep == 300
