"""``CascadeConfig``: everything needed to rebuild a trained cascade, stored as JSON.

The data's vocabulary (schema.json ``vocab_sizes`` and ``columns``), the layer sizes and the
training method with its top-k settings. ``dftopk_cascade.models.training.train`` writes it to
``MODEL_DIR/config.json`` before training; ``dftopk_cascade.models.cascade.load_cascade`` (and
``serving/``) rebuild the model from it and load the weights.

The batch contract (docs/CONTRACTS.md) fixes how many fields each feature group has
(``dftopk_cascade.models.contract.FIELD_COUNTS``); a schema that differs, or evaluation data whose
vocabulary differs from the trained model's, is a schema mismatch: ``ValueError`` naming the
difference.

Docstring examples across the project build their config with ``CascadeConfig.for_examples``
(or their schema with ``example_schema``): a tiny vocabulary over the RecFlow fields.

Example:
    >>> config = CascadeConfig.for_examples(method="dftopk")
    >>> CascadeConfig.from_dict(config.to_dict()) == config
    True
"""

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dftopk_cascade.models.attention import TARGET_ATTENTIONS
from dftopk_cascade.models.candidate_features import DEFAULT_ATTENTION_UNITS
from dftopk_cascade.models.contract import FIELD_COUNTS
from dftopk_cascade.models.embeddings import EMBEDDING_INITS, TABLE_LAYOUTS
from dftopk_cascade.models.objectives import check_method, default_tau
from dftopk_cascade.models.prerank import DEFAULT_PRERANK_UNITS
from dftopk_cascade.models.rank import DEFAULT_CROSS_LAYERS, DEFAULT_RANK_UNITS
from dftopk_cascade.models.retrieval import DEFAULT_TOWER_UNITS
from dftopk_cascade.pipelines import example_format, recflow
from dftopk_cascade.pipelines.atomic_files import write_json

from dftopk_tf.renamed import renamed_keys

CONFIG_FORMAT: str = "dftopk-cascade-config"
#: Version 2 added ``embedding_layout``, version 3 ``embedding_init`` and ``rank_stage``, version
#: 4 ``prerank_attention``; versions 2 and 3 still load (version 2 as a uniform-initialised,
#: three-stage cascade, both with bilinear attention); version 1 (per-field tables) is refused
#: with a clear error.
CONFIG_VERSION: int = 4
#: Ids per field in ``example_schema``.
EXAMPLE_IDS_PER_FIELD: int = 10


def example_schema(ids_per_field: int = EXAMPLE_IDS_PER_FIELD) -> dict[str, Any]:
    """A data schema (``vocab_sizes``, ``columns``) over the RecFlow fields, for examples.

    Every id field has ``ids_per_field`` ids; the columns are the batch contract's.

    Example:
        >>> schema = example_schema()
        >>> sorted(schema), len(schema["columns"]["items"])
        (['columns', 'vocab_sizes'], 8)
    """
    ids = dict.fromkeys(recflow.ID_FIELDS, ids_per_field)
    return {"vocab_sizes": example_format.vocab_sizes(ids), "columns": example_format.COLUMNS}


def check_schema_columns(columns: dict[str, Sequence[str]], vocab_sizes: dict[str, int]) -> None:
    """Checks a schema's ``columns`` against the batch contract and ``vocab_sizes``.

    Raises ``ValueError`` naming the feature group or field that does not match.

    Example:
        >>> check_schema_columns({"context": ["a"]}, {"a": 3})
        Traceback (most recent call last):
        ...
        ValueError: schema mismatch: columns has groups ['context'], the models need ['context', ...
    """
    if sorted(columns) != sorted(FIELD_COUNTS):
        raise ValueError(
            f"schema mismatch: columns has groups {sorted(columns)}, the models need "
            f"{list(FIELD_COUNTS)} (docs/CONTRACTS.md)"
        )
    for group, count in FIELD_COUNTS.items():
        if len(columns[group]) != count:
            raise ValueError(
                f"schema mismatch: {group} has {len(columns[group])} fields "
                f"({', '.join(columns[group])}), the batch contract has {count}"
            )
        missing = [name for name in columns[group] if name not in vocab_sizes]
        if missing:
            raise ValueError(f"schema mismatch: no vocab size for the {group} fields {missing}")


