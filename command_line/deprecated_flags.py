"""``add_renamed_flag``: a renamed command-line flag keeps working under its old name.

The old flag fills the new flag's value, warns (``DeprecationWarning``) and prints one line
naming the new flag on stderr, so that scripts written for the old name still run and say what
to change.

Example:
    >>> import warnings
    >>> parser = argparse.ArgumentParser(prog="train")
    >>> _ = add_renamed_flag(parser, "--tau", "--temperature", type=float)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     parser.parse_args(["--temperature", "0.5"]).tau
    0.5
"""

import argparse
import sys
import warnings
from typing import Any


class _DeprecatedFlag(argparse.Action):
    """Stores into the new flag's ``dest`` and says that the flag used is deprecated."""

    def __init__(self, option_strings: list[str], dest: str, new_flag: str, **kwargs: Any):
        super().__init__(option_strings, dest, **kwargs)
        self.new_flag = new_flag

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        message = f"{option_string} is deprecated, use {self.new_flag} instead"
        print(f"{parser.prog}: warning: {message}", file=sys.stderr)
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_renamed_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    new: str,
    old: str,
    **kwargs: Any,
) -> argparse.Action:
    """Adds flag ``new`` (``kwargs`` as for ``add_argument``) and ``old`` as its deprecated name.

    ``old`` takes the same type, number of values and choices as ``new`` and is listed in
    ``--help`` as deprecated. A required flag may be given under either name (not both).
    Returns the action of ``new``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = add_renamed_flag(parser, "--report-dir", "--out", required=True)
        >>> parser.parse_args(["--report-dir", "r"]).report_dir
        'r'
    """
    required = kwargs.pop("required", False)
    names = parser.add_mutually_exclusive_group(required=True) if required else parser
    target = names.add_argument(new, **kwargs)
    names.add_argument(
        old,
        dest=target.dest,
        action=_DeprecatedFlag,
        new_flag=new,
        type=target.type,
        nargs=target.nargs,
        choices=target.choices,
        metavar=target.metavar or target.dest.upper(),
        default=argparse.SUPPRESS,
        help=f"deprecated name of {new}",
    )
    return target
