"""Folders this project writes: an ownership marker, a manifest of what was written, and a lock.

Every folder a command of this project writes (a model folder, a TFRecord data folder, a simulated
RecFlow folder, an export folder) carries a marker, ``.dftopk-<kind>.json``, naming the writer,
the format version and a random id, and listing (its manifest) the paths the writer created. A
command writes into a non-empty folder only if it finds its own marker there; ``overwrite=True``
deletes only the paths the manifest lists, never anything else. While a command writes, it holds
an exclusive ``fcntl`` lock on ``.dftopk-<kind>.lock``, which the kernel releases when the process
dies, so two commands never write one folder at once.

Example:
    >>> path = os.path.join(tmp_dir, "owned_model")
    >>> with owned_folder(path, kind="model", writer="dftopk-train") as folder:
    ...     _ = open(os.path.join(path, "history.csv"), "w").write("epoch\\n")
    ...     folder.record("history.csv")
    >>> read_marker(path, "model")["manifest"]
    ['history.csv']
"""

import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dftopk_cascade.pipelines.atomic_files import write_json

FOLDER_KINDS = ("model", "data", "recflow", "export")
MARKER_FORMAT_VERSION = 1
_MARKER_FIELDS = {"kind", "writer", "format_version", "id", "created", "manifest"}


class FolderError(ValueError):
    """A folder this project cannot write into, as it stands (a user error: one line, exit 2).

    Example:
        >>> issubclass(FolderError, ValueError)
        True
    """


class ForeignFolderError(FolderError):
    """A non-empty folder without this project's marker: something else's files, left untouched.

    Example:
        >>> issubclass(ForeignFolderError, FolderError)
        True
    """


class FolderBusyError(FolderError):
    """A folder that another process is writing (it holds the folder's lock).

    Example:
        >>> issubclass(FolderBusyError, FolderError)
        True
    """


def marker_name(kind: str) -> str:
    """The marker's file name for folders of ``kind``.

    Example:
        >>> marker_name("data")
        '.dftopk-data.json'
    """
    _check_kind(kind)
    return f".dftopk-{kind}.json"


def lock_name(kind: str) -> str:
    """The lock's file name for folders of ``kind``.

    Example:
        >>> lock_name("model")
        '.dftopk-model.lock'
    """
    _check_kind(kind)
    return f".dftopk-{kind}.lock"


def read_marker(path: str, kind: str) -> dict[str, Any] | None:
    """The marker of folder ``path`` for ``kind``, or None when it has none (no lock is taken).

    Raises ``FolderError`` naming the file when the marker is malformed.

    Example:
        >>> read_marker(os.path.join(tmp_dir, "no_such_folder"), "data") is None
        True
    """
    marker_path = os.path.join(path, marker_name(kind))
    if not os.path.exists(marker_path):
        return None
    try:
        with open(marker_path) as file:
            marker = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FolderError(f"{marker_path}: unreadable folder marker ({error})") from None
    _check_marker(marker, marker_path, kind)
    return marker


@dataclass
class OwnedFolder:
    """A folder claimed by one writer: its marker (with the manifest) and its held lock.

    Made by ``owned_folder``; ``record`` adds written paths to the manifest.

    Example:
        >>> path = os.path.join(tmp_dir, "owned_export")
        >>> with owned_folder(path, kind="export", writer="dftopk-export") as folder:
        ...     folder.is_new, folder.kind
        (True, 'export')
    """

    path: str
    kind: str
    marker: dict[str, Any]
    is_new: bool
    _lock_file: Any = field(default=None, repr=False)

    @property
    def marker_path(self) -> str:
        """The marker file's path.

        Example:
            >>> OwnedFolder("/runs/m", "model", {}, True).marker_path
            '/runs/m/.dftopk-model.json'
        """
        return os.path.join(self.path, marker_name(self.kind))

    def record(self, *relative_paths: str) -> None:
        """Adds ``relative_paths`` (inside the folder) to the manifest and saves the marker.

        Example:
            >>> path = os.path.join(tmp_dir, "owned_record")
            >>> with owned_folder(path, kind="data", writer="dftopk-convert") as folder:
            ...     folder.record("shards/day-0.tfrecord.gz", "schema.json")
            ...     folder.marker["manifest"]
            ['schema.json', 'shards/day-0.tfrecord.gz']
        """
        manifest = set(self.marker["manifest"])
        for relative in relative_paths:
            manifest.add(_inside(self.path, relative))
        self.marker["manifest"] = sorted(manifest)
        write_json(self.marker_path, self.marker)

    def forget(self, *relative_paths: str) -> None:
        """Removes ``relative_paths`` from the manifest (once the writer deleted them); saves it.

        Example:
            >>> path = os.path.join(tmp_dir, "owned_forget")
            >>> with owned_folder(path, kind="data", writer="dftopk-convert") as folder:
            ...     folder.record("a.tfrecord.gz", "b.tfrecord.gz")
            ...     folder.forget("a.tfrecord.gz")
            ...     folder.marker["manifest"]
            ['b.tfrecord.gz']
        """
        forgotten = {_inside(self.path, relative) for relative in relative_paths}
        self.marker["manifest"] = [
            relative for relative in self.marker["manifest"] if relative not in forgotten
        ]
        write_json(self.marker_path, self.marker)

    def clear(self) -> None:
        """Deletes every path the manifest lists (files or folders), then empties the manifest.

        Nothing the manifest does not list is touched.

        Example:
            >>> path = os.path.join(tmp_dir, "owned_clear")
            >>> with owned_folder(path, kind="model", writer="dftopk-train") as folder:
            ...     os.makedirs(os.path.join(path, "weights"))
            ...     folder.record("weights")
            ...     _ = open(os.path.join(path, "notes.txt"), "w").write("the user's")
            ...     folder.clear()
            >>> sorted(name for name in os.listdir(path) if not name.startswith(".dftopk"))
            ['notes.txt']
        """
        for relative in self.marker["manifest"]:
            target = os.path.join(self.path, _inside(self.path, relative))
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.remove(target)
        self.marker["manifest"] = []
        write_json(self.marker_path, self.marker)


