"""One RecFlow day assembled into request-aligned arrays: the converter's input.

The requests of a day are the distinct ``request_id`` of ``all_stage/<day>.feather``, in order of
first appearance, with their context and user columns from that first row. For each request, as
in the public two-stage protocol: the behaviour sequence from ``seq_effective_50_dict``, the first
``max_items`` videos of each training stage group from ``request_id_dict``, the ``rank_index`` of
the ``rank_pos`` videos looked up in ``all_stage`` by (request, video), and, in simulated data,
each candidate's ``true_preference`` looked up the same way.

``all_stage`` is read one record batch at a time, keeping only the first row per request, the
``rank_pos`` rows and (simulated data) the preference column, so memory is about a day's requests,
not a day's rows.

Example:
    >>> day = load_day(recflow_root, "2024-01-13")
    >>> day.size, day.sequences.shape[1:], day.stage_items[recflow.RANK_POS].values.shape[1:]
    (120, (50, 10), (10, 8))
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from dftopk_cascade.pipelines import recflow

STAGE_GROUP_SIZE = 10
#: ``rank_index`` given to a ``rank_pos`` video whose position is not in ``all_stage``: just after
#: the top-10 positions, so it ranks below the rank_pos videos whose position is known.
MISSING_RANK_INDEX = 10
#: Largest accepted ``rank_index`` of a ``rank_pos`` video (its label 30 - rank_index stays > 0).
MAX_RANK_INDEX = 29


@dataclass(frozen=True)
class RecFlowDay:
    """A day's requests as arrays, all aligned on ``request_columns[recflow.REQUEST_ID]``.

    Attributes:
        day: the day name.
        request_columns: ``recflow.REQUEST_COLUMNS`` -> int64 [requests].
        sequences: int64 [requests, 50, len(recflow.SEQUENCE_COLUMNS)].
        stage_items: ``recflow.TRAINING_STAGES`` -> ``recflow.StageItems`` [requests, 10, 8].
        rank_index: int64 [requests, 10]: ``rank_index`` of each ``rank_pos`` video, 0 on padding.
        preference: float32 [requests, 4 * 10] in stage-group slot order (0 on padding), or None
            for published data (no ``true_preference`` column).
        missing_rank_index: how many ``rank_pos`` videos had no position in ``all_stage`` (given
            ``MISSING_RANK_INDEX``).

    Example:
        >>> day.request_columns[recflow.USER_ID].shape, day.preference.shape
        ((120,), (120, 40))
    """

    day: str
    request_columns: dict[str, np.ndarray]
    sequences: np.ndarray
    stage_items: dict[str, recflow.StageItems]
    rank_index: np.ndarray
    preference: np.ndarray | None
    missing_rank_index: int

    @property
    def size(self) -> int:
        """The number of requests.

        Example:
            >>> day.size
            120
        """
        return len(self.request_columns[recflow.REQUEST_ID])


@dataclass
class _AllStageDigest:
    request_columns: dict[str, np.ndarray]
    rank_rows: pd.DataFrame
    preference_rows: pd.DataFrame | None


def _require_finite_preference(path: str, batch: dict[str, np.ndarray], first_row: int) -> None:
    """Refuses NaN or infinite ``true_preference``: evaluation would report them as metrics."""
    bad = ~np.isfinite(batch[recflow.TRUE_PREFERENCE])
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise recflow.RecFlowError(
            f"{path}: {int(bad.sum())} rows have a non-finite {recflow.TRUE_PREFERENCE}, the "
            f"first at row {first_row + index} (request {batch[recflow.REQUEST_ID][index]}: "
            f"{batch[recflow.TRUE_PREFERENCE][index]}); fix or drop these rows and convert again"
        )


def _digest_all_stage(path: str) -> _AllStageDigest:
    """Reads ``all_stage`` batch by batch, keeping what the conversion needs."""
    with_preference = recflow.TRUE_PREFERENCE in recflow.feather_column_names(path)
    rank_columns = (recflow.REQUEST_ID, recflow.VIDEO_ID, recflow.RANK_INDEX)
    columns = [*recflow.REQUEST_COLUMNS, recflow.VIDEO_ID, recflow.RANK_POS, recflow.RANK_INDEX]
    columns += [recflow.TRUE_PREFERENCE] if with_preference else []
    firsts, ranks, preferences = [], [], []
    first_row = 0
    for batch in recflow.iter_feather_batches(path, columns):
        if with_preference:
            _require_finite_preference(path, batch, first_row)
        first_row += len(batch[recflow.REQUEST_ID])
        _, first = np.unique(batch[recflow.REQUEST_ID], return_index=True)
        firsts.append({name: batch[name][first] for name in recflow.REQUEST_COLUMNS})
        ranked = batch[recflow.RANK_POS] == 1
        ranks.append(pd.DataFrame({name: batch[name][ranked] for name in rank_columns}))
        if with_preference:
            names = (recflow.REQUEST_ID, recflow.VIDEO_ID, recflow.TRUE_PREFERENCE)
            preferences.append(pd.DataFrame({name: batch[name] for name in names}))
    if not firsts:
        raise recflow.RecFlowError(f"{path}: no rows")
    merged = {name: np.concatenate([part[name] for part in firsts]) for name in firsts[0]}
    _, first = np.unique(merged[recflow.REQUEST_ID], return_index=True)
    in_order = np.sort(first)
    return _AllStageDigest(
        request_columns={
            name: values[in_order].astype(np.int64) for name, values in merged.items()
        },
        rank_rows=pd.concat(ranks, ignore_index=True),
        preference_rows=pd.concat(preferences, ignore_index=True) if with_preference else None,
    )


def _lookup(
    table: pd.DataFrame, request_ids: np.ndarray, video_ids: np.ndarray, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (value, found) of ``column`` for each (request, video) key; first match wins."""
    keys = [recflow.REQUEST_ID, recflow.VIDEO_ID]
    unique = table.drop_duplicates(keys)
    query = pd.DataFrame({recflow.REQUEST_ID: request_ids, recflow.VIDEO_ID: video_ids})
    joined = query.merge(unique, on=keys, how="left", validate="many_to_one")
    found = joined[column].notna().to_numpy()
    return joined[column].fillna(0).to_numpy(), found


