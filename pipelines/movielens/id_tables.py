"""MovieLens users and movies as the contract's id fields (the raw, unshifted ids).

The batch contract (docs/CONTRACTS.md) has RecFlow's fields; MovieLens fills them so:

==================  ====================================================================
contract field      MovieLens value
==================  ====================================================================
user_id             ``user_id`` as in the file
device_id           occupation (index in ``vocabularies["occupation"]``)
gender              gender (index in ``vocabularies["gender"]``)
age                 age in years
province            the first ``ZIP_PREFIX_LENGTH`` characters of the zip code (index)
video_id            ``item_id`` as in the file
author_id           release year (index in ``vocabularies["release_year"]``; "" = unknown)
category_level_two  the movie's set of genres (index in ``vocabularies["genre_set"]``)
category_level_one  the first genre listed (index in ``vocabularies["genre"]``)
upload_type         release decade (index in ``vocabularies["decade"]``)
==================  ====================================================================

MovieLens has no upload time: the items' upload weekday, hour and minute are 0. Every value comes
from the static user and movie files, never from ratings, so no id carries behaviour.

Example:
    >>> from tests.pipelines.movielens_fixture import fixture_tables
    >>> ids = id_tables(fixture_tables())
    >>> ids.users.shape[1], ids.movies.shape[1], ids.id_counts["gender"]
    (5, 5, 2)
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.movielens.tables import MovieLensTables

ZIP_PREFIX_LENGTH = 2
UNKNOWN = ""


@dataclass(frozen=True)
class IdTables:
    """Contract ids of every user and movie, indexed by their MovieLens id.

    Attributes:
        users: int64 [largest user_id + 1, 5]: ``example_format.USER_FIELDS`` of each user.
        movies: int64 [largest item_id + 1, 5]: ``example_format.SEQUENCE_FIELDS`` of each movie.
        id_counts: every ``recflow.ID_FIELDS`` field -> number of ids (the ``id_cnt.pkl`` role).
        vocabularies: the value behind each index of the indexed fields.

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> ids = id_tables(fixture_tables())
        >>> ids.users[1].tolist()  # user 1: id, occupation, gender, age, zip prefix
        [1, 3, 1, 21, 0]
    """

    users: np.ndarray
    movies: np.ndarray
    id_counts: dict[str, int]
    vocabularies: dict[str, list[str]]


def _index(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each value's index in the sorted distinct values, and those values."""
    vocabulary = sorted(set(values.tolist()))
    positions = {value: index for index, value in enumerate(vocabulary)}
    return values.map(positions).to_numpy(np.int64), vocabulary


def _decade(year: str) -> str:
    return f"{year[:3]}0s" if len(year) == 4 and year.isdigit() else UNKNOWN


def id_tables(tables: MovieLensTables) -> IdTables:
    """Maps users and movies to the contract's id fields (table in the module docstring).

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> ids = id_tables(fixture_tables())
        >>> ids.vocabularies["genre"][ids.movies[2][3]]  # movie 2's first genre
        'Drama'
    """
    users, movies = tables.users, tables.movies
    occupation, occupations = _index(users["occupation"].str.strip().str.lower())
    gender, genders = _index(users["gender"].str.strip().str.upper())
    prefix = users["zip_code"].str.strip().str.upper().str[:ZIP_PREFIX_LENGTH]
    province, prefixes = _index(prefix)
    user_ids = users["user_id"].to_numpy(np.int64)
    ages = users["age"].to_numpy(np.int64)
    user_rows = np.zeros([int(user_ids.max()) + 1, len(fmt.USER_FIELDS)], np.int64)
    user_rows[user_ids] = np.stack([user_ids, occupation, gender, ages, province], axis=1)

    genre_lists = movies["class"].str.split().apply(lambda genres: genres or [UNKNOWN])
    year = movies["release_year"].str.strip()
    release_year, years = _index(year)
    genre_set, genre_sets = _index(genre_lists.apply(lambda genres: " ".join(sorted(genres))))
    first_genre, genres = _index(genre_lists.str[0])
    decade, decades = _index(year.apply(_decade))
    movie_ids = movies["item_id"].to_numpy(np.int64)
    movie_rows = np.zeros([int(movie_ids.max()) + 1, len(fmt.SEQUENCE_FIELDS)], np.int64)
    movie_rows[movie_ids] = np.stack(
        [movie_ids, release_year, genre_set, first_genre, decade], axis=1
    )

    id_counts = {
        recflow.USER_ID: len(user_rows),
        recflow.DEVICE_ID: len(occupations),
        recflow.GENDER: len(genders),
        recflow.AGE: int(ages.max()) + 1,
        recflow.PROVINCE: len(prefixes),
        recflow.VIDEO_ID: len(movie_rows),
        recflow.AUTHOR_ID: len(years),
        recflow.CATEGORY_LEVEL_TWO: len(genre_sets),
        recflow.CATEGORY_LEVEL_ONE: len(genres),
        recflow.UPLOAD_TYPE: len(decades),
    }
    return IdTables(
        users=user_rows,
        movies=movie_rows,
        id_counts=id_counts,
        vocabularies={
            "occupation": occupations,
            "gender": genders,
            "zip_prefix": prefixes,
            "release_year": years,
            "genre_set": genre_sets,
            "genre": genres,
            "decade": decades,
        },
    )