@contextmanager
def owned_folder(
    path: str, kind: str, *, writer: str, overwrite: bool = False
) -> Iterator[OwnedFolder]:
    """Claims folder ``path`` for ``writer``: creates it, locks it, checks or writes its marker.

    Raises ``FolderBusyError`` when another process holds the lock, and ``ForeignFolderError``
    when ``path`` is non-empty and has no marker of ``kind`` (nothing is changed). With
    ``overwrite=True`` the paths listed in the manifest are deleted first. The lock is released
    on exit (or when the process dies).

    Example:
        >>> path = os.path.join(tmp_dir, "someone_elses")
        >>> os.makedirs(path)
        >>> _ = open(os.path.join(path, "config.json"), "w").write("{}")
        >>> with owned_folder(path, kind="model", writer="dftopk-train"):
        ...     pass
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.owned_folder.ForeignFolderError: ...
    """
    _check_kind(kind)
    os.makedirs(path, exist_ok=True)
    lock_path = os.path.join(path, lock_name(kind))
    lock_existed = os.path.exists(lock_path)
    lock_file = _acquire_lock(path, kind)
    try:
        marker = read_marker(path, kind)
        is_new = marker is None
        if marker is None:
            try:
                _refuse_foreign_entries(path, kind, writer)
            except ForeignFolderError:
                if not lock_existed:  # leave a foreign folder exactly as it was
                    os.remove(lock_path)
                raise
            marker = _new_marker(kind, writer)
        folder = OwnedFolder(path, kind, marker, is_new, lock_file)
        write_json(folder.marker_path, marker)
        if overwrite:
            folder.clear()
        yield folder
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()


def _acquire_lock(path: str, kind: str) -> Any:
    """Opens and exclusively locks the folder's lock file; records this process in it."""
    lock_path = os.path.join(path, lock_name(kind))
    lock_file = open(lock_path, "a+")  # held until the claim ends
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        holder = lock_file.read().strip() or "another process"
        lock_file.close()
        raise FolderBusyError(
            f"{path} is being written by {holder}; wait for it to finish or choose another folder"
        ) from None
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(f"process {os.getpid()} ({' '.join(sys.argv) or sys.executable})\n")
    lock_file.flush()
    return lock_file


def _refuse_foreign_entries(path: str, kind: str, writer: str) -> None:
    """Raises ``ForeignFolderError`` if ``path`` holds anything but this kind's lock file."""
    foreign = sorted(name for name in os.listdir(path) if name != lock_name(kind))
    if foreign:
        raise ForeignFolderError(
            f"{path} is not empty ({foreign[0]!r}, {len(foreign)} entries) and has no "
            f"{marker_name(kind)} marker, so {writer} did not write it; choose an empty or new "
            "folder (nothing was changed)"
        )


def _new_marker(kind: str, writer: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "writer": writer,
        "format_version": MARKER_FORMAT_VERSION,
        "id": uuid.uuid4().hex,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "manifest": [],
    }


def _check_marker(marker: Any, marker_path: str, kind: str) -> None:
    """Raises ``FolderError`` naming ``marker_path`` unless ``marker`` is a valid marker."""
    if not isinstance(marker, dict) or set(marker) != _MARKER_FIELDS:
        raise FolderError(f"{marker_path}: not a folder marker (fields {sorted(_MARKER_FIELDS)})")
    if marker["kind"] != kind:
        raise FolderError(f"{marker_path}: marks a {marker['kind']!r} folder, not {kind!r}")
    version = marker["format_version"]
    if not isinstance(version, int) or not 1 <= version <= MARKER_FORMAT_VERSION:
        raise FolderError(
            f"{marker_path}: format_version {version!r} is not one this version reads "
            f"(1..{MARKER_FORMAT_VERSION}); upgrade dftopk-tf or choose a new folder"
        )
    manifest = marker["manifest"]
    if not isinstance(manifest, list) or not all(isinstance(item, str) for item in manifest):
        raise FolderError(f"{marker_path}: manifest must be a list of relative paths")
    folder = os.path.dirname(marker_path)
    for relative in manifest:
        _inside(folder, relative, marker_path)


def _inside(folder: str, relative: str, source: str | None = None) -> str:
    """``relative`` normalised; raises ``FolderError`` if it is absolute or leaves ``folder``."""
    normalised = os.path.normpath(relative)
    if os.path.isabs(relative) or normalised == ".." or normalised.startswith(".." + os.sep):
        raise FolderError(f"{source or folder}: manifest path {relative!r} is outside the folder")
    if normalised == "." or normalised.startswith(".dftopk-"):
        raise FolderError(f"{source or folder}: manifest path {relative!r} names the marker")
    return normalised


def _check_kind(kind: str) -> None:
    if kind not in FOLDER_KINDS:
        raise ValueError(f"folder kind must be one of {FOLDER_KINDS}, got {kind!r}")
