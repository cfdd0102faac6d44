"""Operator runtime by n: forward+backward ms of DFTopK and every peer, and the log-log slope.

For each operator in ``dftopk_tf.operators`` (DFTopK there runs its default ``selection="auto"``),
each of DFTopK's threshold paths (``THRESHOLD_PATHS``: the radix select and ``tf.math.top_k``, each
with and without XLA) and each n (k = n / 2, scores [batch, n]), one forward+backward pass is
timed (``benchmarks.timing.time_forward_backward``). Growing n stops
for an operator once the next size would exceed a budget, and the table says why:

- memory: the operator's estimated working set (for the permutation-matrix peers,
  ``timing.MATRIX_COPIES`` float32 matrices of batch x n x n) would pass ``memory_limit_bytes``;
- time: the last time, scaled by the operator's declared cost (n, n log n, n^2, n^3), predicts more
  than ``time_limit_s`` per pass.

The fitted slope of log(ms) against log(n) over each operator's largest sizes (the top
``fit_span``-fold range of n it reached, where fixed overheads matter least) tells the costs apart:
about 1 for O(n), slightly above 1 for O(n log n) (1 + 1/ln n locally), 2 for O(n^2).

Example:
    >>> result = measure_runtime(["bce"], [5, 50], batch=1, repeats=1)
    >>> [point.n for point in result.points]
    [5, 50]
"""

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from benchmarks.timing import MATRIX_COPIES, time_forward_backward
from dftopk_tf.operators import OPERATOR_NAMES, get_operator
from dftopk_tf.ops import dftopk
from experiments.report.report_document import ReportSection
from experiments.report.report_files import Cell, new_figure, save_figure

#: DFTopK's threshold paths as extra series: name -> (selection, jit_compile, cost).
THRESHOLD_PATHS: dict[str, tuple[str, bool, str]] = {
    "dftopk radix xla": ("radix", True, "O(n)"),
    "dftopk radix": ("radix", False, "O(n)"),
    "dftopk top_k xla": ("top_k", True, "O(n log n)"),
    "dftopk top_k": ("top_k", False, "O(n log n)"),
}
#: The default series: every registered operator, then DFTopK's threshold paths.
DEFAULT_SERIES: tuple[str, ...] = (*OPERATOR_NAMES, *THRESHOLD_PATHS)
#: n from the paper's runtime script (5 .. 1,000) up to 100,000.
DEFAULT_SIZES: tuple[int, ...] = (
    5,
    10,
    50,
    100,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
)
#: Bytes of float32 per element, for the memory estimate.
FLOAT_BYTES = 4
#: Per-row work as a function of n for each declared cost (``SelectionOperator.cost``).
COST_MODELS = {
    "O(n)": lambda n: n,
    "O(n log n)": lambda n: n * math.log2(max(n, 2)),
    "O(n^2)": lambda n: n**2,
    "O(n^3)": lambda n: n**3,
}
#: Per-row working set (elements) for each declared cost: the quadratic peers and the cubic
#: DiffSort keep n x n matrices through forward and backward.
MEMORY_MODELS = {
    "O(n)": lambda n: n,
    "O(n log n)": lambda n: 2 * n,
    "O(n^2)": lambda n: MATRIX_COPIES * n**2,
    "O(n^3)": lambda n: MATRIX_COPIES * n**2,
}


@dataclass(frozen=True)
class RuntimePoint:
    """One timed pass: operator, device, n, k, batch and the median milliseconds.

    Example:
        >>> RuntimePoint("dftopk", "CPU", 100, 50, 8, 1.5).n
        100
    """

    operator: str
    device: str
    n: int
    k: int
    batch: int
    milliseconds: float


@dataclass(frozen=True)
class RuntimeResult:
    """The timed points and, per (operator, device), why larger n were skipped (if they were).

    Example:
        >>> RuntimeResult([], {("lcron-neuralsort", "CPU"): "n > 5000: memory"}).skipped
        {('lcron-neuralsort', 'CPU'): 'n > 5000: memory'}
    """

    points: list[RuntimePoint]
    skipped: dict[tuple[str, str], str]


def visible_devices() -> list[str]:
    """``["CPU"]``, plus ``"GPU"`` when TensorFlow sees a GPU.

    Example:
        >>> visible_devices()[0]
        'CPU'
    """
    return ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])


