"""The CPU's instruction sets as Linux reports them (``/proc/cpuinfo``'s feature flags).

TensorFlow's kernels are compiled once for every x86-64 CPU, while XLA compiles for the host's
instruction set (capped by ``XLA_FLAGS=--xla_cpu_max_isa=...``), so speed and rounding can differ
by CPU. The flags and the CPUs a process may use name the machine in
``dftopk_tf.selection_autotune``'s cache; the flags tell ``dftopk_cascade.models.precision``
whether the CPU computes bfloat16 natively.

Example:
    >>> cpu_flags("/nonexistent/cpuinfo")
    frozenset()
"""

import os
import platform

#: Environment variables that change which CPU kernels TensorFlow and XLA run (a machine's
#: timings depend on them as much as on the CPU).
KERNEL_SETTINGS_ENV: tuple[str, ...] = ("XLA_FLAGS", "ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS")


def _cpuinfo_value(field: str, cpuinfo_path: str) -> str | None:
    """The value of ``/proc/cpuinfo``'s first line naming ``field``; None where there is none."""
    try:
        with open(cpuinfo_path, encoding="utf-8") as file:
            for line in file:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (Linux's ``/proc/cpuinfo``); empty where that file is missing.

    Example:
        >>> isinstance(cpu_flags(), frozenset)
        True
    """
    return frozenset((_cpuinfo_value("flags", cpuinfo_path) or "").split())


def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else what ``platform`` knows of it.

    Example:
        >>> isinstance(cpu_model(), str)
        True
    """
    model = _cpuinfo_value("model name", cpuinfo_path)
    return model if model is not None else platform.processor() or platform.machine()


def usable_cpu_count() -> int:
    """How many CPUs this process may run on: its affinity where the platform has one, else all.

    Example:
        >>> usable_cpu_count() >= 1
        True
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
