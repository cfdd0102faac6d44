"""Gradient conflict: how often a top-k loss pushes a ground-truth item's score down.

The paper's Figure 2 argument: in a relaxed permutation matrix every row sums to one, so raising
one ground-truth item's mass in a row lowers the others'; the LCRON losses built on NeuralSort or
SoftSort therefore give some ground-truth items a gradient that pushes their score *down*. DFTopK's
gradient is local (each item's own sigmoid slope, plus the threshold's share on the k-th and
(k+1)-th items), so this should be rare.

Measurement: requests with a hidden relevance r ~ N(0, 1) per candidate; the ground truth is the
top-k by r; the model's scores are r + noise * N(0, 1) (high noise = early in training, low noise =
late). For each method's BCE selection loss (``dftopk_tf.losses.get_loss``) we take d loss / d
score and count, among the ground-truth items, the share with a positive gradient (gradient
descent lowers their score), and among the other items the share with a negative one (raised).
Gradients smaller than ``RELATIVE_TOLERANCE`` times the row's largest are counted as zero.

Example:
    >>> rows = measure_gradient_conflict(["dftopk"], [1.0], requests=4, candidates=20, k=5)
    >>> rows[0].method, rows[0].noise
    ('dftopk', 1.0)
"""

import os
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np
import tensorflow as tf

from dftopk_tf.losses import get_loss
from dftopk_tf.operators import get_operator
from experiments.report.report_document import ReportSection
from experiments.report.report_files import new_figure, save_figure

#: Methods measured by default: DFTopK, the two LCRON permutation losses and the O(n log n) peers.
DEFAULT_METHODS: tuple[str, ...] = (
    "dftopk",
    "lcron-neuralsort",
    "lcron-softsort",
    "lapsum",
    "sparse-topk",
)
#: Score noise levels (standard deviation of the noise added to the unit-variance relevance).
DEFAULT_NOISE_LEVELS: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
#: The ground-truth size and the operators' k (the paper's top-10).
DEFAULT_K: int = 10
#: Gradients below this fraction of the row's largest |gradient| count as zero.
RELATIVE_TOLERANCE: float = 1e-6


@dataclass(frozen=True)
class ConflictRow:
    """The conflict shares of one method at one noise level.

    Attributes:
        method: operator name.
        temperature: the operator's temperature knob used.
        noise: standard deviation of the score noise.
        ground_truth_pushed_down: share of ground-truth items with d loss / d score > 0.
        others_pushed_up: share of the other items with d loss / d score < 0.

    Example:
        >>> ConflictRow("dftopk", 1.0, 0.5, 0.0, 0.01).as_cells()
        ['dftopk', 1.0, 0.5, 0.0, 0.01]
    """

    method: str
    temperature: float
    noise: float
    ground_truth_pushed_down: float
    others_pushed_up: float

    @staticmethod
    def columns() -> list[str]:
        """The table's column names, in field order.

        Example:
            >>> ConflictRow.columns()[3]
            'ground_truth_pushed_down'
        """
        return [field.name for field in fields(ConflictRow)]

    def as_cells(self) -> list:
        """The row's values, in column order."""
        return list(astuple(self))


def simulated_requests(
    requests: int, candidates: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (the relevance r ~ N(0, 1) shifted to >= 1) and scores r + noise * N(0, 1).

    Both float32 [requests, n]; the shift keeps labels clear of the padding label (negative) and
    leaves their order, hence the ground truth, unchanged.

    Example:
        >>> labels, scores = simulated_requests(2, 3, 0.0, seed=0)
        >>> bool(np.array_equal(np.argsort(labels), np.argsort(scores)))
        True
    """
    if requests < 1 or candidates < 2 or noise < 0:
        raise ValueError(
            f"need requests >= 1, candidates >= 2 and noise >= 0, got requests={requests}, "
            f"candidates={candidates}, noise={noise}"
        )
    generator = np.random.default_rng(seed)
    relevance = generator.standard_normal((requests, candidates)).astype(np.float32)
    scores = relevance + noise * generator.standard_normal((requests, candidates)).astype(
        np.float32
    )
    return relevance - relevance.min() + 1.0, scores


def ground_truth_mask(labels: np.ndarray, k: int) -> np.ndarray:
    """Bool mask of each row's k largest labels.

    Example:
        >>> ground_truth_mask(np.array([[0.5, 2.0, 1.0]]), 2).tolist()
        [[False, True, True]]
    """
    order = np.argsort(-labels, axis=-1, kind="stable")[:, :k]
    mask = np.zeros(labels.shape, bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return mask


def score_gradients(
    method: str, labels: np.ndarray, scores: np.ndarray, k: int, temperature: float
) -> np.ndarray:
    """d loss / d scores of ``method``'s BCE selection loss (mean over the batch), [batch, n].

    Example:
        >>> g = score_gradients("dftopk", np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 2.0]]),
        ...                     k=1, temperature=1.0)
        >>> bool(g[0, 0] < 0)
        True
    """
    loss = get_loss(method, k=k, tau=temperature)
    score_tensor = tf.constant(scores, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(score_tensor)
        value = loss(tf.constant(labels, tf.float32), score_tensor)
    return tape.gradient(value, score_tensor).numpy()


def conflict_shares(gradients: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(share of targets with gradient > 0, share of non-targets with gradient < 0).

    Gradients below ``RELATIVE_TOLERANCE`` times their row's largest magnitude count as zero.

    Example:
        >>> conflict_shares(np.array([[0.5, -1.0, -0.2, 0.3]]),
        ...                 np.array([[True, True, False, False]]))
        (0.5, 0.5)
    """
    if gradients.shape != targets.shape:
        raise ValueError(f"gradients {gradients.shape} and targets {targets.shape} differ in shape")
    tolerance = RELATIVE_TOLERANCE * np.max(np.abs(gradients), axis=-1, keepdims=True)
    pushed_down = gradients > tolerance
    pushed_up = gradients < -tolerance
    return float(np.mean(pushed_down[targets])), float(np.mean(pushed_up[~targets]))


