"""y_true as keras-rs's {"labels", "mask"} dict: the losses, gradients and metrics of padding."""

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import (
    NDCG,
    CascadeTopKLoss,
    DFTopKLoss,
    JointRecall,
    KendallTau,
    RecallAtKM,
    TopKSelectionLoss,
)
from dftopk_tf.label_inputs import padded_labels
from dftopk_tf.masking import PADDING_LABEL


def _labels_and_mask(seed: int, rows: int = 6, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Labels >= 0 everywhere (so only the mask marks padding) and a mask with 2-4 padded items."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.tile(np.arange(n, dtype=np.float32), (rows, 1)).T).T
    mask = np.ones((rows, n), bool)
    for row in range(rows):
        mask[row, rng.choice(n, size=rng.integers(2, 5), replace=False)] = False
    return labels, mask


def _as_padding(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, labels, PADDING_LABEL).astype(np.float32)


LOSSES = [
    lambda: DFTopKLoss(k=3, tau=0.5),
    lambda: DFTopKLoss(k=2, tau=1.0, label_k=3, threshold_gradient="spread"),
    lambda: TopKSelectionLoss("lapsum", k=3),
    lambda: TopKSelectionLoss("lcron-neuralsort", k=2),
]


@pytest.mark.parametrize("make_loss", LOSSES)
def test_dict_y_true_gives_the_padded_loss_and_gradient(make_loss) -> None:
    labels, mask = _labels_and_mask(seed=1)
    scores = tf.Variable(np.random.default_rng(2).normal(size=labels.shape).astype(np.float32))
    loss = make_loss()
    with tf.GradientTape(persistent=True) as tape:
        from_dict = loss({"labels": labels, "mask": mask}, scores)
        from_padding = loss(_as_padding(labels, mask), scores)
    np.testing.assert_allclose(float(from_dict), float(from_padding), rtol=1e-6)
    np.testing.assert_allclose(
        tape.gradient(from_dict, scores).numpy(),
        tape.gradient(from_padding, scores).numpy(),
        rtol=1e-6,
        atol=1e-8,
    )
    # A padded item's score does not matter either way.
    moved = tf.where(mask, scores, 50.0)
    moved_loss = loss({"labels": labels, "mask": mask}, moved)
    np.testing.assert_allclose(float(moved_loss), float(from_dict), rtol=1e-6)


@pytest.mark.parametrize("method", ["dftopk", "lcron-softsort"])
def test_cascade_loss_takes_the_dict_too(method: str) -> None:
    labels, mask = _labels_and_mask(seed=3)
    rng = np.random.default_rng(4)
    stages = [rng.normal(size=labels.shape).astype(np.float32) for _ in range(2)]
    cascade = CascadeTopKLoss(method, stage_ks=(5, 3), label_k=3)
    from_dict = cascade({"labels": labels, "mask": mask}, stages)
    from_padding = cascade(_as_padding(labels, mask), stages)
    for key in ("loss", "stage_losses", "joint_loss"):
        np.testing.assert_allclose(from_dict[key].numpy(), from_padding[key].numpy(), rtol=1e-6)


METRICS = [
    lambda: RecallAtKM(k=3, m=4),
    lambda: JointRecall(k=2, m1=5, m2=3),
    lambda: NDCG(k=4),
    KendallTau,
]


@pytest.mark.parametrize("make_metric", METRICS)
def test_dict_y_true_gives_the_padded_metric(make_metric) -> None:
    labels, mask = _labels_and_mask(seed=5, rows=8)
    scores = np.random.default_rng(6).normal(size=(*labels.shape, 2)).astype(np.float32)
    weights = np.linspace(0.5, 2.0, labels.shape[0]).astype(np.float32)
    from_dict, from_padding = make_metric(), make_metric()
    y_pred = scores if isinstance(from_dict, JointRecall) else scores[..., 0]
    from_dict.update_state({"labels": labels, "mask": mask}, y_pred, sample_weight=weights)
    from_padding.update_state(_as_padding(labels, mask), y_pred, sample_weight=weights)
    assert float(from_dict.result()) == pytest.approx(float(from_padding.result()), rel=1e-6)
    # And the mask really matters: the unmasked labels give another value.
    unmasked = make_metric()
    unmasked.update_state(labels, y_pred, sample_weight=weights)
    assert float(unmasked.result()) != pytest.approx(float(from_dict.result()), rel=1e-6)


def test_mask_and_negative_labels_combine_and_mask_dtypes() -> None:
    labels = np.array([[3.0, -1.0, 2.0, 1.0]], np.float32)
    expected = [[3.0, -1.0, -1.0, 1.0]]
    for mask in ([[True, True, False, True]], [[1, 1, 0, 1]], [[1.0, 1.0, 0.0, 1.0]]):
        got = padded_labels({"labels": labels, "mask": np.array(mask)})
        assert got.numpy().tolist() == expected
    assert padded_labels({"labels": labels}).numpy().tolist() == labels.tolist()
    assert padded_labels({"labels": labels, "mask": None}).numpy().tolist() == labels.tolist()


@pytest.mark.parametrize(
    ("y_true", "error", "pattern"),
    [
        ({"mask": [[True]]}, ValueError, '"labels" \\(required\\)'),
        ({"labels": [[1.0]], "weights": [[1.0]]}, ValueError, "got keys \\['labels', 'weights'\\]"),
        ({"labels": [[1.0, 2.0]], "mask": [[True]]}, ValueError, "mask.*must equal"),
    ],
)
def test_bad_dicts_raise_clearly(y_true, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        padded_labels(y_true)
    with pytest.raises(error, match=pattern):
        DFTopKLoss(k=1)(y_true, tf.zeros([1, len(y_true.get("labels", [[0.0]])[0])]))


def test_mask_shape_checked_at_run_time() -> None:
    check = tf.function(
        padded_labels,
        input_signature=[
            {
                "labels": tf.TensorSpec([None, None], tf.float32),
                "mask": tf.TensorSpec([None, None], tf.bool),
            }
        ],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask"):
        check({"labels": tf.zeros([1, 3]), "mask": tf.ones([1, 2], tf.bool)})
