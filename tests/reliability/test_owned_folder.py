"""Owned folders: foreign files untouched, overwrite clears only the manifest, one writer."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from dftopk_cascade.pipelines.owned_folder import (
    FolderBusyError,
    FolderError,
    ForeignFolderError,
    marker_name,
    owned_folder,
    read_marker,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(path: str, text: str = "x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)


def test_foreign_folder_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "web_app"
    _write(str(folder / "config.json"), "{}")
    _write(str(folder / "logs" / "access.log"))
    before = sorted(os.listdir(folder))
    with pytest.raises(ForeignFolderError, match=r"no \.dftopk-model\.json marker"):
        with owned_folder(str(folder), kind="model", writer="dftopk_cascade.models.training.train"):
            pass
    with pytest.raises(ForeignFolderError):
        with owned_folder(str(folder), kind="model", writer="t", overwrite=True):
            pass
    assert sorted(os.listdir(folder)) == before
    assert open(folder / "config.json").read() == "{}"


def test_overwrite_deletes_only_what_the_manifest_lists(tmp_path):
    folder = str(tmp_path / "model")
    with owned_folder(folder, kind="model", writer="t") as claim:
        _write(os.path.join(folder, "weights", "cascade.index"))
        _write(os.path.join(folder, "history.csv"))
        claim.record("weights", "history.csv")
    _write(os.path.join(folder, "my_notes.txt"), "keep me")
    with owned_folder(folder, kind="model", writer="t", overwrite=True) as claim:
        assert not claim.is_new
        assert claim.marker["manifest"] == []
    assert sorted(n for n in os.listdir(folder) if not n.startswith(".dftopk")) == ["my_notes.txt"]


def test_marker_names_writer_version_and_a_random_id(tmp_path):
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    for path in (first, second):
        with owned_folder(path, kind="data", writer="dftopk_cascade.pipelines.convert"):
            pass
    marker = read_marker(first, "data")
    assert marker["writer"] == "dftopk_cascade.pipelines.convert" and marker["format_version"] == 1
    assert marker["id"] != read_marker(second, "data")["id"]


def test_a_second_process_is_refused_and_named(tmp_path):
    folder = str(tmp_path / "busy")
    holder = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {ROOT!r})
        from dftopk_cascade.pipelines.owned_folder import owned_folder
        with owned_folder({folder!r}, kind="data", writer="holder"):
            print("held", flush=True)
            time.sleep(30)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=f"process {process.pid}"):
            with owned_folder(folder, kind="data", writer="second"):
                pass
    finally:
        process.kill()
        process.wait()
    with owned_folder(folder, kind="data", writer="second") as claim:  # released on death
        assert not claim.is_new


@pytest.mark.parametrize(
    "marker, message",
    [
        ("not json", "unreadable folder marker"),
        ({"kind": "data"}, "not a folder marker"),
        ("kind=model", "marks a 'model' folder"),
        ("version=9", "format_version 9"),
        ("manifest=../../etc", "outside the folder"),
        ("manifest=/etc/passwd", "outside the folder"),
    ],
)
def test_a_tampered_marker_gets_one_line_naming_the_file(tmp_path, marker, message):
    folder = str(tmp_path / "data")
    with owned_folder(folder, kind="data", writer="t"):
        pass
    path = os.path.join(folder, marker_name("data"))
    good = json.load(open(path))
    if isinstance(marker, str) and "=" in marker:
        key, value = marker.split("=")
        good[{"version": "format_version"}.get(key, key)] = (
            int(value) if key == "version" else [value] if key == "manifest" else value
        )
        marker = good
    with open(path, "w") as file:
        file.write(marker if isinstance(marker, str) else json.dumps(marker))
    with pytest.raises(FolderError, match=message) as error:
        read_marker(folder, "data")
    assert path in str(error.value) and "\n" not in str(error.value)


def test_record_refuses_paths_outside_the_folder(tmp_path):
    with owned_folder(str(tmp_path / "m"), kind="model", writer="t") as claim:
        with pytest.raises(FolderError, match="outside the folder"):
            claim.record("../elsewhere")
        with pytest.raises(FolderError, match="names the marker"):
            claim.record(".dftopk-model.json")


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="folder kind must be one of"):
        with owned_folder(str(tmp_path / "x"), kind="cache", writer="t"):
            pass
