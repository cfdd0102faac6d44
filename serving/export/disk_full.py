"""A full disk during an export, reported in one line naming the folder and its free space.

TensorFlow reports a full disk as a ``ResourceExhaustedError`` about a temporary file, and Python
as ``OSError`` errno ``ENOSPC``; either (``dftopk_cascade.pipelines.full_disk.is_disk_full``)
becomes a ``DiskFullError`` (an ``OSError``, so commands print it as one line) that names the
export folder and how much space is free there. The writers
(``dftopk_cascade.serving.export.publish``) have already removed what they staged, so nothing
half-written is left.

Example:
    >>> import errno, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with full_disk_reported(folder):
    ...     raise OSError(errno.ENOSPC, "No space left on device")
    Traceback (most recent call last):
    ...
    dftopk_cascade.pipelines.full_disk.DiskFullError: no space left on the device of ...: ...
    free of ...
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import tensorflow as tf
from dftopk_cascade.pipelines.full_disk import (
    DiskFullError,
    existing_parent,
    human_bytes,
    is_disk_full,
)


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
        usage = shutil.disk_usage(existing_parent(folder))
        raise DiskFullError(
            folder,
            f"no space left on the device of {folder}: {human_bytes(usage.free)} free of "
            f"{human_bytes(usage.total)}; the export stopped and removed what it had staged "
            "(free some space or choose another --export-dir)",
        ) from None