def load_day(root: str, day: str, max_items: int = STAGE_GROUP_SIZE) -> RecFlowDay:
    """Loads and validates one day of a RecFlow root.

    Raises ``recflow.RecFlowError`` naming the file for a missing file or column, a wrong dtype,
    a corrupt feather or pickle, request ids of ``all_stage`` missing from either dict, a
    ``rank_pos`` video with a ``rank_index`` outside [0, 29], or a NaN or infinite
    ``true_preference`` (naming its row).

    Example:
        >>> load_day(recflow_root, "2024-01-14").missing_rank_index
        0
    """
    all_stage_path = recflow.day_file(root, recflow.ALL_STAGE_DIR, day)
    digest = _digest_all_stage(all_stage_path)
    request_ids = digest.request_columns[recflow.REQUEST_ID]
    id_list = request_ids.tolist()

    sequence_path = recflow.day_file(root, recflow.SEQUENCE_DIR, day)
    sequences = recflow.stack_sequences(
        recflow.read_pickle_dict(sequence_path), id_list, sequence_path
    )
    candidate_path = recflow.day_file(root, recflow.REQUEST_DICT_DIR, day)
    candidates = recflow.read_pickle_dict(candidate_path)
    stage_items = {
        stage: recflow.stack_stage_items(candidates, id_list, stage, max_items, candidate_path)
        for stage in recflow.TRAINING_STAGES
    }
    del candidates

    video_column = recflow.STAGE_ITEM_COLUMNS.index(recflow.VIDEO_ID)
    rank_pos = stage_items[recflow.RANK_POS]
    real = np.arange(max_items)[None, :] < rank_pos.counts[:, None]
    requests_of_slot = np.broadcast_to(request_ids[:, None], real.shape)
    rank_index = np.zeros(real.shape, np.int64)
    values, found = _lookup(
        digest.rank_rows,
        requests_of_slot[real],
        rank_pos.values[..., video_column][real],
        recflow.RANK_INDEX,
    )
    values = np.where(found, values, MISSING_RANK_INDEX).astype(np.int64)
    bad = (values < 0) | (values > MAX_RANK_INDEX)
    if bad.any():
        request = requests_of_slot[real][bad][0]
        raise recflow.RecFlowError(
            f"{all_stage_path}: {int(bad.sum())} rank_pos videos have a rank_index outside "
            f"[0, {MAX_RANK_INDEX}] (e.g. request {request}: {values[bad][0]})"
        )
    rank_index[real] = values

    preference = None
    if digest.preference_rows is not None:
        groups = [stage_items[stage] for stage in recflow.TRAINING_STAGES]
        slot_real = np.concatenate(
            [np.arange(max_items)[None, :] < group.counts[:, None] for group in groups], axis=1
        )
        slot_videos = np.concatenate([group.values[..., video_column] for group in groups], axis=1)
        preference = np.zeros(slot_real.shape, np.float32)
        preference[slot_real] = _lookup(
            digest.preference_rows,
            np.broadcast_to(request_ids[:, None], slot_real.shape)[slot_real],
            slot_videos[slot_real],
            recflow.TRUE_PREFERENCE,
        )[0]
    return RecFlowDay(
        day=day,
        request_columns=digest.request_columns,
        sequences=sequences,
        stage_items=stage_items,
        rank_index=rank_index,
        preference=preference,
        missing_rank_index=int((~found).sum()),
    )
