"""The TF Serving export layout ``EXPORT/<model>/<version>/`` and its atomic, no-overwrite writer.

TF Serving loads the numeric subfolders of a model's base path. A version is written under a
temporary, non-numeric name (which TF Serving ignores), checked, and renamed into place only when
complete, so a server polling the folder never sees half a model; an existing version is never
overwritten.

Example:
    >>> import tempfile
    >>> from serving.servables import ScorerServable
    >>> from serving.vocabulary import FeatureVocabulary
    >>> score_by_first_id = lambda features: tf.cast(features["items"][..., 0], tf.float32)
    >>> vocabulary = FeatureVocabulary({"items": [100] * 8})
    >>> servable = ScorerServable(score_by_first_id, [], vocabulary)
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

from serving.graph_ops import serving_problems

TEMPORARY_PREFIX = ".incomplete-"


class VersionExistsError(FileExistsError):
    """The version folder already exists: export never overwrites a served version."""


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
    """The newest version folder of ``model_name`` (what TF Serving's default policy serves).

    Raises ``FileNotFoundError`` naming the folder when the model has no version.

    Example:
        >>> import tempfile
        >>> from serving.servables import ScorerServable
        >>> from serving.vocabulary import FeatureVocabulary
        >>> score_by_first_id = lambda features: tf.cast(features["items"][..., 0], tf.float32)
        >>> vocabulary = FeatureVocabulary({"items": [100] * 8})
    >>> servable = ScorerServable(score_by_first_id, [], vocabulary)
        >>> export_dir = tempfile.TemporaryDirectory()
        >>> _ = write_version(export_dir.name, "rank", 1, servable, servable.signatures())
        >>> _ = write_version(export_dir.name, "rank", 2, servable, servable.signatures())
        >>> latest_version_dir(export_dir.name, "rank")
        '.../rank/2'
    """
    versions = existing_versions(export_dir, model_name)
    if not versions:
        raise FileNotFoundError(
            f"no exported version of {model_name!r} under {os.path.join(export_dir, model_name)}"
            " (run python -m serving.export first)"
        )
    return version_dir(export_dir, model_name, versions[-1])


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
        >>> from serving.servables import ScorerServable
        >>> from serving.vocabulary import FeatureVocabulary
        >>> score_by_first_id = lambda features: tf.cast(features["items"][..., 0], tf.float32)
        >>> vocabulary = FeatureVocabulary({"items": [100] * 8})
    >>> servable = ScorerServable(score_by_first_id, [], vocabulary)
        >>> export_dir = tempfile.TemporaryDirectory()
        >>> write_version(export_dir.name, "rank", 7, servable, servable.signatures())
        '.../rank/7'
    """
    check_version_free(export_dir, model_name, version)
    final = version_dir(export_dir, model_name, version)
    temporary = os.path.join(
        export_dir, model_name, f"{TEMPORARY_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    )
    os.makedirs(os.path.dirname(final), exist_ok=True)
    try:
        tf.saved_model.save(servable, temporary, signatures=dict(signatures))
        problems = serving_problems(temporary)
        if problems:
            raise ValueError(
                f"{model_name} would not load in stock TF Serving:\n  " + "\n  ".join(problems)
            )
        check_version_free(export_dir, model_name, version)
        # os.rename onto an existing non-empty folder fails, so a concurrent writer cannot be
        # overwritten either.
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return final
