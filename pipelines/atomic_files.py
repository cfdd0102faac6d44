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

import json
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dftopk_cascade.pipelines.full_disk import DiskFullError, free_bytes, is_disk_full

TEMPORARY_SUFFIX = ".tmp"


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
            raise no_space_for(path) from None
        raise


def no_space_for(path: str) -> DiskFullError:
    """The ``DiskFullError`` of a file whose write failed for lack of space (and was removed).

    Example:
        >>> str(no_space_for(os.path.join(tmp_dir, "schema.json")))
        '...schema.json: no space left on device (... bytes free in ...); free some space or ...'
    """
    folder = os.path.dirname(os.path.abspath(path))
    return DiskFullError(
        path,
        f"{path}: no space left on device ({free_bytes(folder):,} bytes free in {folder}); free "
        "some space or write elsewhere, then run the command again (the half-written file was "
        "removed)",
    )


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
