"""Quiet TensorFlow start-up for the command-line entries (hidden unless ``--verbose``).

TensorFlow writes its start-up lines (oneDNN notice, CUDA stub, "All log messages before
absl::InitializeLog() ...", CPU feature guard, cuInit failures on a machine without a GPU) straight
to the process's standard error before its logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL``
alone does not hide them. ``quiet_start_up`` sets the environment TensorFlow reads and arranges
that the first ``import tensorflow`` (and its device probe) runs with file descriptor 2 pointed at
``/dev/null``; the standard error is restored right after, so progress bars and errors still
show. A command that never imports TensorFlow (``dftopk_cascade.pipelines.simulator.simulate``) does
not pay for it.

Example:
    >>> quiet_start_up(["--verbose"])  # the user asked for the start-up lines
    False
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

VERBOSE_FLAG = "--verbose"
#: Set by a quiet command for its child processes, which import the packages again.
QUIET_CHILDREN_VARIABLE = "DFTOPK_QUIET_START_UP"
QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # C++ INFO and WARNING lines once logging is up
    "GRPC_VERBOSITY": "ERROR",
    "ABSL_MIN_LOG_LEVEL": "2",
}


@contextlib.contextmanager
def stderr_muted() -> Iterator[None]:
    """Points file descriptor 2 at ``/dev/null`` inside the block (C++ writes included).

    Example:
        >>> with stderr_muted():
        ...     os.write(2, b"hidden")
        6
    """
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader, then its device probe, with standard error muted."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with stderr_muted():
            self.loader.exec_module(module)
            module.config.list_physical_devices()  # the probe logs too (cuInit without a GPU)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with ``_QuietLoader`` around its real loader."""

    def find_spec(self, name, path, target=None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def wants_start_up_lines(argv: Sequence[str]) -> bool:
    """True when the command line asks for TensorFlow's start-up lines (``--verbose``).

    Example:
        >>> wants_start_up_lines(["--data", "d", "--verbose"]), wants_start_up_lines(["--data"])
        (True, False)
    """
    return VERBOSE_FLAG in argv


def quiet_start_up(argv: Sequence[str]) -> bool:
    """Hides TensorFlow's start-up lines, unless ``argv`` has ``--verbose``.

    Returns whether it will hide them (False when asked for ``--verbose`` or when TensorFlow was
    already imported). Environment variables the user set keep their values.

    Example:
        >>> quiet_start_up(["--verbose"])
        False
    """
    if wants_start_up_lines(argv) or "tensorflow" in sys.modules:
        return False
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    os.environ[QUIET_CHILDREN_VARIABLE] = (
        "1"  # spawned workers (dftopk_cascade.pipelines.convert) start quiet
    )
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
    return True


def quiet_module_start_up() -> bool:
    """``quiet_start_up`` when Python is locating a ``-m`` module (a package ``__init__`` runs).

    While ``python -m package.module`` imports the package, ``sys.argv[0]`` is ``"-m"`` (Python's
    documented behaviour), so a package calls this from its ``__init__`` to quiet its commands
    without touching programs that merely import it. Worker processes a quiet command spawns
    (``QUIET_CHILDREN_VARIABLE`` in their environment) start quiet too.

    Example:
        >>> quiet_module_start_up()  # imported by a program, not run with -m
        False
    """
    if os.environ.get(QUIET_CHILDREN_VARIABLE) == "1":
        return quiet_start_up([])
    if sys.argv[:1] != ["-m"]:
        return False
    return quiet_start_up(sys.argv[1:])
