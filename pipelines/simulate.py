"""Writes a simulated dataset in RecFlow's exact layout: ``python -m pipelines.simulate``.

A latent user-interest x video model (``simulated_world``) drives a simulated cascade
(``simulated_cascade``), so that the stage flags and ``rank_index`` are noisy, stage-biased
judgements of a hidden true preference, which is recorded in the extra, simulator-only column
``true_preference`` of ``all_stage``/``realshow``. Users' behaviour sequences are their past
effective views (``simulated_history``), updated between chunks of requests.

Days are generated one after another (memory holds one day's dicts, not the whole run); the
feathers are written as streams of record batches; every file is written under a temporary name
and renamed when complete, and ``others/id_cnt.pkl`` is written last, so a folder without it is
an interrupted run. The output is deterministic for a given seed and ``--chunk-size``.

Example:
    python -m pipelines.simulate --out /tmp/recflow_sim --days 3 --requests-per-day 1000 --seed 0
"""

import argparse
import datetime
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from command_line.entry import add_entry_flags, run_command
from pipelines import recflow
from pipelines.atomic_files import TEMPORARY_SUFFIX, write_pickle
from pipelines.simulated_cascade import (
    CascadeOutcome,
    CascadeShape,
    StageModels,
    exposure_feedback,
    run_cascade,
)
from pipelines.simulated_history import BehaviourHistory, sequence_rows
from pipelines.simulated_world import SimulatedWorld, scaled_world_size

#: Share of a day's requests in each hour (RecFlow time): quiet nights, busy lunch and evening.
HOURLY_TRAFFIC = np.array(
    [3, 2, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 6, 5, 4, 4, 5, 6, 7, 8, 8, 7, 5], np.float64
)
ALL_STAGE_SCHEMA = pa.schema(
    [
        (name, pa.from_numpy_dtype(np.dtype(dtype)))
        for name, dtype in recflow.ALL_STAGE_DTYPES.items()
    ]
)
#: Which rows of the last day each test feather keeps (the simulator's reading of RecFlow's).
TEST_FILE_STAGES = {
    "retrieval_test.feather": (recflow.REALSHOW,),
    "coarse_rank_test.feather": (recflow.RANK_POS, recflow.RANK_NEG, recflow.COARSE_NEG),
    "rank_test.feather": (recflow.RANK_POS, recflow.RANK_NEG),
}
_FEATHER_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation wrote.

    Example:
        >>> summary = simulate(os.path.join(tmp_dir, "sim"), days=1, requests_per_day=100, seed=0,
        ...                    progress=False)
        >>> summary.requests, summary.all_stage_rows
        (100, 4000)
    """

    days: list[str]
    requests: int
    all_stage_rows: int
    realshow_rows: int
    seconds: float


def day_names(start_day: str, days: int) -> list[str]:
    """Returns ``days`` consecutive day names from ``start_day`` (``YYYY-MM-DD``).

    Example:
        >>> day_names("2024-01-31", 2)
        ['2024-01-31', '2024-02-01']
    """
    first = datetime.datetime.strptime(start_day, recflow.DAY_FORMAT).date()
    return [(first + datetime.timedelta(days=i)).strftime(recflow.DAY_FORMAT) for i in range(days)]


def day_start_epoch(day: str) -> int:
    """Returns the epoch second of ``day``'s midnight in RecFlow time (UTC+8).

    Example:
        >>> day_start_epoch("2024-01-13")
        1705075200
    """
    zone = datetime.timezone(datetime.timedelta(seconds=recflow.UTC_OFFSET_SECONDS))
    midnight = datetime.datetime.strptime(day, recflow.DAY_FORMAT).replace(tzinfo=zone)
    return int(midnight.timestamp())


class _FeatherStream:
    """An Arrow IPC (Feather V2) file written batch by batch under a temporary name."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._temporary = path + TEMPORARY_SUFFIX
        self._writer = pa.ipc.new_file(self._temporary, ALL_STAGE_SCHEMA, options=_FEATHER_OPTIONS)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()
        os.replace(self._temporary, self._path)

    def abort(self) -> None:
        self._writer.close()
        os.remove(self._temporary)