def skip_reason(
    cost: str,
    n: int,
    batch: int,
    previous: tuple[int, float] | None,
    memory_limit_bytes: float,
    time_limit_s: float,
) -> str | None:
    """Why a pass at ``n`` should not run (memory or predicted time), or None if it may.

    ``previous`` is the last (n, milliseconds) measured for the same operator and device.

    Example:
        >>> skip_reason("O(n^2)", 10_000, 16, None, 2**30, 10.0)
        'n >= 10000 not run: needs about 51 GB (limit 1.07 GB)'
        >>> skip_reason("O(n)", 1000, 16, (100, 2000.0), 2**30, 10.0)
        'n >= 1000 not run: predicted 20 s per pass (limit 10 s)'
    """
    if cost not in COST_MODELS:
        raise ValueError(f"unknown cost {cost!r}; expected one of {', '.join(COST_MODELS)}")
    memory = batch * MEMORY_MODELS[cost](n) * FLOAT_BYTES
    if memory > memory_limit_bytes:
        return (
            f"n >= {n} not run: needs about {memory / 1e9:.2g} GB "
            f"(limit {memory_limit_bytes / 1e9:.3g} GB)"
        )
    if previous is not None:
        previous_n, previous_ms = previous
        predicted_s = previous_ms / 1000.0 * COST_MODELS[cost](n) / COST_MODELS[cost](previous_n)
        if predicted_s > time_limit_s:
            return (
                f"n >= {n} not run: predicted {predicted_s:.3g} s per pass "
                f"(limit {time_limit_s:.3g} s)"
            )
    return None


