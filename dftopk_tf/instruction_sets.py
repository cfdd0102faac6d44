"""The CPU's instruction sets as Linux reports them (``/proc/cpuinfo``'s feature flags).

TensorFlow's kernels are compiled once for every x86-64 CPU, while XLA compiles for the host's
instruction set (capped by ``XLA_FLAGS=--xla_cpu_max_isa=...``), so speed and rounding can differ
by CPU. The flags name the machine in ``dftopk_tf.selection_autotune``'s cache and tell
``dftopk_cascade.models.precision`` whether the CPU computes bfloat16 natively.

Example:
    >>> cpu_flags("/nonexistent/cpuinfo")
    frozenset()
"""


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