class _DayWriter:
    """Accumulates one day's rows and dicts and writes the day's four files."""

    def __init__(self, root: str, day: str, with_test_files: bool) -> None:
        self.root, self.day = root, day
        names = [recflow.ALL_STAGE_DIR, recflow.REALSHOW_DIR]
        paths = [recflow.day_file(root, name, day) for name in names]
        if with_test_files:
            names += list(TEST_FILE_STAGES)
            paths += [os.path.join(root, recflow.OTHERS_DIR, name) for name in TEST_FILE_STAGES]
        self.streams = {name: _FeatherStream(path) for name, path in zip(names, paths, strict=True)}
        self.sequences: dict[int, np.ndarray] = {}
        self.candidates: dict[int, dict[str, np.ndarray]] = {}

    def write_rows(self, batch: pa.RecordBatch, flags: dict[str, np.ndarray]) -> None:
        for name, stream in self.streams.items():
            if name == recflow.ALL_STAGE_DIR:
                stream.write(batch)
                continue
            stages = (recflow.REALSHOW,) if name == recflow.REALSHOW_DIR else TEST_FILE_STAGES[name]
            keep = np.logical_or.reduce([flags[stage] for stage in stages])
            stream.write(batch.filter(pa.array(keep)))

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()
        write_pickle(recflow.day_file(self.root, recflow.SEQUENCE_DIR, self.day), self.sequences)
        write_pickle(
            recflow.day_file(self.root, recflow.REQUEST_DICT_DIR, self.day), self.candidates
        )

    def abort(self) -> None:
        for stream in self.streams.values():
            stream.abort()


