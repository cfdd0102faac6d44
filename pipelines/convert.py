"""RecFlow days -> sharded GZIP TFRecords: ``python -m dftopk_cascade.pipelines.convert``.

Output layout::

    TFREC_DIR/<day>/part-00000-of-00004.tfrecord.gz   one tf.train.Example per request
    TFREC_DIR/<day>/manifest.json                      the day's plan, then its counts
    TFREC_DIR/schema.json                              feature spec, vocab sizes, shard sizes
                                                       and sha256, counts: written last

Days are loaded and validated one after another in this process (``recflow_day``) while worker
processes encode and write the previous day's shards, so memory holds at most two days. The
workers die with the main process, even when it is killed (``worker_pool``).

Re-runs are idempotent. Every shard is written under a temporary name and renamed when complete;
``schema.json`` is removed when a run starts and written when it ends, so an interrupted run never
looks complete. A day's ``manifest.json`` records a fingerprint of its inputs (sizes and mtimes of
the day's files and ``id_cnt.pkl``, and the shard size): a re-run skips a complete day whose
fingerprint matches and whose shards verify (size and sha256, ``shard_integrity``) without reading
its inputs, rewrites only the missing shards of an unfinished one, and starts over a day whose
inputs changed or whose shards do not verify.

The output folder carries a ``.dftopk-data.json`` marker (``dftopk_cascade.pipelines.owned_folder``)
and is locked while a conversion writes it: a second conversion into it fails at once, naming the
first one's process, and a non-empty folder without the marker is refused untouched. A simulated
RecFlow folder that also holds days its simulator did not write is refused, naming the days.

Example:
    python -m dftopk_cascade.pipelines.convert --recflow /tmp/recflow_sim --data /tmp/recflow_tfrec
    --workers 2
"""

import argparse
import ctypes
import ctypes.util
import functools
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import numpy as np
from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.atomic_files import write_json
from dftopk_cascade.pipelines.owned_folder import (
    OwnedFolder,
    marker_name,
    owned_folder,
    read_marker,
)
from dftopk_cascade.pipelines.recflow_day import load_day
from dftopk_cascade.pipelines.request_features import request_features
from dftopk_cascade.pipelines.shard_integrity import SHARD_PATH, shard_record, shard_verifies
from tqdm import tqdm

MANIFEST_FILE = "manifest.json"
DEFAULT_REQUESTS_PER_SHARD = 8192
#: A shard's file name in a day folder, or its temporary name while it is written.
SHARD_PATTERN = re.compile(r"part-\d{5}-of-\d{5}\.tfrecord\.gz(\.tmp)?$")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_SOURCE_FOLDERS = (recflow.ALL_STAGE_DIR, recflow.SEQUENCE_DIR, recflow.REQUEST_DICT_DIR)
#: The writer named in the output's ``.dftopk-data.json`` marker.
WRITER = "dftopk_cascade.pipelines.convert"


@dataclass(frozen=True)
class ConversionSummary:
    """What a conversion produced.

    Example:
        >>> convert(recflow_root, os.path.join(tmp_dir, "all"), workers=1, progress=False).requests
        240
    """

    days: list[str]
    requests: int
    shards: int
    skipped_days: list[str]


def shard_names(day: str, count: int) -> list[str]:
    """Returns the shard paths of ``day`` relative to the output folder.

    Example:
        >>> shard_names("2024-01-13", 2)
        ['2024-01-13/part-00000-of-00002.tfrecord.gz',
         '2024-01-13/part-00001-of-00002.tfrecord.gz']
    """
    return [f"{day}/part-{index:05d}-of-{count:05d}{fmt.SHARD_SUFFIX}" for index in range(count)]


