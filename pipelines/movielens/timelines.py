"""MovieLens ratings cut into requests: a user at a moment, their past, what they rate next.

For each user, ratings are ordered by (timestamp, item_id). Every ``stride`` ratings, starting with
the first, a request is made for the moment of that rating ``s``:

- **moment**: the timestamp of rating ``s``;
- **history**: the movies the user rated strictly before the moment (timestamp < moment), the newest
  ``HISTORY_LENGTH``, oldest first; a rating at the moment itself is never history, even when
  it comes before ``s`` in the order (RecBole's timestamps have one-second resolution);
- **positives**: the ``POSITIVES`` ratings ``s``, ``s + 1``, ... (the movies the user rates next),
  with their ratings; a request needs all of them, so a user's last ratings that do not fill a
  request make none;
- **negatives**: ``NEGATIVES`` movies the user never rated, drawn uniformly without replacement
  with a generator seeded by (``seed``, user id), so the draw does not depend on the other users.

Requests are numbered 1, 2, ... in (moment, user) order.

Example:
    >>> from tests.pipelines.movielens_fixture import fixture_tables
    >>> tables = fixture_tables()
    >>> requests = user_timelines(tables.ratings, movie_ids=tables.movies["item_id"], seed=0)
    >>> requests.size, requests.positives.shape[1], requests.negatives.shape[1]
    (25, 10, 30)
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.movielens.errors import MovieLensError
from tqdm import tqdm

POSITIVES = fmt.GROUP_SIZE
NEGATIVES = fmt.NUM_CANDIDATES - POSITIVES
HISTORY_LENGTH = fmt.SEQUENCE_LENGTH
#: History slot of no movie (MovieLens item ids start at 1).
NO_MOVIE = 0


@dataclass(frozen=True)
class Requests:
    """Requests as aligned arrays, one row per request, in (moment, user) order.

    Attributes:
        request_id: int64 [requests], 1, 2, ...
        user_id: int64 [requests].
        moment: int64 [requests], Unix seconds.
        history: int64 [requests, HISTORY_LENGTH] movie ids, left-padded with ``NO_MOVIE``,
            newest last.
        positives: int64 [requests, POSITIVES] movie ids in rating order.
        positive_ratings: int64 [requests, POSITIVES], 1-5.
        negatives: int64 [requests, NEGATIVES] movie ids the user never rated.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> tables = fixture_tables()
        >>> requests = user_timelines(tables.ratings, tables.movies["item_id"], seed=0)
        >>> requests.request_id[:3].tolist()
        [1, 2, 3]
    """

    request_id: np.ndarray
    user_id: np.ndarray
    moment: np.ndarray
    history: np.ndarray
    positives: np.ndarray
    positive_ratings: np.ndarray
    negatives: np.ndarray

    @property
    def size(self) -> int:
        """The number of requests.

        Example:
            >>> from tests.pipelines.movielens_fixture import fixture_tables
            >>> tables = fixture_tables()
            >>> user_timelines(tables.ratings, tables.movies["item_id"], seed=0).size
            25
        """
        return len(self.request_id)

    def take(self, rows: np.ndarray) -> "Requests":
        """The requests at ``rows`` (indices or a boolean mask), in that order.

        Example:
            >>> from tests.pipelines.movielens_fixture import fixture_tables
            >>> tables = fixture_tables()
            >>> requests = user_timelines(tables.ratings, tables.movies["item_id"], seed=0)
            >>> requests.take(np.array([2, 0])).request_id.tolist()
            [3, 1]
        """
        return Requests(**{name: value[rows] for name, value in vars(self).items()})


def user_timelines(
    ratings: pd.DataFrame,
    movie_ids: pd.Series,
    seed: int,
    stride: int = POSITIVES,
    progress: bool = False,
) -> Requests:
    """Cuts every user's ratings into requests (module docstring).

    Args:
        ratings: ``MovieLensTables.ratings``.
        movie_ids: every movie of the catalogue (``MovieLensTables.movies["item_id"]``): the
            pool of negatives.
        seed: seed of the negatives' draw.
        stride: ratings between two requests of a user (``POSITIVES``: each rating is a
            positive once).
        progress: show a tqdm counter of users.

    Raises ``MovieLensError`` for a stride below 1 or a user with fewer than ``NEGATIVES``
    movies left unrated.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> tables = fixture_tables()
        >>> user_timelines(tables.ratings, tables.movies["item_id"], seed=0, stride=5).size
        44
    """
    if stride < 1:
        raise MovieLensError(f"--stride must be >= 1, got {stride}")
    catalogue = np.unique(movie_ids.to_numpy(np.int64))
    ordered = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    users = ordered["user_id"].to_numpy(np.int64)
    movies = ordered["item_id"].to_numpy(np.int64)
    scores = ordered["rating"].to_numpy(np.int64)
    times = ordered["timestamp"].to_numpy(np.int64)
    user_list, first = np.unique(users, return_index=True)
    ends = np.append(first[1:], len(users))
    parts: dict[str, list[np.ndarray]] = {name: [] for name in Requests.__dataclass_fields__}
    for user, begin, end in tqdm(
        zip(user_list.tolist(), first.tolist(), ends.tolist(), strict=True),
        total=len(user_list),
        unit="user",
        desc="movielens requests",
        disable=not progress,
    ):
        starts = np.arange(0, end - begin - POSITIVES + 1, stride)
        if not len(starts):
            continue
        user_movies, user_times = movies[begin:end], times[begin:end]
        unrated = np.setdiff1d(catalogue, user_movies)
        if len(unrated) < NEGATIVES:
            raise MovieLensError(
                f"user {user} rated all but {len(unrated)} of the {len(catalogue)} movies; a "
                f"request needs {NEGATIVES} never-rated movies as negatives"
            )
        moments = user_times[starts]
        history_ends = np.searchsorted(user_times, moments, side="left")
        history = np.full([len(starts), HISTORY_LENGTH], NO_MOVIE, np.int64)
        for row, history_end in enumerate(history_ends.tolist()):
            past = user_movies[max(0, history_end - HISTORY_LENGTH) : history_end]
            history[row, HISTORY_LENGTH - len(past) :] = past
        window = starts[:, None] + np.arange(POSITIVES)[None, :]
        generator = np.random.default_rng([seed, user])
        parts["user_id"].append(np.full(len(starts), user, np.int64))
        parts["moment"].append(moments)
        parts["history"].append(history)
        parts["positives"].append(user_movies[window])
        parts["positive_ratings"].append(scores[begin:end][window])
        parts["negatives"].append(
            np.stack([generator.choice(unrated, NEGATIVES, replace=False) for _ in starts])
        )
    if not parts["user_id"]:
        raise MovieLensError(f"no user has {POSITIVES} ratings: the ratings make no request")
    arrays = {name: np.concatenate(values) for name, values in parts.items() if values}
    order = np.lexsort((arrays["user_id"], arrays["moment"]))
    arrays = {name: values[order] for name, values in arrays.items()}
    arrays["request_id"] = np.arange(1, len(order) + 1, dtype=np.int64)
    return Requests(**arrays)