def measure_gradient_conflict(
    methods: Sequence[str] = DEFAULT_METHODS,
    noise_levels: Sequence[float] = DEFAULT_NOISE_LEVELS,
    requests: int = 256,
    candidates: int = 200,
    k: int = DEFAULT_K,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[ConflictRow]:
    """Conflict shares for every method at every noise level, on the same simulated requests.

    Args:
        methods: operator names (``dftopk_tf.operators.OPERATOR_NAMES``).
        noise_levels: standard deviations of the score noise.
        requests: requests per noise level.
        candidates: candidates per request (200 as in the evaluation protocol).
        k: the ground-truth and the operators' k.
        temperature: every operator's temperature knob (the scores have unit-variance signal).
        seed: seed of the simulated requests (one draw per noise level, shared by the methods).

    Example:
        >>> rows = measure_gradient_conflict(["dftopk", "lcron-softsort"], [0.5], 2, 10, 3)
        >>> [row.method for row in rows]
        ['dftopk', 'lcron-softsort']
    """
    for method in methods:
        get_operator(method)
    if not 1 <= k < candidates:
        raise ValueError(f"need 1 <= k < candidates, got k={k}, candidates={candidates}")
    rows = []
    for level, noise in enumerate(noise_levels):
        labels, scores = simulated_requests(requests, candidates, noise, seed + level)
        targets = ground_truth_mask(labels, k)
        for method in methods:
            gradients = score_gradients(method, labels, scores, k, temperature)
            pushed_down, pushed_up = conflict_shares(gradients, targets)
            rows.append(ConflictRow(method, temperature, float(noise), pushed_down, pushed_up))
    return rows


def plot_gradient_conflict(rows: Sequence[ConflictRow], path: str) -> None:
    """Plots, per method, the share of ground-truth items pushed down against the score noise.

    Example:
        >>> rows = [ConflictRow("dftopk", 1.0, noise, 0.0, 0.01) for noise in (0.0, 1.0)]
        >>> plot_gradient_conflict(rows, "/tmp/gradient_conflict_example.png")
    """
    figure = new_figure()
    axes = figure.add_subplot()
    methods = list(dict.fromkeys(row.method for row in rows))
    for method in sorted(methods, key=lambda name: name == "dftopk"):  # DFTopK drawn on top
        points = [(row.noise, row.ground_truth_pushed_down) for row in rows if row.method == method]
        wide = method == "dftopk"
        axes.plot(
            *zip(*points, strict=True),
            marker="o",
            label=method,
            linewidth=3.0 if wide else 1.5,
            zorder=3 if wide else 2,
        )
    axes.set_xlabel("score noise (std; high = early in training)")
    axes.set_ylabel("share of ground-truth items pushed down")
    axes.set_title("Gradient conflict of top-k losses")
    axes.set_ylim(bottom=0.0)
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def conflict_section(
    rows: Sequence[ConflictRow], report_dir: str, requests: int, candidates: int, k: int
) -> ReportSection:
    """Plots the rows into ``report_dir/gradient_conflict.png`` and returns the report section.

    Example:
        >>> rows = [ConflictRow("dftopk", 1.0, 0.0, 0.0, 0.01)]
        >>> conflict_section(rows, "/tmp", requests=8, candidates=20, k=5).figures
        ('gradient_conflict.png',)
    """
    figure = "gradient_conflict.png"
    plot_gradient_conflict(rows, os.path.join(report_dir, figure))
    text = (
        f"{requests} requests x {candidates} candidates per noise level, ground truth = top-{k} "
        "by a hidden relevance r ~ N(0, 1), scores = r + noise x N(0, 1) (high noise: early in "
        "training). For each method's BCE selection loss, `ground_truth_pushed_down` is the share "
        "of ground-truth items with d loss / d score > 0 (a descent step lowers their score) and "
        "`others_pushed_up` the share of the other items with d loss / d score < 0. Gradients "
        f"below {RELATIVE_TOLERANCE:g} of the row's largest count as zero."
    )
    return ReportSection(
        "Gradient conflict (Figure 2)",
        text,
        "gradient_conflict",
        ConflictRow.columns(),
        [row.as_cells() for row in rows],
        (figure,),
    )
