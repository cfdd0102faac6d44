"""Losses refuse non-numeric temperatures and sizes, and NaN labels give NaN, never a silent 0."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf.losses import CascadeTopKLoss, DFTopKLoss, TopKSelectionLoss

NAN = float("nan")


@pytest.mark.parametrize("tau", ["1", b"1", None, True, [1.0]])
def test_dftopk_loss_refuses_a_temperature_that_is_not_a_number(tau) -> None:
    with pytest.raises(TypeError, match=r"tau must be a number > 0 \(or a tensor\), got"):
        DFTopKLoss(k=2, tau=tau)


@pytest.mark.parametrize("tau", ["0.5", b"0.5", False])
def test_the_other_losses_refuse_a_temperature_that_is_not_a_number(tau) -> None:
    with pytest.raises(TypeError, match="tau must be a number > 0"):
        TopKSelectionLoss("lapsum", k=2, tau=tau)
    with pytest.raises(TypeError, match="tau must be a number > 0"):
        CascadeTopKLoss("dftopk", stage_ks=(2, 1), label_k=1, tau=tau)
    with pytest.raises(TypeError, match="tau must be a number > 0"):
        CascadeTopKLoss("dftopk", stage_ks=(2, 1), label_k=1, tau=[0.5, tau])


@pytest.mark.parametrize("k", ["2", 2.5, True, 0])
def test_dftopk_loss_refuses_a_k_that_is_not_a_size(k) -> None:
    with pytest.raises(ValueError, match=r"k and label_k must be >= 1 \(ints\)"):
        DFTopKLoss(k=k, tau=1.0)


def test_numbers_and_tensors_are_still_temperatures() -> None:
    labels = tf.constant([[3.0, 2.0, 1.0, 0.0]])
    scores = tf.constant([[4.0, 3.0, -3.0, -4.0]])
    as_number = float(DFTopKLoss(k=2, tau=np.float32(0.5))(labels, scores))
    as_tensor = float(DFTopKLoss(k=2, tau=tf.constant(0.5))(labels, scores))
    assert as_tensor == pytest.approx(as_number, rel=1e-6) and math.isfinite(as_number)


def test_all_nan_labels_give_a_nan_loss_not_zero() -> None:
    scores = tf.constant([[4.0, 3.0, -3.0, -4.0]])
    labels = tf.fill([1, 4], NAN)
    assert math.isnan(float(DFTopKLoss(k=2, tau=1.0)(labels, scores)))
    assert math.isnan(float(TopKSelectionLoss("lapsum", k=2)(labels, scores)))
    cascade = CascadeTopKLoss("dftopk", stage_ks=(2, 1), label_k=1)(labels, [scores, scores])
    assert math.isnan(float(cascade["loss"])) and math.isnan(float(cascade["joint_loss"]))


def test_one_nan_label_makes_its_request_nan_and_leaves_the_others() -> None:
    scores = tf.constant([[4.0, 3.0, -3.0, -4.0], [4.0, 3.0, -3.0, -4.0]])
    labels = tf.constant([[3.0, NAN, 1.0, 0.0], [3.0, 2.0, 1.0, -1.0]])  # -1: padding, not NaN
    loss = DFTopKLoss(k=2, tau=1.0, reduction="none")(labels, scores).numpy()
    clean = DFTopKLoss(k=2, tau=1.0, reduction="none")(labels[1:], scores[1:]).numpy()
    assert math.isnan(loss[0])
    assert loss[1] == pytest.approx(clean[0], rel=1e-6) and clean[0] > 0.0


def test_a_nan_label_gives_no_nan_gradient_to_the_scores_of_other_requests() -> None:
    scores = tf.Variable([[4.0, 3.0, -3.0, -4.0], [1.0, 2.0, 0.0, -1.0]])
    labels = tf.constant([[NAN] * 4, [3.0, 2.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        per_request = DFTopKLoss(k=2, tau=1.0, reduction="none")(labels, scores)
        clean_total = per_request[1]
    gradient = tape.gradient(clean_total, scores).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient[1]).sum() > 0.0
