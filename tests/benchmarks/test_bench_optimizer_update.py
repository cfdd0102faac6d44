"""bench_optimizer_update: both forms update the table alike, and bad sizes are refused."""

import pytest

from benchmarks.bench_optimizer_update import FORMS, main, time_updates


def test_each_form_is_timed_once_per_row_of_the_table(capsys) -> None:
    rows = main(["--rows", "1000", "--dim", "4", "--looked-up", "300", "--repeats", "2"])
    assert [row.form for row in rows] == list(FORMS)
    assert all(row.milliseconds > 0 for row in rows)
    text = capsys.readouterr().out
    assert "[1,000, 4] float32 table" in text and "| xla |" in text


def test_bad_sizes_are_refused_and_help_names_the_flags(capsys) -> None:
    with pytest.raises(ValueError, match="--rows, --dim, --looked-up and --repeats must be >= 1"):
        time_updates(rows=0)
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--rows", "--dim", "--looked-up", "--repeats"))
