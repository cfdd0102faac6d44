"""MovieLens-100K -> the project's TFRecord folder: ``python -m pipelines.movielens.convert``.

Fetches (or takes with ``--wheel``) the pinned ``recbole`` wheel, checks its sha256, reads
``ml-100k.{inter,user,item}`` out of it (``wheel``, ``tables``), cuts the ratings into requests
(``timelines``), splits them into time windows (``time_windows``) and writes one folder per
window in the layout of ``python -m pipelines.convert``, so ``models.training.train``,
``models.training.evaluate``, ``serving.export`` and the server read it unchanged::

    DATA/<window>/part-00000-of-00001.tfrecord.gz   one tf.train.Example per request
    DATA/movielens.json                             splits, windows, settings, vocabularies, titles
    DATA/schema.json                                the converted folder's schema: written last

Every file is written under a temporary name and renamed when complete; ``schema.json`` is
removed first and written last, so an interrupted run never looks complete. A re-run rewrites
the folder's windows and deletes the shards of earlier windows that the new split no longer has
(the windows its ``movielens.json`` lists), nothing else.

Example:
    python -m pipelines.movielens.convert --data /tmp/movielens_tfrec
    python -m pipelines.movielens.convert --wheel recbole-1.2.1-py3-none-any.whl --data /tmp/ml
"""

import argparse
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from command_line.deprecated_flags import add_renamed_flag
from command_line.entry import add_entry_flags, run_command
from pipelines import example_format as fmt
from pipelines import recflow
from pipelines.atomic_files import write_json
from pipelines.movielens.id_tables import id_tables
from pipelines.movielens.stored_features import example_features
from pipelines.movielens.tables import parse_tables
from pipelines.movielens.time_windows import time_windows
from pipelines.movielens.timelines import POSITIVES, user_timelines
from pipelines.movielens.wheel import (
    WHEEL_NAME,
    WHEEL_SHA256,
    download_wheel,
    read_members,
    verified_wheel,
)

CONVERSION_FILE = "movielens.json"
CONVERSION_FORMAT = "dftopk-movielens-conversion"
CONVERSION_VERSION = 1
DEFAULT_WINDOWS = 10
DEFAULT_REQUESTS_PER_SHARD = 8192
DEFAULT_DOWNLOAD_DIR = os.path.join(os.path.expanduser("~"), ".cache", "dftopk-tf", "movielens")
_SHARD_PATTERN = re.compile(r"part-\d{5}-of-\d{5}\.tfrecord\.gz(\.tmp)?$")


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
        data_dir: the folder to write (created).
        windows: number of time windows (at least 3: training, validation, test).
        stride: ratings between two requests of a user (``timelines.user_timelines``).
        seed: seed of the negatives' draw.
        expected_sha256: the wheel's checksum (default: the pinned wheel's).
        requests_per_shard: requests per TFRecord file.
        progress: show tqdm counters (users cut into requests, requests written).

    Raises ``MovieLensError`` (a ``ValueError``) naming the file and what to do.

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

    os.makedirs(data_dir, exist_ok=True)
    schema_file = fmt.schema_path(data_dir)
    if os.path.exists(schema_file):  # the completion marker goes until this run completes
        os.remove(schema_file)
    _remove_earlier_windows(data_dir, keep=split.names)
    days: dict[str, dict] = {}
    bar = tqdm(total=requests.size, unit="req", desc="convert", disable=not progress)
    with bar:
        for index, name in enumerate(split.names):
            features = example_features(requests.take(split.window_of_request == index), ids)
            count = len(features[fmt.REQUEST_ID])
            shards = -(-count // requests_per_shard)
            names = [
                f"{name}/part-{shard:05d}-of-{shards:05d}{fmt.SHARD_SUFFIX}"
                for shard in range(shards)
            ]
            os.makedirs(os.path.join(data_dir, name), exist_ok=True)
            for shard, shard_name in enumerate(names):
                rows = slice(shard * requests_per_shard, (shard + 1) * requests_per_shard)
                part = {key: np.ascontiguousarray(value[rows]) for key, value in features.items()}
                bar.update(fmt.write_shard(os.path.join(data_dir, shard_name), part))
            days[name] = {"requests": count, "shards": names, "missing_rank_index": 0}

    windows_info = {
        name: {
            "first_second": int(split.starts[index]),
            "requests": days[name]["requests"],
        }
        for index, name in enumerate(split.names)
    }
    write_json(
        os.path.join(data_dir, CONVERSION_FILE),
        {
            "format": CONVERSION_FORMAT,
            "version": CONVERSION_VERSION,
            "wheel": WHEEL_NAME,
            "wheel_sha256": expected_sha256,
            "settings": {"windows": windows, "stride": stride, "seed": seed},
            "splits": split.splits(),
            "windows": windows_info,
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
    write_json(schema_file, _schema(wheel, ids.id_counts, days))
    return MovieLensSummary(
        requests=requests.size,
        splits=split.splits(),
        requests_per_window={name: info["requests"] for name, info in days.items()},
    )


def _remove_earlier_windows(data_dir: str, keep: Sequence[str]) -> None:
    """Deletes the shards of the windows an earlier conversion here wrote and ``keep`` lacks."""
    try:
        with open(os.path.join(data_dir, CONVERSION_FILE)) as file:
            earlier = list(json.load(file)["windows"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    for name in set(earlier) - set(keep):
        folder = os.path.join(data_dir, name)
        if os.path.basename(folder) != name or not os.path.isdir(folder):
            continue  # not a plain window folder of this conversion
        for entry in os.listdir(folder):
            if _SHARD_PATTERN.match(entry):
                os.remove(os.path.join(folder, entry))
        if not os.listdir(folder):
            os.rmdir(folder)


def _schema(wheel: str, id_counts: dict[str, int], days: dict[str, dict]) -> dict:
    """``schema.json`` with the keys ``pipelines.convert`` writes."""
    return {
        "format": fmt.FORMAT_NAME,
        "version": fmt.FORMAT_VERSION,
        "source": os.path.abspath(wheel),
        "compression": fmt.COMPRESSION,
        "features": fmt.feature_spec(False),
        "has_preference": False,
        "columns": {group: list(fields) for group, fields in fmt.COLUMNS.items()},
        "stage_groups": list(recflow.TRAINING_STAGES),
        "group_size": fmt.GROUP_SIZE,
        "vocab_sizes": fmt.vocab_sizes(id_counts),
        "days": days,
        "counts": {
            "requests": sum(day["requests"] for day in days.values()),
            "shards": sum(len(day["shards"]) for day in days.values()),
            "missing_rank_index": 0,
            "out_of_vocabulary": {field: 0 for field in recflow.ID_FIELDS},
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m pipelines.movielens.convert --help``.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> wheel, digest = fixture_wheel(tmp_dir)
        >>> main(["--wheel", wheel, "--expected-sha256", digest, "--windows", "3",
        ...       "--data", os.path.join(tmp_dir, "cli"), "--quiet"])
        converted 25 requests into .../cli: train 1997-09-21, validation 1997-09-24, test 1997-10-04
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.movielens.convert",
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
        help="the TFRecord folder to write: the --data of models.training.train",
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
    run_command(main, "python -m pipelines.movielens.convert")
