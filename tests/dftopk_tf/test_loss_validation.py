"""DFTopKLoss checks its settings at construction (like the layer) and calls labels labels."""

import pytest
import tensorflow as tf

from dftopk_tf import DFTopKLoss, TopKSelectionLoss


def test_labels_of_the_wrong_shape_are_called_labels() -> None:
    with pytest.raises(ValueError, match=r"labels \(y_true\) have shape \(2, 3\) but the scores"):
        DFTopKLoss(k=1)(tf.zeros([2, 3]), tf.zeros([2, 4]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tau": 0.0}, "tau must be > 0"),
        ({"tau": float("nan")}, "tau must be > 0"),
        ({"k": 2.5}, r"k and label_k must be >= 1 \(ints\), got k=2.5"),
        ({"k": True}, "k and label_k must be >= 1"),
        ({"label_k": 0}, "k and label_k must be >= 1"),
    ],
)
def test_bad_loss_settings_are_refused_at_construction(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        DFTopKLoss(**settings)


def test_a_peer_loss_refuses_a_non_positive_tau() -> None:
    with pytest.raises(ValueError, match="tau must be > 0"):
        TopKSelectionLoss("lapsum", k=1, tau=-1.0)
