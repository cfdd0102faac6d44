"""The one record format of the experiments: a run's key, and its record as one JSON file.

A training run is told from another by its ``RunKey`` (method, embedding start, temperature,
training negatives, seed, and where they are not the default: the training and evaluation days,
the step budget, the dataset and the pre-ranking attention). Its record is
``RUNS/<key name>.json``, written atomically when the run ends:

- ``key``: the ``RunKey`` (``RunKey.to_dict``);
- ``test`` (and, where the protocol has a validation day, ``validation``): the metrics, keys of
  ``dftopk_cascade.models.protocol``; ``protocol_version``: the evaluation protocol they were scored
  under;
- the run's settings as run: at least ``train_days``, ``batch_size`` and the training length
  (``train_steps``, or ``epochs``), plus what the experiment adds (``sizes``, ``data_dir``, ...);
- where the run measured one, ``curve``: ``[[step, validation joint recall], ...]``;
- ``commit`` (the code's: the checkout's commit when the writing process first asked, which the
  runner does when it starts training, so that results committed while it trains do not stand
  in for the code; a resumed run's is its last process's) and ``finished`` (UTC).

Every experiment writes its records through the one runner (``experiments.runner``):
``experiments.method_comparison`` under ``RESULTS/runs`` (committed, and continued from in a
later session), ``experiments.reproduce`` under ``REPORT_DIR/runs``. A settings field the key
does not hold (the data folder, the curve's interval) is a field of the record, so an
experiment can add one without renaming any run.

Example:
    >>> key = RunKey("dftopk", "uniform", 0.03, 0, 1)
    >>> record = write_record(tmp_dir, key, {"test": {"joint_recall": 0.5}})
    >>> read_records(tmp_dir)[key.name()]["test"]
    {'joint_recall': 0.5}
"""

import functools
import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

from dftopk_cascade.pipelines.atomic_files import write_json


@dataclass(frozen=True)
class RunKey:
    """What tells one training run of the experiments from another.

    Attributes:
        method: training method (``dftopk_cascade.models.objectives.METHOD_NAMES``).
        embedding_init: the id tables' start (``dftopk_cascade.models.embeddings.EMBEDDING_INITS``).
        temperature: the method's temperature; None for its default (``resolved``).
        negatives: in-batch negatives per request in training.
        seed: the run's seed (initialisation, shuffling, negative sampling).
        train_days: training days; None for the experiment's default.
        eval_days: evaluation days; None for the experiment's default.
        steps: training steps (a step budget); None for the experiment's default length.
        dataset: the dataset's name; None for the experiment's default (simulated RecFlow).
        prerank_attention: the pre-ranking model's target attention
            (``dftopk_cascade.models.attention.TARGET_ATTENTIONS``); None for the default.

    Example:
        >>> RunKey("dftopk", "uniform", 0.03, 0, 1).name()
        'dftopk-uniform-t0.03-neg0-seed1'
        >>> RunKey("bce", seed=2, train_days=("d1",), eval_days=("d2",)).name()
        'bce-uniform-tdefault-neg0-seed2-days_d1-eval_d2'
        >>> RunKey("bce", seed=2, steps=5400, dataset="movielens").name()
        'bce-uniform-tdefault-neg0-seed2-steps5400-data_movielens'
        >>> RunKey("bce", steps=5400, prerank_attention="din").name()
        'bce-uniform-tdefault-neg0-seed0-steps5400-attention_din'
    """

    method: str
    embedding_init: str = "uniform"
    temperature: float | None = None
    negatives: int = 0
    seed: int = 0
    train_days: tuple[str, ...] | None = None
    eval_days: tuple[str, ...] | None = None
    steps: int | None = None
    dataset: str | None = None
    prerank_attention: str | None = None

    def name(self) -> str:
        """The run's file and folder name.

        Example:
            >>> RunKey("lapsum", "normal", 79.2, 40, 0).name()
            'lapsum-normal-t79.2-neg40-seed0'
        """
        temperature = "default" if self.temperature is None else f"{self.temperature:g}"
        name = (
            f"{self.method}-{self.embedding_init}-t{temperature}-neg{self.negatives}"
            f"-seed{self.seed}"
        )
        if self.train_days is not None:
            name += "-days_" + "_".join(self.train_days)
        if self.eval_days is not None:
            name += "-eval_" + "_".join(self.eval_days)
        if self.steps is not None:
            name += f"-steps{self.steps}"
        if self.dataset is not None:
            name += f"-data_{self.dataset}"
        if self.prerank_attention is not None:
            name += f"-attention_{self.prerank_attention}"
        return name

    def resolved(self) -> "RunKey":
        """The same key with the method's default temperature written out.

        Example:
            >>> RunKey("dftopk").resolved().temperature
            0.1
        """
        if self.temperature is not None:
            return self
        from dftopk_cascade.models.objectives import default_tau

        return replace(self, temperature=default_tau(self.method))

    def to_dict(self) -> dict:
        """The key as a record holds it: the days, steps, dataset and attention only where set.

        Example:
            >>> sorted(RunKey("bce", "uniform", 1.0, 0, 0).to_dict())
            ['embedding_init', 'method', 'negatives', 'seed', 'temperature']
        """
        values = asdict(self)
        for name in ("train_days", "eval_days", "steps", "dataset", "prerank_attention"):
            if values[name] is None:
                del values[name]
            elif name.endswith("_days"):
                values[name] = list(values[name])
        return values

    @classmethod
    def from_dict(cls, values: Mapping) -> "RunKey":
        """The key of a record (``to_dict``'s output, or a record written before the days).

        Example:
            >>> RunKey.from_dict({"method": "bce", "train_days": ["d1"]}).train_days
            ('d1',)
        """
        values = dict(values)
        for name in ("train_days", "eval_days"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)


