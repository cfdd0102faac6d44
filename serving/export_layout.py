"""The TF Serving export layout ``EXPORT/<model>/<version>/``, as the serving process reads it.

TF Serving loads the numeric subfolders of a model's base path; a version being written lives
under a temporary, non-numeric name (``TEMPORARY_PREFIX``), which TF Serving and these readers
ignore. ``EXPORT/cascade.json`` names the newest completely published cascade (retrieval, prerank,
rank): readers of the latest version (``latest_version_dir``, hence the local backend) follow it,
so they never see a mixed set. It also records each published file's size and sha256
(``dftopk_cascade.serving.saved_model_files``), so a damaged file is named before TensorFlow reads
it. The writer is ``dftopk_cascade.serving.export.publish``. What cannot be read (a malformed
``cascade.json``, a damaged SavedModel) is an ``ExportReadError``: one line naming the file.

Example:
    >>> version_dir("/export", "rank", 3)
    '/export/rank/3'
    >>> existing_versions("/nonexistent", "rank"), cascade_version("/nonexistent")
    ([], None)
"""

import json
import os
import re
from typing import Any

TEMPORARY_PREFIX = ".incomplete-"
#: The manifest of the newest complete cascade, in the export folder.
CASCADE_MANIFEST = "cascade.json"
#: A version folder's name: ASCII digits only, as TF Serving reads it (``①`` is no version).
_VERSION_NAME = re.compile(r"[0-9]{1,18}")
_FIX = "restore it, or delete it (then the highest version of each model is read)"


class ExportReadError(ValueError):
    """A file of the export folder that cannot be read as written (one line, naming the file).

    Example:
        >>> issubclass(ExportReadError, ValueError)
        True
    """


def version_dir(export_dir: str, model_name: str, version: int) -> str:
    """``EXPORT/<model_name>/<version>``.

    Example:
        >>> version_dir("/export", "rank", 3)
        '/export/rank/3'
    """
    return os.path.join(export_dir, model_name, str(version))


def existing_versions(export_dir: str, model_name: str) -> list[int]:
    """The versions of ``model_name`` under ``export_dir``, ascending ([] when none).

    Example:
        >>> existing_versions("/nonexistent", "rank")
        []
    """
    base = os.path.join(export_dir, model_name)
    if not os.path.isdir(base):
        return []
    return sorted(int(name) for name in os.listdir(base) if _VERSION_NAME.fullmatch(name))


def ignored_entries(export_dir: str, model_name: str) -> list[str]:
    """The entries of ``EXPORT/<model_name>`` that are neither versions nor staged versions.

    Example:
        >>> ignored_entries("/nonexistent", "rank")
        []
    """
    base = os.path.join(export_dir, model_name)
    if not os.path.isdir(base):
        return []
    return sorted(
        name
        for name in os.listdir(base)
        if not _VERSION_NAME.fullmatch(name) and not name.startswith(TEMPORARY_PREFIX)
    )


def latest_version_dir(export_dir: str, model_name: str) -> str:
    """The newest version folder of ``model_name``: the newest complete cascade's when the
    export folder has ``cascade.json``, else the highest version (TF Serving's default policy).

    Raises ``FileNotFoundError`` naming the folder when the model has no version.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.serving.export.publish import write_version
        >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
        >>> servable = toy_scorer()
        >>> export_dir = tempfile.TemporaryDirectory()
        >>> _ = write_version(export_dir.name, "rank", 1, servable, servable.signatures())
        >>> _ = write_version(export_dir.name, "rank", 2, servable, servable.signatures())
        >>> latest_version_dir(export_dir.name, "rank")
        '.../rank/2'
    """
    cascade = cascade_version(export_dir)
    if cascade is not None and os.path.isdir(version_dir(export_dir, model_name, cascade)):
        return version_dir(export_dir, model_name, cascade)
    versions = existing_versions(export_dir, model_name)
    if not versions:
        ignored = ignored_entries(export_dir, model_name)
        because = f"; ignored, not version numbers: {ignored[:3]}" if ignored else ""
        raise FileNotFoundError(
            f"no exported version of {model_name!r} under {os.path.join(export_dir, model_name)}"
            f" (run python -m dftopk_cascade.serving.export first{because})"
        )
    return version_dir(export_dir, model_name, versions[-1])


def cascade_version(export_dir: str) -> int | None:
    """The newest completely published cascade version (``cascade.json``), or None.

    Raises ``ExportReadError`` naming ``cascade.json`` when it is malformed.

    Example:
        >>> cascade_version("/nonexistent")
    """
    manifest = read_cascade_manifest(export_dir)
    return None if manifest is None else manifest["version"]


def read_cascade_manifest(export_dir: str) -> dict[str, Any] | None:
    """``EXPORT/cascade.json``, checked: ``version`` (int >= 1), ``models`` (name -> version)
    and, from exports that record them, ``files`` (name -> path -> bytes and sha256).

    None when the export folder has none; ``ExportReadError`` naming the file when malformed.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, CASCADE_MANIFEST), "w").write('{"version": "1"')
        >>> read_cascade_manifest(folder)
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.export_layout.ExportReadError: .../cascade.json is not valid JSON
        (Expecting...
    """
    path = os.path.join(export_dir, CASCADE_MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except (ValueError, UnicodeDecodeError) as error:
        raise ExportReadError(f"{path} is not valid JSON ({error}); {_FIX}") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise ExportReadError(f"{path} is malformed: {problem}; {_FIX}")
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a parsed ``cascade.json`` (None when nothing is)."""
    if not isinstance(manifest, dict):
        return f"expected an object, got {type(manifest).__name__}"
    version, models = manifest.get("version"), manifest.get("models")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return f"'version' must be an int >= 1, got {version!r}"
    if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
        return f"'models' must map model names to versions, got {models!r}"[:200]
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(records, dict)
        and all(
            isinstance(record, dict)
            and isinstance(record.get("bytes"), int)
            and isinstance(record.get("sha256"), str)
            for record in records.values()
        )
        for records in files.values()
    ):
        return "'files' must map model names to {path: {bytes, sha256}}"
    return None
