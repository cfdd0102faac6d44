"""RecFlow as published: folders, files, column names and dtypes, and readers that validate them.

This is the only module that spells a RecFlow column name; every other module refers to the
constants below. Layout of a RecFlow root (days are ``YYYY-MM-DD``, 2024-01-13 .. 2024-02-18)::

    all_stage/<day>.feather          every stage's candidates, one row per (request, video)
    realshow/<day>.feather           the exposed rows (realshow == 1), same columns
    seq_effective_50_dict/<day>.pkl  {request_id: int array [50, 10]} (SEQUENCE_COLUMNS)
    request_id_dict/<day>.pkl        {request_id: {stage: int array [n, 8]}} (STAGE_ITEM_COLUMNS)
    others/id_cnt.pkl                {id field: number of distinct ids}
    others/{retrieval,coarse_rank,rank}_test.feather

Conventions of the published files: ``request_timestamp`` is in milliseconds and
``upload_timestamp`` in seconds, both read as China Standard Time (UTC+8, Kuaishou's time zone);
a behaviour sequence is left-padded with all-zero rows (``request_timestamp`` 0 marks padding) and
its newest behaviour is last. Published columns are integers of any width; the simulator writes
``ALL_STAGE_DTYPES``. ``true_preference`` is written by the simulator only.

Every reader raises ``RecFlowError`` naming the file and the problem (missing folder, day or
column, wrong dtype, corrupt feather or pickle, request ids missing from a dict).

Example:
    >>> days = list_days(recflow_root)
    >>> days
    ['2024-01-13', '2024-01-14']
    >>> path = day_file(recflow_root, ALL_STAGE_DIR, days[0])
    >>> sorted(next(iter_feather_batches(path, [REQUEST_ID, VIDEO_ID])))
    ['request_id', 'video_id']
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
from dftopk_cascade.pipelines.safe_pickle import ForbiddenPickleError, load_data_pickle

# Folders and files.
ALL_STAGE_DIR = "all_stage"
REALSHOW_DIR = "realshow"
SEQUENCE_DIR = "seq_effective_50_dict"
REQUEST_DICT_DIR = "request_id_dict"
OTHERS_DIR = "others"
ID_COUNT_FILE = "id_cnt.pkl"
TEST_FILES = ("retrieval_test.feather", "coarse_rank_test.feather", "rank_test.feather")
FEATHER_SUFFIX = ".feather"
PICKLE_SUFFIX = ".pkl"
DAY_FORMAT = "%Y-%m-%d"
FIRST_DAY = "2024-01-13"

# Time conventions.
UTC_OFFSET_SECONDS = 8 * 3600
REQUEST_TIMESTAMP_PER_SECOND = 1000
UPLOAD_TIMESTAMP_PER_SECOND = 1

# Columns of all_stage / realshow (and the test feathers).
REQUEST_ID = "request_id"
REQUEST_TIMESTAMP = "request_timestamp"
USER_ID = "user_id"
DEVICE_ID = "device_id"
AGE = "age"
GENDER = "gender"
PROVINCE = "province"
VIDEO_ID = "video_id"
AUTHOR_ID = "author_id"
CATEGORY_LEVEL_ONE = "category_level_one"
CATEGORY_LEVEL_TWO = "category_level_two"
UPLOAD_TYPE = "upload_type"
UPLOAD_TIMESTAMP = "upload_timestamp"
DURATION = "duration"
REALSHOW = "realshow"
RERANK_POS = "rerank_pos"
RERANK_NEG = "rerank_neg"
RANK_POS = "rank_pos"
RANK_NEG = "rank_neg"
COARSE_NEG = "coarse_neg"
PRERANK_NEG = "prerank_neg"
RANK_INDEX = "rank_index"
RERANK_INDEX = "rerank_index"
PLAYING_TIME = "playing_time"
EFFECTIVE_VIEW = "effective_view"
LONG_VIEW = "long_view"
LIKE = "like"
FOLLOW = "follow"
FORWARD = "forward"
COMMENT = "comment"
#: Simulator-only column: the hidden probability in (0, 1) that the user effectively views the
#: video. Absent from the published dataset.
TRUE_PREFERENCE = "true_preference"

REQUEST_COLUMNS = (REQUEST_ID, REQUEST_TIMESTAMP, USER_ID, DEVICE_ID, AGE, GENDER, PROVINCE)
ITEM_COLUMNS = (
    VIDEO_ID,
    AUTHOR_ID,
    CATEGORY_LEVEL_ONE,
    CATEGORY_LEVEL_TWO,
    UPLOAD_TYPE,
    UPLOAD_TIMESTAMP,
    DURATION,
)
#: Stage flags in cascade order, as the keys of ``request_id_dict`` entries.
STAGE_FLAGS = (REALSHOW, RERANK_POS, RERANK_NEG, RANK_POS, RANK_NEG, COARSE_NEG, PRERANK_NEG)
STAGE_INDEX_COLUMNS = (RANK_INDEX, RERANK_INDEX)
FEEDBACK_COLUMNS = (PLAYING_TIME, EFFECTIVE_VIEW, LONG_VIEW, LIKE, FOLLOW, FORWARD, COMMENT)
PUBLISHED_COLUMNS = (
    REQUEST_COLUMNS + ITEM_COLUMNS + STAGE_FLAGS + STAGE_INDEX_COLUMNS + FEEDBACK_COLUMNS
)
#: The four stage groups of the training protocol, in slot order.
TRAINING_STAGES = (RANK_POS, RANK_NEG, COARSE_NEG, PRERANK_NEG)
#: ``rank_index``/``rerank_index`` of a row that did not reach that stage.
NOT_RANKED = -1

_FLAG_COLUMNS = frozenset((*STAGE_FLAGS, EFFECTIVE_VIEW, LONG_VIEW, LIKE, FOLLOW, FORWARD, COMMENT))
#: The dtype the simulator writes for each column (published files may use any integer width).
ALL_STAGE_DTYPES: dict[str, str] = {
    name: ("int8" if name in _FLAG_COLUMNS else "int64") for name in PUBLISHED_COLUMNS
} | {TRUE_PREFERENCE: "float32"}

#: Id fields counted in ``others/id_cnt.pkl``.
ID_FIELDS = (
    USER_ID,
    DEVICE_ID,
    AGE,
    GENDER,
    PROVINCE,
    VIDEO_ID,
    AUTHOR_ID,
    CATEGORY_LEVEL_ONE,
    CATEGORY_LEVEL_TWO,
    UPLOAD_TYPE,
)
#: Columns of one ``request_id_dict`` stage array (one row per video).
STAGE_ITEM_COLUMNS = (
    VIDEO_ID,
    AUTHOR_ID,
    DURATION,
    CATEGORY_LEVEL_TWO,
    UPLOAD_TYPE,
    UPLOAD_TIMESTAMP,
    CATEGORY_LEVEL_ONE,
    EFFECTIVE_VIEW,
)
#: Columns of one ``seq_effective_50_dict`` array (one row per past effective view).
SEQUENCE_COLUMNS = (
    VIDEO_ID,
    AUTHOR_ID,
    CATEGORY_LEVEL_TWO,
    CATEGORY_LEVEL_ONE,
    UPLOAD_TYPE,
    UPLOAD_TIMESTAMP,
    DURATION,
    REQUEST_TIMESTAMP,
    PLAYING_TIME,
    REQUEST_ID,
)
SEQUENCE_LENGTH = 50
#: Columns the test feathers must hold (what the public evaluations read).
TEST_COLUMNS = REQUEST_COLUMNS + ITEM_COLUMNS[:-1] + (EFFECTIVE_VIEW,)


class RecFlowError(ValueError):
    """A RecFlow file is missing, unreadable or does not match the schema.

    The message names the file and the problem.

    Example:
        >>> raise RecFlowError("all_stage/2024-01-13.feather: no column 'user_id'")
        Traceback (most recent call last):
        dftopk_cascade.pipelines.recflow.RecFlowError: all_stage/2024-01-13.feather: no column
        'user_id'
    """


@dataclass(frozen=True)
class StageItems:
    """One stage group of many requests as dense arrays.

    Attributes:
        values: int64 [requests, max_items, len(STAGE_ITEM_COLUMNS)], zero beyond ``counts``.
        counts: int64 [requests], the number of real rows per request (at most max_items).

    Example:
        >>> items = stack_stage_items({7: {RANK_POS: np.ones([3, 8], np.int64)}}, [7], RANK_POS,
        ...                           10, "request_id_dict/2024-01-13.pkl")
        >>> items.values.shape, items.counts.tolist()
        ((1, 10, 8), [3])
    """

    values: np.ndarray
    counts: np.ndarray


def day_file(root: str, folder: str, day: str) -> str:
    """Returns the path of ``day``'s file in ``folder`` (``.pkl`` for the dict folders).

    Example:
        >>> day_file("/data/RecFlow", SEQUENCE_DIR, "2024-01-13")
        '/data/RecFlow/seq_effective_50_dict/2024-01-13.pkl'
    """
    suffix = PICKLE_SUFFIX if folder in (SEQUENCE_DIR, REQUEST_DICT_DIR) else FEATHER_SUFFIX
    return os.path.join(root, folder, day + suffix)


def list_days(root: str) -> list[str]:
    """Returns the sorted days that have an ``all_stage`` file under ``root``.

    Example:
        >>> list_days(recflow_root)
        ['2024-01-13', '2024-01-14']
    """
    folder = require_folder(root, ALL_STAGE_DIR)
    return sorted(
        name[: -len(FEATHER_SUFFIX)] for name in os.listdir(folder) if name.endswith(FEATHER_SUFFIX)
    )


def require_folder(root: str, folder: str) -> str:
    """Returns ``root/folder``, raising ``RecFlowError`` when it is not a directory.

    Example:
        >>> require_folder(recflow_root, ALL_STAGE_DIR) == os.path.join(recflow_root, "all_stage")
        True
    """
    path = os.path.join(root, folder)
    if not os.path.isdir(path):
        raise RecFlowError(f"{path}: missing folder (expected the RecFlow layout under {root})")
    return path


def require_day_files(root: str, folders: Sequence[str], days: Sequence[str]) -> None:
    """Raises ``RecFlowError`` unless every folder exists and holds a file for every day.

    Example:
        >>> require_day_files(recflow_root, [ALL_STAGE_DIR, SEQUENCE_DIR], ["2024-01-13"])
        >>> require_day_files(recflow_root, [SEQUENCE_DIR], ["2024-02-30"])
        Traceback (most recent call last):
        dftopk_cascade.pipelines.recflow.RecFlowError: .../2024-02-30.pkl: missing day 2024-02-30 in
        ...
    """
    for folder in folders:
        require_folder(root, folder)
        for day in days:
            path = day_file(root, folder, day)
            if not os.path.isfile(path):
                raise RecFlowError(f"{path}: missing day {day} in {folder}/")


def _open_feather(path: str) -> pa.RecordBatchFileReader | pa.Table:
    if not os.path.isfile(path):
        raise RecFlowError(f"{path}: missing file")
    try:
        return pa.ipc.open_file(pa.memory_map(path))
    except (pa.ArrowInvalid, OSError):
        pass
    try:  # Feather V1 files are not Arrow IPC files: read them whole.
        return feather.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise RecFlowError(f"{path}: corrupt feather file ({error})") from error


def _check_column_types(path: str, schema: pa.Schema, columns: Sequence[str]) -> None:
    for name in columns:
        index = schema.get_field_index(name)
        if index < 0:
            raise RecFlowError(
                f"{path}: no column {name!r} (columns present: {', '.join(schema.names)})"
            )
        column_type = schema.field(index).type
        expected_float = name == TRUE_PREFERENCE
        ok = (
            pa.types.is_floating(column_type)
            if expected_float
            else pa.types.is_integer(column_type)
        )
        if not ok:
            wanted = "a float" if expected_float else "an integer"
            raise RecFlowError(
                f"{path}: column {name!r} has dtype {column_type}, expected {wanted}"
            )


def feather_column_names(path: str) -> list[str]:
    """Returns the column names of a feather file without reading its rows.

    Example:
        >>> REQUEST_ID in feather_column_names(day_file(recflow_root, ALL_STAGE_DIR, "2024-01-13"))
        True
    """
    return list(_open_feather(path).schema.names)


def iter_feather_batches(path: str, columns: Sequence[str]) -> Iterator[dict[str, np.ndarray]]:
    """Yields the feather file's record batches as ``{column: numpy array}``, validated.

    Only ``columns`` are read (memory-mapped); memory stays at one record batch. Raises
    ``RecFlowError`` for a missing file, a corrupt file, a missing column or a wrong dtype.

    Example:
        >>> path = day_file(recflow_root, ALL_STAGE_DIR, "2024-01-13")
        >>> sum(len(batch[REQUEST_ID]) for batch in iter_feather_batches(path, [REQUEST_ID]))
        4800
    """
    source = _open_feather(path)
    _check_column_types(path, source.schema, columns)
    indices = [source.schema.get_field_index(name) for name in columns]
    if isinstance(source, pa.Table):
        batches: Iterator[pa.RecordBatch] = iter(source.to_batches())
    else:
        batches = (source.get_batch(i) for i in range(source.num_record_batches))
    try:
        for batch in batches:
            yield {
                name: batch.column(index).to_numpy(zero_copy_only=False)
                for name, index in zip(columns, indices, strict=True)
            }
    except (pa.ArrowInvalid, OSError) as error:
        raise RecFlowError(f"{path}: corrupt feather file ({error})") from error


def read_feather(path: str, columns: Sequence[str]) -> pd.DataFrame:
    """Reads the given columns of a feather file into a DataFrame, validated.

    Example:
        >>> path = day_file(recflow_root, REALSHOW_DIR, "2024-01-13")
        >>> frame = read_feather(path, REQUEST_COLUMNS)
        >>> list(frame.columns) == list(REQUEST_COLUMNS)
        True
    """
    parts = list(iter_feather_batches(path, columns))
    if not parts:
        return pd.DataFrame({name: np.zeros(0, np.int64) for name in columns})
    return pd.DataFrame({name: np.concatenate([part[name] for part in parts]) for name in columns})


def read_realshow(root: str, day: str, columns: Sequence[str] = PUBLISHED_COLUMNS) -> pd.DataFrame:
    """Reads ``realshow/<day>.feather`` (the exposed rows).

    Example:
        >>> bool(read_realshow(recflow_root, "2024-01-13")[REALSHOW].all())
        True
    """
    return read_feather(day_file(root, REALSHOW_DIR, day), columns)


def read_test_feather(root: str, name: str, columns: Sequence[str] = TEST_COLUMNS) -> pd.DataFrame:
    """Reads ``others/<name>`` (one of ``TEST_FILES``).

    Example:
        >>> read_test_feather(recflow_root, "rank_test.feather")[REQUEST_ID].nunique()
        120
    """
    if name not in TEST_FILES:
        raise RecFlowError(f"{name}: not a RecFlow test file (one of {', '.join(TEST_FILES)})")
    return read_feather(os.path.join(root, OTHERS_DIR, name), columns)


def read_pickle_dict(path: str) -> dict:
    """Unpickles a dict, raising ``RecFlowError`` for a missing, corrupt or non-dict file.

    Only data is unpickled (``dftopk_cascade.pipelines.safe_pickle``): a file naming anything else
    (a function it would call) is refused.

    Example:
        >>> len(read_pickle_dict(day_file(recflow_root, SEQUENCE_DIR, "2024-01-13")))
        120
    """
    if not os.path.isfile(path):
        raise RecFlowError(f"{path}: missing file")
    try:
        with open(path, "rb") as file:
            value = load_data_pickle(file)
    except ForbiddenPickleError as error:
        raise RecFlowError(f"{path}: {error}") from error
    except Exception as error:  # unpickling corrupt bytes can raise almost any exception type
        raise RecFlowError(f"{path}: corrupt pickle ({type(error).__name__}: {error})") from error
    if not isinstance(value, dict):
        raise RecFlowError(f"{path}: expected a pickled dict, found {type(value).__name__}")
    return value


def read_id_counts(root: str) -> dict[str, int]:
    """Reads ``others/id_cnt.pkl``: the number of distinct ids of each field in ``ID_FIELDS``.

    Example:
        >>> read_id_counts(recflow_root)[GENDER]
        3
    """
    path = os.path.join(require_folder(root, OTHERS_DIR), ID_COUNT_FILE)
    counts = read_pickle_dict(path)
    result = {}
    for field in ID_FIELDS:
        if field not in counts:
            raise RecFlowError(f"{path}: no count for id field {field!r}")
        value = counts[field]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise RecFlowError(f"{path}: count of {field!r} is {value!r}, expected a positive int")
        result[field] = int(value)
    return result


def _missing_requests_error(
    path: str, mapping: Mapping, request_ids: Sequence[int]
) -> RecFlowError:
    missing = [request_id for request_id in request_ids if request_id not in mapping]
    shown = ", ".join(str(request_id) for request_id in missing[:5])
    return RecFlowError(f"{path}: {len(missing)} request ids missing from the dict (e.g. {shown})")


def stack_sequences(
    sequences: Mapping[int, np.ndarray], request_ids: Sequence[int], path: str
) -> np.ndarray:
    """Stacks the behaviour sequences of ``request_ids``: int64 [requests, 50, 10].

    Raises ``RecFlowError`` naming ``path`` when a request id is missing or an entry is not an
    integer array of shape [50, len(SEQUENCE_COLUMNS)].

    Example:
        >>> stack_sequences({5: np.zeros([50, 10], np.int64)}, [5], "seq.pkl").shape
        (1, 50, 10)
    """
    try:
        entries = [sequences[request_id] for request_id in request_ids]
    except KeyError:
        raise _missing_requests_error(path, sequences, request_ids) from None
    expected = (SEQUENCE_LENGTH, len(SEQUENCE_COLUMNS))
    for request_id, entry in zip(request_ids, entries, strict=True):
        shape = getattr(entry, "shape", None)
        dtype = getattr(entry, "dtype", None)
        if shape != expected or dtype is None or dtype.kind not in "iu":
            raise RecFlowError(
                f"{path}: sequence of request {request_id} is {type(entry).__name__} shape {shape}"
                f" dtype {dtype}, expected an integer array of shape {expected}"
            )
    if not entries:
        return np.zeros((0, *expected), np.int64)
    return np.stack(entries).astype(np.int64, copy=False)


def stack_stage_items(
    candidates: Mapping[int, Mapping[str, np.ndarray]],
    request_ids: Sequence[int],
    stage: str,
    max_items: int,
    path: str,
) -> StageItems:
    """Collects the first ``max_items`` videos of ``stage`` for each request into dense arrays.

    A request without the stage key has zero videos in it. Raises ``RecFlowError`` naming
    ``path`` for a missing request id or a malformed entry.

    Example:
        >>> items = stack_stage_items({1: {RANK_NEG: np.ones([12, 8], np.int64)}}, [1],
        ...                           RANK_NEG, 10, "request_id_dict/2024-01-13.pkl")
        >>> items.counts.tolist()
        [10]
    """
    try:
        entries = [candidates[request_id] for request_id in request_ids]
    except KeyError:
        raise _missing_requests_error(path, candidates, request_ids) from None
    width = len(STAGE_ITEM_COLUMNS)
    arrays = []
    for request_id, entry in zip(request_ids, entries, strict=True):
        if not isinstance(entry, Mapping):
            raise RecFlowError(
                f"{path}: entry of request {request_id} is {type(entry).__name__}, expected a "
                "dict of stage -> video array"
            )
        array = entry.get(stage)
        if array is None or np.size(array) == 0:
            arrays.append(np.zeros((0, width), np.int64))
            continue
        shape, dtype = getattr(array, "shape", None), getattr(array, "dtype", None)
        if len(shape or ()) != 2 or shape[1] != width or dtype is None or dtype.kind not in "iu":
            raise RecFlowError(
                f"{path}: {stage} of request {request_id} is {type(array).__name__} shape {shape}"
                f" dtype {dtype}, expected an integer array of shape [n, {width}]"
            )
        arrays.append(array[:max_items])
    counts = np.array([len(array) for array in arrays], np.int64)
    values = np.zeros((len(arrays), max_items, width), np.int64)
    if counts.sum() > 0:
        rows = np.repeat(np.arange(len(arrays)), counts)
        slots = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        values[rows, slots] = np.concatenate(arrays)
    return StageItems(values=values, counts=counts)
