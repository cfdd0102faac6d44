"""The atomic, no-overwrite writer of the TF Serving export layout
(``dftopk_cascade.serving.export_layout``).

TF Serving loads the numeric subfolders of a model's base path. A version is written under a
temporary, non-numeric name (which TF Serving ignores), checked, and renamed into place only when
complete, so a server polling the folder never sees half a model; an existing version is never
overwritten.

A cascade (retrieval, prerank, rank) is published together (``publish_cascade``): all three are
staged and checked first, renamed into place, and then ``EXPORT/cascade.json`` names the version
as complete, with each published file's size and sha256
(``dftopk_cascade.serving.saved_model_files``), which readers verify before loading. Readers of the
latest version (``latest_version_dir``, hence the local backend) follow that manifest, so they never
see a mixed set. A run killed midway leaves staged ``.incomplete-*`` folders or a version that only
some models have; the next export removes both (``clean_stale_exports``), unless another export is
running (its process is alive).

Example:
    >>> import tempfile
    >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
    >>> servable = toy_scorer()
    >>> export_dir = tempfile.TemporaryDirectory()
    >>> version = next_version(export_dir.name, ["retrieval", "prerank", "rank"])
    >>> write_version(export_dir.name, "rank", version, servable, servable.signatures())
    '.../rank/1'
"""

import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf
from dftopk_cascade.pipelines.atomic_files import write_json
from dftopk_cascade.serving.export.graph_ops import serving_problems
from dftopk_cascade.serving.export_layout import (
    CASCADE_MANIFEST,
    TEMPORARY_PREFIX,
    cascade_version,
    existing_versions,
    version_dir,
)
from dftopk_cascade.serving.saved_model_files import file_records


class VersionExistsError(FileExistsError):
    """The version folder already exists: export never overwrites a served version."""


def next_version(export_dir: str, model_names: Sequence[str]) -> int:
    """One more than the highest version of any of ``model_names`` (1 for a new export folder).

    Example:
        >>> next_version("/nonexistent", ["rank"])
        1
    """
    versions = [v for name in model_names for v in existing_versions(export_dir, name)]
    return 1 + max(versions, default=0)


