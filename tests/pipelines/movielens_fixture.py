"""A tiny MovieLens-100K in the recbole wheel's file format, made here (never the registry).

12 users, 60 movies and a few hundred ratings over about a month from 1997-09-20, written as
RecBole atomic files (tab-separated, typed headers) at the paths the ``recbole`` wheel uses,
inside a zip named like the wheel. Some ratings of a user share a second, as in MovieLens, so
that "strictly before the moment" is exercised; one movie has no year and no genre; one title
holds quotes; one zip code is Canadian.
"""

import hashlib
import os
import zipfile

import numpy as np
from dftopk_cascade.pipelines.movielens.tables import MovieLensTables, parse_tables
from dftopk_cascade.pipelines.movielens.wheel import MEMBER_FOLDER, MEMBERS, WHEEL_NAME

USERS = 12
MOVIES = 60
FIRST_SECOND = 874_713_600  # 1997-09-20 00:00 UTC
GENRES = ("Action", "Comedy", "Drama", "Sci-Fi", "Children's", "Film-Noir")
OCCUPATIONS = ("writer", "technician", "student", "other", "educator")


def fixture_texts(seed: int = 7) -> dict[str, str]:
    """The three atomic files' texts (``inter``, ``user``, ``item``)."""
    generator = np.random.default_rng(seed)
    user_lines = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    for user in range(1, USERS + 1):
        zip_code = "T8H1N" if user == 5 else f"{(user * 7919) % 100000:05d}"
        gender = "F" if user % 3 == 0 else "M"
        occupation = OCCUPATIONS[user % len(OCCUPATIONS)]
        user_lines.append(f"{user}\t{18 + 3 * user}\t{gender}\t{occupation}\t{zip_code}")
    item_lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for movie in range(1, MOVIES + 1):
        if movie == MOVIES:
            item_lines.append(f"{movie}\tunknown\t\t")
            continue
        title = 'The "Quoted" Movie' if movie == 7 else f"Movie {movie}"
        genres = " ".join(GENRES[(movie + j) % len(GENRES)] for j in range(1 + movie % 3))
        item_lines.append(f"{movie}\t{title}\t{1950 + (movie * 3) % 48}\t{genres}")
    inter_lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, USERS + 1):
        count = 20 + (user * 7) % 11
        movies = generator.choice(np.arange(1, MOVIES + 1), count, replace=False)
        gaps = np.where(generator.random(count) < 0.3, 0, generator.integers(60, 250_000, count))
        times = FIRST_SECOND + int(generator.integers(0, 400_000)) + np.cumsum(gaps)
        ratings = generator.integers(1, 6, count)
        for movie, rating, second in zip(movies, ratings, times, strict=True):
            inter_lines.append(f"{user}\t{movie}\t{rating}\t{second}")
    return {
        "inter": "\n".join(inter_lines) + "\n",
        "user": "\n".join(user_lines) + "\n",
        "item": "\n".join(item_lines) + "\n",
    }


def write_zip(path: str, texts: dict[str, str]) -> str:
    """Writes ``texts`` at the wheel's member paths (plus an unrelated member) into ``path``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("recbole/__init__.py", "")
        for name, text in texts.items():
            archive.writestr(MEMBERS[name], text)
        archive.writestr(f"{MEMBER_FOLDER}/ml-100k.kg", "head_id:token\n")
    return path


def sha256(path: str) -> str:
    """The file's hex sha256."""
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def fixture_wheel(folder: str) -> tuple[str, str]:
    """Writes the fixture as ``folder/WHEEL_NAME``; returns (its path, its sha256)."""
    path = write_zip(os.path.join(folder, WHEEL_NAME), fixture_texts())
    return path, sha256(path)


def fixture_tables() -> MovieLensTables:
    """The fixture's three files, parsed."""
    return parse_tables(fixture_texts())
