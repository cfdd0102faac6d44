"""dftopk_cascade.serving.export: the three models are published together; --data must match the
model."""

import json
import os
import shutil

import pytest
from dftopk_cascade.serving import signatures as sig
from dftopk_cascade.serving.export import saved_models
from dftopk_cascade.serving.export_layout import (
    TEMPORARY_PREFIX,
    existing_versions,
    latest_version_dir,
)


def export_main(model_dir: str, export_dir: str, *flags: str) -> dict[str, str]:
    return saved_models.main(
        [
            "--model-dir",
            model_dir,
            "--export-dir",
            export_dir,
            "--retrieval-keep",
            "60",
            "--prerank-keep",
            "20",
            "--rank-keep",
            "5",
            *flags,
        ]
    )


def test_data_of_another_vocabulary_is_refused(model_and_data, tmp_path) -> None:
    model_dir, data = model_and_data
    other = str(tmp_path / "other")
    shutil.copytree(data, other)
    with open(os.path.join(other, "schema.json")) as file:
        schema = json.load(file)
    schema["vocab_sizes"]["video_id"] += 7
    with open(os.path.join(other, "schema.json"), "w") as file:
        json.dump(schema, file)
    with pytest.raises(ValueError, match=r"schema mismatch: vocab sizes of .*other differ"):
        export_main(model_dir, str(tmp_path / "export"), "--data", other)
    assert not os.path.exists(tmp_path / "export" / "retrieval")


def test_a_killed_export_is_never_half_served_and_is_cleaned(model_and_data, tmp_path) -> None:
    model_dir, _ = model_and_data
    export_dir = str(tmp_path / "export")
    written = export_main(model_dir, export_dir)  # --data: the folder the model recorded
    assert written[sig.RETRIEVAL].endswith("retrieval/1")
    # What a kill between the renames of version 2 leaves: retrieval/2 alone, prerank staged.
    shutil.copytree(written[sig.RETRIEVAL], os.path.join(export_dir, "retrieval", "2"))
    stale = os.path.join(export_dir, "prerank", f"{TEMPORARY_PREFIX}2-999999999-dead")
    shutil.copytree(written[sig.PRERANK], stale)
    assert {latest_version_dir(export_dir, name)[-1] for name in sig.MODEL_NAMES} == {"1"}

    export_main(model_dir, export_dir)
    assert not os.path.exists(stale)
    assert {name: existing_versions(export_dir, name) for name in sig.MODEL_NAMES} == {
        name: [1, 2] for name in sig.MODEL_NAMES
    }
    assert {latest_version_dir(export_dir, name)[-1] for name in sig.MODEL_NAMES} == {"2"}
    with open(os.path.join(export_dir, "cascade.json")) as file:
        assert json.load(file)["version"] == 2
