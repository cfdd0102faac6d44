"""MovieLens-100K -> the project's TFRecord folder: ``python -m
dftopk_cascade.pipelines.movielens.convert``.

Fetches (or takes with ``--wheel``) the pinned ``recbole`` wheel, checks its sha256, reads
``ml-100k.{inter,user,item}`` out of it (``wheel``, ``tables``), cuts the ratings into requests
(``timelines``), splits them into time windows (``time_windows``) and writes one folder per
window in the layout of ``python -m dftopk_cascade.pipelines.convert``, so
``dftopk_cascade.models.training.train``, ``dftopk_cascade.models.training.evaluate``,
``dftopk_cascade.serving.export`` and the server read it unchanged::

    DATA/<window>/part-00000-of-00001.tfrecord.gz   one tf.train.Example per request
    DATA/movielens.json                             splits, windows, settings, vocabularies, titles
    DATA/schema.json                                the converted folder's schema: written last

The folder is written as ``dftopk_cascade.pipelines.convert`` writes one: ``schema.json`` (format
version 2, with each shard's size and sha256, built by the same functions) is removed first and
written last, so an interrupted run never looks complete; every file is written under a temporary
name and renamed when complete, and a full disk stops the run with one line naming the file. The
folder carries a ``.dftopk-data.json`` marker (``dftopk_cascade.pipelines.owned_folder``) listing
the files written, and is locked while a conversion writes it: a non-empty folder without the marker
is refused untouched. A re-run rewrites the windows and deletes the shards that the marker lists and
the new split lacks (an earlier run's windows or shard counts), nothing else.

Example:
    python -m dftopk_cascade.pipelines.movielens.convert --data /tmp/movielens_tfrec
    python -m dftopk_cascade.pipelines.movielens.convert --wheel recbole-1.2.1-py3-none-any.whl
    --data /tmp/ml
"""

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.atomic_files import TEMPORARY_SUFFIX, write_json
from dftopk_cascade.pipelines.convert import (
    SHARD_PATTERN,
    day_shard_names,
    folder_schema,
    remove_schema,
    shard_records,
    write_schema,
)
from dftopk_cascade.pipelines.movielens.id_tables import IdTables, id_tables
from dftopk_cascade.pipelines.movielens.stored_features import example_features
from dftopk_cascade.pipelines.movielens.tables import parse_tables
from dftopk_cascade.pipelines.movielens.time_windows import TimeWindows, time_windows
from dftopk_cascade.pipelines.movielens.timelines import POSITIVES, Requests, user_timelines
from dftopk_cascade.pipelines.movielens.wheel import (
    WHEEL_NAME,
    WHEEL_SHA256,
    download_wheel,
    read_members,
    verified_wheel,
)
from dftopk_cascade.pipelines.owned_folder import OwnedFolder, owned_folder
from tqdm import tqdm

CONVERSION_FILE = "movielens.json"
CONVERSION_FORMAT = "dftopk-movielens-conversion"
CONVERSION_VERSION = 1
DEFAULT_WINDOWS = 10
DEFAULT_REQUESTS_PER_SHARD = 8192
DEFAULT_DOWNLOAD_DIR = os.path.join(os.path.expanduser("~"), ".cache", "dftopk-tf", "movielens")
#: The writer named in the output's ``.dftopk-data.json`` marker.
WRITER = "dftopk_cascade.pipelines.movielens.convert"


@dataclass(frozen=True)
class MovieLensSummary:
    """What a MovieLens conversion wrote.

    Attributes:
        requests: requests written, all windows together.
        splits: window names by role (``train``, ``validation``, ``test``).
        requests_per_window: window name -> requests.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> wheel, digest = fixture_wheel(tmp_dir)
        >>> summary = convert_movielens(wheel, os.path.join(tmp_dir, "tfrec"), windows=3,
        ...                             expected_sha256=digest, progress=False)
        >>> summary.splits["test"], sum(summary.requests_per_window.values()) == summary.requests
        (['1997-10-04'], True)
    """

    requests: int
    splits: dict[str, list[str]]
    requests_per_window: dict[str, int]


