"""Which vector instructions XLA's CPU code may use here: AVX-512 or narrower.

XLA compiles for the host's instruction set, capped by ``XLA_FLAGS=--xla_cpu_max_isa=...``;
TensorFlow's own kernels are compiled once for every x86-64 CPU. So which of the two runs an op
faster can depend on the CPU, and ``dftopk_tf.selection``'s ``"auto"`` rule asks this module.

Example:
    >>> xla_cpu_max_isa_allows_avx512("--xla_cpu_max_isa=AVX2")
    False
"""

import functools
import os
import re

#: ``--xla_cpu_max_isa`` values that leave AVX-512 to XLA.
AVX512_ISAS: tuple[str, ...] = ("AVX512", "AVX512_VNNI", "AVX512_BF16", "AMX", "AMX_FP16")


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux's ``/proc/cpuinfo``); empty where that file is missing.

    Example:
        >>> isinstance(cpu_flags(), frozenset)
        True
    """
    try:
        with open(cpuinfo_path, encoding="utf-8") as file:
            for line in file:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def xla_cpu_max_isa_allows_avx512(xla_flags: str) -> bool:
    """False where ``xla_flags`` caps XLA's CPU code below AVX-512 (``--xla_cpu_max_isa``).

    Example:
        >>> xla_cpu_max_isa_allows_avx512(""), xla_cpu_max_isa_allows_avx512(
        ...     "--xla_cpu_max_isa=avx512_vnni")
        (True, True)
    """
    caps = re.findall(r"--xla_cpu_max_isa=(\S+)", xla_flags)
    return not caps or caps[-1].upper() in AVX512_ISAS


@functools.lru_cache(maxsize=1)
def xla_uses_avx512() -> bool:
    """Whether XLA's CPU code here may use AVX-512: the CPU has it and ``XLA_FLAGS`` allows it.

    Read once per process (XLA reads ``XLA_FLAGS`` once too).

    Example:
        >>> xla_uses_avx512() in (True, False)
        True
    """
    return "avx512f" in cpu_flags() and xla_cpu_max_isa_allows_avx512(
        os.environ.get("XLA_FLAGS", "")
    )
