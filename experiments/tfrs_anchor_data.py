"""MovieLens-100K as TFRS's basic retrieval tutorial sees it, and the anchor's two splits.

The tutorial reads ``tensorflow_datasets``' ``movielens/100k-ratings``, which cannot be
downloaded here; ``tutorial_ratings`` maps the recbole copy (``dftopk_cascade.pipelines.movielens``)
to the same two fields: ``user_id`` (the user id as a string) and ``movie_title`` (the title with
its year in brackets, as in ``u.item`` and TFDS, e.g. ``Toy Story (1995)``; 1,664 distinct titles
for 1,682 movies, as in TFDS, since a few movies share a title). The row order is the recbole file's
(``u.data``'s), which need not be TFDS's, so the tutorial's seeded shuffle draws another 80/20 split
of the same ratings.

- ``random_split``: the tutorial's split: ``tf.random.set_seed(42)``, one shuffle of every rating
  with seed 42 (``reshuffle_each_iteration=False``), the first 80% for training, the rest test.
- ``temporal_split``: each user's last 20% of ratings by time held out, the earlier ones trained
  on (ties in time keep the file order).

Example:
    >>> from tests.pipelines.movielens_fixture import fixture_tables
    >>> ratings = tutorial_ratings(fixture_tables())
    >>> train, test = random_split(ratings)
    >>> len(train) + len(test) == len(ratings), round(len(train) / len(ratings), 2)
    (True, 0.8)
"""

import numpy as np
import pandas as pd
import tensorflow as tf
from dftopk_cascade.pipelines.movielens.tables import MovieLensTables

#: The tutorial's seed of ``tf.random.set_seed`` and of the split's shuffle.
TUTORIAL_SPLIT_SEED = 42
#: The share of ratings trained on (the tutorial's 80,000 of 100,000).
TRAIN_SHARE = 0.8
SPLITS = ("random", "temporal")


def movie_titles(tables: MovieLensTables) -> pd.Series:
    """Every movie's title as TFDS spells it: ``Title (year)``, the title alone without a year.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> movie_titles(fixture_tables()).tolist()[:2]
        ['Movie 1 (1953)', 'Movie 2 (1956)']
    """
    movies = tables.movies
    with_year = movies["movie_title"] + " (" + movies["release_year"] + ")"
    titles = with_year.where(movies["release_year"] != "", movies["movie_title"])
    return pd.Series(titles.to_numpy(), index=movies["item_id"].to_numpy(), name="movie_title")


def tutorial_ratings(tables: MovieLensTables) -> pd.DataFrame:
    """The ratings as the tutorial's fields, in file order: user_id, movie_title (str), timestamp.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> tutorial_ratings(fixture_tables()).columns.tolist()
        ['user_id', 'movie_title', 'timestamp']
    """
    ratings = tables.ratings
    titles = movie_titles(tables)
    return pd.DataFrame(
        {
            "user_id": ratings["user_id"].astype(str).to_numpy(),
            "movie_title": titles.loc[ratings["item_id"].to_numpy()].to_numpy(),
            "timestamp": ratings["timestamp"].to_numpy(),
        }
    )


def train_count(total: int) -> int:
    """How many of ``total`` ratings the random split trains on.

    Example:
        >>> train_count(100_000)
        80000
    """
    return round(total * TRAIN_SHARE)


def random_split(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tutorial's split: a seed-42 shuffle of every rating, the first 80% trained on.

    Example:
        >>> frame = pd.DataFrame({"user_id": list("abcdefghij")})
        >>> train, test = random_split(frame)
        >>> len(train), len(test), sorted(train["user_id"].tolist() + test["user_id"].tolist())[0]
        (8, 2, 'a')
    """
    tf.random.set_seed(TUTORIAL_SPLIT_SEED)
    positions = tf.data.Dataset.range(len(ratings)).shuffle(
        len(ratings), seed=TUTORIAL_SPLIT_SEED, reshuffle_each_iteration=False
    )
    order = np.fromiter(positions.as_numpy_iterator(), dtype=np.int64, count=len(ratings))
    cut = train_count(len(ratings))
    shuffled = ratings.iloc[order].reset_index(drop=True)
    return shuffled.iloc[:cut].reset_index(drop=True), shuffled.iloc[cut:].reset_index(drop=True)


def temporal_split(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's last 20% of ratings by time held out (at least one), the earlier trained on.

    Example:
        >>> frame = pd.DataFrame({"user_id": ["u"] * 5, "timestamp": [5, 1, 4, 2, 3]})
        >>> train, test = temporal_split(frame)
        >>> train["timestamp"].tolist(), test["timestamp"].tolist()
        ([1, 2, 3, 4], [5])
    """
    ordered = ratings.assign(_row=np.arange(len(ratings)))
    ordered = ordered.sort_values(["user_id", "timestamp", "_row"], kind="stable")
    rank = ordered.groupby("user_id", sort=False).cumcount()
    count = ordered.groupby("user_id", sort=False)["timestamp"].transform("size")
    held_out = np.maximum(1, np.floor(count * (1 - TRAIN_SHARE) + 1e-9)).astype(int)
    is_test = rank >= count - held_out
    ordered = ordered.drop(columns="_row")
    return (
        ordered[~is_test].reset_index(drop=True),
        ordered[is_test].reset_index(drop=True),
    )


def split_ratings(ratings: pd.DataFrame, split: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, held out) of ``ratings`` by ``split`` (one of ``SPLITS``).

    Example:
        >>> split_ratings(pd.DataFrame({"user_id": []}), "by-genre")
        Traceback (most recent call last):
        ...
        ValueError: --splits: unknown split 'by-genre'; choose from random, temporal
    """
    if split == "random":
        return random_split(ratings)
    if split == "temporal":
        return temporal_split(ratings)
    raise ValueError(f"--splits: unknown split {split!r}; choose from {', '.join(SPLITS)}")
