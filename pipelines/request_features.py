"""A RecFlow day's requests as the stored example features (``example_format``), vectorised.

Ids are shifted by + 1 so that 0 is padding, ids outside ``[0, id_cnt)`` go to the field's
out-of-vocabulary bucket ``id_cnt + 1``, and timestamps become weekday/hour/minute (+ 1) in
RecFlow time.

Example:
    >>> features, out_of_vocabulary = request_features(day, id_counts)
    >>> features["items"].shape[1:], sum(out_of_vocabulary.values())
    ((40, 8), 0)
"""

import numpy as np
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.recflow_day import RecFlowDay
from dftopk_cascade.pipelines.time_features import weekday_hour_minute


def _shift_ids(
    values: np.ndarray, field: str, id_counts: dict[str, int], real: np.ndarray, oov: dict
) -> np.ndarray:
    """ids + 1 (0 where not ``real``), out-of-range ids to ``count + 1``; counts the latter."""
    count = id_counts[field]
    outside = real & ((values < 0) | (values >= count))
    oov[field] = oov.get(field, 0) + int(outside.sum())
    return np.where(real, np.where(outside, count + 1, values + 1), 0)


def request_features(
    day: RecFlowDay, id_counts: dict[str, int]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Returns the day's example features and the out-of-vocabulary count of each id field.

    Example:
        >>> features, _ = request_features(day, id_counts)
        >>> int(features["context"].min()) >= 1
        True
    """
    oov: dict[str, int] = {}
    columns = day.request_columns
    requests = day.size
    every_request = np.ones(requests, bool)
    context = weekday_hour_minute(
        columns[recflow.REQUEST_TIMESTAMP], recflow.REQUEST_TIMESTAMP_PER_SECOND
    )
    user = np.stack(
        [_shift_ids(columns[f], f, id_counts, every_request, oov) for f in fmt.USER_FIELDS], axis=1
    )

    sequences = day.sequences
    sequence_real = sequences[..., recflow.SEQUENCE_COLUMNS.index(recflow.REQUEST_TIMESTAMP)] > 0
    seq = np.stack(
        [
            _shift_ids(
                sequences[..., recflow.SEQUENCE_COLUMNS.index(field)],
                field,
                id_counts,
                sequence_real,
                oov,
            )
            for field in fmt.SEQUENCE_FIELDS
        ],
        axis=-1,
    )

    groups = [day.stage_items[stage] for stage in recflow.TRAINING_STAGES]
    values = np.concatenate([group.values for group in groups], axis=1)
    slots = np.arange(fmt.GROUP_SIZE)[None, :]
    item_real = np.concatenate([slots < group.counts[:, None] for group in groups], axis=1)

    def item_column(name: str) -> np.ndarray:
        return values[..., recflow.STAGE_ITEM_COLUMNS.index(name)]

    upload_time = weekday_hour_minute(
        item_column(recflow.UPLOAD_TIMESTAMP), recflow.UPLOAD_TIMESTAMP_PER_SECOND
    )
    items = np.stack(
        [
            _shift_ids(item_column(field), field, id_counts, item_real, oov)
            for field in fmt.SEQUENCE_FIELDS
        ]
        + [np.where(item_real, upload_time[..., i] + 1, 0) for i in range(3)],
        axis=-1,
    )
    features = {
        fmt.REQUEST_ID: columns[recflow.REQUEST_ID].reshape(requests, 1),
        fmt.CONTEXT: context + 1,
        fmt.USER: user,
        fmt.SEQ: seq,
        fmt.ITEMS: items,
        fmt.ITEM_MASK: item_real.astype(np.int64),
        fmt.RANK_INDEX: day.rank_index,
    }
    if day.preference is not None:
        features[fmt.PREFERENCE] = day.preference
    return features, oov
