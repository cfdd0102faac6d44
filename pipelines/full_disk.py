"""A full disk (or an exceeded quota): how to recognise it, and the one error that reports it.

Example:
    >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    True
"""

import errno
import os
import shutil

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
