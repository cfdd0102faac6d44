"""The machine a benchmark ran on, as one line for its output and the report header.

Example:
    >>> line = machine_description()
    >>> "cores" in line and "TensorFlow" in line and "XLA_FLAGS=" in line
    True
"""

import os
import platform

import tensorflow as tf

from dftopk_tf.instruction_sets import KERNEL_SETTINGS_ENV, cpu_model


def machine_description() -> str:
    """CPU model, cores, load average, Python and TensorFlow versions, platform, kernel settings.

    The kernel settings are ``KERNEL_SETTINGS_ENV`` as set (``unset`` where not): under
    ``XLA_FLAGS=--xla_cpu_max_isa=AVX2 ONEDNN_MAX_CPU_ISA=AVX2`` an AVX-512 CPU times as an
    AVX2 one would.

    Example:
        >>> "TensorFlow" in machine_description()
        True
    """
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    settings = ", ".join(
        f"{name}={os.environ.get(name, 'unset') or 'unset'}" for name in KERNEL_SETTINGS_ENV
    )
    return (
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average (1, 5, 15 min): {load}; "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}, {platform.platform()}; "
        f"{settings}"
    )


def gpu_description() -> str:
    """The GPUs TensorFlow sees, or ``none``.

    Example:
        >>> gpu_description().startswith("GPU: ")
        True
    """
    names = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    return f"GPU: {', '.join(names) if names else 'none'}"
