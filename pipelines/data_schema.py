"""``schema.json``, the description of a converted TFRecord folder: read, validated, shards checked.

``python -m dftopk_cascade.pipelines.convert`` writes ``schema.json`` last. Readers take it only
after checking it against the typed definition below (``DataSchema`` and the records it holds):
unknown fields and wrong types are refused, ``days`` must be a mapping of ``YYYY-MM-DD`` days,
vocabulary sizes are bounded by ``MAX_VOCAB_SIZE``, and every shard path must lie inside the data
folder. Each error is one line naming the file and the field.

Example:
    >>> schema = read_data_schema(data_dir)
    >>> schema["columns"]["user"]
    ['user_id', 'device_id', 'gender', 'age', 'province']
    >>> sorted(schema["days"])
    ['2024-01-13', '2024-01-14']
"""

import dataclasses
import json
import os
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.shard_integrity import SHARD_PATH, verify_shard

CONVERT_HINT = (
    "write one with: python -m dftopk_cascade.pipelines.simulator.simulate --recflow SIM_DIR ... "
    "&& "
    "python -m dftopk_cascade.pipelines.convert --recflow SIM_DIR --data TFREC_DIR"
)
#: Largest embedding table a schema may ask for: ten times RecFlow's largest field (about 9M
#: videos), and small enough that a table of 8-dimensional float32 embeddings fits in memory.
MAX_VOCAB_SIZE = 100_000_000
_DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}$")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}$")


class SchemaError(ValueError):
    """A ``schema.json`` that does not match the typed definition; the message names the field.

    Example:
        >>> issubclass(SchemaError, ValueError)
        True
    """


@dataclass(frozen=True)
class FeatureRecord:
    """A stored feature: its dtype and its shape per example (``example_format.feature_spec``).

    Example:
        >>> FeatureRecord("int64", [40]).shape
        [40]
    """

    dtype: str
    shape: list[int]


@dataclass(frozen=True)
class ShardRecord:
    """One shard: its path relative to the data folder, its size and sha256 (``shard_integrity``).

    Example:
        >>> ShardRecord("2024-01-13/part-00000-of-00001.tfrecord.gz", 10, "0" * 64).bytes
        10
    """

    path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class DayRecord:
    """One converted day: its requests, its shards and its rows without a ``rank_index``.

    Example:
        >>> DayRecord(requests=0, shards=[], missing_rank_index=0).requests
        0
    """

    requests: int
    shards: list[ShardRecord]
    missing_rank_index: int


@dataclass(frozen=True)
class Counts:
    """Totals over the converted days.

    Example:
        >>> Counts(requests=1, shards=1, missing_rank_index=0, out_of_vocabulary={}).shards
        1
    """

    requests: int
    shards: int
    missing_rank_index: int
    out_of_vocabulary: dict[str, int]


@dataclass(frozen=True)
class DataSchema:
    """The typed definition of ``schema.json`` (docs/CONTRACTS.md describes each field).

    Example:
        >>> [field.name for field in dataclasses.fields(DataSchema)][:3]
        ['format', 'version', 'source']
    """

    format: str
    version: int
    source: str
    compression: str
    features: dict[str, FeatureRecord]
    has_preference: bool
    columns: dict[str, list[str]]
    stage_groups: list[str]
    group_size: int
    vocab_sizes: dict[str, int]
    days: dict[str, DayRecord]
    counts: Counts


