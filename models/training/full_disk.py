"""A full disk while training writes its model folder: one line, nothing half-written left.

A disk (or quota) that fills up while ``dftopk_cascade.models.training.train`` writes shows up as
Python's ``OSError`` (ENOSPC, EDQUOT) from a JSON or CSV write, or as TensorFlow's
``ResourceExhaustedError`` "No space left on device" from a checkpoint
(``dftopk_cascade.pipelines.full_disk.is_disk_full``). ``reporting_full_disk`` turns either into
one ``DiskFullError`` line naming the folder and the free space left there, after deleting what the
failed write left half-done: the ``*_temp`` folders of TensorFlow's checkpoint writer,
``weights.tmp`` (``dftopk_cascade.models.model_folder``), and the files of any checkpoint whose
index cannot be read. What was complete stays: the last completed epoch's backup, from which the
same command resumes once space is freed.

Example:
    >>> import tempfile
    >>> import errno
    >>> with reporting_full_disk(tempfile.mkdtemp()):
    ...     raise OSError(errno.ENOSPC, "No space left on device", "history.csv")
    Traceback (most recent call last):
    ...
    dftopk_cascade.pipelines.full_disk.DiskFullError: ...: the disk is full (... bytes free
    there) ...
"""

import glob
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import tensorflow as tf
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.pipelines.atomic_files import TEMPORARY_SUFFIX
from dftopk_cascade.pipelines.full_disk import DiskFullError, free_bytes, is_disk_full

#: TensorFlow's checkpoint writer saves into ``<prefix>_temp/`` and renames when complete.
_CHECKPOINT_TEMPORARY = "_temp"


def remove_partial_writes(model_dir: str) -> list[str]:
    """Deletes the half-written files of a failed write in ``model_dir``; returns their paths.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(folder, "weights.tmp"))
        >>> [os.path.basename(path) for path in remove_partial_writes(folder)]
        ['weights.tmp']
    """
    layout = ModelDir(model_dir)
    partial = glob.glob(os.path.join(model_dir, "**", "*" + _CHECKPOINT_TEMPORARY), recursive=True)
    partial.append(layout.weights_dir + TEMPORARY_SUFFIX)
    checkpoint_files = [
        path
        for pattern in ("*.index", "*.data-*")
        for path in glob.glob(os.path.join(model_dir, "**", pattern), recursive=True)
    ]
    for folder in sorted({os.path.dirname(path) for path in checkpoint_files}):
        partial.extend(_unreadable_checkpoint_files(folder))
    removed = []
    for path in sorted(set(partial)):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        else:
            continue
        removed.append(path)
    return removed


def _unreadable_checkpoint_files(folder: str) -> list[str]:
    """The files of every checkpoint in ``folder`` whose index cannot be read (half-written)."""
    prefixes: dict[str, list[str]] = {}
    for name in os.listdir(folder):
        if name.endswith(".index") or ".data-" in name:
            prefix = name.split(".data-")[0].removesuffix(".index")
            prefixes.setdefault(prefix, []).append(os.path.join(folder, name))
    unreadable = []
    for prefix, files in prefixes.items():
        try:
            tf.train.load_checkpoint(os.path.join(folder, prefix))
        except (ValueError, tf.errors.OpError):
            unreadable.extend(files)
    return unreadable


@contextmanager
def reporting_full_disk(model_dir: str) -> Iterator[None]:
    """Turns an out-of-space error in the block into one ``DiskFullError`` line, cleaning up.

    Example:
        >>> import tempfile
        >>> with reporting_full_disk(tempfile.mkdtemp()):
        ...     pass
    """
    try:
        yield
    except (OSError, tf.errors.OpError) as error:
        if not is_disk_full(error):
            raise
        remove_partial_writes(model_dir)
        written = getattr(error, "filename", None)
        raise DiskFullError(
            model_dir,
            f"{model_dir}: the disk is full ({free_bytes(model_dir):,} bytes free there)"
            + (f" while writing {written}" if written else "")
            + "; half-written files were removed. Free some space and run the same command "
            "again: it resumes where this run stopped",
        ) from None
