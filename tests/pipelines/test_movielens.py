"""MovieLens-100K reader and converter, on a tiny hand-made fixture in the wheel's format."""

import json
import os
import shutil
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from dftopk_cascade.command_line.entry import USER_ERROR_EXIT_CODE, run_command
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.data_schema import read_data_schema, shard_paths
from dftopk_cascade.pipelines.labels import protocol_labels
from dftopk_cascade.pipelines.movielens import convert, wheel
from dftopk_cascade.pipelines.movielens.errors import MovieLensError
from dftopk_cascade.pipelines.movielens.tables import parse_tables
from dftopk_cascade.pipelines.movielens.wheel import (
    MEMBERS,
    WHEEL_NAME,
    read_members,
    verified_wheel,
)
from dftopk_cascade.pipelines.owned_folder import ForeignFolderError, read_marker
from dftopk_cascade.pipelines.shard_integrity import ShardIntegrityError, file_sha256
from dftopk_cascade.pipelines.time_features import weekday_hour_minute

from tests.pipelines.movielens_fixture import (
    FIRST_SECOND,
    MOVIES,
    USERS,
    fixture_texts,
    fixture_wheel,
    sha256,
    write_zip,
)

WINDOWS = 4


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """The fixture converted into 4 windows: (data folder, the three files' texts)."""
    folder = str(tmp_path_factory.mktemp("movielens"))
    path, digest = fixture_wheel(folder)
    data_dir = os.path.join(folder, "tfrec")
    convert.convert_movielens(
        path, data_dir, windows=WINDOWS, seed=5, expected_sha256=digest, progress=False
    )
    return data_dir, fixture_texts()


def stored_requests(data_dir: str) -> dict[str, dict[str, np.ndarray]]:
    """Every window's stored examples, parsed: window -> feature -> array."""
    schema = read_data_schema(data_dir)
    windows = {}
    for window in schema["days"]:
        paths = shard_paths(data_dir, schema, [window])
        records = list(tf.data.TFRecordDataset(paths, fmt.COMPRESSION).as_numpy_iterator())
        parsed = fmt.parse_examples(tf.constant(records), has_preference=False)
        windows[window] = {name: value.numpy() for name, value in parsed.items()}
    return windows


def rating_times(texts: dict[str, str]) -> dict[tuple[int, int], int]:
    """(user, movie) -> timestamp of the rating, straight from the fixture's text."""
    times = {}
    for line in texts["inter"].splitlines()[1:]:
        user, movie, _, second = line.split("\t")
        times[int(user), int(movie)] = int(second)
    return times


def test_the_reader_parses_the_three_files_of_the_zip(tmp_path) -> None:
    path, digest = fixture_wheel(str(tmp_path))
    tables = parse_tables(read_members(verified_wheel(path, digest)))
    assert len(tables.users) == USERS and len(tables.movies) == MOVIES
    first = fixture_texts()["inter"].splitlines()[1].split("\t")
    assert tables.ratings.iloc[0].tolist() == [int(value) for value in first]
    movie = tables.movies.set_index("item_id")
    assert movie.loc[7, "movie_title"] == 'The "Quoted" Movie'
    assert movie.loc[MOVIES, "release_year"] == "" and movie.loc[MOVIES, "class"] == ""
    assert tables.users.set_index("user_id").loc[5, "zip_code"] == "T8H1N"


def test_a_wrong_checksum_is_refused_with_what_to_do(tmp_path) -> None:
    path, _ = fixture_wheel(str(tmp_path))
    with pytest.raises(MovieLensError, match=r"sha256 [0-9a-f]{64} is not the expected .*delete"):
        verified_wheel(path)  # the pinned checksum: the fixture is another file
    data_dir = str(tmp_path / "tfrec")
    with pytest.raises(MovieLensError, match="sha256"):
        convert.convert_movielens(path, data_dir, windows=WINDOWS, progress=False)
    assert not os.path.exists(data_dir)


def test_the_pinned_checksum_is_the_registry_wheel_s() -> None:
    assert wheel.WHEEL_NAME == "recbole-1.2.1-py3-none-any.whl"
    assert wheel.WHEEL_SHA256 == (
        "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
    )