@dataclass(frozen=True)
class CascadeConfig:
    """Architecture and training method of a cascade (retrieval, pre-ranking, ranking).

    Attributes:
        vocab_sizes: field -> embedding table size (schema.json ``vocab_sizes``).
        columns: feature group -> field names (schema.json ``columns``).
        method: training method (``dftopk_cascade.models.objectives.METHOD_NAMES``).
        tau: the method's temperature knob; None takes the method's default and is replaced by
            it, so a stored config records the value used. A ``config.json`` written before it
            was renamed (key ``temperature``) still loads.
        retrieval_k, prerank_k: k of the two stages in the cascade loss.
        rank_k: k of the ranking stage's loss.
        label_k: ground-truth size (top-``label_k`` candidates by label).
        embedding_dim: id embedding size d.
        tower_units: the two towers' MLP sizes.
        prerank_units: pre-ranking MLP sizes (last 1).
        rank_cross_layers: DCN-v2 cross layers of the ranking model.
        rank_units: ranking deep tower sizes (last 1).
        attention_units: projection size of the bilinear target attention (ranking, and
            pre-ranking when ``prerank_attention`` is ``bilinear``).
        embedding_layout: how the id tables are stored
        (``dftopk_cascade.models.embeddings.TABLE_LAYOUTS``):
            ``fused``, the one layout.
        embedding_init: how the id tables start
        (``dftopk_cascade.models.embeddings.EMBEDDING_INITS``):
            ``uniform`` U(-0.05, 0.05) or ``normal`` N(0, 1), the official models' start.
        rank_stage: whether the cascade has a ranking model (False: the paper's two-stage
            cascade, retrieval and pre-ranking only; such a model cannot be exported for the
            three-stage serving cascade).
        prerank_attention: the pre-ranking model's target attention
            (``dftopk_cascade.models.attention.TARGET_ATTENTIONS``): ``bilinear``, or ``din``, DIN's
            MLP over [behaviour, candidate] with the official model's 80 hidden units.

    Example:
        >>> CascadeConfig.for_examples(method="bce").tau
        0.1
    """

    vocab_sizes: dict[str, int]
    columns: dict[str, list[str]]
    method: str = "dftopk"
    tau: float | None = None
    retrieval_k: int = 10
    prerank_k: int = 10
    rank_k: int = 10
    label_k: int = 10
    embedding_dim: int = 8
    tower_units: tuple[int, ...] = DEFAULT_TOWER_UNITS
    prerank_units: tuple[int, ...] = DEFAULT_PRERANK_UNITS
    rank_cross_layers: int = DEFAULT_CROSS_LAYERS
    rank_units: tuple[int, ...] = DEFAULT_RANK_UNITS
    attention_units: int = DEFAULT_ATTENTION_UNITS
    embedding_layout: str = "fused"
    embedding_init: str = "uniform"
    rank_stage: bool = True
    prerank_attention: str = TARGET_ATTENTIONS[0]

    def __post_init__(self) -> None:
        check_method(self.method)
        check_schema_columns(self.columns, self.vocab_sizes)
        sizes = {
            name: getattr(self, name)
            for name in ("retrieval_k", "prerank_k", "rank_k", "label_k", "embedding_dim")
        }
        bad = {name: value for name, value in sizes.items() if int(value) < 1}
        if bad:
            raise ValueError(f"these settings must be >= 1: {bad}")
        if self.embedding_layout not in TABLE_LAYOUTS:
            raise ValueError(
                f"unknown embedding_layout {self.embedding_layout!r}; expected one of "
                f"{TABLE_LAYOUTS}"
            )
        if self.embedding_init not in EMBEDDING_INITS:
            raise ValueError(
                f"unknown embedding_init {self.embedding_init!r}; expected one of {EMBEDDING_INITS}"
            )
        if self.prerank_attention not in TARGET_ATTENTIONS:
            raise ValueError(
                f"unknown prerank_attention {self.prerank_attention!r}; expected one of "
                f"{TARGET_ATTENTIONS}"
            )
        if self.tau is None:
            object.__setattr__(self, "tau", default_tau(self.method))
        if not float(self.tau) > 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        object.__setattr__(self, "tau", float(self.tau))
        object.__setattr__(self, "vocab_sizes", {k: int(v) for k, v in self.vocab_sizes.items()})
        object.__setattr__(self, "columns", {k: list(v) for k, v in self.columns.items()})
        for name in ("tower_units", "prerank_units", "rank_units"):
            object.__setattr__(self, name, tuple(int(size) for size in getattr(self, name)))

    def check_candidates(self, candidates: int) -> None:
        """Raises ``ValueError`` when a k is larger than the candidates per request.

        Example:
            >>> CascadeConfig.for_examples(prerank_k=50).check_candidates(40)
            Traceback (most recent call last):
            ...
            ValueError: prerank_k = 50 is larger than the 40 candidates per request; lower it or ...
        """
        for name in ("retrieval_k", "prerank_k", "rank_k", "label_k"):
            value = getattr(self, name)
            if value > candidates:
                raise ValueError(
                    f"{name} = {value} is larger than the {candidates} candidates per request; "
                    "lower it or add in-batch negatives (--negatives)"
                )

    def check_data_schema(self, schema: dict[str, Any], source: str) -> None:
        """Raises ``ValueError`` when a data schema's columns or vocab sizes differ from ours.

        Example:
            >>> schema = example_schema()
            >>> CascadeConfig.for_examples().check_data_schema(schema, "data")
        """
        check_schema_columns(schema["columns"], schema["vocab_sizes"])
        if schema["columns"] != self.columns:
            raise ValueError(
                f"schema mismatch: {source} has columns {schema['columns']}, the model was "
                f"trained on {self.columns}"
            )
        differing = {
            name: (schema["vocab_sizes"].get(name), size)
            for name, size in self.vocab_sizes.items()
            if schema["vocab_sizes"].get(name) != size
        }
        if differing:
            raise ValueError(
                f"schema mismatch: vocab sizes of {source} differ from the model's "
                f"(field: (data, model)): {differing}"
            )

    @classmethod
    def for_examples(cls, **settings: Any) -> "CascadeConfig":
        """A config over ``example_schema()`` (a tiny vocabulary), for examples and tests.

        Example:
            >>> CascadeConfig.for_examples(method="lapsum", prerank_k=5).prerank_k
            5
        """
        return cls.from_schema(example_schema(), **settings)

    @classmethod
    def from_schema(cls, schema: dict[str, Any], **settings: Any) -> "CascadeConfig":
        """A config for the data described by ``schema`` (``data_schema.read_data_schema``).

        Example:
            >>> schema = example_schema()
            >>> CascadeConfig.from_schema(schema, method="lapsum").method
            'lapsum'
        """
        return cls(vocab_sizes=schema["vocab_sizes"], columns=schema["columns"], **settings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the format name and version.

        Example:
            >>> CascadeConfig.for_examples().to_dict()["format"]
            'dftopk-cascade-config'
        """
        values = dataclasses.asdict(self)
        for name in ("tower_units", "prerank_units", "rank_units"):
            values[name] = list(values[name])
        return {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, **values}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CascadeConfig":
        """Rebuilds a config from ``to_dict``'s output; ``ValueError`` on another format.

        Example:
            >>> CascadeConfig.from_dict({"format": "x"})
            Traceback (most recent call last):
            ...
            ValueError: not a cascade config: format 'x' version None, expected ...
        """
        values = renamed_keys(values, {"temperature": "tau"})
        found = (values.pop("format", None), values.pop("version", None))
        if found == (CONFIG_FORMAT, 1):
            raise ValueError(
                "a cascade config of version 1 (per-field embedding tables, a layout this code "
                "no longer has); train the model again"
            )
        older = found[0] == CONFIG_FORMAT and found[1] in range(2, CONFIG_VERSION)
        if found != (CONFIG_FORMAT, CONFIG_VERSION) and not older:
            raise ValueError(
                f"not a cascade config: format {found[0]!r} version {found[1]!r}, expected "
                f"{CONFIG_FORMAT!r} version {CONFIG_VERSION}"
            )
        if older and found[1] == 2:
            values.setdefault("embedding_layout", "fused")
            values.setdefault("embedding_init", "uniform")
        if older:
            values.setdefault("prerank_attention", "bilinear")
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown cascade config keys {unknown}")
        return cls(**values)

    def save(self, path: str) -> None:
        """Writes the config as JSON to ``path`` atomically.

        Example:
            >>> import tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> path = os.path.join(folder.name, "config.json")
            >>> CascadeConfig.for_examples().save(path)
            >>> os.path.isfile(path)
            True
        """
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str) -> "CascadeConfig":
        """Reads a config written by ``save``; clear errors for a missing or foreign file.

        Example:
            >>> import tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> path = os.path.join(folder.name, "config.json")
            >>> CascadeConfig.for_examples().save(path)
            >>> CascadeConfig.load(path).method
            'dftopk'
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: no cascade config (written by python -m "
                "dftopk_cascade.models.training.train)"
            )
        with open(path) as file:
            try:
                values = json.load(file)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: not valid JSON ({error})") from error
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error
