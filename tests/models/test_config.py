"""CascadeConfig: JSON round trip, defaults, and clear errors for mismatched data."""

import json

import pytest
from dftopk_cascade.models.config import CascadeConfig, check_schema_columns

from tests.models.batches import COLUMNS, VOCAB_SIZES


def test_round_trip_through_json(tmp_path) -> None:
    config = CascadeConfig(VOCAB_SIZES, COLUMNS, method="lapsum", prerank_k=20, tower_units=[8, 4])
    path = str(tmp_path / "config.json")
    config.save(path)
    assert CascadeConfig.load(path) == config
    assert json.loads(open(path).read())["tower_units"] == [8, 4]


def test_default_tau_is_recorded() -> None:
    assert CascadeConfig(VOCAB_SIZES, COLUMNS, method="lcron-diffsort").tau == 10.0
    assert CascadeConfig(VOCAB_SIZES, COLUMNS, tau=3).tau == 3.0


def test_a_config_json_with_the_old_temperature_key_still_loads(tmp_path) -> None:
    config = CascadeConfig(VOCAB_SIZES, COLUMNS, method="lapsum", tau=0.3)
    values = config.to_dict()
    values["temperature"] = values.pop("tau")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    assert CascadeConfig.load(str(path)) == config


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"method": "softmax"}, "unknown method 'softmax'"),
        ({"retrieval_k": 0}, "must be >= 1"),
        ({"tau": -1.0}, "tau must be > 0"),
    ],
)
def test_bad_settings_are_refused(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        CascadeConfig(VOCAB_SIZES, COLUMNS, **settings)


def test_schema_mismatches_name_the_difference() -> None:
    with pytest.raises(ValueError, match="columns has groups"):
        check_schema_columns({"user": COLUMNS["user"]}, VOCAB_SIZES)
    short_items = COLUMNS | {"items": COLUMNS["items"][:7]}
    with pytest.raises(ValueError, match="items has 7 fields"):
        check_schema_columns(short_items, VOCAB_SIZES)
    without_age = {name: size for name, size in VOCAB_SIZES.items() if name != "age"}
    with pytest.raises(ValueError, match=r"no vocab size for the user fields \['age'\]"):
        check_schema_columns(COLUMNS, without_age)
    config = CascadeConfig(VOCAB_SIZES, COLUMNS)
    bigger = VOCAB_SIZES | {"video_id": 99}
    with pytest.raises(ValueError, match=r"'video_id': \(99, 40\)"):
        config.check_data_schema({"columns": COLUMNS, "vocab_sizes": bigger}, "eval data")


def test_k_larger_than_the_candidates_is_refused() -> None:
    config = CascadeConfig(VOCAB_SIZES, COLUMNS, label_k=45)
    with pytest.raises(ValueError, match="label_k = 45 is larger than the 40 candidates"):
        config.check_candidates(40)
    config.check_candidates(56)


def test_loading_reports_missing_and_foreign_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no cascade config"):
        CascadeConfig.load(str(tmp_path / "missing.json"))
    foreign = tmp_path / "schema.json"
    foreign.write_text(json.dumps({"format": "dftopk-recflow-tfrecord", "version": 1}))
    with pytest.raises(ValueError, match="not a cascade config"):
        CascadeConfig.load(str(foreign))
    extra = CascadeConfig(VOCAB_SIZES, COLUMNS).to_dict() | {"dropout": 0.1}
    with pytest.raises(ValueError, match=r"unknown cascade config keys \['dropout'\]"):
        CascadeConfig.from_dict(extra)


def test_version_2_configs_load_with_their_start_and_version_1_is_refused() -> None:
    current = CascadeConfig(VOCAB_SIZES, COLUMNS).to_dict()
    assert (current["version"], current["embedding_layout"]) == (4, "fused")
    assert current["embedding_init"] == "uniform"
    old = {
        key: value
        for key, value in current.items()
        if key not in ("embedding_layout", "embedding_init")
    }
    with pytest.raises(
        ValueError, match=r"version 1 \(per-field embedding tables.*train the model again"
    ):
        CascadeConfig.from_dict(old | {"version": 1})
    version_2 = CascadeConfig.from_dict(old | {"version": 2})
    assert (version_2.embedding_layout, version_2.embedding_init) == ("fused", "uniform")
    with pytest.raises(ValueError, match="unknown embedding_init 'xavier'"):
        CascadeConfig(VOCAB_SIZES, COLUMNS, embedding_init="xavier")
    with pytest.raises(ValueError, match="unknown embedding_layout 'sharded'"):
        CascadeConfig(VOCAB_SIZES, COLUMNS, embedding_layout="sharded")


def test_prerank_attention_is_stored_and_older_configs_load_as_bilinear(tmp_path) -> None:
    config = CascadeConfig(VOCAB_SIZES, COLUMNS, prerank_attention="din")
    path = str(tmp_path / "config.json")
    config.save(path)
    assert json.loads(open(path).read())["prerank_attention"] == "din"
    assert CascadeConfig.load(path) == config
    assert CascadeConfig(VOCAB_SIZES, COLUMNS).prerank_attention == "bilinear"
    version_3 = CascadeConfig(VOCAB_SIZES, COLUMNS).to_dict() | {"version": 3}
    del version_3["prerank_attention"]
    assert CascadeConfig.from_dict(version_3).prerank_attention == "bilinear"
    with pytest.raises(ValueError, match=r"not a cascade config: format .* version 5"):
        CascadeConfig.from_dict(config.to_dict() | {"version": 5})
    with pytest.raises(ValueError, match=r"unknown prerank_attention 'mlp'; expected one of \("):
        CascadeConfig(VOCAB_SIZES, COLUMNS, prerank_attention="mlp")