def test_a_corrupt_zip_is_refused_even_with_its_own_checksum(tmp_path) -> None:
    path, _ = fixture_wheel(str(tmp_path))
    content = bytearray(open(path, "rb").read())
    start = content.index(MEMBERS["inter"].encode()) + len(MEMBERS["inter"]) + 40
    content[start : start + 64] = bytes(64)  # damage the compressed ratings
    corrupt = str(tmp_path / "corrupt.whl")
    open(corrupt, "wb").write(bytes(content))
    with pytest.raises(MovieLensError, match=r"corrupt\.whl: not a readable zip .*download"):
        read_members(verified_wheel(corrupt, sha256(corrupt)))
    truncated = str(tmp_path / "truncated.whl")
    open(truncated, "wb").write(bytes(content[: len(content) // 2]))
    with pytest.raises(MovieLensError, match=r"truncated\.whl: not a readable zip"):
        read_members(truncated)


def test_a_zip_without_the_movielens_files_is_named(tmp_path) -> None:
    texts = fixture_texts()
    path = str(tmp_path / "other.whl")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MEMBERS["inter"], texts["inter"])
    with pytest.raises(MovieLensError, match=r"ml-100k\.user, .*ml-100k\.item in the zip"):
        read_members(path)


@pytest.mark.parametrize(
    ("table", "edit", "message"),
    [
        ("inter", lambda text: text.replace("rating:float", "score:float"), "header"),
        ("inter", lambda text: text.replace("\t3\t", "\t7\t", 1), "rating 7 is not in 1-5"),
        ("inter", lambda text: text + "99\t1\t3\t5\n", "user_id 99 is not in ml-100k.user"),
        ("user", lambda text: text.replace("\t21\t", "\tx\t", 1), "age 'x' is not a non-neg"),
        ("item", lambda text: text.splitlines()[0] + "\n", "ml-100k.item: no rows"),
    ],
)
def test_malformed_files_are_named_with_their_line(tmp_path, table, edit, message) -> None:
    texts = fixture_texts()
    texts[table] = edit(texts[table])
    path = write_zip(str(tmp_path / WHEEL_NAME), texts)
    with pytest.raises(MovieLensError, match=message):
        parse_tables(read_members(path))


def test_offline_the_fetch_names_the_wheel_flag(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # no local wheel either
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(MovieLensError, match=r"pip could not download recbole==1\.2\.1 .*--wheel"):
        wheel.download_wheel(str(tmp_path / "downloads"))


def test_a_downloaded_wheel_is_reused_and_checked(tmp_path) -> None:
    path, digest = fixture_wheel(str(tmp_path))
    assert wheel.download_wheel(str(tmp_path), digest) == path
    with pytest.raises(MovieLensError, match="sha256"):
        wheel.download_wheel(str(tmp_path))  # another file under the wheel's name


def test_command_line_errors_are_one_line(tmp_path, capsys) -> None:
    path, _ = fixture_wheel(str(tmp_path))
    argv = ["--wheel", path, "--data", str(tmp_path / "tfrec"), "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        run_command(convert.main, "python -m dftopk_cascade.pipelines.movielens.convert", argv)
    assert exit_info.value.code == USER_ERROR_EXIT_CODE
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert error.startswith("python -m dftopk_cascade.pipelines.movielens.convert: error: ")
    assert "sha256" in error and "download" in error


def test_nothing_from_the_future_reaches_a_request(converted) -> None:
    """Every history movie was rated strictly before the moment; the history is complete."""
    data_dir, texts = converted
    times = rating_times(texts)
    ratings_of: dict[int, list[tuple[int, int]]] = {}
    for (user, movie), second in times.items():
        ratings_of.setdefault(user, []).append((second, movie))
    ratings_of = {user: sorted(rated) for user, rated in ratings_of.items()}
    same_second_left_out = 0
    requests = 0
    for window in stored_requests(data_dir).values():
        for row in range(len(window[fmt.REQUEST_ID])):
            requests += 1
            user = int(window[fmt.USER][row, 0]) - 1
            movies = window[fmt.ITEMS][row, :, 0] - 1
            positives, negatives = movies[: fmt.GROUP_SIZE], movies[fmt.GROUP_SIZE :]
            moment = min(times[user, int(movie)] for movie in positives)
            history = [int(movie) - 1 for movie in window[fmt.SEQ][row, :, 0] if movie > 0]
            before = [movie for second, movie in ratings_of[user] if second < moment]
            assert all(times[user, movie] < moment for movie in history)
            assert sorted(history) == sorted(before[-fmt.SEQUENCE_LENGTH :])
            assert all(times[user, int(movie)] >= moment for movie in positives)
            assert not any((user, int(movie)) in times for movie in negatives)
            context = weekday_hour_minute(np.array([moment]), per_second=1, utc_offset=0)[0]
            assert window[fmt.CONTEXT][row].tolist() == (context + 1).tolist()
            at_moment = {movie for second, movie in ratings_of[user] if second == moment}
            same_second_left_out += len(at_moment - set(positives.tolist()))
    assert requests == read_data_schema(data_dir)["counts"]["requests"]
    assert same_second_left_out > 0  # the fixture exercises "strictly before"


def test_windows_are_contiguous_and_in_time_order(converted) -> None:
    data_dir, texts = converted
    times = rating_times(texts)
    info = json.load(open(os.path.join(data_dir, convert.CONVERSION_FILE)))
    names = list(info["windows"])
    assert info["splits"] == {
        "train": names[:-2],
        "validation": [names[-2]],
        "test": [names[-1]],
    }
    starts = [info["windows"][name]["first_second"] for name in names] + [2**62]
    assert starts[0] <= FIRST_SECOND + 400_000 and starts == sorted(starts)
    for index, window in enumerate(stored_requests(data_dir).values()):
        for row in range(len(window[fmt.REQUEST_ID])):
            user = int(window[fmt.USER][row, 0]) - 1
            first = window[fmt.ITEMS][row, 0, 0] - 1
            assert starts[index] <= times[user, int(first)] < starts[index + 1]


def test_candidates_and_labels_keep_the_protocol(converted) -> None:
    """10 positives labelled 25 + rating, 30 never-rated negatives below them, all real."""
    data_dir, texts = converted
    ratings = {}
    for line in texts["inter"].splitlines()[1:]:
        user, movie, rating, _ = (int(value) for value in line.split("\t"))
        ratings[user, movie] = rating
    for window in stored_requests(data_dir).values():
        assert window[fmt.ITEM_MASK].all()
        labels = protocol_labels(window[fmt.RANK_INDEX], window[fmt.ITEM_MASK] > 0).numpy()
        users = window[fmt.USER][:, 0] - 1
        movies = window[fmt.ITEMS][:, : fmt.GROUP_SIZE, 0] - 1
        expected = [[25 + ratings[u, m] for m in row] for u, row in zip(users, movies, strict=True)]
        np.testing.assert_allclose(labels[:, : fmt.GROUP_SIZE], expected)
        assert labels[:, fmt.GROUP_SIZE :].max() < labels[:, : fmt.GROUP_SIZE].min()
        assert (window[fmt.ITEMS][:, :, len(fmt.SEQUENCE_FIELDS) :] == 1).all()  # no upload time


def test_the_schema_is_the_converter_s_contract(converted) -> None:
    data_dir, _ = converted
    schema = read_data_schema(data_dir)
    assert schema["features"] == fmt.feature_spec(False)
    assert schema["columns"] == {group: list(fields) for group, fields in fmt.COLUMNS.items()}
    for window in stored_requests(data_dir).values():
        for group in (fmt.USER, fmt.SEQ, fmt.ITEMS):
            fields = schema["columns"][group]
            sizes = np.array([schema["vocab_sizes"][field] for field in fields])
            assert (window[group] < sizes).all(), group  # no id reaches the OOV bucket


def test_the_conversion_is_reproducible(converted, tmp_path) -> None:
    data_dir, _ = converted
    path, digest = fixture_wheel(str(tmp_path))
    again = str(tmp_path / "again")
    convert.convert_movielens(
        path, again, windows=WINDOWS, seed=5, expected_sha256=digest, progress=False
    )
    first, second = stored_requests(data_dir), stored_requests(again)
    assert list(first) == list(second)
    for window in first:
        for name in first[window]:
            np.testing.assert_array_equal(first[window][name], second[window][name])


def test_a_rerun_with_fewer_windows_deletes_only_the_listed_stale_shards(tmp_path) -> None:
    path, digest = fixture_wheel(str(tmp_path))
    data_dir = str(tmp_path / "tfrec")
    first = convert.convert_movielens(
        path, data_dir, windows=5, expected_sha256=digest, progress=False
    )
    mine = tmp_path / "tfrec" / "notes.txt"
    mine.write_text("a user's file")
    unlisted = "part-00007-of-00009.tfrecord.gz"  # named like a shard, not written by the converter
    for window in first.requests_per_window:
        (tmp_path / "tfrec" / window / unlisted).write_text("the user's")
    second = convert.convert_movielens(
        path, data_dir, windows=3, expected_sha256=digest, progress=False
    )
    stale = sorted(set(first.requests_per_window) - set(second.requests_per_window))
    assert stale
    for window in stale:
        assert os.listdir(os.path.join(data_dir, window)) == [unlisted]  # its shards are gone
    kept = set(second.requests_per_window) & set(first.requests_per_window)
    assert kept
    for window in kept:
        assert (tmp_path / "tfrec" / window / unlisted).read_text() == "the user's"
    assert list(read_data_schema(data_dir)["days"]) == sorted(second.requests_per_window)
    assert mine.read_text() == "a user's file"
    manifest = read_marker(data_dir, "data")["manifest"]
    assert not any(relative.split("/")[0] in stale for relative in manifest)


def test_the_folder_has_the_convert_contract_shard_digests_and_a_manifest(converted) -> None:
    data_dir, _ = converted
    schema = read_data_schema(data_dir)
    assert schema["format"] == fmt.FORMAT_NAME and schema["version"] == fmt.FORMAT_VERSION == 2
    listed = []
    for window, record in schema["days"].items():
        for shard in record["shards"]:
            file = os.path.join(data_dir, shard["path"])
            assert shard["path"].startswith(f"{window}/part-")
            assert shard["bytes"] == os.path.getsize(file) and shard["sha256"] == file_sha256(file)
            listed.append(shard["path"])
    marker = read_marker(data_dir, "data")
    assert marker["writer"] == convert.WRITER
    assert marker["manifest"] == sorted([*listed, convert.CONVERSION_FILE, fmt.SCHEMA_FILE])


def test_a_changed_shard_is_named_by_the_readers(converted, tmp_path) -> None:
    data_dir, _ = converted
    copy = str(tmp_path / "copy")
    shutil.copytree(data_dir, copy)
    schema = read_data_schema(copy)
    window = next(iter(schema["days"]))
    shard = os.path.join(copy, schema["days"][window]["shards"][0]["path"])
    with open(shard, "r+b") as file:
        file.seek(20)
        file.write(b"\xff")  # same size, other bytes
    with pytest.raises(ShardIntegrityError, match=r"part-00000-of-00001\.tfrecord\.gz: .*sha256"):
        shard_paths(copy, schema, [window])


def test_a_folder_it_did_not_write_is_refused_untouched(tmp_path) -> None:
    path, digest = fixture_wheel(str(tmp_path))
    data_dir = tmp_path / "theirs"
    data_dir.mkdir()
    (data_dir / "results.csv").write_text("their numbers")
    with pytest.raises(ForeignFolderError, match=r"theirs is not empty .*nothing was changed"):
        convert.convert_movielens(
            path, str(data_dir), windows=WINDOWS, expected_sha256=digest, progress=False
        )
    assert os.listdir(data_dir) == ["results.csv"]


REAL_WRITER = tf.io.TFRecordWriter


class FullDiskWriter:
    """A TFRecordWriter on a disk that is full after ``records`` records, as TF reports it."""

    records = 10

    def __init__(self, path: str, options: tf.io.TFRecordOptions) -> None:
        self._writer = REAL_WRITER(path, options)
        self._path = path

    def __enter__(self) -> "FullDiskWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self._writer.close()

    def write(self, record: bytes) -> None:
        FullDiskWriter.records -= 1
        if FullDiskWriter.records < 0:
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{self._path}; No space left on device"
            )
        self._writer.write(record)


def test_a_full_disk_is_one_line_and_a_rerun_finishes(tmp_path, capsys, monkeypatch) -> None:
    path, digest = fixture_wheel(str(tmp_path))
    data_dir = str(tmp_path / "tfrec")
    monkeypatch.setattr(FullDiskWriter, "records", 10)  # shards hold 4: the third fills up
    monkeypatch.setattr(fmt.tf.io, "TFRecordWriter", FullDiskWriter)
    argv = ["--wheel", path, "--expected-sha256", digest, "--windows", "3", "--data", data_dir]
    argv += ["--requests-per-shard", "4", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        run_command(convert.main, "python -m dftopk_cascade.pipelines.movielens.convert", argv)
    assert exit_info.value.code == USER_ERROR_EXIT_CODE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "tfrecord.gz: no space left on device (" in error
    written = [
        os.path.join(folder, name) for folder, _, names in os.walk(data_dir) for name in names
    ]
    assert not any(name.endswith(".tmp") for name in written)
    assert not os.path.exists(fmt.schema_path(data_dir))

    monkeypatch.undo()  # space freed: the re-run finishes the conversion
    summary = convert.convert_movielens(
        path, data_dir, windows=3, expected_sha256=digest, requests_per_shard=4, progress=False
    )
    assert read_data_schema(data_dir)["counts"]["requests"] == summary.requests == 25
