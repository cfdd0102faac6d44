"""A tampered schema.json is refused in one line naming the file and the field (issue 29 item 6)."""

import json
import os
import shutil

import pytest
from dftopk_cascade.command_line.entry import USER_ERROR_EXIT_CODE, run_command
from dftopk_cascade.models.training.evaluate import main as evaluate_main
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.data_schema import MAX_VOCAB_SIZE, SchemaError, read_data_schema

from tests.pipelines.recflow_fixtures import convert_small, simulate_small


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> str:
    root = simulate_small(str(tmp_path_factory.mktemp("sim") / "recflow"))
    out = str(tmp_path_factory.mktemp("tfrec") / "tfrec")
    convert_small(root, out)
    return out


def tamper(converted: str, folder: str, change) -> str:
    """A copy of ``converted`` whose schema.json went through ``change``; returns the copy."""
    copy = os.path.join(folder, "copy")
    shutil.copytree(converted, copy)
    with open(fmt.schema_path(copy)) as file:
        schema = json.load(file)
    change(schema)
    with open(fmt.schema_path(copy), "w") as file:
        json.dump(schema, file)
    return copy


def first_shard(schema: dict) -> dict:
    return schema["days"]["2024-01-13"]["shards"][0]


TAMPERINGS = {
    "days as a list": (
        lambda s: s.update(days=list(s["days"])),
        "days must be a mapping",
    ),
    "huge vocabulary": (
        lambda s: s["vocab_sizes"].update(video_id=10**12),
        f"vocab_sizes.video_id must be 1..{MAX_VOCAB_SIZE}",
    ),
    "shard outside the folder": (
        lambda s: first_shard(s).update(path="/etc/passwd"),
        "days.2024-01-13.shards[0].path is '/etc/passwd': a shard path must be DAY/NAME inside",
    ),
    "shard climbing out": (
        lambda s: first_shard(s).update(path="2024-01-13/../../secret"),
        "days.2024-01-13.shards[0].path is '2024-01-13/../../secret'",
    ),
    "wrong type": (
        lambda s: s["days"]["2024-01-13"].update(requests="120"),
        'days.2024-01-13.requests must be an integer, got "120"',
    ),
    "boolean for an integer": (
        lambda s: s.update(group_size=True),
        "group_size must be an integer, got true",
    ),
    "unknown field": (
        lambda s: s.update(comment="hi"),
        "the top level has unknown field 'comment'",
    ),
    "unknown day field": (
        lambda s: s["days"]["2024-01-13"].update(extra=1),
        "days.2024-01-13 has unknown field 'extra'",
    ),
    "missing field": (
        lambda s: s.pop("counts"),
        "the top level has no field 'counts'",
    ),
    "bad day name": (
        lambda s: s["days"].update({"../x": s["days"].pop("2024-01-13")}),
        "days.../x is not a YYYY-MM-DD day",
    ),
    "bad digest": (
        lambda s: first_shard(s).update(sha256="abc"),
        "days.2024-01-13.shards[0].sha256 must be 64 lowercase hex digits",
    ),
    "counts that do not add up": (
        lambda s: s["counts"].update(requests=1),
        "counts.requests is 1, the days sum to 240",
    ),
    "other columns": (
        lambda s: s["columns"]["user"].pop(),
        "columns.user is ['user_id', 'device_id', 'gender', 'age'], the batch contract",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_a_tampered_schema_is_refused_naming_the_file_and_field(converted, tmp_path, case):
    change, message = TAMPERINGS[case]
    copy = tamper(converted, str(tmp_path), change)
    with pytest.raises(SchemaError) as error:
        read_data_schema(copy)
    assert str(error.value).startswith(f"{fmt.schema_path(copy)}: ")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_tampered_schema_is_one_line_from_the_command_line(converted, tmp_path, capsys):
    copy = tamper(converted, str(tmp_path), lambda s: s.update(days=list(s["days"])))
    arguments = ["--model-dir", str(tmp_path / "no_model"), "--data", copy]
    with pytest.raises(SystemExit) as exit_code:
        run_command(evaluate_main, "python -m dftopk_cascade.models.training.evaluate", arguments)
    assert exit_code.value.code == USER_ERROR_EXIT_CODE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "days must be a mapping" in error


def test_a_schema_that_is_not_json_or_not_an_object_is_one_line(converted, tmp_path):
    copy = os.path.join(str(tmp_path), "copy")
    shutil.copytree(converted, copy)
    for text, message in (("{", "not valid JSON"), ("[1]", "the top level must be an object")):
        with open(fmt.schema_path(copy), "w") as file:
            file.write(text)
        with pytest.raises(SchemaError, match=message):
            read_data_schema(copy)
