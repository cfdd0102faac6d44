"""A full disk (or an exceeded quota): how to recognise it, and the one error that reports it.

Python reports a full disk as ``OSError`` errno ``ENOSPC`` (``EDQUOT`` for a quota), TensorFlow as
an ``OpError`` (``ResourceExhaustedError``) whose message says "No space left on device";
``is_disk_full`` recognises both. Each writer turns it into a ``DiskFullError``, one line naming
what it was writing and the space free there (``free_bytes``, ``human_bytes``), after removing what
it left half-written. A ``DiskFullError`` is an ``OSError``, so the commands print it as a user
error (``dftopk_cascade.command_line.entry``).

Example:
    >>> error = OSError(errno.ENOSPC, "No space left on device")
    >>> if is_disk_full(error):
    ...     free = free_bytes(tmp_dir)
    ...     error = DiskFullError(tmp_dir, f"{tmp_dir}: the disk is full ({free:,} bytes free)")
    >>> isinstance(error, DiskFullError) and error.path == tmp_dir
    True
"""

import errno
import os
import shutil

_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")
_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


class DiskFullError(OSError):
    """A write that stopped for lack of space; ``message`` is the one line the user reads.

    ``path`` is what was being written (a file or a folder). The error keeps its message when
    pickled, so a worker process's report reaches the main process whole.

    Example:
        >>> error = DiskFullError("/data/tfrec", "/data/tfrec: no space left on device")
        >>> error.path, str(error), isinstance(error, OSError)
        ('/data/tfrec', '/data/tfrec: no space left on device', True)
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple:  # a worker's error keeps its message in the main process
        return (type(self), (self.path, str(self)))


def is_disk_full(error: BaseException) -> bool:
    """True for an error that says the disk (or the user's quota) is full, TensorFlow's included.

    Example:
        >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
        True
        >>> is_disk_full(OSError(errno.ENOENT, "No such file or directory"))
        False
    """
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        return True
    return any(message in str(error) for message in _DISK_FULL_MESSAGES)


def existing_parent(path: str) -> str:
    """``path`` made absolute if it exists, else its closest existing parent folder.

    Example:
        >>> existing_parent(os.path.join(tmp_dir, "not", "made", "yet")) == os.path.abspath(tmp_dir)
        True
    """
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def free_bytes(path: str) -> int:
    """Free bytes on the file system of ``path`` (or of its closest existing parent).

    Example:
        >>> free_bytes(os.path.join(tmp_dir, "not", "made", "yet")) >= 0
        True
    """
    return shutil.disk_usage(existing_parent(path)).free


def human_bytes(count: int) -> str:
    """A byte count for people: ``'1.5 MiB'``.

    Example:
        >>> human_bytes(1536 * 1024), human_bytes(12)
        ('1.5 MiB', '12 B')
    """
    size, index = float(count), 0
    while size >= 1024 and index < len(_BYTE_UNITS) - 1:
        size, index = size / 1024, index + 1
    return f"{count} B" if index == 0 else f"{size:.1f} {_BYTE_UNITS[index]}"
