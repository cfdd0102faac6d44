"""NumPy references for the peer operators, written directly from the papers' formulas.

Each works on one request (1-D scores of real items only) in float64, by the most direct method:
bisection for LapSum, pool-adjacent-violators for the sparse top-k projection, explicit loops for
the sorting networks.
"""

import numpy as np


def laplace_cdf(w: np.ndarray) -> np.ndarray:
    """Standard Laplace CDF."""
    return np.where(w >= 0, 1.0 - 0.5 * np.exp(-np.abs(w)), 0.5 * np.exp(-np.abs(w)))


def laplace_pdf(w: np.ndarray) -> np.ndarray:
    """Standard Laplace density."""
    return 0.5 * np.exp(-np.abs(w))


def lapsum_threshold(x: np.ndarray, k: int, alpha: float) -> float:
    """t with sum_i F((x_i - t) / alpha) = k, by bisection (the sum decreases in t)."""
    low, high = x.min() - 60.0 * alpha, x.max() + 60.0 * alpha
    for _ in range(200):
        middle = 0.5 * (low + high)
        if laplace_cdf((x - middle) / alpha).sum() > k:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def lapsum(x: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """LapSum probabilities F((x - t) / alpha); all ones when k >= len(x)."""
    if k >= len(x):
        return np.ones_like(x)
    return laplace_cdf((x - lapsum_threshold(x, k, alpha)) / alpha)


def lapsum_jacobian(x: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """dp_i / dx_j by the implicit function theorem: t moves so that sum p stays k."""
    density = laplace_pdf((x - lapsum_threshold(x, k, alpha)) / alpha) / alpha
    threshold_grad = density / density.sum()
    return density[:, None] * (np.eye(len(x)) - threshold_grad[None, :])


def isotonic_decreasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-increasing fit of y by pool-adjacent-violators."""
    blocks: list[list[float]] = []
    for value in y:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    return np.concatenate([np.full(int(count), total / count) for total, count in blocks])


def sparse_topk(x: np.ndarray, k: int, regularization: float) -> np.ndarray:
    """Projection of x / l onto the permutahedron of (1^k, 0^(n-k)) via isotonic regression."""
    z = x / regularization
    order = np.argsort(-z, kind="stable")
    sorted_z = z[order]
    w = (np.arange(len(z)) < k).astype(float)
    result = np.empty_like(z)
    result[order] = sorted_z - isotonic_decreasing(sorted_z - w)
    return result


def neuralsort(x: np.ndarray, tau: float) -> np.ndarray:
    """NeuralSort: row i = softmax(((n + 1 - 2i) x - |x_j - x_l| summed over l) / tau)."""
    n = len(x)
    gap_sums = np.abs(x[:, None] - x[None, :]).sum(axis=1)
    ranks = np.arange(1, n + 1)
    logits = ((n + 1 - 2 * ranks)[:, None] * x[None, :] - gap_sums[None, :]) / tau
    return _softmax_rows(logits)


def softsort(x: np.ndarray, tau: float) -> np.ndarray:
    """SoftSort: row r = softmax(-|sort(x)_r - x| / tau), sort descending."""
    return _softmax_rows(-np.abs(np.sort(x)[::-1][:, None] - x[None, :]) / tau)


def diffsort(x: np.ndarray, steepness: float) -> np.ndarray:
    """Odd-even transposition network with Cauchy comparators, by explicit loops."""
    n = len(x)
    values = x.astype(float).copy()
    matrix = np.eye(n)
    for layer in range(n):
        for upper in range(layer % 2, n - 1, 2):
            lower = upper + 1
            keep = np.arctan(steepness * (values[upper] - values[lower])) / np.pi + 0.5
            values[upper], values[lower] = (
                keep * values[upper] + (1 - keep) * values[lower],
                keep * values[lower] + (1 - keep) * values[upper],
            )
            matrix[[upper, lower]] = (
                keep * matrix[upper] + (1 - keep) * matrix[lower],
                keep * matrix[lower] + (1 - keep) * matrix[upper],
            )
    return matrix


def top_rows_probability(matrix: np.ndarray, k: int) -> np.ndarray:
    """LCRON: column mass in the first k rows over the column's total mass."""
    return matrix[:k].sum(axis=0) / matrix.sum(axis=0)


def hard_sort_matrix(x: np.ndarray) -> np.ndarray:
    """The exact permutation matrix of the descending sort (row r = one-hot of rank r)."""
    return np.eye(len(x))[np.argsort(-x, kind="stable")]


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