def day_shard_names(day: str, requests: int, requests_per_shard: int) -> list[str]:
    """Returns the shard paths that hold ``requests`` of ``day``: at least one, even when empty.

    Example:
        >>> day_shard_names("2024-01-13", 20_000, 8192)[-1]
        '2024-01-13/part-00002-of-00003.tfrecord.gz'
    """
    return shard_names(day, max(1, -(-requests // requests_per_shard)))


def shard_records(data_dir: str, shards: Sequence[str]) -> list[dict[str, object]]:
    """Returns the schema entries (path, size, sha256) of the written ``shards`` of ``data_dir``.

    Example:
        >>> records = shard_records(data_dir, ["2024-01-13/part-00000-of-00003.tfrecord.gz"])
        >>> records[0]["bytes"] == os.path.getsize(os.path.join(data_dir, records[0]["path"]))
        True
    """
    return [shard_record(os.path.join(data_dir, shard), shard) for shard in shards]


def remove_schema(data_dir: str) -> None:
    """Deletes ``data_dir/schema.json``, the mark of a complete folder, when a run starts.

    Example:
        >>> remove_schema(os.path.join(tmp_dir, "no_such_folder"))
    """
    schema_file = fmt.schema_path(data_dir)
    if os.path.exists(schema_file):
        os.remove(schema_file)


def write_schema(folder: OwnedFolder, schema: dict[str, Any]) -> None:
    """Records ``schema.json`` in the claimed folder's manifest, then writes it (last).

    Example:
        >>> path = os.path.join(tmp_dir, "schema_only")
        >>> with owned_folder(path, kind="data", writer=WRITER) as folder:
        ...     write_schema(folder, {"version": fmt.FORMAT_VERSION})
        >>> read_marker(path, "data")["manifest"], os.path.isfile(fmt.schema_path(path))
        (['schema.json'], True)
    """
    folder.record(fmt.SCHEMA_FILE)
    write_json(fmt.schema_path(folder.path), schema)


def _fingerprint(root: str, day: str, requests_per_shard: int) -> dict[str, Any]:
    files = [recflow.day_file(root, folder, day) for folder in _SOURCE_FOLDERS]
    files.append(os.path.join(root, recflow.OTHERS_DIR, recflow.ID_COUNT_FILE))
    stats = {path: [os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in files}
    return {"files": stats, "requests_per_shard": requests_per_shard, "version": fmt.FORMAT_VERSION}


def _read_manifest(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, json.JSONDecodeError):
        return None


def _remove_shards(day_dir: str, keep: Sequence[str] = ()) -> None:
    """Deletes shard and temporary shard files of ``day_dir`` whose names are not in ``keep``."""
    for name in os.listdir(day_dir):
        if SHARD_PATTERN.match(name) and name not in keep:
            os.remove(os.path.join(day_dir, name))


def _run_here(function: Callable[..., int], *args: Any) -> Future:
    """Runs ``function`` in this process; the executor-free twin of ``Executor.submit``."""
    future: Future = Future()
    future.set_result(function(*args))
    return future


def _count_written(bar: tqdm, done: Future) -> None:
    if done.exception() is None:
        bar.update(done.result())


@dataclass
class _ShardWriting:
    """Where and how this run writes shards: the claimed folder, shard size, workers, progress."""

    folder: OwnedFolder
    requests_per_shard: int
    submit: Callable[..., Future]
    bar: tqdm

    @property
    def data_dir(self) -> str:
        return self.folder.path


def _is_complete(data_dir: str, manifest: dict[str, Any] | None, fingerprint: dict) -> bool:
    """True when the day's manifest is complete for these inputs and every shard verifies."""
    return (
        manifest is not None
        and manifest.get("complete") is True
        and manifest.get("fingerprint") == fingerprint
        and isinstance(manifest.get("shard_records"), list)
        and len(manifest["shard_records"]) == len(manifest.get("shards", ()))
        and all(
            shard_verifies(os.path.join(data_dir, record[SHARD_PATH]), record)
            for record in manifest["shard_records"]
        )
    )


def _previous_manifest(
    data_dir: str, day: str, fingerprint: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    """(complete, manifest) of an earlier run's ``day``; a day to start over is cleared first."""
    manifest_path = os.path.join(data_dir, day, MANIFEST_FILE)
    previous = _read_manifest(manifest_path)
    if _is_complete(data_dir, previous, fingerprint):
        return True, previous
    if previous is not None and (
        previous.get("fingerprint") != fingerprint or previous.get("complete") is True
    ):
        # Other inputs, or complete with a shard that does not verify: start over.
        os.remove(manifest_path)
        _remove_shards(os.path.dirname(manifest_path))
        previous = None
    return False, previous


def _plan_day(
    writing: _ShardWriting,
    root: str,
    day: str,
    id_counts: dict[str, int],
    fingerprint: dict[str, Any],
    resumed: bool,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Loads ``day`` and writes its plan (an incomplete manifest); returns it and the features."""
    loaded = load_day(root, day)
    features, out_of_vocabulary = request_features(loaded, id_counts)
    requests = len(features[fmt.REQUEST_ID])
    shards = day_shard_names(day, requests, writing.requests_per_shard)
    day_dir = os.path.join(writing.data_dir, day)
    writing.folder.record(day)
    os.makedirs(day_dir, exist_ok=True)
    # A resumed plan is for these same inputs: its finished shards are kept.
    _remove_shards(day_dir, keep=[os.path.basename(s) for s in shards] if resumed else [])
    manifest = {
        "day": day,
        "fingerprint": fingerprint,
        "requests": requests,
        "shards": shards,
        "has_preference": fmt.PREFERENCE in features,
        "missing_rank_index": loaded.missing_rank_index,
        "out_of_vocabulary": out_of_vocabulary,
        "complete": False,
    }
    write_json(os.path.join(day_dir, MANIFEST_FILE), manifest)
    return manifest, features


def _submit_shards(
    writing: _ShardWriting, shards: Sequence[str], features: dict[str, np.ndarray]
) -> list[Future]:
    """Submits the shards not yet on disk; counts those that are as done."""
    writing.bar.total = (writing.bar.total or 0) + len(features[fmt.REQUEST_ID])
    futures = []
    for index, shard in enumerate(shards):
        rows = slice(index * writing.requests_per_shard, (index + 1) * writing.requests_per_shard)
        path = os.path.join(writing.data_dir, shard)
        if os.path.isfile(path):
            writing.bar.update(len(features[fmt.REQUEST_ID][rows]))
            continue
        part = {name: np.ascontiguousarray(values[rows]) for name, values in features.items()}
        future = writing.submit(fmt.write_shard, path, part)
        future.add_done_callback(functools.partial(_count_written, writing.bar))
        futures.append(future)
    return futures


def _finish_day(data_dir: str, manifest: dict[str, Any], futures: list[Future]) -> None:
    """Waits for the day's shards, records their sizes and digests, marks the day complete."""
    for future in futures:
        future.result()
    manifest["shard_records"] = shard_records(data_dir, manifest["shards"])
    manifest["complete"] = True
    write_json(os.path.join(data_dir, manifest["day"], MANIFEST_FILE), manifest)


def _write_days(
    writing: _ShardWriting, root: str, days: Sequence[str], id_counts: dict[str, int]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Converts ``days``, loading one while the workers write the previous one's shards.

    Returns the complete manifests by day and the days skipped as already complete.
    """
    manifests: dict[str, dict[str, Any]] = {}
    skipped = []
    pending: tuple[dict[str, Any], list[Future]] | None = None
    for day in days:
        fingerprint = _fingerprint(root, day, writing.requests_per_shard)
        complete, previous = _previous_manifest(writing.data_dir, day, fingerprint)
        if complete:
            manifests[day] = previous
            skipped.append(day)
            continue
        manifest, features = _plan_day(
            writing, root, day, id_counts, fingerprint, resumed=previous is not None
        )
        futures = _submit_shards(writing, manifest["shards"], features)
        del features
        if pending is not None:
            _finish_day(writing.data_dir, *pending)
        pending = manifest, futures
        manifests[day] = manifest
    if pending is not None:
        _finish_day(writing.data_dir, *pending)
    return manifests, skipped


def folder_schema(
    source: str, id_counts: dict[str, int], days: Sequence[str], manifests: dict[str, dict]
) -> dict[str, Any]:
    """The ``schema.json`` of the converted ``days``
    (``dftopk_cascade.pipelines.data_schema.DataSchema``).

    ``source`` is what was converted; ``manifests`` holds each day's ``requests``,
    ``shard_records``, ``missing_rank_index``, ``out_of_vocabulary`` (field -> count) and
    ``has_preference``, as a day's ``manifest.json`` does.

    Example:
        >>> day = {"requests": 3, "shard_records": [{"path": "2024-01-13/part-00000-of-00001"
        ...        ".tfrecord.gz", "bytes": 9, "sha256": "0" * 64}], "missing_rank_index": 0,
        ...        "out_of_vocabulary": {"user_id": 1}, "has_preference": False}
        >>> schema = folder_schema(recflow_root, recflow.read_id_counts(recflow_root),
        ...                        ["2024-01-13"], {"2024-01-13": day})
        >>> schema["counts"]
        {'requests': 3, 'shards': 1, 'missing_rank_index': 0, 'out_of_vocabulary': {'user_id': 1}}
    """
    out_of_vocabulary: dict[str, int] = {}
    for manifest in manifests.values():
        for field, count in manifest["out_of_vocabulary"].items():
            out_of_vocabulary[field] = out_of_vocabulary.get(field, 0) + count
    has_preference = all(manifest["has_preference"] for manifest in manifests.values())
    return {
        "format": fmt.FORMAT_NAME,
        "version": fmt.FORMAT_VERSION,
        "source": os.path.abspath(source),
        "compression": fmt.COMPRESSION,
        "features": fmt.feature_spec(has_preference),
        "has_preference": has_preference,
        "columns": {group: list(fields) for group, fields in fmt.COLUMNS.items()},
        "stage_groups": list(recflow.TRAINING_STAGES),
        "group_size": fmt.GROUP_SIZE,
        "vocab_sizes": fmt.vocab_sizes(id_counts),
        "days": {
            day: {
                "requests": manifests[day]["requests"],
                "shards": manifests[day]["shard_records"],
                "missing_rank_index": manifests[day]["missing_rank_index"],
            }
            for day in days
        },
        "counts": {
            "requests": sum(manifest["requests"] for manifest in manifests.values()),
            "shards": sum(len(manifest["shard_records"]) for manifest in manifests.values()),
            "missing_rank_index": sum(m["missing_rank_index"] for m in manifests.values()),
            "out_of_vocabulary": out_of_vocabulary,
        },
    }


def _refuse_mixed_recflow(root: str, days: Sequence[str]) -> None:
    """Refuses a simulated RecFlow folder holding days its simulator did not write."""
    marker = read_marker(root, "recflow")
    if marker is None:
        return
    listed = set(marker["manifest"])
    unlisted = [
        day
        for day in sorted(set(days) | set(recflow.list_days(root)))
        if any(
            os.path.relpath(recflow.day_file(root, folder, day), root) not in listed
            for folder in _SOURCE_FOLDERS
        )
    ]
    if unlisted:
        raise recflow.RecFlowError(
            f"{root}: a simulated RecFlow folder (it has {marker_name('recflow')}) that also "
            f"holds days its simulator did not write: {', '.join(unlisted)}; convert simulated "
            "and real days from separate folders"
        )


def _checked_days(root: str, days: Sequence[str] | None) -> list[str]:
    """The days to convert (default: all), after checking their files exist and are not mixed."""
    days = list(days) if days else recflow.list_days(root)
    if not days:
        raise recflow.RecFlowError(f"{root}/{recflow.ALL_STAGE_DIR}: no days to convert")
    recflow.require_day_files(root, _SOURCE_FOLDERS, days)
    _refuse_mixed_recflow(root, days)
    return days


def convert(
    recflow_root: str,
    data_dir: str,
    days: Sequence[str] | None = None,
    workers: int | None = None,
    requests_per_shard: int = DEFAULT_REQUESTS_PER_SHARD,
    progress: bool = True,
) -> ConversionSummary:
    """Converts RecFlow days to sharded GZIP TFRecords and writes ``schema.json`` last.

    Args:
        recflow_root: a RecFlow root (published or simulated).
        data_dir: the converted TFRecord folder to write: new, empty, or one this command wrote
            (its ``.dftopk-data.json`` marker), whose conversion is then resumed. It is locked
            while the conversion runs.
        days: days to convert, ``YYYY-MM-DD`` (default: every day in ``all_stage/``).
        workers: processes that encode and write shards (default: CPU count); 1 writes in this
            process.
        requests_per_shard: requests per TFRecord file.
        progress: show a tqdm progress bar.

    Raises ``recflow.RecFlowError`` naming the file and the problem for bad input, and
    ``owned_folder.FolderError`` for a ``data_dir`` that another process is writing or that
    holds files this command did not write.

    Example:
        >>> summary = convert(recflow_root, os.path.join(tmp_dir, "one_day"), days=["2024-01-13"],
        ...                   workers=1, progress=False)
        >>> summary.requests, summary.shards
        (120, 1)
    """
    if requests_per_shard < 1:
        raise ValueError(f"requests_per_shard must be >= 1, got {requests_per_shard}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1 (1 writes in this process), got {workers}")
    workers = workers or os.cpu_count() or 1
    with owned_folder(data_dir, kind="data", writer=WRITER) as folder:
        remove_schema(data_dir)  # the completion marker goes until this run completes
        days = _checked_days(recflow_root, days)
        id_counts = recflow.read_id_counts(recflow_root)
        executor: Executor | None = worker_pool(workers) if workers > 1 else None
        bar = tqdm(total=0, unit="req", desc="convert", disable=not progress)
        writing = _ShardWriting(
            folder, requests_per_shard, executor.submit if executor else _run_here, bar
        )
        try:
            manifests, skipped = _write_days(writing, recflow_root, days, id_counts)
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
        schema = folder_schema(recflow_root, id_counts, days, manifests)
        write_schema(folder, schema)
    return ConversionSummary(
        days=days,
        requests=schema["counts"]["requests"],
        shards=schema["counts"]["shards"],
        skipped_days=skipped,
    )


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes that die with this one, even when it is killed (SIGKILL).

    Example:
        >>> with worker_pool(1) as pool:
        ...     pool.submit(abs, -3).result()
        3
    """
    return ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def die_with_parent(parent_pid: int) -> None:
    """Makes the calling process die when its parent does (Linux ``PR_SET_PDEATHSIG``).

    Elsewhere (no ``prctl``) it does nothing. If the parent is already gone, it exits at once.

    Example:
        >>> die_with_parent(os.getppid())
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m dftopk_cascade.pipelines.convert --help``.

    Example:
        >>> main(["--recflow", recflow_root, "--data", os.path.join(tmp_dir, "cli"), "--workers",
        ...       "1", "--quiet"])
        converted 240 requests of 2 days into 2 shards in ... (0 days already done)
    """
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.pipelines.convert",
        description="Convert RecFlow days (published or simulated) to sharded GZIP TFRecords, one "
        "tf.train.Example per request, with schema.json written last. Re-running resumes: "
        "complete shards are kept, partial ones rewritten.",
    )
    parser.add_argument("--recflow", required=True, help="RecFlow root (all_stage/, ...)")
    add_renamed_flag(
        parser,
        "--data",
        "--out",
        dest="data_dir",
        required=True,
        help="the TFRecord folder to write: the --data of dftopk_cascade.models.training.train and "
        "dftopk_cascade.models.training.evaluate",
    )
    parser.add_argument(
        "--days",
        nargs="+",
        default=None,
        help="days to convert, YYYY-MM-DD (default: all days in all_stage/)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes writing shards (default: CPU count; 1 = no subprocess)",
    )
    parser.add_argument(
        "--requests-per-shard",
        type=int,
        default=DEFAULT_REQUESTS_PER_SHARD,
        help=f"requests per TFRecord file (default {DEFAULT_REQUESTS_PER_SHARD})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = add_entry_flags(parser).parse_args(argv)
    summary = convert(
        args.recflow,
        args.data_dir,
        args.days,
        args.workers,
        args.requests_per_shard,
        progress=not args.quiet,
    )
    print(
        f"converted {summary.requests} requests of {len(summary.days)} days into "
        f"{summary.shards} shards in {args.data_dir} "
        f"({len(summary.skipped_days)} days already done)"
    )


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.pipelines.convert")
