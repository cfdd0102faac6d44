"""RecFlow days -> sharded GZIP TFRecords: ``python -m pipelines.convert``.

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

Example:
    python -m pipelines.convert --recflow /tmp/recflow_sim --data /tmp/recflow_tfrec --workers 2
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
from tqdm import tqdm

from command_line.entry import add_entry_flags, run_command
from pipelines import example_format as fmt
from pipelines import recflow
from pipelines.atomic_files import write_json
from pipelines.recflow_day import load_day
from pipelines.request_features import request_features
from pipelines.shard_integrity import SHARD_PATH, shard_record, shard_verifies

MANIFEST_FILE = "manifest.json"
DEFAULT_REQUESTS_PER_SHARD = 8192
_SHARD_PATTERN = re.compile(r"part-\d{5}-of-\d{5}\.tfrecord\.gz(\.tmp)?$")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_SOURCE_FOLDERS = (recflow.ALL_STAGE_DIR, recflow.SEQUENCE_DIR, recflow.REQUEST_DICT_DIR)


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
        if _SHARD_PATTERN.match(name) and name not in keep:
            os.remove(os.path.join(day_dir, name))


def _run_here(function: Callable[..., int], *args: Any) -> Future:
    """Runs ``function`` in this process; the executor-free twin of ``Executor.submit``."""
    future: Future = Future()
    future.set_result(function(*args))
    return future


def _count_written(bar: tqdm, done: Future) -> None:
    if done.exception() is None:
        bar.update(done.result())


def _is_complete(data_dir: str, manifest: dict[str, Any] | None, fingerprint: dict) -> bool:
    """True when the day's manifest is complete for these inputs and every shard verifies."""
    return (
        manifest is not None
        and manifest.get("complete") is True
        and manifest.get("fingerprint") == fingerprint
        and all(
            shard_verifies(os.path.join(data_dir, record[SHARD_PATH]), record)
            for record in manifest["shard_records"]
        )
    )