def measure_runtime(
    operators: Sequence[str] = DEFAULT_SERIES,
    sizes: Sequence[int] = DEFAULT_SIZES,
    batch: int = 16,
    repeats: int = 5,
    memory_limit_bytes: float = 2**28,
    time_limit_s: float = 5.0,
    devices: Sequence[str] | None = None,
    seed: int = 0,
) -> RuntimeResult:
    """Times every operator at every size (k = n // 2) on every device, within the budgets.

    Args:
        operators: operator names (each at its default temperature) and ``THRESHOLD_PATHS``
            names (DFTopK at tau = 1 on that path).
        sizes: list sizes n (>= 2), ascending.
        batch: requests per pass.
        repeats: timed passes per point (the median is kept).
        memory_limit_bytes: largest estimated working set (see ``skip_reason``).
        time_limit_s: largest predicted time of one pass.
        devices: ``"CPU"``/``"GPU"``; default ``visible_devices()``.
        seed: seed of the random scores.

    Example:
        >>> result = measure_runtime(["lcron-neuralsort"], [5, 5000], batch=8, repeats=1,
        ...                          memory_limit_bytes=2**20)
        >>> list(result.skipped.values())
        ['n >= 5000 not run: needs about 6.4 GB (limit 0.00105 GB)']
    """
    if list(sizes) != sorted(sizes) or min(sizes, default=2) < 2:
        raise ValueError(f"sizes must be ascending and >= 2, got {list(sizes)}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    points: list[RuntimePoint] = []
    skipped: dict[tuple[str, str], str] = {}
    for device in devices or visible_devices():
        for name in operators:
            cost = series_cost(name)
            previous = None
            for n in sizes:
                reason = skip_reason(cost, n, batch, previous, memory_limit_bytes, time_limit_s)
                if reason is not None:
                    skipped[(name, device)] = reason
                    break
                k = max(1, n // 2)
                with tf.device(f"/{device}:0"):
                    scores = tf.random.stateless_normal([batch, n], seed=[seed, n])
                    milliseconds = time_forward_backward(
                        series_selection(name, k), scores, repeats, warmup=1
                    )
                points.append(RuntimePoint(name, device, n, k, batch, milliseconds))
                previous = (n, milliseconds)
    return RuntimeResult(points, skipped)


def series_cost(name: str) -> str:
    """The declared cost of a series: a registered operator's, or a threshold path's.

    Example:
        >>> series_cost("dftopk top_k"), series_cost("lcron-softsort")
        ('O(n log n)', 'O(n^2)')
    """
    if name in THRESHOLD_PATHS:
        return THRESHOLD_PATHS[name][2]
    return get_operator(name).cost


def series_selection(name: str, k: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """``scores -> probabilities`` of a series at k (operators at their default temperature).

    Example:
        >>> series_selection("dftopk radix", 1)(tf.constant([[2.0, 0.0]])).numpy().round(3)
        array([[0.731, 0.269]], dtype=float32)
    """
    if name in THRESHOLD_PATHS:
        selection, jit_compile, _ = THRESHOLD_PATHS[name]
        return lambda scores: dftopk(scores, k, selection=selection, jit_compile=jit_compile)
    operator = get_operator(name)
    return lambda scores: operator.probabilities(scores, k, None, operator.default_temperature)


def fitted_slope(sizes: Sequence[int], milliseconds: Sequence[float]) -> float:
    """Least-squares slope of log(ms) against log(n); NaN with fewer than two sizes.

    Example:
        >>> round(fitted_slope([10, 100, 1000], [1.0, 100.0, 10000.0]), 3)
        2.0
    """
    if len(sizes) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(sizes), np.log(milliseconds), 1)
    return float(slope)


def slope_rows(result: RuntimeResult, fit_span: float = 20.0) -> list[list[Cell]]:
    """Per (operator, device): declared cost, fitted slope, its n range, and what was skipped.

    The fit uses the sizes n >= (largest measured n) / ``fit_span`` (at small n fixed overheads
    dominate), and at least the two largest; the slope is None with a single measured size.

    Example:
        >>> points = [RuntimePoint("bce", "CPU", n, n // 2, 1, n / 10) for n in (10, 100, 1000)]
        >>> slope_rows(RuntimeResult(points, {}), fit_span=10)
        [['bce', 'CPU', 'O(n)', 1.0, '100..1000', '']]
    """
    rows = []
    for operator, device in dict.fromkeys((p.operator, p.device) for p in result.points):
        measured = [p for p in result.points if (p.operator, p.device) == (operator, device)]
        fitted = [p for p in measured if p.n * fit_span >= measured[-1].n]
        if len(fitted) < 2:
            fitted = measured[-2:]
        slope = fitted_slope([p.n for p in fitted], [p.milliseconds for p in fitted])
        rows.append(
            [
                operator,
                device,
                series_cost(operator),
                None if math.isnan(slope) else round(slope, 3),
                f"{fitted[0].n}..{fitted[-1].n}",
                result.skipped.get((operator, device), ""),
            ]
        )
    return rows


def runtime_table_rows(result: RuntimeResult) -> tuple[list[str], list[list[Cell]]]:
    """A wide table: one row per n, one column of milliseconds per (operator, device).

    Cells of sizes that were not run are empty. Returns (columns, rows).

    Example:
        >>> points = [RuntimePoint("bce", "CPU", 10, 5, 1, 0.5)]
        >>> runtime_table_rows(RuntimeResult(points, {}))
        (['n', 'bce CPU ms'], [[10, 0.5]])
    """
    series = list(dict.fromkeys((p.operator, p.device) for p in result.points))
    sizes = sorted({p.n for p in result.points})
    by_key = {(p.operator, p.device, p.n): p.milliseconds for p in result.points}
    columns = ["n"] + [f"{operator} {device} ms" for operator, device in series]
    rows = [[n] + [by_key.get((o, d, n)) for o, d in series] for n in sizes]
    return columns, rows


def plot_runtime(result: RuntimeResult, path: str) -> None:
    """Log-log plot of milliseconds against n, one line per (operator, device).

    Example:
        >>> points = [RuntimePoint("bce", "CPU", n, n // 2, 1, n / 10) for n in (10, 100)]
        >>> plot_runtime(RuntimeResult(points, {}), "/tmp/operator_runtime_example.png")
    """
    figure = new_figure(8.5, 4.5)
    axes = figure.add_subplot()
    for operator, device in dict.fromkeys((p.operator, p.device) for p in result.points):
        measured = [p for p in result.points if (p.operator, p.device) == (operator, device)]
        axes.plot(
            [p.n for p in measured],
            [p.milliseconds for p in measured],
            marker="o",
            linestyle="-" if device == "CPU" else "--",
            label=f"{operator} ({device})",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("n (k = n / 2)")
    axes.set_ylabel("forward+backward ms per batch")
    axes.set_title("Top-k operator runtime")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_figure(figure, path)


def runtime_sections(result: RuntimeResult, report_dir: str, repeats: int) -> list[ReportSection]:
    """Plots ``report_dir/operator_runtime.png``; returns the runtime and the slope sections.

    Example:
        >>> points = [RuntimePoint("bce", "CPU", n, n // 2, 1, n / 10) for n in (10, 100)]
        >>> [s.table_name for s in runtime_sections(RuntimeResult(points, {}), "/tmp", 1)]
        ['operator_runtime', 'operator_slopes']
    """
    figure = "operator_runtime.png"
    plot_runtime(result, os.path.join(report_dir, figure))
    batches = sorted({point.batch for point in result.points})
    columns, rows = runtime_table_rows(result)
    runtime = ReportSection(
        "Operator runtime",
        f"Forward+backward milliseconds of one pass (median of {repeats}) on scores "
        f"[{', '.join(map(str, batches))}, n] with k = n / 2, each operator at its default "
        "temperature. Empty cells: not run (see the skip column of the next table).",
        "operator_runtime",
        columns,
        rows,
        (figure,),
    )
    slopes = ReportSection(
        "Runtime slope (log-log)",
        "Least-squares slope of log(ms) against log(n) over each operator's largest sizes: about "
        "1 for O(n), 1.1 to 1.2 for O(n log n) at these n, 2 for O(n^2). A slope below the "
        "operator's exponent means a fixed per-pass overhead still weighs at those sizes.",
        "operator_slopes",
        ["operator", "device", "declared cost", "fitted slope", "fit over n", "larger n"],
        slope_rows(result),
    )
    return [runtime, slopes]
