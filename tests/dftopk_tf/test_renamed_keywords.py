"""The losses' earlier keyword ``temperature=`` still works, warns, and old configs still load."""

import pytest
import tensorflow as tf

from dftopk_tf.losses import CascadeTopKLoss, TopKSelectionLoss, get_loss

LABELS = tf.constant([[3.0, 2.0, 1.0, 0.0]])
SCORES = tf.constant([[4.0, 1.0, 3.0, -4.0]])


def test_get_loss_temperature_is_a_deprecated_name_of_tau() -> None:
    with pytest.warns(DeprecationWarning, match="use tau= instead"):
        old = get_loss("lapsum", k=2, temperature=0.5)
    new = get_loss("lapsum", k=2, tau=0.5)
    assert old.tau == 0.5
    assert float(old(LABELS, SCORES)) == pytest.approx(float(new(LABELS, SCORES)), rel=1e-6)


def test_selection_loss_temperature_is_a_deprecated_name_of_tau() -> None:
    with pytest.warns(DeprecationWarning, match="TopKSelectionLoss: temperature= is deprecated"):
        loss = TopKSelectionLoss("lapsum", k=2, temperature=0.5)
    assert loss.tau == 0.5 and loss.get_config()["tau"] == 0.5


def test_cascade_loss_temperature_is_a_deprecated_name_of_tau() -> None:
    with pytest.warns(DeprecationWarning, match="CascadeTopKLoss: temperature= is deprecated"):
        loss = CascadeTopKLoss("dftopk", stage_ks=(2, 1), label_k=1, temperature=[0.5, 2.0])
    assert loss.tau == [0.5, 2.0]


def test_giving_both_names_is_refused() -> None:
    with pytest.raises(TypeError, match="give tau= only"):
        TopKSelectionLoss("lapsum", k=2, tau=0.5, temperature=0.5)


def test_configs_saved_with_temperature_still_load() -> None:
    saved = TopKSelectionLoss("lapsum", k=2, tau=0.5).get_config()
    saved["temperature"] = saved.pop("tau")
    assert TopKSelectionLoss.from_config(saved).tau == 0.5
    cascade = CascadeTopKLoss("dftopk", stage_ks=(2, 1), label_k=1, tau=0.5).get_config()
    cascade["temperature"] = cascade.pop("tau")
    assert CascadeTopKLoss.from_config(cascade).tau == 0.5
