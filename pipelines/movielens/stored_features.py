"""MovieLens requests as the stored example features of ``dftopk_cascade.pipelines.example_format``.

Per request, in the contract's slots (every id + 1, 0 on padding):

- ``context``: weekday, hour and minute of the moment, in UTC (MovieLens timestamps are Unix
  seconds with no time zone);
- ``user``: the user's ids (``id_tables``);
- ``seq``: the history's movies, left-padded, newest last;
- ``items``: the ``rank_pos`` slots 0-9 hold the positives (the movies rated next), slots 10-39
  the negatives (never rated), spread over ``rank_neg``, ``coarse_neg`` and ``prerank_neg``; the
  upload weekday, hour and minute are 0 (+ 1);
- ``rank_index``: ``HIGHEST_RATING - rating`` of each positive, so that the contract's label
  ``30 - rank_index`` is ``25 + rating`` (26-30).

The contract gives the negatives its constant group labels (7, 6 and 5,
``dftopk_cascade.pipelines.labels``), all below every positive, so the ground truth (top 10 by
label) is exactly the 10 movies rated next.

Example:
    >>> from dftopk_cascade.pipelines.movielens.id_tables import id_tables
    >>> from dftopk_cascade.pipelines.movielens.timelines import user_timelines
    >>> from tests.pipelines.movielens_fixture import fixture_tables
    >>> tables = fixture_tables()
    >>> ids = id_tables(tables)
    >>> requests = user_timelines(tables.ratings, tables.movies["item_id"], seed=0)
    >>> features = example_features(requests, ids)
    >>> features["items"].shape[1:], int(features["item_mask"].min())
    ((40, 8), 1)
"""

import numpy as np
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.movielens.id_tables import IdTables
from dftopk_cascade.pipelines.movielens.tables import HIGHEST_RATING
from dftopk_cascade.pipelines.movielens.timelines import NO_MOVIE, Requests
from dftopk_cascade.pipelines.time_features import weekday_hour_minute

#: MovieLens timestamps are read in UTC.
UTC_OFFSET_SECONDS = 0
_UPLOAD_TIME_FIELDS = 3


def example_features(requests: Requests, ids: IdTables) -> dict[str, np.ndarray]:
    """Returns ``example_format.INT_FEATURES`` name -> int64 array, one row per request.

    Example:
        >>> from dftopk_cascade.pipelines.movielens.id_tables import id_tables
        >>> from dftopk_cascade.pipelines.movielens.timelines import user_timelines
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> tables = fixture_tables()
        >>> ids = id_tables(tables)
        >>> requests = user_timelines(tables.ratings, tables.movies["item_id"], seed=0)
        >>> int(example_features(requests, ids)["rank_index"].max()) <= 4
        True
    """
    count = requests.size
    context = weekday_hour_minute(requests.moment, per_second=1, utc_offset=UTC_OFFSET_SECONDS)
    real_history = requests.history != NO_MOVIE
    seq = np.where(real_history[..., None], ids.movies[requests.history] + 1, 0)
    candidates = np.concatenate([requests.positives, requests.negatives], axis=1)
    upload_time = np.ones([count, fmt.NUM_CANDIDATES, _UPLOAD_TIME_FIELDS], np.int64)
    items = np.concatenate([ids.movies[candidates] + 1, upload_time], axis=-1)
    return {
        fmt.REQUEST_ID: requests.request_id.reshape(count, 1),
        fmt.CONTEXT: context + 1,
        fmt.USER: ids.users[requests.user_id] + 1,
        fmt.SEQ: seq,
        fmt.ITEMS: items,
        fmt.ITEM_MASK: np.ones([count, fmt.NUM_CANDIDATES], np.int64),
        fmt.RANK_INDEX: HIGHEST_RATING - requests.positive_ratings,
    }
