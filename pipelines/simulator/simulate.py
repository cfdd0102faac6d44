"""Writes a simulated dataset in RecFlow's exact layout: ``python -m
dftopk_cascade.pipelines.simulator.simulate``.

A latent user-interest x video model (``simulated_world``) drives a simulated cascade
(``simulated_cascade``), so that the stage flags and ``rank_index`` are noisy, stage-biased
judgements of a hidden true preference, which is recorded in the extra, simulator-only column
``true_preference`` of ``all_stage``/``realshow``. Users' behaviour sequences are their past
effective views (``simulated_history``), updated between chunks of requests.

Days are generated one after another (memory holds one day's dicts, not the whole run); the
feathers are written as streams of record batches; every file is written under a temporary name
and renamed when complete, and ``others/id_cnt.pkl`` is written last, so a folder without it is
an interrupted run. The output is deterministic for a given seed and ``--chunk-size``.

``simulation.json`` in the output records the settings (seed, start day, requests per day, world
size, chunk size) and the days written. A re-run with the same settings rewrites no complete day
(its files and their modification times stay, so ``dftopk_cascade.pipelines.convert`` skips it too)
and writes only the missing ones; a run with other settings is refused unless ``--overwrite``.
``others/id_cnt.pkl`` (the same for the same settings) stays when the settings match.

The output carries a ``.dftopk-recflow.json`` marker (``dftopk_cascade.pipelines.owned_folder``)
whose manifest lists every file the simulator wrote, and is locked while a run writes it. A
non-empty folder without the marker (e.g. the published data) is never written into, with or without
``--overwrite``; ``--overwrite`` deletes only the files the manifest lists; and a run that would
replace a file the manifest does not list is refused. ``dftopk_cascade.pipelines.convert`` reads the
manifest to refuse a folder that mixes simulated days with days the simulator did not write.

Example:
    python -m dftopk_cascade.pipelines.simulator.simulate --recflow /tmp/recflow_sim --days 3 \
        --requests-per-day 1000 --seed 0
"""

import argparse
import datetime
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from dftopk_cascade.command_line.deprecated_flags import add_renamed_flag
from dftopk_cascade.command_line.entry import add_entry_flags, run_command
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.atomic_files import TEMPORARY_SUFFIX, write_json, write_pickle
from dftopk_cascade.pipelines.owned_folder import (
    ForeignFolderError,
    OwnedFolder,
    marker_name,
    owned_folder,
)
from dftopk_cascade.pipelines.simulator.simulated_cascade import (
    CascadeOutcome,
    CascadeShape,
    StageModels,
    exposure_feedback,
    run_cascade,
)
from dftopk_cascade.pipelines.simulator.simulated_history import BehaviourHistory, sequence_rows
from dftopk_cascade.pipelines.simulator.simulated_world import (
    SimulatedWorld,
    WorldSize,
    scaled_world_size,
)
from tqdm import tqdm

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
_DAY_FEATHER_DIRS = (recflow.ALL_STAGE_DIR, recflow.REALSHOW_DIR)
_DAY_DICT_DIRS = (recflow.SEQUENCE_DIR, recflow.REQUEST_DICT_DIR)
#: The settings record in the output root (see the module docstring).
SETTINGS_FILE = "simulation.json"
#: The writer named in the output's ``.dftopk-recflow.json`` marker.
WRITER = "dftopk_cascade.pipelines.simulator.simulate"


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
    skipped_days: list[str] = field(default_factory=list)


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


def _day_paths(root: str, day: str, with_test_files: bool) -> dict[str, str]:
    """The files a simulated day writes: its feathers by name, then its two dicts."""
    paths = {name: recflow.day_file(root, name, day) for name in _DAY_FEATHER_DIRS}
    if with_test_files:
        paths |= {name: os.path.join(root, recflow.OTHERS_DIR, name) for name in TEST_FILE_STAGES}
    return paths | {name: recflow.day_file(root, name, day) for name in _DAY_DICT_DIRS}


class _DayWriter:
    """Accumulates one day's rows and dicts and writes the day's four files (unless ``write``).

    A day that is already on disk is simulated again without writing (``write=False``): the
    behaviour histories of the following days depend on it.
    """

    def __init__(self, root: str, day: str, with_test_files: bool, write: bool = True) -> None:
        self.root, self.day, self.write = root, day, write
        paths = _day_paths(root, day, with_test_files) if write else {}
        self.streams = {
            name: _FeatherStream(path) for name, path in paths.items() if name not in _DAY_DICT_DIRS
        }
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
        if not self.write:
            return
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


