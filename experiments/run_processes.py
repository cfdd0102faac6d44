"""Training runs as processes side by side, each on its own CPUs: ``RunProcesses``.

On a machine with few cores a small model's steps do not keep every core busy, so two runs
with one core each can finish sooner together than one after the other on all the cores. Each
process is pinned to a disjoint CPU set (Linux's CPU affinity), so the runs do not fight over
cores. Whether it pays on a given machine is a measurement: the same run's epoch time alone and
side by side.
"""

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

#: Seconds between two looks at the running processes while more than one runs.
POLL_SECONDS = 1.0


def cpu_sets(workers: int, cpus: Sequence[int]) -> list[tuple[int, ...]]:
    """Splits ``cpus`` into ``workers`` disjoint sets of consecutive CPUs, as even as they go.

    Example:
        >>> cpu_sets(2, [0, 1, 2, 3, 4])
        [(0, 1, 2), (3, 4)]
        >>> cpu_sets(2, [5, 7])
        [(5,), (7,)]
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > len(cpus):
        raise ValueError(
            f"{workers} runs at once need at least {workers} CPUs (one each); this process may "
            f"use {len(cpus)}: {sorted(cpus)}"
        )
    size, extra = divmod(len(cpus), workers)
    ordered = sorted(cpus)
    sets, start = [], 0
    for index in range(workers):
        end = start + size + (1 if index < extra else 0)
        sets.append(tuple(ordered[start:end]))
        start = end
    return sets


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (Linux's affinity); raises where it cannot be set.

    Example:
        >>> len(usable_cpus()) >= 1
        True
    """
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        raise OSError(
            "runs side by side need Linux's CPU affinity (os.sched_setaffinity), which this "
            "platform lacks: run one at a time (--workers 1)"
        )
    return sorted(os.sched_getaffinity(0))


@dataclass
class RunningProcess:
    """One started run: its name, its process and the CPUs it is pinned to (None: all)."""

    name: str
    process: subprocess.Popen
    cpus: tuple[int, ...] | None


class RunProcesses:
    """At most ``workers`` run processes at once.

    With one worker a run inherits this process's output and CPUs (Keras's epoch lines show as
    they come). With more, each run is pinned to its own CPU set (``cpu_sets``) and writes its
    output to ``log_dir/<name>.log`` (appended: a resumed run keeps its earlier lines), since
    the runs' lines would otherwise interleave.

    Example::

        processes = RunProcesses(2, "/tmp/logs")
        processes.start("a", [sys.executable, "-c", "print('a')"])
        processes.start("b", [sys.executable, "-c", "print('b')"])
        processes.wait_any(), processes.wait_any()  # (("a", 0), ("b", 0)) in either order
    """

    def __init__(self, workers: int, log_dir: str) -> None:
        self.log_dir = log_dir
        self._free: list[tuple[int, ...] | None] = (
            [None] if workers == 1 else cpu_sets(workers, usable_cpus())
        )
        self._running: list[RunningProcess] = []

    @property
    def running(self) -> list[str]:
        """The names of the runs still running, in the order they started."""
        return [run.name for run in self._running]

    def has_free_worker(self) -> bool:
        """Whether another run can start now."""
        return bool(self._free)

    def start(self, name: str, command: Sequence[str]) -> tuple[int, ...] | None:
        """Starts ``command`` as run ``name`` on a free worker; returns the CPUs it is pinned to
        (None: unpinned, the only worker). Raises if every worker is busy."""
        if not self._free:
            raise RuntimeError(f"no free worker for {name}: running {self.running}")
        cpus = self._free.pop(0)
        if cpus is None:
            process = subprocess.Popen(list(command))
        else:
            os.makedirs(self.log_dir, exist_ok=True)
            with open(self.log_path(name), "ab") as log:
                process = subprocess.Popen(
                    list(command),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=lambda: os.sched_setaffinity(0, cpus),
                )
        self._running.append(RunningProcess(name, process, cpus))
        return cpus

    def log_path(self, name: str) -> str:
        """Where run ``name``'s output goes when runs are side by side."""
        return os.path.join(self.log_dir, f"{name}.log")

    def wait_any(self) -> tuple[str, int]:
        """Waits until one of the running runs ends; returns its name and exit status and frees
        its worker. Raises if none runs."""
        if not self._running:
            raise RuntimeError("no run is running")
        while True:
            for run in self._running:
                status = run.process.wait() if len(self._running) == 1 else run.process.poll()
                if status is not None:
                    self._running.remove(run)
                    self._free.append(run.cpus)
                    return run.name, status
            time.sleep(POLL_SECONDS)