def _stage_arrays(
    item_rows: np.ndarray, flags: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per stage: the flagged rows first, [requests, width, 8], and their count [requests]."""
    arrays, counts = {}, {}
    for stage in recflow.STAGE_FLAGS:
        flag = flags[stage]
        width = int(flag.sum(axis=1).max(initial=0))
        first = np.argsort(~flag, axis=1, kind="stable")[:, :width]
        arrays[stage] = np.take_along_axis(item_rows, first[:, :, None], axis=1)
        counts[stage] = flag.sum(axis=1)
    return arrays, counts


def _chunk_columns(
    world: SimulatedWorld,
    outcome: CascadeOutcome,
    feedback: dict[str, np.ndarray],
    request_columns: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """All ``all_stage`` columns of a chunk, [requests, recorded] each."""
    videos = outcome.videos
    recorded = videos.shape[1]
    columns = {
        name: np.repeat(values[:, None], recorded, axis=1)
        for name, values in request_columns.items()
    }
    columns |= {
        recflow.VIDEO_ID: videos,
        recflow.AUTHOR_ID: world.item_author[videos],
        recflow.CATEGORY_LEVEL_ONE: world.item_category_one[videos],
        recflow.CATEGORY_LEVEL_TWO: world.item_category_two[videos],
        recflow.UPLOAD_TYPE: world.item_upload_type[videos],
        recflow.UPLOAD_TIMESTAMP: world.item_upload_timestamp[videos],
        recflow.DURATION: world.item_duration[videos],
        recflow.RANK_INDEX: outcome.rank_index,
        recflow.RERANK_INDEX: outcome.rerank_index,
        recflow.TRUE_PREFERENCE: 1.0 / (1.0 + np.exp(-outcome.logits)),
    }
    return columns | outcome.flags | feedback


def _simulate_chunk(
    world: SimulatedWorld,
    models: StageModels,
    history: BehaviourHistory,
    request_columns: dict[str, np.ndarray],
    hours: np.ndarray,
    rng: np.random.Generator,
    writer: _DayWriter,
    shape: CascadeShape,
) -> tuple[int, int]:
    """Simulates one chunk of requests, writes it and updates the histories; returns row counts."""
    users = request_columns[recflow.USER_ID]
    request_ids = request_columns[recflow.REQUEST_ID]
    sequences = history.sequences(users)
    outcome = run_cascade(world, models, users, hours, rng, shape)
    feedback = exposure_feedback(world, outcome, rng)
    columns = _chunk_columns(world, outcome, feedback, request_columns)

    batch = pa.RecordBatch.from_arrays(
        [
            pa.array(columns[field.name].ravel().astype(field.type.to_pandas_dtype()))
            for field in ALL_STAGE_SCHEMA
        ],
        schema=ALL_STAGE_SCHEMA,
    )
    writer.write_rows(batch, {name: flag.ravel() for name, flag in outcome.flags.items()})

    item_rows = np.stack(
        [columns[name].astype(np.int64) for name in recflow.STAGE_ITEM_COLUMNS], axis=2
    )
    arrays, counts = _stage_arrays(item_rows, outcome.flags)
    stages = recflow.STAGE_FLAGS
    for row, request_id in enumerate(request_ids.tolist()):
        writer.sequences[request_id] = sequences[row]
        writer.candidates[request_id] = {
            stage: arrays[stage][row, : counts[stage][row]] for stage in stages
        }

    viewed = feedback[recflow.EFFECTIVE_VIEW]
    history.append(
        np.broadcast_to(users[:, None], viewed.shape)[viewed],
        sequence_rows(
            world,
            outcome.videos[viewed],
            columns[recflow.REQUEST_TIMESTAMP][viewed],
            feedback[recflow.PLAYING_TIME][viewed],
            columns[recflow.REQUEST_ID][viewed],
        ),
    )
    return batch.num_rows, int(outcome.flags[recflow.REALSHOW].sum())


def _day_requests(
    world: SimulatedWorld, day: str, count: int, first_request_id: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draws a day's requests in time order: (request columns, hour of day) [count] each."""
    activity = world.user_activity / world.user_activity.sum()
    users = rng.choice(world.size.users, size=count, p=activity)
    hours = rng.choice(24, size=count, p=HOURLY_TRAFFIC / HOURLY_TRAFFIC.sum())
    milliseconds = (day_start_epoch(day) + hours * 3600) * 1000 + rng.integers(0, 3_600_000, count)
    order = np.argsort(milliseconds, kind="stable")
    users, hours, milliseconds = users[order], hours[order], milliseconds[order]
    columns = {
        recflow.REQUEST_ID: first_request_id + np.arange(count, dtype=np.int64),
        recflow.REQUEST_TIMESTAMP: milliseconds,
        recflow.USER_ID: users,
        recflow.DEVICE_ID: world.user_device[users],
        recflow.AGE: world.user_age[users],
        recflow.GENDER: world.user_gender[users],
        recflow.PROVINCE: world.user_province[users],
    }
    return columns, hours


def simulate(
    out_dir: str,
    days: int,
    requests_per_day: int,
    seed: int,
    start_day: str = recflow.FIRST_DAY,
    users: int | None = None,
    items: int | None = None,
    chunk_size: int = 2048,
    progress: bool = True,
) -> SimulationSummary:
    """Writes ``days`` days of ``requests_per_day`` simulated requests in RecFlow's layout.

    Args:
        out_dir: the RecFlow root to create (existing simulator files are overwritten).
        days: number of consecutive days, from ``start_day``.
        requests_per_day: requests simulated per day.
        seed: random seed; the output is a deterministic function of all arguments.
        start_day: the first day, ``YYYY-MM-DD``.
        users: number of users (default: RecFlow's users per request, at least 200).
        items: number of videos (default: RecFlow's videos per request, at least 5,000).
        chunk_size: requests simulated at once; behaviour sequences advance between chunks.
        progress: show a tqdm progress bar.

    Example:
        >>> out = os.path.join(tmp_dir, "two_days")
        >>> simulate(out, days=2, requests_per_day=50, seed=7, progress=False).days
        ['2024-01-13', '2024-01-14']
    """
    if days < 1 or requests_per_day < 1 or chunk_size < 1:
        raise ValueError(
            f"days, requests_per_day and chunk_size must be >= 1, got {days}, {requests_per_day}"
            f" and {chunk_size}"
        )
    started = time.perf_counter()
    names = day_names(start_day, days)
    for folder in (
        recflow.ALL_STAGE_DIR,
        recflow.REALSHOW_DIR,
        recflow.SEQUENCE_DIR,
        recflow.REQUEST_DICT_DIR,
        recflow.OTHERS_DIR,
    ):
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
    id_count_path = os.path.join(out_dir, recflow.OTHERS_DIR, recflow.ID_COUNT_FILE)
    if os.path.exists(id_count_path):  # the completion marker goes until this run completes
        os.remove(id_count_path)

    seeds = np.random.SeedSequence(seed).spawn(days + 1)
    setup_rng = np.random.default_rng(seeds[0])
    size = scaled_world_size(days * requests_per_day, users, items)
    world = SimulatedWorld.create(size, setup_rng, day_start_epoch(names[0]))
    models = StageModels.create(size.items, setup_rng)
    history = BehaviourHistory.warm_start(world, setup_rng, day_start_epoch(names[0]))
    shape = CascadeShape()

    rows = shown = 0
    bar = tqdm(total=days * requests_per_day, unit="req", desc="simulate", disable=not progress)
    for day_index, day in enumerate(names):
        rng = np.random.default_rng(seeds[day_index + 1])
        columns, hours = _day_requests(
            world, day, requests_per_day, 1 + day_index * requests_per_day, rng
        )
        writer = _DayWriter(out_dir, day, with_test_files=day_index == days - 1)
        try:
            for first in range(0, requests_per_day, chunk_size):
                part = slice(first, first + chunk_size)
                chunk_rows, chunk_shown = _simulate_chunk(
                    world,
                    models,
                    history,
                    {name: values[part] for name, values in columns.items()},
                    hours[part],
                    rng,
                    writer,
                    shape,
                )
                rows, shown = rows + chunk_rows, shown + chunk_shown
                bar.update(len(hours[part]))
        except BaseException:
            writer.abort()
            raise
        writer.close()
        bar.set_postfix(day=day)
    bar.close()
    write_pickle(id_count_path, size.id_counts())
    return SimulationSummary(
        days=names,
        requests=days * requests_per_day,
        all_stage_rows=rows,
        realshow_rows=shown,
        seconds=time.perf_counter() - started,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m pipelines.simulate --help``.

    Example:
        >>> main(["--out", os.path.join(tmp_dir, "cli"), "--days", "1", "--requests-per-day", "50",
        ...       "--quiet"])
        wrote 50 requests over 1 days (2024-01-13 .. 2024-01-13) to ... requests/s)
    """
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.simulate",
        description="Write a simulated dataset in RecFlow's exact layout (all_stage/, realshow/, "
        "seq_effective_50_dict/, request_id_dict/, others/). Stage labels come from a simulated "
        "cascade over a hidden true preference, recorded in the simulator-only column "
        "'true_preference'.",
    )
    parser.add_argument("--out", required=True, help="output RecFlow root directory")
    parser.add_argument("--days", type=int, required=True, help="number of consecutive days")
    parser.add_argument(
        "--requests-per-day", type=int, required=True, help="requests simulated per day"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; same seed and flags give identical files (default 0)",
    )
    parser.add_argument(
        "--start-day",
        default=recflow.FIRST_DAY,
        help=f"first day, YYYY-MM-DD (default {recflow.FIRST_DAY}, RecFlow's)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help="number of users (default: RecFlow's 42K users per 9.3M requests, "
        "scaled to the total, at least 200)",
    )
    parser.add_argument(
        "--items",
        type=int,
        default=None,
        help="number of videos (default: RecFlow's 9M videos per 9.3M requests, "
        "scaled, at least 5000)",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=2048,
        help="requests simulated at once; behaviour sequences advance between "
        "chunks (default 2048)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = add_entry_flags(parser).parse_args(argv)
    summary = simulate(
        args.out,
        args.days,
        args.requests_per_day,
        args.seed,
        args.start_day,
        args.users,
        args.items,
        args.chunk_size,
        progress=not args.quiet,
    )
    print(
        f"wrote {summary.requests} requests over {len(summary.days)} days "
        f"({summary.days[0]} .. {summary.days[-1]}) to {args.out}: {summary.all_stage_rows} "
        f"all_stage rows, {summary.realshow_rows} realshow rows in {summary.seconds:.1f} s "
        f"({summary.requests / summary.seconds:.0f} requests/s)"
    )


if __name__ == "__main__":
    run_command(main, "python -m pipelines.simulate")
