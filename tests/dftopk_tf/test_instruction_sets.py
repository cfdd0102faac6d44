"""XLA's instruction set as the `auto` rule sees it: the CPU's flags, capped by XLA_FLAGS."""

from dftopk_tf import instruction_sets


def test_cpu_flags_read_the_flags_line_and_tolerate_a_missing_file(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 avx512f\n")
    assert instruction_sets.cpu_flags(str(cpuinfo)) == {"fpu", "sse4_2", "avx", "avx2", "avx512f"}
    assert instruction_sets.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_xla_flags_cap_avx512_only_below_it() -> None:
    allows = instruction_sets.xla_cpu_max_isa_allows_avx512
    assert allows("") and allows("--xla_cpu_max_isa=AVX512") and allows("--xla_cpu_max_isa=amx")
    assert not allows("--xla_cpu_max_isa=AVX2") and not allows("--xla_cpu_max_isa=SSE4_2")
    assert not allows("--xla_cpu_max_isa=AVX512 --xla_dump_to=/tmp --xla_cpu_max_isa=AVX")