def _type_name(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return "an object"
    origin = typing.get_origin(hint)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", str: "a string"}[hint]


def _matches(value: Any, hint: Any) -> bool:
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
        return isinstance(value, dict)
    if typing.get_origin(hint) is list:
        return isinstance(value, list)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_types(value: Any, hint: Any, field: str) -> None:
    """Checks ``value`` (parsed JSON) against ``hint``; raises ``SchemaError`` naming the field.

    ``hint`` is a dataclass (an object with exactly its fields), ``list[T]``, ``dict[str, T]``,
    ``bool``, ``int`` or ``str``.

    Example:
        >>> check_types({"dtype": "int64", "shape": [40, "8"]}, FeatureRecord, "features.items")
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.data_schema.SchemaError: features.items.shape[1] must be an
        integer, got "8"
    """
    if not _matches(value, hint):
        raise SchemaError(f"{field} must be {_type_name(hint)}, got {json.dumps(value)[:60]}")
    if dataclasses.is_dataclass(hint):
        fields = typing.get_type_hints(hint)
        unknown = sorted(set(value) - set(fields))
        missing = [name for name in fields if name not in value]
        if unknown or missing:
            problem = f"unknown field {unknown[0]!r}" if unknown else f"no field {missing[0]!r}"
            raise SchemaError(f"{field or 'the top level'} has {problem}")
        for name, field_hint in fields.items():
            check_types(value[name], field_hint, f"{field}.{name}" if field else name)
    elif typing.get_origin(hint) is list:
        (item_hint,) = typing.get_args(hint)
        for index, item in enumerate(value):
            check_types(item, item_hint, f"{field}[{index}]")
    elif typing.get_origin(hint) is dict:
        _, item_hint = typing.get_args(hint)
        for key, item in value.items():
            check_types(item, item_hint, f"{field}.{key}")


def _require(condition: bool, field: str, problem: str) -> None:
    if not condition:
        raise SchemaError(f"{field} {problem}")


def _check_format(schema: dict[str, Any]) -> None:
    found = (schema.get("format"), schema.get("version"))
    _require(
        found == (fmt.FORMAT_NAME, fmt.FORMAT_VERSION),
        "format",
        f"is {found[0]!r} version {found[1]!r}, expected {fmt.FORMAT_NAME!r} version "
        f"{fmt.FORMAT_VERSION}: re-run python -m dftopk_cascade.pipelines.convert into this folder",
    )


def _check_layout(schema: dict[str, Any]) -> None:
    """The fields that the parser and the models hard-code must say what they expect."""
    _require(schema["compression"] == fmt.COMPRESSION, "compression", f"must be {fmt.COMPRESSION}")
    expected_features = fmt.feature_spec(schema["has_preference"])
    _require(schema["features"] == expected_features, "features", f"must be {expected_features}")
    _require(
        sorted(schema["columns"]) == sorted(fmt.COLUMNS),
        "columns",
        f"must have the groups {list(fmt.COLUMNS)}",
    )
    for group, fields in fmt.COLUMNS.items():
        _require(
            schema["columns"][group] == fields,
            f"columns.{group}",
            f"is {schema['columns'][group]}, the batch contract (docs/CONTRACTS.md) has {fields}",
        )
    stages = list(recflow.TRAINING_STAGES)
    _require(schema["stage_groups"] == stages, "stage_groups", f"must be {stages}")
    _require(schema["group_size"] == fmt.GROUP_SIZE, "group_size", f"must be {fmt.GROUP_SIZE}")
    vocab_sizes = schema["vocab_sizes"]
    for names in fmt.COLUMNS.values():
        for name in names:
            _require(name in vocab_sizes, "vocab_sizes", f"has no size for the field {name!r}")
    for name, size in vocab_sizes.items():
        _require(1 <= size <= MAX_VOCAB_SIZE, f"vocab_sizes.{name}", f"must be 1..{MAX_VOCAB_SIZE}")


def _check_shard_path(data_dir: str, day: str, path: str, field: str) -> None:
    """A shard path is ``DAY/NAME``, relative, and resolves inside ``data_dir``."""
    inside = os.path.realpath(data_dir)
    resolved = os.path.realpath(os.path.join(inside, path))
    _require(
        not os.path.isabs(path)
        and os.path.normpath(path) == path
        and path.startswith(f"{day}/")
        and resolved.startswith(inside + os.sep),
        field,
        f"is {path!r}: a shard path must be DAY/NAME inside the data folder",
    )


def _check_days(schema: dict[str, Any], data_dir: str) -> None:
    for day, record in schema["days"].items():
        _require(bool(_DAY_PATTERN.match(day)), f"days.{day}", "is not a YYYY-MM-DD day")
        for name in ("requests", "missing_rank_index"):
            _require(record[name] >= 0, f"days.{day}.{name}", "must be >= 0")
        _require(bool(record["shards"]), f"days.{day}.shards", "is empty")
        for index, shard in enumerate(record["shards"]):
            field = f"days.{day}.shards[{index}]"
            _check_shard_path(data_dir, day, shard["path"], f"{field}.path")
            _require(shard["bytes"] >= 0, f"{field}.bytes", "must be >= 0")
            _require(
                bool(_SHA256_PATTERN.match(shard["sha256"])),
                f"{field}.sha256",
                "must be 64 lowercase hex digits",
            )
    days = schema["days"].values()
    counts = schema["counts"]
    for name, total in (
        ("requests", sum(day["requests"] for day in days)),
        ("shards", sum(len(day["shards"]) for day in days)),
    ):
        _require(
            counts[name] == total, f"counts.{name}", f"is {counts[name]}, the days sum to {total}"
        )


def check_schema(schema: Any, data_dir: str) -> None:
    """Checks the parsed ``schema.json`` of ``data_dir``; raises ``SchemaError`` naming the field.

    Example:
        >>> check_schema({"format": fmt.FORMAT_NAME, "version": fmt.FORMAT_VERSION, "days": []},
        ...              data_dir)
        Traceback (most recent call last):
        ...
        dftopk_cascade.pipelines.data_schema.SchemaError: the top level has no field 'source'
    """
    if not isinstance(schema, dict):
        raise SchemaError(f"the top level must be an object, got {type(schema).__name__}")
    _check_format(schema)
    check_types(schema, DataSchema, "")
    _check_layout(schema)
    _check_days(schema, data_dir)


def load_schema_file(data_dir: str) -> dict[str, Any]:
    """Reads and validates ``data_dir/schema.json``; every error is one line naming the file.

    Raises ``FileNotFoundError`` when it is absent (the conversion did not finish: the file is
    written last) and ``SchemaError`` (a ``ValueError``) when it is not valid.

    Example:
        >>> load_schema_file(data_dir)["vocab_sizes"][recflow.GENDER]
        5
    """
    file = fmt.schema_path(data_dir)
    if not os.path.isfile(file):
        raise FileNotFoundError(
            f"{file}: no schema.json; the conversion did not finish (schema.json is written "
            "last) or this is not a converted TFRecord folder (python -m "
            "dftopk_cascade.pipelines.convert)"
        )
    with open(file) as handle:
        try:
            schema = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise SchemaError(f"{file}: not valid JSON ({error})") from None
    try:
        check_schema(schema, data_dir)
    except SchemaError as error:
        raise SchemaError(f"{file}: {error}") from None
    return schema


def read_data_schema(data_dir: str) -> dict[str, Any]:
    """The validated schema of a converted TFRecord folder, after checking the folder.

    Raises ``FileNotFoundError`` for a missing folder or schema.json and ``ValueError`` for an
    empty folder, an invalid schema (``load_schema_file``) or a folder without requests.

    Example:
        >>> read_data_schema("/no/such/folder/missing")
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...missing: no such data folder; write one with: ...
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such data folder; {CONVERT_HINT}")
    if not os.listdir(data_dir):
        raise ValueError(f"{data_dir}: the data folder is empty; {CONVERT_HINT}")
    schema = load_schema_file(data_dir)
    if not schema["days"] or not schema["counts"]["requests"]:
        raise ValueError(f"{data_dir}: the data holds no requests; {CONVERT_HINT}")
    return schema


def shard_paths(data_dir: str, schema: dict[str, Any], days: Sequence[str]) -> list[str]:
    """Returns the shard files of ``days`` in day order, after checking each one.

    Each shard's size is checked on every call and its sha256 once per process
    (``shard_integrity.verify_shard``); a bad shard raises ``ShardIntegrityError`` naming it.

    Example:
        >>> paths = shard_paths(data_dir, read_data_schema(data_dir), ["2024-01-13"])
        >>> [os.path.relpath(path, data_dir) for path in paths][:2]
        ['2024-01-13/part-00000-of-00003.tfrecord.gz',
         '2024-01-13/part-00001-of-00003.tfrecord.gz']
    """
    paths = []
    for day in days:
        if day not in schema["days"]:
            raise ValueError(
                f"{fmt.schema_path(data_dir)}: day {day!r} was not converted "
                f"(converted: {', '.join(schema['days'])})"
            )
        for shard in schema["days"][day]["shards"]:
            path = os.path.join(data_dir, shard[SHARD_PATH])
            verify_shard(path, shard)
            paths.append(path)
    return paths
