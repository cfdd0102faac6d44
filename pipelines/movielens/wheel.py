"""The pinned ``recbole`` wheel that carries MovieLens-100K: fetch, verify, read its three files.

The ``recbole==1.2.1`` wheel on the Python registry holds
``recbole/dataset_example/ml-100k/ml-100k.{inter,user,item}`` (RecBole's tab-separated "atomic
files" with typed headers). This module downloads that wheel with ``pip download --no-deps`` (the
only download the MovieLens pipeline ever makes), checks its sha256 against ``WHEEL_SHA256`` and
reads the three files out of the zip. It never installs recbole or any of its dependencies.

Example:
    >>> from tests.pipelines.movielens_fixture import fixture_wheel
    >>> wheel, digest = fixture_wheel(tmp_dir)
    >>> sorted(read_members(verified_wheel(wheel, digest)))
    ['inter', 'item', 'user']
"""

import argparse
import os
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Sequence

from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines.movielens.errors import MovieLensError
from dftopk_cascade.pipelines.shard_integrity import file_sha256

RECBOLE_REQUIREMENT = "recbole==1.2.1"
WHEEL_NAME = "recbole-1.2.1-py3-none-any.whl"
#: sha256 of ``WHEEL_NAME`` as the Python registry serves it.
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBER_FOLDER = "recbole/dataset_example/ml-100k"
#: The atomic files read from the wheel: table name -> path inside the zip.
MEMBERS = {name: f"{MEMBER_FOLDER}/ml-100k.{name}" for name in ("inter", "user", "item")}


def verified_wheel(path: str, expected_sha256: str = WHEEL_SHA256) -> str:
    """Returns ``path`` once its sha256 is ``expected_sha256``; raises ``MovieLensError`` if not.

    Example:
        >>> path = os.path.join(tmp_dir, WHEEL_NAME)
        >>> _ = open(path, "wb").write(b"not the wheel")
        >>> verified_wheel(path)
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.movielens.errors.MovieLensError:
        .../recbole-1.2.1-py3-none-any.whl: sha256 ...
    """
    if not os.path.isfile(path):
        raise MovieLensError(
            f"{path}: no such file; give the {RECBOLE_REQUIREMENT} wheel with --wheel, or leave "
            "--wheel out to download it with pip"
        )
    actual = file_sha256(path)
    if actual != expected_sha256.lower():
        raise MovieLensError(
            f"{path}: sha256 {actual} is not the expected {expected_sha256}; the file is damaged "
            f"or another build: delete it and download {WHEEL_NAME} again "
            f"(pip download --no-deps --only-binary=:all: {RECBOLE_REQUIREMENT})"
        )
    return path


def download_wheel(download_dir: str, expected_sha256: str = WHEEL_SHA256) -> str:
    """Returns the verified wheel in ``download_dir``, downloading it with pip when absent.

    A wheel already there with the expected sha256 is reused without any download; one with
    another checksum is an error (``verified_wheel``), never silently replaced.
    ``pip download --no-deps --only-binary=:all:`` fetches the one file; offline, or when pip
    fails, ``MovieLensError`` gives pip's last line and the ``--wheel`` way round it.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> wheel, digest = fixture_wheel(tmp_dir)  # written as WHEEL_NAME: no download
        >>> download_wheel(tmp_dir, digest) == wheel
        True
    """
    path = os.path.join(download_dir, WHEEL_NAME)
    if not os.path.isfile(path):
        os.makedirs(download_dir, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", "-q", RECBOLE_REQUIREMENT, "-d", download_dir]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not os.path.isfile(path):
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"pip exited with {done.returncode}"
            raise MovieLensError(
                f"{download_dir}: pip could not download {RECBOLE_REQUIREMENT} ({reason}); "
                f"offline, copy {WHEEL_NAME} here from a machine with network access, or pass "
                "a copy with --wheel PATH"
            )
    return verified_wheel(path, expected_sha256)


def read_members(path: str) -> dict[str, str]:
    """Returns the text of each of ``MEMBERS`` (name -> text) read from the zip at ``path``.

    Raises ``MovieLensError`` for a file that is not a readable zip, a member that is missing,
    fails its CRC or is not UTF-8.

    Example:
        >>> path = os.path.join(tmp_dir, "broken.whl")
        >>> _ = open(path, "wb").write(b"PK\\x03\\x04 truncated")
        >>> read_members(path)
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.movielens.errors.MovieLensError: .../broken.whl: not a readable zip
        ...
    """
    again = f"delete it and download {WHEEL_NAME} again, or pass a good copy with --wheel"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [member for member in MEMBERS.values() if member not in names]
            if missing:
                raise MovieLensError(
                    f"{path}: no {', '.join(missing)} in the zip; this is not the "
                    f"{RECBOLE_REQUIREMENT} wheel: {again}"
                )
            return {name: archive.read(member).decode("utf-8") for name, member in MEMBERS.items()}
    except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as error:
        raise MovieLensError(f"{path}: not a readable zip ({error}); {again}") from error


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m dftopk_cascade.pipelines.movielens.wheel --help``; prints the
    wheel's path.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> wheel, digest = fixture_wheel(tmp_dir)  # already there: no download
        >>> main(["--download-dir", tmp_dir, "--expected-sha256", digest])
        /.../recbole-1.2.1-py3-none-any.whl
    """
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.pipelines.movielens.wheel",
        description=f"Download {WHEEL_NAME} (MovieLens-100K inside) with pip --no-deps, or "
        "reuse the copy already in --download-dir, check its sha256 and print its path. "
        "Nothing is installed.",
    )
    parser.add_argument("--download-dir", required=True, help="where the wheel is kept")
    parser.add_argument(
        "--expected-sha256",
        default=WHEEL_SHA256,
        help="the wheel's sha256 (default: the pinned recbole 1.2.1 wheel's)",
    )
    args = add_entry_flags(parser).parse_args(argv)
    print(os.path.abspath(download_wheel(args.download_dir, args.expected_sha256)))


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.pipelines.movielens.wheel")