def convert_movielens(
    wheel: str,
    data_dir: str,
    windows: int = DEFAULT_WINDOWS,
    stride: int = POSITIVES,
    seed: int = 42,
    expected_sha256: str = WHEEL_SHA256,
    requests_per_shard: int = DEFAULT_REQUESTS_PER_SHARD,
    progress: bool = True,
) -> MovieLensSummary:
    """Converts the MovieLens files of ``wheel`` into the TFRecord folder ``data_dir``.

    Args:
        wheel: the ``recbole`` wheel (``wheel.download_wheel`` fetches it).
        data_dir: the folder to write: new, empty, or one this command wrote (its
            ``.dftopk-data.json`` marker). It is locked while the conversion runs.
        windows: number of time windows (at least 3: training, validation, test).
        stride: ratings between two requests of a user (``timelines.user_timelines``).
        seed: seed of the negatives' draw.
        expected_sha256: the wheel's checksum (default: the pinned wheel's).
        requests_per_shard: requests per TFRecord file.
        progress: show tqdm counters (users cut into requests, requests written).

    Raises ``MovieLensError`` (a ``ValueError``) naming the file and what to do,
    ``owned_folder.FolderError`` for a ``data_dir`` that another process is writing or that holds
    files this command did not write, and ``full_disk.DiskFullError`` when the disk fills up.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> wheel, digest = fixture_wheel(tmp_dir)
        >>> summary = convert_movielens(wheel, os.path.join(tmp_dir, "tfrec"), windows=3,
        ...                             expected_sha256=digest, progress=False)
        >>> summary.requests, summary.splits["validation"]
        (25, ['1997-09-24'])
    """
    if requests_per_shard < 1:
        raise ValueError(f"--requests-per-shard must be >= 1, got {requests_per_shard}")
    tables = parse_tables(read_members(verified_wheel(wheel, expected_sha256)))
    ids = id_tables(tables)
    requests = user_timelines(
        tables.ratings, tables.movies["item_id"], seed, stride, progress=progress
    )
    split = time_windows(requests.moment, windows)

    shards = {
        name: day_shard_names(name, int(count), requests_per_shard)
        for name, count in zip(
            split.names,
            np.bincount(split.window_of_request, minlength=len(split.names)),
            strict=True,
        )
    }
    with owned_folder(data_dir, kind="data", writer=WRITER) as folder:
        remove_schema(data_dir)  # the completion marker goes until this run completes
        _remove_stale_shards(folder, keep=[name for names in shards.values() for name in names])
        written = _write_windows(folder, requests, split, ids, shards, requests_per_shard, progress)
        folder.record(CONVERSION_FILE)
        write_json(
            os.path.join(data_dir, CONVERSION_FILE),
            {
                "format": CONVERSION_FORMAT,
                "version": CONVERSION_VERSION,
                "wheel": WHEEL_NAME,
                "wheel_sha256": expected_sha256,
                "settings": {"windows": windows, "stride": stride, "seed": seed},
                "splits": split.splits(),
                "windows": {
                    name: {"first_second": int(start), "requests": written[name]["requests"]}
                    for name, start in zip(split.names, split.starts, strict=True)
                },
                "vocabularies": ids.vocabularies,
                "movie_titles": dict(
                    zip(
                        tables.movies["item_id"].astype(str),
                        tables.movies["movie_title"],
                        strict=True,
                    )
                ),
            },
        )
        write_schema(folder, folder_schema(wheel, ids.id_counts, split.names, written))
    return MovieLensSummary(
        requests=requests.size,
        splits=split.splits(),
        requests_per_window={name: window["requests"] for name, window in written.items()},
    )


def _remove_stale_shards(folder: OwnedFolder, keep: Sequence[str]) -> None:
    """Deletes the shards an earlier run here wrote (its manifest lists them) that ``keep`` lacks.

    A listed shard's temporary file (left by a killed run) goes with it, and a window folder
    left empty is removed; nothing the manifest does not list is touched.
    """
    stale = [
        relative
        for relative in folder.marker["manifest"]
        if relative not in keep and SHARD_PATTERN.match(os.path.basename(relative))
    ]
    for relative in stale:
        path = os.path.join(folder.path, relative)
        for written in (path, path + TEMPORARY_SUFFIX):
            if os.path.isfile(written):
                os.remove(written)
        window = os.path.dirname(path)
        if window != folder.path and os.path.isdir(window) and not os.listdir(window):
            os.rmdir(window)
    folder.forget(*stale)


