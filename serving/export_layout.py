"""The TF Serving export layout ``EXPORT/<model>/<version>/``, as the serving process reads it.

TF Serving loads the numeric subfolders of a model's base path; a version being written lives
under a temporary, non-numeric name (``TEMPORARY_PREFIX``), which TF Serving and these readers
ignore. ``EXPORT/cascade.json`` names the newest completely published cascade (retrieval, prerank,
rank): readers of the latest version (``latest_version_dir``, hence the local backend) follow it,
so they never see a mixed set. The writer is ``serving.export.publish``.

Example:
    >>> version_dir("/export", "rank", 3)
    '/export/rank/3'
    >>> existing_versions("/nonexistent", "rank"), cascade_version("/nonexistent")
    ([], None)
"""

import json
import os

TEMPORARY_PREFIX = ".incomplete-"
#: The manifest of the newest complete cascade, in the export folder.
CASCADE_MANIFEST = "cascade.json"


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
    return sorted(int(name) for name in os.listdir(base) if name.isdigit())


def latest_version_dir(export_dir: str, model_name: str) -> str:
    """The newest version folder of ``model_name``: the newest complete cascade's when the
    export folder has ``cascade.json``, else the highest version (TF Serving's default policy).

    Raises ``FileNotFoundError`` naming the folder when the model has no version.

    Example:
        >>> import tempfile
        >>> from serving.export.publish import write_version
        >>> from serving.export.toy_servables import toy_scorer
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
        raise FileNotFoundError(
            f"no exported version of {model_name!r} under {os.path.join(export_dir, model_name)}"
            " (run python -m serving.export first)"
        )
    return version_dir(export_dir, model_name, versions[-1])


def cascade_version(export_dir: str) -> int | None:
    """The newest completely published cascade version (``cascade.json``), or None.

    Example:
        >>> cascade_version("/nonexistent")
    """
    path = os.path.join(export_dir, CASCADE_MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        return int(json.load(file)["version"])
