"""The item corpus retrieval serves from: every distinct item of the converted data.

Items are the contract's 8-field rows (``items`` of docs/CONTRACTS.md: video_id, author_id,
category_level_two, category_level_one, upload_type, upload weekday, hour, minute; ids + 1). A
video's fields do not change between requests, so the corpus keeps one row per ``video_id``
(the first seen), ordered by ``video_id``; a row's position is the ``item_ids`` retrieval returns.

Example:
    >>> import tempfile
    >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
    >>> folder = tempfile.TemporaryDirectory()  # two simulated days, converted
    >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
    >>> corpus = collect_item_corpus(data_dir)
    >>> corpus.shape[1], corpus.dtype
    (8, dtype('int32'))
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from dftopk_cascade.pipelines.input import make_dataset

READ_BATCH = 1024


def distinct_items(items: np.ndarray) -> np.ndarray:
    """One row per video id (column 0; the first occurrence), ordered by video id; 0 rows dropped.

    Example:
        >>> distinct_items(np.array([[5, 1], [2, 7], [5, 9], [0, 0]])).tolist()
        [[2, 7], [5, 1]]
    """
    items = np.asarray(items)
    if items.ndim != 2 or items.shape[0] == 0:
        raise ValueError(f"items must be a non-empty [count, fields] array, got {items.shape}")
    items = items[items[:, 0] > 0]
    _, first = np.unique(items[:, 0], return_index=True)
    return items[first].astype(np.int32)


def collect_item_corpus(
    data_dir: str, days: Sequence[str] | None = None, schema: dict[str, Any] | None = None
) -> np.ndarray:
    """int32 [items, 8]: the distinct candidate items of ``days`` (default: every converted day)
    of a ``python -m dftopk_cascade.pipelines.convert`` folder.

    ``schema`` is the folder's schema when the caller has read it already (else read here).
    Raises ``ValueError`` when the data holds no item.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
        >>> folder = tempfile.TemporaryDirectory()  # two simulated days, converted
        >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
        >>> collect_item_corpus(data_dir, days=["2024-01-14"]).shape[1]
        8
    """
    dataset = make_dataset(
        data_dir, READ_BATCH, shuffle=False, deterministic=True, days=days, schema=schema
    )
    seen = []
    for features, _ in dataset:
        seen.append(features["items"].numpy()[features["item_mask"].numpy()])
    if not seen or not sum(len(rows) for rows in seen):
        raise ValueError(f"{data_dir}: no candidate items in days {days or 'all'}")
    return distinct_items(np.concatenate(seen))
