"""A full disk during an export, reported in one line naming the folder and its free space.

TensorFlow reports a full disk as a ``ResourceExhaustedError`` about a temporary file, and Python
as ``OSError`` errno ``ENOSPC``; either becomes a ``DiskFullError`` (an ``OSError``, so commands
print it as one line) that names the export folder and how much space is free there. The writers
(``dftopk_cascade.serving.export.publish``) have already removed what they staged, so nothing
half-written is left.

Example:
    >>> import errno, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with full_disk_reported(folder):
    ...     raise OSError(errno.ENOSPC, "No space left on device")
    Traceback (most recent call last):
    ...
    dftopk_cascade.serving.export.disk_full.DiskFullError: no space left on the device of ...: ...
    free of ...
"""

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import tensorflow as tf

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")


class DiskFullError(OSError):
    """The device of an export folder filled up; the export stopped and removed what it staged.

    Example:
        >>> issubclass(DiskFullError, OSError)
        True
    """


def is_disk_full(error: BaseException) -> bool:
    """True for Python's and TensorFlow's errors of a full disk (or an exceeded quota).

    Example:
        >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
        True
        >>> is_disk_full(OSError(errno.ENOENT, "No such file or directory"))
        False
    """
    if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
        return True
    if isinstance(error, tf.errors.OpError):
        return any(text in (error.message or "") for text in _FULL_MESSAGES)
    return False


def human_bytes(count: int) -> str:
    """A byte count for people: ``'1.5 MiB'``.

    Example:
        >>> human_bytes(1536 * 1024), human_bytes(12)
        ('1.5 MiB', '12 B')
    """
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, index = float(count), 0
    while size >= 1024 and index < len(units) - 1:
        size, index = size / 1024, index + 1
    return f"{count} B" if index == 0 else f"{size:.1f} {units[index]}"


@contextmanager
def full_disk_reported(folder: str) -> Iterator[None]:
    """Turns a full-disk error raised inside into a ``DiskFullError`` naming ``folder``.

    Example:
        >>> import tempfile
        >>> with full_disk_reported(tempfile.mkdtemp()):
        ...     pass  # other errors pass through unchanged
    """
    try:
        yield
    except (OSError, tf.errors.OpError) as error:
        if not is_disk_full(error):
            raise
        usage = shutil.disk_usage(_existing_parent(folder))
        raise DiskFullError(
            f"no space left on the device of {folder}: {human_bytes(usage.free)} free of "
            f"{human_bytes(usage.total)}; the export stopped and removed what it had staged "
            "(free some space or choose another --export-dir)",
        ) from None


def _existing_parent(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path
