"""The files of a published SavedModel: recorded at export, verified before loading.

``file_records`` lists a version folder's files with their sizes and sha256 (the export keeps
them in ``cascade.json``). ``load_saved_model`` checks a folder against its records, naming the
first file that is missing, truncated or changed, and turns what ``tf.saved_model.load`` raises
on a damaged SavedModel (an ``IndexError``, a protobuf or TensorFlow error, each with a long
traceback) into one ``ExportReadError`` line naming the folder.

Example:
    >>> from dftopk_cascade.serving.export.toy_servables import save_toy_servable, toy_scorer
    >>> folder = save_toy_servable(toy_scorer())
    >>> records = file_records(folder)
    >>> "saved_model.pb" in records
    True
    >>> loaded = load_saved_model(folder, records)
"""

import hashlib
import os
from typing import Any

import tensorflow as tf
from dftopk_cascade.serving.export_layout import ExportReadError
from google.protobuf.message import DecodeError

_HASH_CHUNK = 1 << 20
_REEXPORT = "re-export it with python -m dftopk_cascade.serving.export"


def file_records(folder: str) -> dict[str, dict[str, Any]]:
    """Relative path (``/``-separated) -> ``{"bytes", "sha256"}`` of every file under ``folder``.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "a.txt"), "w").write("abc")
        >>> file_records(folder)["a.txt"]["bytes"]
        3
    """
    records = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            records[relative] = {"bytes": os.path.getsize(path), "sha256": _sha256(path)}
    return dict(sorted(records.items()))


def check_file_records(folder: str, records: dict[str, dict[str, Any]]) -> None:
    """Raises ``ExportReadError`` naming the first recorded file that is missing or differs.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "a.txt"), "w").write("abc")
        >>> check_file_records(folder, {"a.txt": {"bytes": 4, "sha256": "0"}})
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.export_layout.ExportReadError: .../a.txt has 3 bytes, the export
        wrote 4: it...
    """
    for relative, record in records.items():
        path = os.path.join(folder, *relative.split("/"))
        if not os.path.isfile(path):
            raise ExportReadError(f"{path} is missing (the export wrote it); {_REEXPORT}")
        size = os.path.getsize(path)
        if size != record["bytes"]:
            raise ExportReadError(
                f"{path} has {size} bytes, the export wrote {record['bytes']}: it is truncated "
                f"or was changed; {_REEXPORT}"
            )
        if _sha256(path) != record["sha256"]:
            raise ExportReadError(
                f"{path} does not match the sha256 the export recorded: it was changed; {_REEXPORT}"
            )


def load_saved_model(folder: str, records: dict[str, dict[str, Any]] | None = None) -> Any:
    """``tf.saved_model.load(folder)`` after ``check_file_records`` (when ``records`` are given).

    Raises ``ExportReadError`` (one line naming the folder) when TensorFlow cannot load it.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "saved_model.pb"), "wb").write(b"half a model")
        >>> load_saved_model(folder)
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.export_layout.ExportReadError: cannot load the SavedModel
        .../saved_model.pb...
    """
    if records:
        check_file_records(folder, records)
    try:
        return tf.saved_model.load(folder)
    except (OSError, IndexError, ValueError, DecodeError, tf.errors.OpError) as error:
        cause = getattr(error, "message", None) or str(error) or type(error).__name__
        raise ExportReadError(
            f"cannot load the SavedModel {_damaged_file(folder, error)}: it is damaged or "
            f"incomplete ({type(error).__name__}: {cause}); {_REEXPORT}"
        ) from None


def _damaged_file(folder: str, error: BaseException) -> str:
    """The file TensorFlow failed on, as far as its error tells (else the folder)."""
    message = str(error)
    if isinstance(error, IndexError) or "sstable" in message or "variables" in message:
        return os.path.join(folder, "variables")
    if "saved_model.pb" in message or isinstance(error, DecodeError):
        return os.path.join(folder, "saved_model.pb")
    return folder


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
