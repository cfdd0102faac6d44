"""The export command: a folder it owns and locks, and a full disk in one line with no leftovers."""

import errno
import os
import subprocess

import pytest
from dftopk_cascade.command_line.entry import run_command
from dftopk_cascade.pipelines.owned_folder import FolderBusyError, owned_folder, read_marker
from dftopk_cascade.serving.export import publish
from dftopk_cascade.serving.export.saved_models import EXPORT_WRITER, main
from dftopk_cascade.serving.export_layout import existing_versions

OWNED_ENTRIES = {".dftopk-export.json", ".dftopk-export.lock"}


def export_command(model_dir: str, export_dir: str, capsys) -> tuple[int, str]:
    """Runs ``python -m dftopk_cascade.serving.export`` in-process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_command(
            main,
            "python -m dftopk_cascade.serving.export",
            ["--model-dir", model_dir, "--export-dir", export_dir],
        )
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only), filled by the test as it needs; unmounted afterwards."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_the_export_folder_is_marked_and_lists_what_was_published(model_and_data, tmp_path):
    model_dir, _ = model_and_data
    export_dir = str(tmp_path / "export")
    main(["--model-dir", model_dir, "--export-dir", export_dir])
    main(["--model-dir", model_dir, "--export-dir", export_dir])  # its own folder: version 2
    marker = read_marker(export_dir, "export")
    assert marker["writer"] == EXPORT_WRITER
    assert marker["manifest"] == sorted(
        ["cascade.json"]
        + [f"{name}/{v}" for name in ("prerank", "rank", "retrieval") for v in (1, 2)]
    )


def test_a_folder_of_someone_else_is_refused_untouched(model_and_data, tmp_path, capsys):
    model_dir, _ = model_and_data
    export_dir = tmp_path / "website"
    export_dir.mkdir()
    (export_dir / "index.html").write_text("<html></html>")
    code, error = export_command(model_dir, str(export_dir), capsys)
    assert code == 2 and error.count("\n") == 1 and "index.html" in error
    # The user's file is untouched and nothing of an export was written (the refused claim's
    # lock file is ignored here: main's owned_folder removes it too, from commit 50f9154 on).
    assert [name for name in os.listdir(export_dir) if not name.endswith(".lock")] == ["index.html"]
    assert (export_dir / "index.html").read_text() == "<html></html>"


def test_a_folder_being_exported_is_refused_naming_the_process(model_and_data, tmp_path):
    model_dir, _ = model_and_data
    export_dir = str(tmp_path / "export")
    with owned_folder(export_dir, kind="export", writer=EXPORT_WRITER):  # another export
        with pytest.raises(FolderBusyError, match=str(os.getpid())):
            main(["--model-dir", model_dir, "--export-dir", export_dir])
    assert set(os.listdir(export_dir)) == OWNED_ENTRIES


@pytest.mark.parametrize("free_kib", [64, 700])
def test_a_full_disk_is_one_line_with_the_free_space_and_no_leftovers(
    model_and_data,
    small_disk,
    capsys,
    free_kib,
):
    model_dir, _ = model_and_data
    (small_disk / "filler").write_bytes(b"\0" * (2048 - free_kib) * 1024)
    export_dir = str(small_disk / "export")
    code, error = export_command(model_dir, export_dir, capsys)
    assert code == 2 and error.count("\n") == 1
    assert f"no space left on the device of {export_dir}: " in error and "free of 2.0 MiB" in error
    assert set(os.listdir(export_dir)) == OWNED_ENTRIES  # no model folder, nothing staged


def test_a_full_disk_at_cascade_json_unpublishes_the_models(
    model_and_data,
    tmp_path,
    capsys,
    monkeypatch,
):
    def full_disk(path, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    model_dir, _ = model_and_data
    export_dir = str(tmp_path / "export")
    monkeypatch.setattr(publish, "write_json", full_disk)
    code, error = export_command(model_dir, export_dir, capsys)
    assert code == 2 and f"no space left on the device of {export_dir}: " in error
    assert set(os.listdir(export_dir)) == OWNED_ENTRIES
    assert existing_versions(export_dir, "rank") == []


def test_other_errors_pass_through_unchanged(model_and_data, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    model_dir, _ = model_and_data
    monkeypatch.setattr(publish, "write_json", broken)
    with pytest.raises(PermissionError, match="Permission denied"):
        main(["--model-dir", model_dir, "--export-dir", str(tmp_path / "export")])
