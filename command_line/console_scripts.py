"""The installed commands: ``dftopk-simulate``, ``dftopk-convert``, ``dftopk-train``,
``dftopk-evaluate``, ``dftopk-export`` and ``dftopk-serve``.

Each runs its module's ``main`` through ``run_command`` (one-line user errors, exit code 2), as
``python -m MODULE`` does.

Example:
    >>> COMMANDS["dftopk-train"]
    'dftopk_cascade.models.training.train'
"""

import importlib
import sys
from typing import NoReturn

from dftopk_cascade.command_line.entry import run_command
from dftopk_cascade.command_line.start_up import quiet_start_up

#: Each installed command and the module whose ``main`` it runs.
COMMANDS = {
    "dftopk-simulate": "dftopk_cascade.pipelines.simulator.simulate",
    "dftopk-convert": "dftopk_cascade.pipelines.convert",
    "dftopk-train": "dftopk_cascade.models.training.train",
    "dftopk-evaluate": "dftopk_cascade.models.training.evaluate",
    "dftopk-export": "dftopk_cascade.serving.export.saved_models",
    "dftopk-serve": "dftopk_cascade.serving.server",
}


def run_installed(command: str) -> NoReturn:
    """Runs installed ``command`` (a key of ``COMMANDS``) on ``sys.argv[1:]`` and exits.

    Example:
        >>> run_installed("dftopk-unknown")
        Traceback (most recent call last):
        ...
        KeyError: 'dftopk-unknown'
    """
    module_name = COMMANDS[command]
    quiet_start_up(sys.argv[1:])
    module = importlib.import_module(module_name)
    run_command(module.main, command)


def simulate() -> NoReturn:
    """``dftopk-simulate``: ``python -m dftopk_cascade.pipelines.simulator.simulate``."""
    run_installed("dftopk-simulate")


def convert() -> NoReturn:
    """``dftopk-convert``: ``python -m dftopk_cascade.pipelines.convert``."""
    run_installed("dftopk-convert")


def train() -> NoReturn:
    """``dftopk-train``: ``python -m dftopk_cascade.models.training.train``."""
    run_installed("dftopk-train")


def evaluate() -> NoReturn:
    """``dftopk-evaluate``: ``python -m dftopk_cascade.models.training.evaluate``."""
    run_installed("dftopk-evaluate")


def export() -> NoReturn:
    """``dftopk-export``: ``python -m dftopk_cascade.serving.export``."""
    run_installed("dftopk-export")


def serve() -> NoReturn:
    """``dftopk-serve``: ``python -m dftopk_cascade.serving.server``."""
    run_installed("dftopk-serve")
