"""``run_command``: user errors as one line and exit code 2, bugs with their traceback.

A user error is what the user can fix by changing the command or their files: ``ValueError``
(bad values, malformed JSON, refused settings), ``OSError`` (missing files and folders,
permissions, a port in use) and TensorFlow's not-found, data-loss and permission errors. It is
printed as ``PROG: error: MESSAGE`` on one line, like argparse's own errors, and the command exits
with 2. Anything else is a bug and keeps Python's traceback (exit code 1). ``--debug`` re-raises
every error with its traceback.

Example:
    >>> def main(argv):
    ...     raise FileNotFoundError("/data/tfrec: no such data folder")
    >>> run_command(main, "dftopk-train", ["--data", "/data/tfrec"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from dftopk_cascade.command_line.start_up import VERBOSE_FLAG

DEBUG_FLAG = "--debug"
USER_ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130
_TENSORFLOW_USER_ERRORS = ("NotFoundError", "DataLossError", "PermissionDeniedError")


def add_entry_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``--debug`` and ``--verbose`` (read by ``run_command`` and ``start_up``) to ``parser``.

    Example:
        >>> parser = add_entry_flags(argparse.ArgumentParser())
        >>> parser.parse_args(["--debug"]).debug
        True
    """
    parser.add_argument(
        DEBUG_FLAG, action="store_true", help="show the full traceback of any error"
    )
    parser.add_argument(
        VERBOSE_FLAG,
        action="store_true",
        help="show TensorFlow's start-up log lines (oneDNN, CUDA, absl; hidden by default)",
    )
    return parser


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types reported as user errors (TensorFlow's only once it is imported).

    Example:
        >>> ValueError in user_error_types() and OSError in user_error_types()
        True
    """
    types: list[type[BaseException]] = [ValueError, OSError]
    tensorflow = sys.modules.get("tensorflow")
    errors = getattr(tensorflow, "errors", None)
    if errors is not None:
        types.extend(getattr(errors, name) for name in _TENSORFLOW_USER_ERRORS)
    return tuple(types)


def one_line(error: BaseException) -> str:
    """The error's message on one line (TensorFlow's messages span several).

    Example:
        >>> one_line(ValueError("bad value\\n  in --days"))
        'bad value in --days'
    """
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in message:
        message = f"{error.filename}: {message}"
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def run_command(
    main: Callable[[list[str]], Any], prog: str, argv: Sequence[str] | None = None
) -> NoReturn:
    """Runs ``main(argv)`` as a command and exits: 0, 2 on a user error, 130 when interrupted.

    Args:
        main: the command's ``main``, taking the argument list.
        prog: the command as the user types it, e.g. ``python -m
        dftopk_cascade.models.training.train``. argv: the arguments (default: ``sys.argv[1:]``).

    Example:
        >>> run_command(lambda argv: None, "python -m tool", [])
        Traceback (most recent call last):
        ...
        SystemExit: 0
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        main(arguments)
    except KeyboardInterrupt:
        if DEBUG_FLAG in arguments:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    except user_error_types() as error:
        if DEBUG_FLAG in arguments:
            raise
        sys.stdout.flush()
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT_CODE)
    sys.exit(0)
