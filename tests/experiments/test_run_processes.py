"""Runs side by side: the CPU split, the pinning of real processes, their logs and statuses."""

import os
import sys

import pytest

from experiments.run_processes import RunProcesses, cpu_sets

AFFINITY = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2


def test_the_cpus_are_split_into_disjoint_sets_that_cover_them_all() -> None:
    sets = cpu_sets(3, [4, 0, 2, 1, 3, 5, 6])
    assert sets == [(0, 1, 2), (3, 4), (5, 6)]
    assert sorted(cpu for cpus in sets for cpu in cpus) == list(range(7))


def test_more_workers_than_cpus_is_refused_with_the_count() -> None:
    with pytest.raises(ValueError, match="3 runs at once need at least 3 CPUs"):
        cpu_sets(3, [0, 1])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        cpu_sets(0, [0, 1])


@pytest.mark.skipif(not AFFINITY, reason="needs Linux's CPU affinity and 2 CPUs")
def test_side_by_side_runs_are_pinned_to_their_own_cpus_and_log_to_their_own_files(
    tmp_path,
) -> None:
    processes = RunProcesses(2, str(tmp_path / "logs"))
    show_cpus = "import os; print(sorted(os.sched_getaffinity(0)))"
    given = {name: processes.start(name, [sys.executable, "-c", show_cpus]) for name in "ab"}
    assert not processes.has_free_worker()
    ended = dict([processes.wait_any(), processes.wait_any()])
    assert ended == {"a": 0, "b": 0} and processes.running == []
    seen = {name: (tmp_path / "logs" / f"{name}.log").read_text().strip() for name in "ab"}
    assert seen == {name: str(list(cpus)) for name, cpus in given.items()}
    assert not set(given["a"]) & set(given["b"])


def test_a_failing_run_reports_its_status_and_frees_its_worker(tmp_path) -> None:
    processes = RunProcesses(1, str(tmp_path))
    assert processes.start("bad", [sys.executable, "-c", "raise SystemExit(3)"]) is None
    with pytest.raises(RuntimeError, match="no free worker for next"):
        processes.start("next", [sys.executable, "-c", "pass"])
    assert processes.wait_any() == ("bad", 3)
    assert processes.has_free_worker()
    with pytest.raises(RuntimeError, match="no run is running"):
        processes.wait_any()