def runs_dir(results_dir: str) -> str:
    """The folder of the run records under ``results_dir``.

    Example:
        >>> runs_dir("docs/results/method_comparison")
        'docs/results/method_comparison/runs'
    """
    return os.path.join(results_dir, "runs")


def read_records(results_dir: str) -> dict[str, dict]:
    """Every finished run's record under ``results_dir/runs``, by run name.

    Example:
        >>> read_records("/nonexistent")
        {}
    """
    folder = runs_dir(results_dir)
    if not os.path.isdir(folder):
        return {}
    records = {}
    for file_name in sorted(os.listdir(folder)):
        if file_name.endswith(".json"):
            with open(os.path.join(folder, file_name)) as file:
                record = json.load(file)
            records[RunKey.from_dict(record["key"]).name()] = record
    return records


def write_record(results_dir: str, key: RunKey, fields: Mapping) -> dict:
    """Writes ``key``'s record (``fields`` with the key, the commit and the time) atomically to
    ``results_dir/runs/<key name>.json``; returns the record.

    Example:
        >>> sorted(write_record(tmp_dir, RunKey("bce", seed=3), {"test": {}}))
        ['commit', 'finished', 'key', 'test']
    """
    record = {
        "key": key.to_dict(),
        "commit": git_commit(),
        **fields,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(runs_dir(results_dir), exist_ok=True)
    write_json(os.path.join(runs_dir(results_dir), key.name() + ".json"), record)
    return record


def stale_records(records: Mapping[str, dict]) -> list[str]:
    """Names of the records scored under an older ``PROTOCOL_VERSION`` (or none recorded).

    Example:
        >>> stale_records({"a": {"protocol_version": 1}, "b": {}})
        ['a', 'b']
    """
    from dftopk_cascade.models.protocol import PROTOCOL_VERSION

    return [
        name
        for name, record in records.items()
        if record.get("protocol_version", 1) != PROTOCOL_VERSION
    ]


@functools.cache
def git_commit() -> str:
    """The checkout's commit (``unknown`` outside a git checkout) when this process first asked:
    the code it runs, recorded with each run and each rescoring, even after commits made while it
    trains (a harness committing its results as they land).

    Example:
        >>> len(git_commit()) in (7, 40) or git_commit() == "unknown"
        True
    """
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