def _start_day(
    root: str,
    data_dir: str,
    day: str,
    id_counts: dict[str, int],
    requests_per_shard: int,
    fingerprint: dict[str, Any],
    previous: dict[str, Any] | None,
    submit: Callable[..., Future],
    bar: tqdm,
) -> tuple[dict[str, Any], list[Future]]:
    """Loads ``day``, writes its plan, submits its missing shards; returns (manifest, futures)."""
    loaded = load_day(root, day)
    features, out_of_vocabulary = request_features(loaded, id_counts)
    requests = len(features[fmt.REQUEST_ID])
    count = max(1, -(-requests // requests_per_shard))
    shards = shard_names(day, count)
    day_dir = os.path.join(data_dir, day)
    os.makedirs(day_dir, exist_ok=True)
    # ``previous`` can only be a plan for these same inputs: its finished shards are kept.
    _remove_shards(day_dir, keep=[os.path.basename(s) for s in shards] if previous else [])
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
    bar.total = (bar.total or 0) + requests
    futures = []
    for index, shard in enumerate(shards):
        rows = slice(index * requests_per_shard, (index + 1) * requests_per_shard)
        size = len(features[fmt.REQUEST_ID][rows])
        path = os.path.join(data_dir, shard)
        if os.path.isfile(path):
            bar.update(size)
            continue
        part = {name: np.ascontiguousarray(values[rows]) for name, values in features.items()}
        future = submit(fmt.write_shard, path, part)
        future.add_done_callback(functools.partial(_count_written, bar))
        futures.append(future)
    return manifest, futures


def _finish_day(data_dir: str, manifest: dict[str, Any], futures: list[Future]) -> None:
    """Waits for the day's shards, records their sizes and digests, marks the day complete."""
    for future in futures:
        future.result()
    manifest["shard_records"] = [
        shard_record(os.path.join(data_dir, shard), shard) for shard in manifest["shards"]
    ]
    manifest["complete"] = True
    write_json(os.path.join(data_dir, manifest["day"], MANIFEST_FILE), manifest)


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
        data_dir: the converted TFRecord folder to write (created; an earlier conversion there
            is resumed).
        days: days to convert, ``YYYY-MM-DD`` (default: every day in ``all_stage/``).
        workers: processes that encode and write shards (default: CPU count); 1 writes in this
            process.
        requests_per_shard: requests per TFRecord file.
        progress: show a tqdm progress bar.

    Raises ``recflow.RecFlowError`` naming the file and the problem for bad input.

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
    schema_file = fmt.schema_path(data_dir)
    if os.path.exists(schema_file):  # the completion marker goes until this run completes
        os.remove(schema_file)
    days = list(days) if days else recflow.list_days(recflow_root)
    if not days:
        raise recflow.RecFlowError(f"{recflow_root}/{recflow.ALL_STAGE_DIR}: no days to convert")
    recflow.require_day_files(recflow_root, _SOURCE_FOLDERS, days)
    id_counts = recflow.read_id_counts(recflow_root)
    os.makedirs(data_dir, exist_ok=True)

    workers = workers or os.cpu_count() or 1
    executor: Executor | None = worker_pool(workers) if workers > 1 else None
    submit = executor.submit if executor else _run_here
    manifests: dict[str, dict[str, Any]] = {}
    skipped = []
    bar = tqdm(total=0, unit="req", desc="convert", disable=not progress)
    pending: tuple[dict[str, Any], list[Future]] | None = None
    try:
        for day in days:
            fingerprint = _fingerprint(recflow_root, day, requests_per_shard)
            manifest_path = os.path.join(data_dir, day, MANIFEST_FILE)
            previous = _read_manifest(manifest_path)
            if _is_complete(data_dir, previous, fingerprint):
                manifests[day] = previous
                skipped.append(day)
                continue
            if previous is not None and (
                previous.get("fingerprint") != fingerprint or previous.get("complete") is True
            ):
                # Other inputs, or complete with a shard that does not verify: start over.
                os.remove(manifest_path)
                _remove_shards(os.path.dirname(manifest_path))
                previous = None
            started = _start_day(
                recflow_root,
                data_dir,
                day,
                id_counts,
                requests_per_shard,
                fingerprint,
                previous,
                submit,
                bar,
            )
            if pending is not None:
                _finish_day(data_dir, *pending)
            pending = started
            manifests[day] = started[0]
        if pending is not None:
            _finish_day(data_dir, *pending)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        bar.close()

    out_of_vocabulary: dict[str, int] = {}
    for manifest in manifests.values():
        for field, count in manifest["out_of_vocabulary"].items():
            out_of_vocabulary[field] = out_of_vocabulary.get(field, 0) + count
    has_preference = all(manifest["has_preference"] for manifest in manifests.values())
    schema = {
        "format": fmt.FORMAT_NAME,
        "version": fmt.FORMAT_VERSION,
        "source": os.path.abspath(recflow_root),
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
            "shards": sum(len(manifest["shards"]) for manifest in manifests.values()),
            "missing_rank_index": sum(m["missing_rank_index"] for m in manifests.values()),
            "out_of_vocabulary": out_of_vocabulary,
        },
    }
    write_json(schema_file, schema)
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
    """Command-line entry: ``python -m pipelines.convert --help``.

    Example:
        >>> main(["--recflow", recflow_root, "--data", os.path.join(tmp_dir, "cli"), "--workers",
        ...       "1", "--quiet"])
        converted 240 requests of 2 days into 2 shards in ... (0 days already done)
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.convert",
        description="Convert RecFlow days (published or simulated) to sharded GZIP TFRecords, one "
        "tf.train.Example per request, with schema.json written last. Re-running resumes: "
        "complete shards are kept, partial ones rewritten.",
    )
    parser.add_argument("--recflow", required=True, help="RecFlow root (all_stage/, ...)")
    parser.add_argument(
        "--data",
        "--out",
        dest="data_dir",
        required=True,
        help="the TFRecord folder to write: the --data of models.training.train and "
        "models.training.evaluate (--out is an alias)",
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
    run_command(main, "python -m pipelines.convert")
