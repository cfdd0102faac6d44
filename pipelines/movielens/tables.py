"""MovieLens-100K's three atomic files parsed into checked tables.

RecBole's atomic files are tab-separated with a typed header (``name:type``):

- ``ml-100k.inter``: ``user_id:token  item_id:token  rating:float  timestamp:float``;
- ``ml-100k.user``: ``user_id:token  age:token  gender:token  occupation:token  zip_code:token``;
- ``ml-100k.item``: ``item_id:token  movie_title:token_seq  release_year:token  class:token_seq``
  (``class``: the genres, space-separated).

Every table must have exactly these columns; ids, ages and timestamps must be non-negative
integers and ratings integers 1-5; every rating's user and movie must be listed. Anything else is
a ``MovieLensError`` naming the file, the line and what is wrong.

Example:
    >>> from tests.pipelines.movielens_fixture import fixture_texts
    >>> tables = parse_tables(fixture_texts())
    >>> tables.ratings.columns.tolist(), bool(tables.ratings["rating"].between(1, 5).all())
    (['user_id', 'item_id', 'rating', 'timestamp'], True)
"""

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dftopk_cascade.pipelines.movielens.errors import MovieLensError

#: Each table's header, as written in the files.
HEADERS = {
    "inter": ("user_id:token", "item_id:token", "rating:float", "timestamp:float"),
    "user": ("user_id:token", "age:token", "gender:token", "occupation:token", "zip_code:token"),
    "item": ("item_id:token", "movie_title:token_seq", "release_year:token", "class:token_seq"),
}
#: Columns parsed as non-negative integers.
INTEGER_COLUMNS = {
    "inter": ("user_id", "item_id", "rating", "timestamp"),
    "user": ("user_id", "age"),
    "item": ("item_id",),
}
LOWEST_RATING = 1
HIGHEST_RATING = 5


@dataclass(frozen=True)
class MovieLensTables:
    """The three tables, columns named as in the files without their types.

    Attributes:
        ratings: user_id, item_id, rating (1-5), timestamp (Unix seconds), all int64.
        users: user_id (int64), age (int64), gender, occupation, zip_code (str); one row per user.
        movies: item_id (int64), movie_title, release_year, class (str, "" when empty).

    Example:
        >>> from tests.pipelines.movielens_fixture import fixture_tables
        >>> fixture_tables().users.columns.tolist()
        ['user_id', 'age', 'gender', 'occupation', 'zip_code']
    """

    ratings: pd.DataFrame
    users: pd.DataFrame
    movies: pd.DataFrame


def _file_name(table: str) -> str:
    return f"ml-100k.{table}"


def parse_table(table: str, text: str) -> pd.DataFrame:
    """Parses one atomic file (``table`` is ``inter``, ``user`` or ``item``) and checks it.

    Example:
        >>> parse_table("inter", "user_id:token\\titem_id:token\\trating:float\\ttimestamp:float\\n"
        ...             "1\\t2\\t9\\t5\\n")
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.movielens.errors.MovieLensError: ml-100k.inter line 2: rating 9 is
        not in 1-5; ...
    """
    name = _file_name(table)
    header, _, body = text.partition("\n")
    found = tuple(header.rstrip("\r").split("\t"))
    if found != HEADERS[table]:
        raise MovieLensError(
            f"{name}: header {' '.join(found)!r}, expected {' '.join(HEADERS[table])!r}; "
            "this is not RecBole's ml-100k file: fetch the pinned wheel again"
        )
    if not body.strip():
        raise MovieLensError(f"{name}: no rows; fetch the pinned wheel again")
    columns = [column.split(":")[0] for column in HEADERS[table]]
    frame = pd.read_csv(
        io.StringIO(body),
        sep="\t",
        names=columns,
        dtype=str,
        keep_default_na=False,
        quoting=3,  # csv.QUOTE_NONE: titles hold quotes
    )
    for column in INTEGER_COLUMNS[table]:
        values = frame[column].str.strip()
        bad = ~values.str.fullmatch(r"\d+(\.0*)?")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise MovieLensError(
                f"{name} line {row + 2}: {column} {frame[column].iloc[row]!r} is not a "
                "non-negative integer; fetch the pinned wheel again"
            )
        frame[column] = values.str.split(".").str[0].astype(np.int64)
    if table == "inter":
        outside = (frame["rating"] < LOWEST_RATING) | (frame["rating"] > HIGHEST_RATING)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise MovieLensError(
                f"{name} line {row + 2}: rating {frame['rating'].iloc[row]} is not in "
                f"{LOWEST_RATING}-{HIGHEST_RATING}; fetch the pinned wheel again"
            )
    key = columns[0]
    if table != "inter" and frame[key].duplicated().any():
        duplicate = int(frame[key][frame[key].duplicated()].iloc[0])
        raise MovieLensError(f"{name}: {key} {duplicate} is listed twice")
    return frame


def parse_tables(texts: dict[str, str]) -> MovieLensTables:
    """Parses the three files (``wheel.read_members``) and checks that they refer to each other.

    Example:
        >>> from dftopk_cascade.pipelines.movielens.wheel import read_members
        >>> from tests.pipelines.movielens_fixture import fixture_wheel
        >>> tables = parse_tables(read_members(fixture_wheel(tmp_dir)[0]))
        >>> len(tables.users), len(tables.movies), len(tables.ratings)
        (12, 60, 302)
    """
    ratings = parse_table("inter", texts["inter"])
    users = parse_table("user", texts["user"])
    movies = parse_table("item", texts["item"])
    for column, listed, table in (("user_id", users, "user"), ("item_id", movies, "item")):
        unknown = ~ratings[column].isin(listed[column])
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise MovieLensError(
                f"{_file_name('inter')} line {row + 2}: {column} {ratings[column].iloc[row]} "
                f"is not in {_file_name(table)}; fetch the pinned wheel again"
            )
    return MovieLensTables(ratings=ratings, users=users, movies=movies)
