"""Sizes of the experiments of ``python -m experiments.reproduce``: full, ``--quick``, ``--tiny``.

- ``full`` (the default): 8 simulated days x 10,000 requests, every method with 3 seeds in the
  main table, one seed for the studies, operator runtimes from n = 5 to 100,000.
- ``quick``: every experiment at small sizes: 3 days x 800 requests, every method with 2 seeds,
  one seed for the studies.
- ``tiny``: every experiment at the smallest sizes, for the tests: the temperature and negative
  studies reuse the main table's DFTopK run (one point each).

Example:
    >>> SIZES["full"].seeds
    (0, 1, 2)
"""

from dataclasses import dataclass

from dftopk_cascade.models.objectives import METHOD_NAMES

from experiments.report.gradient_conflict import DEFAULT_NOISE_LEVELS
from experiments.report.operator_runtime import DEFAULT_SIZES


@dataclass(frozen=True)
class ExperimentSizes:
    """Every size and grid of one run of the experiments.

    Attributes:
        name: ``full``, ``quick`` or ``tiny``.
        days: simulated days (without ``--data``); the last is held out for evaluation.
        requests_per_day: simulated requests per day.
        seeds: training seeds of the main table (and of the other studies' ``study_seeds``).
        study_seeds: seeds of the tau, negative-sampling and streaming studies.
        methods: methods of the main table.
        main_negatives: in-batch negatives per training request in the main table (evaluation
            always adds 160: without training negatives the top-k methods never see the kind of
            candidate that evaluation ranks them against, while TFRS's softmax does).
        epochs: passes over the training days.
        batch_size: training batch (requests).
        eval_batch_size: evaluation batch (its requests supply the 160 in-batch negatives).
        tau_methods: methods of the temperature study.
        taus: temperatures of the temperature study.
        negative_methods: methods of the negative-sampling study.
        negatives: in-batch negatives per request of the negative-sampling study.
        streaming_methods: methods of the streaming study.
        streaming_days: days of the streaming study (the first ones of the data).
        runtime_sizes: n of the operator runtime sweep.
        runtime_batch: requests per timed pass.
        runtime_repeats: timed passes per point.
        runtime_time_limit_s: largest predicted seconds of one pass.
        runtime_memory_limit_bytes: largest estimated working set of one pass.
        conflict_requests: requests per noise level of the gradient-conflict study.
        conflict_candidates: candidates per request there.
        noise_levels: score noise levels there.

    Example:
        >>> SIZES["tiny"].methods
        ('dftopk',)
    """

    name: str
    days: int
    requests_per_day: int
    seeds: tuple[int, ...]
    study_seeds: tuple[int, ...]
    methods: tuple[str, ...]
    main_negatives: int
    epochs: int
    batch_size: int
    eval_batch_size: int
    tau_methods: tuple[str, ...]
    taus: tuple[float, ...]
    negative_methods: tuple[str, ...]
    negatives: tuple[int, ...]
    streaming_methods: tuple[str, ...]
    streaming_days: int
    runtime_sizes: tuple[int, ...]
    runtime_batch: int
    runtime_repeats: int
    runtime_time_limit_s: float
    runtime_memory_limit_bytes: float
    conflict_requests: int
    conflict_candidates: int
    noise_levels: tuple[float, ...]

    def describe(self) -> list[str]:
        """Lines for the report header: data, training, studies.

        Example:
            >>> SIZES["tiny"].describe()[0]
            'Sizes: tiny'
        """
        return [
            f"Sizes: {self.name}",
            f"Training: {self.epochs} epoch(s), batch {self.batch_size}, evaluation batch "
            f"{self.eval_batch_size}; main table: {self.main_negatives} in-batch negatives per "
            f"training request, seeds {list(self.seeds)}, study seeds "
            f"{list(self.study_seeds)}",
            f"Temperature study: {list(self.tau_methods)} at {list(self.taus)}; negative "
            f"sampling: {list(self.negative_methods)} at {list(self.negatives)}; streaming: "
            f"{list(self.streaming_methods)} over {self.streaming_days} days",
            f"Operator runtime: n in {list(self.runtime_sizes)}, batch {self.runtime_batch}, "
            f"{self.runtime_repeats} timed passes, limits {self.runtime_time_limit_s:g} s per "
            f"pass and {self.runtime_memory_limit_bytes / 2**20:g} MiB",
            f"Gradient conflict: {self.conflict_requests} requests x "
            f"{self.conflict_candidates} candidates at noise {list(self.noise_levels)}",
        ]


SIZES: dict[str, ExperimentSizes] = {
    "full": ExperimentSizes(
        name="full",
        days=8,
        requests_per_day=10_000,
        seeds=(0, 1, 2),
        study_seeds=(0,),
        methods=METHOD_NAMES,
        main_negatives=40,
        epochs=1,
        batch_size=1024,
        eval_batch_size=1024,
        tau_methods=("dftopk",),
        taus=(0.1, 0.3, 1.0, 3.0, 10.0),
        negative_methods=("dftopk", "lapsum", "lcron-neuralsort", "bce"),
        negatives=(0, 10, 40, 160),
        streaming_methods=("dftopk", "lcron-neuralsort", "bce"),
        streaming_days=8,
        runtime_sizes=DEFAULT_SIZES,
        runtime_batch=64,
        runtime_repeats=7,
        runtime_time_limit_s=10.0,
        runtime_memory_limit_bytes=2**31,
        conflict_requests=256,
        conflict_candidates=200,
        noise_levels=DEFAULT_NOISE_LEVELS,
    ),
    "quick": ExperimentSizes(
        name="quick",
        days=3,
        requests_per_day=800,
        seeds=(0, 1),
        study_seeds=(0,),
        methods=METHOD_NAMES,
        main_negatives=40,
        epochs=1,
        batch_size=256,
        eval_batch_size=500,
        tau_methods=("dftopk",),
        taus=(0.1, 1.0, 10.0),
        negative_methods=("dftopk", "lcron-neuralsort"),
        negatives=(0, 160),
        streaming_methods=("dftopk",),
        streaming_days=3,
        runtime_sizes=(5, 10, 50, 100, 500, 1_000, 5_000, 50_000, 100_000),
        runtime_batch=32,
        runtime_repeats=3,
        runtime_time_limit_s=1.0,
        runtime_memory_limit_bytes=2**30,
        conflict_requests=128,
        conflict_candidates=200,
        noise_levels=(0.0, 0.5, 1.0, 2.0, 4.0),
    ),
    "tiny": ExperimentSizes(
        name="tiny",
        days=3,
        requests_per_day=128,
        seeds=(0,),
        study_seeds=(0,),
        methods=("dftopk",),
        main_negatives=0,
        epochs=1,
        batch_size=64,
        eval_batch_size=64,
        tau_methods=("dftopk",),
        taus=(0.1,),  # DFTopK's default: the main table's run
        negative_methods=("dftopk",),
        negatives=(0,),
        streaming_methods=("dftopk",),
        streaming_days=3,
        runtime_sizes=(5, 10, 20),
        runtime_batch=2,
        runtime_repeats=1,
        runtime_time_limit_s=0.5,
        runtime_memory_limit_bytes=2**20,
        conflict_requests=8,
        conflict_candidates=40,
        noise_levels=(0.0, 1.0),
    ),
}