def check_version_free(export_dir: str, model_name: str, version: int) -> None:
    """Raises ``VersionExistsError`` when ``EXPORT/<model_name>/<version>`` exists.

    Example:
        >>> check_version_free("/nonexistent", "rank", 1)
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"a version must be an int >= 1, got {version!r}")
    path = version_dir(export_dir, model_name, version)
    if os.path.exists(path):
        raise VersionExistsError(
            f"{path} exists; export never overwrites a version: pass a new --version "
            f"(next free: {next_version(export_dir, [model_name])})"
        )


def write_version(
    export_dir: str,
    model_name: str,
    version: int,
    servable: tf.Module,
    signatures: Mapping[str, Callable[..., dict[str, tf.Tensor]]],
) -> str:
    """Saves ``servable`` as ``EXPORT/<model_name>/<version>`` atomically; returns that path.

    The SavedModel is written to a temporary sibling folder, checked with
    ``graph_ops.serving_problems`` (any op stock TF Serving cannot run is a ``ValueError``) and
    renamed into place. Raises ``VersionExistsError`` when the version exists.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
        >>> servable = toy_scorer()
        >>> export_dir = tempfile.TemporaryDirectory()
        >>> write_version(export_dir.name, "rank", 7, servable, servable.signatures())
        '.../rank/7'
    """
    return publish_version(
        stage_version(export_dir, model_name, version, servable, signatures),
        export_dir,
        model_name,
        version,
    )


def stage_version(
    export_dir: str,
    model_name: str,
    version: int,
    servable: tf.Module,
    signatures: Mapping[str, Callable[..., dict[str, tf.Tensor]]],
) -> str:
    """Saves and checks ``servable`` under a temporary name; returns that folder.

    The name (``.incomplete-<version>-<pid>-<random>``) is ignored by TF Serving and names this
    process, so a later export can tell a killed run's leftovers from a running one's.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
        >>> servable = toy_scorer()
        >>> export_dir = tempfile.mkdtemp()
        >>> staged = stage_version(export_dir, "rank", 8, servable, servable.signatures())
        >>> publish_version(staged, export_dir, "rank", 8)
        '.../rank/8'
    """
    check_version_free(export_dir, model_name, version)
    final = version_dir(export_dir, model_name, version)
    temporary = os.path.join(
        export_dir,
        model_name,
        f"{TEMPORARY_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
    )
    os.makedirs(os.path.dirname(final), exist_ok=True)
    try:
        tf.saved_model.save(servable, temporary, signatures=dict(signatures))
        problems = serving_problems(temporary)
        if problems:
            raise ValueError(
                f"{model_name} would not load in stock TF Serving:\n  " + "\n  ".join(problems)
            )
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return temporary


def publish_version(temporary: str, export_dir: str, model_name: str, version: int) -> str:
    """Renames a staged folder into ``EXPORT/<model_name>/<version>``; returns that path.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
        >>> servable = toy_scorer()
        >>> export_dir = tempfile.mkdtemp()
        >>> staged = stage_version(export_dir, "rank", 9, servable, servable.signatures())
        >>> publish_version(staged, export_dir, "rank", 9)
        '.../rank/9'
    """
    final = version_dir(export_dir, model_name, version)
    try:
        check_version_free(export_dir, model_name, version)
        # os.rename onto an existing non-empty folder fails, so a concurrent writer cannot be
        # overwritten either.
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final


def publish_cascade(export_dir: str, version: int, staged: Mapping[str, str]) -> dict[str, str]:
    """Publishes staged models as one ``version``: renames them, then writes ``cascade.json``.

    If a rename or the write of ``cascade.json`` fails (a full disk), the models already renamed
    are removed again (all or none).

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.serving.export.toy_servables import toy_scorer
        >>> servable = toy_scorer()
        >>> export_dir = tempfile.mkdtemp()
        >>> staged = {"rank": stage_version(export_dir, "rank", 4, servable, servable.signatures())}
        >>> publish_cascade(export_dir, 4, staged)
        {'rank': '.../rank/4'}
        >>> cascade_version(export_dir)
        4
    """
    files = {model_name: file_records(temporary) for model_name, temporary in staged.items()}
    published: dict[str, str] = {}
    try:
        for model_name, temporary in staged.items():
            published[model_name] = publish_version(temporary, export_dir, model_name, version)
        write_json(
            os.path.join(export_dir, CASCADE_MANIFEST),
            {
                "version": version,
                "models": {name: str(version) for name in published},
                "files": files,
            },
        )
    except BaseException:
        for path in published.values():
            shutil.rmtree(path, ignore_errors=True)
        raise
    return published


def _writer_alive(folder_name: str) -> bool:
    """True when the staged folder's name holds the pid of a live process."""
    parts = folder_name[len(TEMPORARY_PREFIX) :].split("-")
    if len(parts) < 3 or not parts[1].isdigit():
        return False  # a name of an older layout: no running writer to protect
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_exports(export_dir: str, model_names: Sequence[str]) -> list[str]:
    """Removes what a killed export left; returns the removed folders.

    Staged ``.incomplete-*`` folders whose writer is gone go, and so do versions newer than the
    newest complete cascade that only some of ``model_names`` have. Nothing is removed while
    another export is running (a staged folder of a live process).

    Example:
        >>> clean_stale_exports("/nonexistent", ["rank"])
        []
    """
    staged = [
        os.path.join(export_dir, name, folder)
        for name in model_names
        if os.path.isdir(os.path.join(export_dir, name))
        for folder in os.listdir(os.path.join(export_dir, name))
        if folder.startswith(TEMPORARY_PREFIX)
    ]
    if any(_writer_alive(os.path.basename(path)) for path in staged):
        return []
    versions = {name: set(existing_versions(export_dir, name)) for name in model_names}
    complete = set.intersection(*versions.values()) if versions else set()
    newest = max(complete | {cascade_version(export_dir) or 0})
    partial = [
        version_dir(export_dir, name, version)
        for name in model_names
        for version in sorted(versions[name] - complete)
        if version > newest
    ]
    for path in staged + partial:
        shutil.rmtree(path, ignore_errors=True)
    return staged + partial