@dataclass
class _Simulation:
    """The simulated world and the state it carries from day to day."""

    world: SimulatedWorld
    models: StageModels
    history: BehaviourHistory
    shape: CascadeShape
    day_seeds: list[np.random.SeedSequence]

    @classmethod
    def create(cls, size: WorldSize, seed: int, names: Sequence[str]) -> "_Simulation":
        seeds = np.random.SeedSequence(seed).spawn(len(names) + 1)
        setup_rng = np.random.default_rng(seeds[0])
        start = day_start_epoch(names[0])
        world = SimulatedWorld.create(size, setup_rng, start)
        models = StageModels.create(size.items, setup_rng)
        history = BehaviourHistory.warm_start(world, setup_rng, start)
        return cls(world, models, history, CascadeShape(), seeds[1:])

    def simulate_day(
        self, writer: "_DayWriter", day_index: int, requests: int, chunk_size: int, bar: tqdm
    ) -> tuple[int, int]:
        """Simulates (and, unless ``writer.write`` is False, writes) one day; returns row counts."""
        rng = np.random.default_rng(self.day_seeds[day_index])
        first_request_id = 1 + day_index * requests
        columns, hours = _day_requests(self.world, writer.day, requests, first_request_id, rng)
        rows = shown = 0
        try:
            for first in range(0, requests, chunk_size):
                part = slice(first, first + chunk_size)
                chunk_rows, chunk_shown = _simulate_chunk(
                    self.world,
                    self.models,
                    self.history,
                    {name: values[part] for name, values in columns.items()},
                    hours[part],
                    rng,
                    writer,
                    self.shape,
                )
                rows, shown = rows + chunk_rows, shown + chunk_shown
                bar.update(len(hours[part]))
        except BaseException:
            writer.abort()
            raise
        writer.close()
        return rows, shown


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
    overwrite: bool = False,
) -> SimulationSummary:
    """Writes ``days`` days of ``requests_per_day`` simulated requests in RecFlow's layout.

    Args:
        out_dir: the RecFlow root to create; one written with the same settings keeps its
            complete days (see the module docstring).
        days: number of consecutive days, from ``start_day``.
        requests_per_day: requests simulated per day.
        seed: random seed; the output is a deterministic function of all arguments.
        start_day: the first day, ``YYYY-MM-DD``.
        users: number of users (default: RecFlow's users per request, at least 200).
        items: number of videos (default: RecFlow's videos per request, at least 5,000).
        chunk_size: requests simulated at once; behaviour sequences advance between chunks.
        progress: show a tqdm progress bar.
        overwrite: replace a simulation written with other settings (refused otherwise); only
            the files this simulator wrote there are deleted.

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
    size = scaled_world_size(days * requests_per_day, users, items)
    settings = simulation_settings(seed, names[0], requests_per_day, size, chunk_size)
    with owned_folder(out_dir, kind="recflow", writer=WRITER) as folder:
        done_days = _prepare_output(folder, settings, names, overwrite)
        done = [day in done_days and _day_complete(out_dir, day, day == names[-1]) for day in names]
        id_count_path = os.path.join(out_dir, recflow.OTHERS_DIR, recflow.ID_COUNT_FILE)
        if all(done) and os.path.isfile(id_count_path):
            return SimulationSummary(names, days * requests_per_day, 0, 0, 0.0, skipped_days=names)
        simulation = _Simulation.create(size, seed, names)
        bar = tqdm(total=days * requests_per_day, unit="req", desc="simulate", disable=not progress)
        rows = shown = 0
        for day_index, day in enumerate(names):
            if all(done[day_index:]):
                break  # the following days are on disk: no history to carry forward
            last = day_index == days - 1
            if not done[day_index]:
                folder.record(*_relative_day_paths(out_dir, day, last))
            writer = _DayWriter(out_dir, day, with_test_files=last, write=not done[day_index])
            day_rows, day_shown = simulation.simulate_day(
                writer, day_index, requests_per_day, chunk_size, bar
            )
            rows, shown = rows + day_rows, shown + day_shown
            if not done[day_index]:
                done_days.append(day)
                write_json(os.path.join(out_dir, SETTINGS_FILE), {**settings, "days": done_days})
            bar.set_postfix(day=day)
        bar.close()
        if not os.path.isfile(id_count_path):  # kept when there: the same settings, the same counts
            write_pickle(id_count_path, size.id_counts())
    return SimulationSummary(
        days=names,
        requests=days * requests_per_day,
        all_stage_rows=rows,
        realshow_rows=shown,
        seconds=time.perf_counter() - started,
        skipped_days=[day for day, skipped in zip(names, done, strict=True) if skipped],
    )


def simulation_settings(
    seed: int, start_day: str, requests_per_day: int, size: WorldSize, chunk_size: int
) -> dict[str, object]:
    """What a simulated day's files depend on, as recorded in ``simulation.json``.

    Example:
        >>> settings = simulation_settings(0, "2024-01-13", 100, scaled_world_size(200), 2048)
        >>> settings["users"], settings["items"]
        (200, 5000)
    """
    return {
        "seed": seed,
        "start_day": start_day,
        "requests_per_day": requests_per_day,
        "users": size.users,
        "items": size.items,
        "chunk_size": chunk_size,
    }


def _prepare_output(
    folder: OwnedFolder, settings: dict[str, object], names: Sequence[str], overwrite: bool
) -> list[str]:
    """Checks the claimed folder against ``settings``; returns the days on disk that can be kept.

    Raises ``ValueError`` for a simulation with other settings unless ``overwrite`` (which
    deletes the files the folder's manifest lists, and nothing else), and ``ForeignFolderError``
    when a file this run would write is on disk but not in the manifest (someone else's).
    """
    out_dir = folder.path
    settings_path = os.path.join(out_dir, SETTINGS_FILE)
    recorded: dict[str, object] | None = None
    if os.path.isfile(settings_path):
        with open(settings_path) as file:
            recorded = json.load(file)
    recorded_days = list(recorded.pop("days", [])) if recorded else []
    if recorded is not None and recorded == settings:
        _refuse_unlisted_files(folder, names)
        return recorded_days
    if recorded is not None and not overwrite:
        changed = {
            name: (recorded.get(name), value)
            for name, value in settings.items()
            if recorded.get(name) != value
        }
        raise ValueError(
            f"{out_dir} holds a simulation with other settings (setting: (there, now)): "
            f"{changed}; use another --recflow or --overwrite"
        )
    _refuse_unlisted_files(folder, names)
    if overwrite:
        folder.clear()
    id_count_path = os.path.join(out_dir, recflow.OTHERS_DIR, recflow.ID_COUNT_FILE)
    if os.path.exists(id_count_path):  # the completion marker goes until this run completes
        os.remove(id_count_path)
    for name in (*_DAY_FEATHER_DIRS, *_DAY_DICT_DIRS, recflow.OTHERS_DIR):
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    folder.record(SETTINGS_FILE, os.path.join(recflow.OTHERS_DIR, recflow.ID_COUNT_FILE))
    write_json(settings_path, {**settings, "days": []})
    return []


def _relative_day_paths(out_dir: str, day: str, with_test_files: bool) -> list[str]:
    paths = _day_paths(out_dir, day, with_test_files).values()
    return [os.path.relpath(path, out_dir) for path in paths]


def _refuse_unlisted_files(folder: OwnedFolder, names: Sequence[str]) -> None:
    """Refuses a run that would replace a file the folder's manifest does not list."""
    planned = [SETTINGS_FILE, os.path.join(recflow.OTHERS_DIR, recflow.ID_COUNT_FILE)]
    for day in names:
        planned += _relative_day_paths(folder.path, day, with_test_files=day == names[-1])
    listed = set(folder.marker["manifest"])
    for relative in planned:
        if relative not in listed and os.path.lexists(os.path.join(folder.path, relative)):
            raise ForeignFolderError(
                f"{os.path.join(folder.path, relative)} was not written by {WRITER} (the "
                f"folder's {marker_name('recflow')} does not list it); move it away or choose "
                "another --recflow (nothing was changed)"
            )


def _day_complete(out_dir: str, day: str, with_test_files: bool) -> bool:
    """True when every file of the simulated ``day`` is on disk."""
    return all(os.path.isfile(path) for path in _day_paths(out_dir, day, with_test_files).values())


def _parser() -> argparse.ArgumentParser:
    """The command line of ``main``, every flag explained."""
    parser = argparse.ArgumentParser(
        prog="python -m dftopk_cascade.pipelines.simulator.simulate",
        description="Write a simulated dataset in RecFlow's exact layout (all_stage/, realshow/, "
        "seq_effective_50_dict/, request_id_dict/, others/). Stage labels come from a simulated "
        "cascade over a hidden true preference, recorded in the simulator-only column "
        "'true_preference'.",
    )
    add_renamed_flag(
        parser, "--recflow", "--out", required=True, help="the RecFlow root folder to write"
    )
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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a simulation in --recflow written with other settings: deletes only the "
        "files this simulator wrote there (a re-run with the same settings keeps the complete "
        "days; a folder the simulator did not write is never written into)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return add_entry_flags(parser)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: ``python -m dftopk_cascade.pipelines.simulator.simulate --help``.

    Example:
        >>> main(["--recflow", os.path.join(tmp_dir, "cli"), "--days", "1",
        ...       "--requests-per-day", "50", "--quiet"])
        wrote 50 requests over 1 days (2024-01-13 .. 2024-01-13) to ... already there)
    """
    args = _parser().parse_args(argv)
    summary = simulate(
        args.recflow,
        args.days,
        args.requests_per_day,
        args.seed,
        args.start_day,
        args.users,
        args.items,
        args.chunk_size,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    if summary.skipped_days == summary.days:
        print(f"{args.recflow} already holds these {len(summary.days)} days with these settings")
        return
    print(
        f"wrote {summary.requests} requests over {len(summary.days)} days "
        f"({summary.days[0]} .. {summary.days[-1]}) to {args.recflow}: {summary.all_stage_rows} "
        f"all_stage rows, {summary.realshow_rows} realshow rows in {summary.seconds:.1f} s "
        f"({summary.requests / summary.seconds:.0f} requests/s; "
        f"{len(summary.skipped_days)} days already there)"
    )


if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.pipelines.simulator.simulate")
