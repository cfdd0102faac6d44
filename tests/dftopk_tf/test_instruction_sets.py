"""The CPU's feature flags as Linux reports them."""

from dftopk_tf import instruction_sets


def test_cpu_flags_read_the_flags_line_and_tolerate_a_missing_file(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 avx512f\n")
    assert instruction_sets.cpu_flags(str(cpuinfo)) == {"fpu", "sse4_2", "avx", "avx2", "avx512f"}
    assert instruction_sets.cpu_flags(str(tmp_path / "missing")) == frozenset()
