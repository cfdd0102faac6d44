"""Gradient conflict measurement: gradients against the BCE formula, shares, errors."""

import numpy as np
import pytest

from experiments.report.gradient_conflict import (
    ConflictRow,
    conflict_shares,
    ground_truth_mask,
    measure_gradient_conflict,
    plot_gradient_conflict,
    score_gradients,
    simulated_requests,
)


def numpy_dftopk_bce_gradient(labels: np.ndarray, scores: np.ndarray, k: int, tau: float):
    """d/dx of mean_rows mean_items BCE(sigmoid((x - theta) / tau), top-k mask), by the formula."""
    batch, n = scores.shape
    targets = ground_truth_mask(labels, k)
    gradient = np.zeros_like(scores, dtype=np.float64)
    for row in range(batch):
        order = np.argsort(-scores[row], kind="stable")
        theta = 0.5 * scores[row, order[k - 1]] + 0.5 * scores[row, order[k]]
        s = 1.0 / (1.0 + np.exp(-(scores[row] - theta) / tau))
        item = (s - targets[row]) / tau / n / batch
        gradient[row] = item
        gradient[row, order[k - 1]] -= 0.5 * item.sum()
        gradient[row, order[k]] -= 0.5 * item.sum()
    return gradient


def test_dftopk_gradient_matches_the_bce_formula() -> None:
    labels, scores = simulated_requests(3, 12, noise=1.0, seed=4)
    got = score_gradients("dftopk", labels, scores, k=4, temperature=0.7)
    np.testing.assert_allclose(
        got, numpy_dftopk_bce_gradient(labels, scores, 4, 0.7), rtol=1e-4, atol=1e-7
    )


def test_conflict_shares_count_signs_and_ignore_tiny_gradients() -> None:
    gradients = np.array([[0.4, -1.0, 1e-9, -0.2, 0.3, -1e-9]])
    targets = np.array([[True, True, True, False, False, False]])
    # Target 0.4 is pushed down, -1 up, 1e-9 is below tolerance; non-target -0.2 is pushed up.
    assert conflict_shares(gradients, targets) == (pytest.approx(1 / 3), pytest.approx(1 / 3))


def test_conflict_shares_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        conflict_shares(np.zeros((2, 3)), np.zeros((2, 4), bool))


def test_ground_truth_is_the_top_k_of_the_labels() -> None:
    labels, scores = simulated_requests(5, 9, noise=0.0, seed=1)
    mask = ground_truth_mask(labels, 3)
    assert mask.sum(axis=1).tolist() == [3] * 5
    assert np.all(labels[mask].reshape(5, 3).min(1) > np.where(mask, -np.inf, labels).max(1))
    assert np.all(labels >= 0), "labels must not read as padding"
    np.testing.assert_array_equal(np.argsort(labels, 1), np.argsort(scores, 1))


def test_neuralsort_pushes_ground_truth_down_and_dftopk_does_not() -> None:
    rows = measure_gradient_conflict(
        ["dftopk", "lcron-neuralsort"], [0.0, 1.0], requests=32, candidates=40, k=5
    )
    assert [(row.method, row.noise) for row in rows] == [
        ("dftopk", 0.0),
        ("lcron-neuralsort", 0.0),
        ("dftopk", 1.0),
        ("lcron-neuralsort", 1.0),
    ]
    shares = {(row.method, row.noise): row.ground_truth_pushed_down for row in rows}
    assert shares[("dftopk", 0.0)] == 0.0
    assert shares[("lcron-neuralsort", 0.0)] > 0.05
    assert all(0.0 <= row.others_pushed_up <= 1.0 for row in rows)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ["nope"]}, "unknown top-k method"),
        ({"k": 40}, "k < candidates"),
        ({"noise_levels": [-1.0]}, "noise >= 0"),
    ],
)
def test_bad_settings_are_named(kwargs: dict, message: str) -> None:
    settings = {"requests": 2, "candidates": 40, "k": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        measure_gradient_conflict(**settings)


def test_plot_is_a_png(tmp_path) -> None:
    path = str(tmp_path / "conflict.png")
    plot_gradient_conflict([ConflictRow("dftopk", 1.0, 0.0, 0.0, 0.0)], path)
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
