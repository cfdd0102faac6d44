"""Suite-wide set-up: the Keras implementation, memory kept per test module, the peak printed.

The Keras implementation is picked before TensorFlow is imported: the full suite runs on tf-keras
(TFRS needs it); scripts/test.sh runs the library's Keras-facing tests a second time with
TF_USE_LEGACY_KERAS=0 to check them on Keras 3.

``selection="auto"`` times nothing in the suite: ``DFTOPK_TF_AUTOTUNE=0`` gives the timing-free
rule (``dftopk_tf.selection_autotune``) unless the environment or a test sets it otherwise.

After each test module, Keras' session is cleared and Python's garbage collected, so models,
graphs and datasets of one module are not kept alive through the rest of the suite; the session
ends with lines giving the pytest process's CPU time and peak resident memory (scripts/test.sh
reprints them).
"""

import gc
import os
import sys
from collections.abc import Iterator

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DFTOPK_TF_AUTOTUNE", "0")

#: How the session's last line starts (scripts/test.sh looks for it).
PEAK_MEMORY_LINE = "peak resident memory of this pytest process:"
#: The line before it: the process's CPU time.
CPU_TIME_LINE = "CPU time of this pytest process:"


@pytest.fixture(autouse=True, scope="module")
def _release_module_memory() -> Iterator[None]:
    """Clears Keras' session and collects garbage after every test module."""
    yield
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].keras.backend.clear_session()
    gc.collect()


def peak_resident_gib() -> float:
    """This process's peak resident memory in GiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and the children it waited for, in seconds.

    Unlike wall time, it does not grow when other work shares the cores.
    """
    import resource

    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def pytest_terminal_summary(terminalreporter) -> None:
    """Ends the session's output with its CPU time and peak resident memory."""
    terminalreporter.write_line(f"{CPU_TIME_LINE} {cpu_seconds():.0f} s")
    terminalreporter.write_line(f"{PEAK_MEMORY_LINE} {peak_resident_gib():.2f} GiB")
