"""A damaged export folder is named in one line: SavedModel files, cascade.json, version names."""

import glob
import json
import os
import shutil

import pytest
from dftopk_cascade.command_line.entry import run_command
from dftopk_cascade.serving import server
from dftopk_cascade.serving.backends.local import LocalBackend
from dftopk_cascade.serving.export.toy_servables import toy_cascade_export
from dftopk_cascade.serving.export_layout import (
    ExportReadError,
    cascade_version,
    existing_versions,
    latest_version_dir,
)


@pytest.fixture
def export_dir(tmp_path) -> str:
    """A copy of the toy cascade's export (version 1 of retrieval, prerank and rank)."""
    folder = str(tmp_path / "export")
    shutil.copytree(toy_cascade_export(), folder)
    return folder


def truncate_variables(export_dir: str, model_name: str = "rank") -> str:
    (data,) = glob.glob(os.path.join(export_dir, model_name, "1", "variables", "*.data-*"))
    os.truncate(data, os.path.getsize(data) // 2)
    return data


def test_truncated_variables_are_named_by_the_server_in_one_line(export_dir, capsys) -> None:
    data = truncate_variables(export_dir)
    with pytest.raises(SystemExit) as exit_info:
        run_command(
            server.main,
            "python -m dftopk_cascade.serving.server",
            ["--export-dir", export_dir, "--port", "0"],
        )
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.count("\n") == 1
    assert f"{data} has " in error and "the export wrote" in error and "re-export" in error


def test_truncated_variables_without_records_are_named_too(export_dir) -> None:
    truncate_variables(export_dir)
    os.remove(os.path.join(export_dir, "cascade.json"))  # an export of an older layout
    rank = os.path.join(export_dir, "rank", "1")
    with pytest.raises(ExportReadError, match=f"cannot load the SavedModel {rank}/variables: "):
        LocalBackend(export_dir, ["rank"])


def test_a_changed_saved_model_is_named(export_dir) -> None:
    path = os.path.join(export_dir, "prerank", "1", "saved_model.pb")
    with open(path, "r+b") as file:
        first = file.read(1)
        file.seek(0)
        file.write(bytes([first[0] ^ 1]))
    with pytest.raises(ExportReadError, match=f"{path} does not match the sha256"):
        LocalBackend(export_dir, ["prerank"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"version": 1,\n', "not valid JSON"),
        ("", "not valid JSON"),
        ("\xff\xfe", "not valid JSON"),
        ("[1]", "malformed: expected an object, got list"),
        ('{"version": "1", "models": {}}', "malformed: 'version' must be an int >= 1, got '1'"),
        ('{"version": true, "models": {}}', "malformed: 'version' must be an int >= 1, got True"),
        ('{"version": 1, "models": []}', "malformed: 'models' must map model names to versions"),
        ('{"version": 1, "models": {}, "files": {"rank": 3}}', "malformed: 'files' must map"),
    ],
)
def test_a_malformed_cascade_json_is_named(tmp_path, text, message) -> None:
    path = tmp_path / "cascade.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ExportReadError, match=f"{path} is {message}") as error:
        cascade_version(str(tmp_path))
    assert "\n" not in str(error.value) and "restore it, or delete it" in str(error.value)


def test_a_version_folder_named_with_a_unicode_digit_is_not_a_version(export_dir) -> None:
    os.mkdir(os.path.join(export_dir, "rank", "\u2460"))  # CIRCLED DIGIT ONE: isdigit() is True
    assert existing_versions(export_dir, "rank") == [1]
    assert LocalBackend(export_dir, ["rank"]).versions == {"rank": 1}


def test_only_unicode_digit_folders_are_named_in_the_error(tmp_path) -> None:
    os.makedirs(tmp_path / "rank" / "\u2460")
    with pytest.raises(FileNotFoundError, match="ignored, not version numbers: \\['\u2460'\\]"):
        latest_version_dir(str(tmp_path), "rank")


def test_the_export_records_every_file_it_published(export_dir) -> None:
    with open(os.path.join(export_dir, "cascade.json")) as file:
        files = json.load(file)["files"]
    for model_name in ("retrieval", "prerank", "rank"):
        folder = os.path.join(export_dir, model_name, "1")
        on_disk = {
            os.path.relpath(os.path.join(root, name), folder)
            for root, _, names in os.walk(folder)
            for name in names
        }
        assert set(files[model_name]) == on_disk and "saved_model.pb" in on_disk
