"""The CPU's feature flags as Linux reports them."""

import os

import pytest

from dftopk_tf import instruction_sets


def test_cpu_flags_read_the_flags_line_and_tolerate_a_missing_file(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 avx512f\n")
    assert instruction_sets.cpu_flags(str(cpuinfo)) == {"fpu", "sse4_2", "avx", "avx2", "avx512f"}
    assert instruction_sets.cpu_flags(str(tmp_path / "missing")) == frozenset()


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux's CPU affinity and 2 CPUs",
)
def test_usable_cpu_count_counts_the_cpus_a_pinned_process_may_use() -> None:
    """A run pinned to one CPU (method_comparison --workers) records 1 as its train_cpus."""
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert instruction_sets.usable_cpu_count() == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert instruction_sets.usable_cpu_count() == len(allowed)
