"""Shard sizes and sha256 digests: recorded by ``dftopk_cascade.pipelines.convert``, checked by the
readers.

Convert records each shard's byte size and sha256 in the day's ``manifest.json`` and in
``schema.json``. Readers check them before TensorFlow opens a file, so a truncated or altered
shard is named instead of surfacing mid-training as TF's "truncated record at N". The size is
checked on every read (one ``stat``). The digest is checked once per process: a shard whose
path, inode, size and modification time have not changed since this process hashed it is not
hashed again, so a run that reads the same days for training, validation and evaluation hashes
each file once. Hashing runs at disk speed, a small cost next to decoding the same bytes.

Example:
    >>> path = os.path.join(tmp_dir, "part-00000-of-00001.tfrecord.gz")
    >>> with open(path, "wb") as file:
    ...     _ = file.write(b"records")
    >>> record = shard_record(path, "2024-01-13/part-00000-of-00001.tfrecord.gz")
    >>> verify_shard(path, record)
    >>> with open(path, "wb") as file:
    ...     _ = file.write(b"rec")
    >>> verify_shard(path, record)
    Traceback (most recent call last):
    ...
    dftopk_cascade.pipelines.shard_integrity.ShardIntegrityError: ...: the shard has 3 bytes, ...
"""

import hashlib
import os

SHARD_PATH = "path"
SHARD_BYTES = "bytes"
SHARD_SHA256 = "sha256"
_CHUNK_BYTES = 1 << 22
#: (real path, inode, size, mtime_ns) -> sha256 of the shards this process has hashed.
_hashed: dict[tuple[str, int, int, int], str] = {}


class ShardIntegrityError(ValueError):
    """A shard whose size or sha256 differs from what the conversion recorded.

    Example:
        >>> issubclass(ShardIntegrityError, ValueError)
        True
    """


def file_sha256(path: str) -> str:
    """Returns the hex sha256 of the file at ``path``, read in 4 MiB chunks.

    Example:
        >>> path = os.path.join(tmp_dir, "empty")
        >>> open(path, "wb").close()
        >>> file_sha256(path)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def shard_record(path: str, relative_path: str) -> dict[str, object]:
    """Returns the schema entry of the shard at ``path``: its relative path, size and sha256.

    Example:
        >>> path = os.path.join(tmp_dir, "shard")
        >>> open(path, "wb").close()
        >>> shard_record(path, "2024-01-13/shard")["bytes"]
        0
    """
    return {
        SHARD_PATH: relative_path,
        SHARD_BYTES: os.stat(path).st_size,
        SHARD_SHA256: file_sha256(path),
    }


def verify_shard(path: str, record: dict[str, object]) -> None:
    """Checks the shard at ``path`` against its ``shard_record``.

    The size is checked every time; the sha256 once per process for an unchanged file. Raises
    ``FileNotFoundError`` for a missing shard and ``ShardIntegrityError`` for a changed one.

    Example:
        >>> verify_shard(os.path.join(tmp_dir, "gone"), {"path": "gone", "bytes": 1, "sha256": ""})
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...gone: the shard listed in schema.json is missing; re-run ...
    """
    reconvert = (
        "re-run python -m dftopk_cascade.pipelines.convert into this folder: it re-does the day"
    )
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        missing = f"{path}: the shard listed in schema.json is missing; {reconvert}"
        raise FileNotFoundError(missing) from None
    if stat.st_size != record[SHARD_BYTES]:
        raise ShardIntegrityError(
            f"{path}: the shard has {stat.st_size} bytes, schema.json records "
            f"{record[SHARD_BYTES]} (truncated or changed since the conversion); {reconvert}"
        )
    key = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _hashed:
        _hashed[key] = file_sha256(path)
    if _hashed[key] != record[SHARD_SHA256]:
        raise ShardIntegrityError(
            f"{path}: the shard's sha256 differs from the one schema.json records (changed since "
            f"the conversion); {reconvert}"
        )


def shard_verifies(path: str, record: dict[str, object]) -> bool:
    """True when the shard at ``path`` matches its ``shard_record`` (``verify_shard`` passes).

    Example:
        >>> shard_verifies(os.path.join(tmp_dir, "gone"), {"path": "", "bytes": 1, "sha256": ""})
        False
    """
    try:
        verify_shard(path, record)
    except (FileNotFoundError, ShardIntegrityError):
        return False
    return True