def _write_windows(
    folder: OwnedFolder,
    requests: Requests,
    split: TimeWindows,
    ids: IdTables,
    shards: dict[str, list[str]],
    requests_per_shard: int,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Writes every window's shards; returns, by window, what ``convert.folder_schema`` takes."""
    written = {}
    with tqdm(total=requests.size, unit="req", desc="convert", disable=not progress) as bar:
        for index, name in enumerate(split.names):
            features = example_features(requests.take(split.window_of_request == index), ids)
            os.makedirs(os.path.join(folder.path, name), exist_ok=True)
            folder.record(*shards[name])
            for shard, shard_name in enumerate(shards[name]):
                rows = slice(shard * requests_per_shard, (shard + 1) * requests_per_shard)
                part = {key: np.ascontiguousarray(value[rows]) for key, value in features.items()}
                bar.update(fmt.write_shard(os.path.join(folder.path, shard_name), part))
            written[name] = {
                "requests": len(features[fmt.REQUEST_ID]),
                "shard_records": shard_records(folder.path, shards[name]),
                "missing_rank_index": 0,  # every candidate of a request has its rank
                "out_of_vocabulary": {field: 0 for field in recflow.ID_FIELDS},
                "has_preference": False,
            }
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m dftopk_cascade.pipelines.movielens.convert --help``.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> wheel, digest = fixture_wheel(tmp_dir)
        >>> main(["--wheel", wheel, "--expected-sha256", digest, "--windows", "3",
        ...       "--data", os.path.join(tmp_dir, "cli"), "--quiet"])
        converted 25 requests into .../cli: train 1997-09-21, validation 1997-09-24, test 1997-10-04
    """
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.pipelines.movielens.convert",
        description="Convert MovieLens-100K (read from the pinned recbole wheel, which is "
        "downloaded with pip unless --wheel gives a copy; never installed) into the project's "
        "TFRecord folder: one folder per time window, the last the test, the one before it "
        "the validation. Mapping: docs/pipelines.md.",
    )
    add_renamed_flag(
        parser,
        "--data",
        "--out",
        dest="data_dir",
        required=True,
        help="the TFRecord folder to write: the --data of dftopk_cascade.models.training.train",
    )
    parser.add_argument(
        "--wheel",
        default=None,
        help=f"a local copy of {WHEEL_NAME} (default: download it into --download-dir)",
    )
    parser.add_argument(
        "--download-dir",
        default=DEFAULT_DOWNLOAD_DIR,
        help="where pip downloads the wheel, reused when already there with the right "
        f"checksum (default {DEFAULT_DOWNLOAD_DIR})",
    )
    parser.add_argument(
        "--expected-sha256",
        default=WHEEL_SHA256,
        help="the wheel's sha256 (default: the pinned recbole 1.2.1 wheel's)",
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=DEFAULT_WINDOWS,
        help=f"time windows of about equal request counts (default {DEFAULT_WINDOWS})",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=POSITIVES,
        help=f"ratings between two requests of a user (default {POSITIVES}: each rating is "
        "a positive once)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the negatives (default 42)")
    parser.add_argument(
        "--requests-per-shard",
        type=int,
        default=DEFAULT_REQUESTS_PER_SHARD,
        help=f"requests per TFRecord file (default {DEFAULT_REQUESTS_PER_SHARD})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress counters")
    args = add_entry_flags(parser).parse_args(argv)
    wheel = args.wheel or download_wheel(args.download_dir, args.expected_sha256)
    summary = convert_movielens(
        wheel,
        args.data_dir,
        args.windows,
        args.stride,
        args.seed,
        args.expected_sha256,
        args.requests_per_shard,
        progress=not args.quiet,
    )
    roles = ", ".join(f"{role} {' '.join(names)}" for role, names in summary.splits.items())
    print(f"converted {summary.requests} requests into {args.data_dir}: {roles}")


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.pipelines.movielens.convert")
