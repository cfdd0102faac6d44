"""Writing files under a temporary name and renaming them when complete.

A reader never sees a half-written file under its final name: a killed writer leaves only
``<name>.tmp``, which the next run overwrites. A write that fails for lack of space removes its
temporary file and raises ``DiskFullError``, one line naming the file and the free space.

Example:
    >>> path = os.path.join(tmp_dir, "day.json")
    >>> with atomic_path(path) as temporary, open(temporary, "w") as file:
    ...     _ = file.write("{}")
    >>> os.path.exists(path), os.path.exists(path + TEMPORARY_SUFFIX)
    (True, False)
"""

import errno
import json
import os
import pickle
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TEMPORARY_SUFFIX = ".tmp"
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")


class DiskFullError(OSError):
    """A write that failed for lack of space: one line naming the file and the space left.

    Example:
        >>> str(DiskFullError(os.path.join(tmp_dir, "schema.json")))
        '...schema.json: no space left on device (... bytes free in ...); free some space or ...'
    """

    def __init__(self, path: str, message: str | None = None) -> None:
        if message is None:
            folder = os.path.dirname(os.path.abspath(path))
            free = shutil.disk_usage(folder).free
            message = (
                f"{path}: no space left on device ({free:,} bytes free in {folder}); free some "
                "space or write elsewhere, then run the command again (the half-written file was "
                "removed)"
            )
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple:  # a worker's error keeps its message in the main process
        return (DiskFullError, (self.path, str(self)))


def is_disk_full(error: BaseException) -> bool:
    """True for an error that says the disk (or the user's quota) is full, TensorFlow's included.

    Example:
        >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device")), is_disk_full(OSError())
        (True, False)
    """
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        return True
    return any(message in str(error) for message in _DISK_FULL_MESSAGES)


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path; renames it to ``path`` on success and deletes it on failure.

    Example:
        >>> path = os.path.join(tmp_dir, "x.bin")
        >>> with atomic_path(path) as temporary, open(temporary, "wb") as file:
        ...     raise RuntimeError("killed while writing")
        Traceback (most recent call last):
        RuntimeError: killed while writing
        >>> os.path.exists(path), os.path.exists(path + TEMPORARY_SUFFIX)
        (False, False)
    """
    temporary = path + TEMPORARY_SUFFIX
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if is_disk_full(error):
            raise DiskFullError(path) from None
        raise


def write_json(path: str, value: Any) -> None:
    """Writes ``value`` as indented JSON to ``path`` atomically.

    Example:
        >>> write_json(os.path.join(tmp_dir, "schema.json"), {"version": 1})
        >>> json.load(open(os.path.join(tmp_dir, "schema.json")))
        {'version': 1}
    """
    with atomic_path(path) as temporary, open(temporary, "w") as file:
        json.dump(value, file, indent=2, sort_keys=True)
        file.write("\n")


def write_pickle(path: str, value: Any) -> None:
    """Pickles ``value`` to ``path`` atomically, with protocol 4 (readable by Python >= 3.4).

    Example:
        >>> write_pickle(os.path.join(tmp_dir, "id_cnt.pkl"), {"user_id": 10})
        >>> pickle.load(open(os.path.join(tmp_dir, "id_cnt.pkl"), "rb"))
        {'user_id': 10}
    """
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        pickle.dump(value, file, protocol=4)
