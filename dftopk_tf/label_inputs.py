"""``y_true`` as losses and metrics take it: padded labels, or keras-rs's ``{"labels", "mask"}``.

Two ways to mark padded items, with the same values either way:

- a tensor of labels [batch, n] where a negative label (``PADDING_LABEL``) marks a padded item;
- a dict ``{"labels": [batch, n], "mask": [batch, n]}`` as keras-rs losses and metrics take it,
  ``mask`` True (or non-zero) on real items. As in keras-rs, an item is real when its mask is
  True *and* its label is >= 0; ``"mask"`` may be left out.

Keras's ``compile()`` containers match ``y_true`` to the model's outputs and refuse a dict for a
single-output model (for keras-rs losses too): pass the dict to the loss from ``compute_loss``.

Example:
    >>> padded_labels({"labels": [[3.0, 1.0, 2.0]], "mask": [[True, False, True]]}).numpy()
    array([[ 3., -1.,  2.]], dtype=float32)
"""

from collections.abc import Mapping

import tensorflow as tf

from dftopk_tf.masking import PADDING_LABEL

LABELS_KEY = "labels"
MASK_KEY = "mask"


def padded_labels(y_true: tf.Tensor | Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Returns float32 labels with every padded item's label set to ``PADDING_LABEL``.

    Args:
        y_true: labels [batch, n] (negative = padded), or a dict with ``"labels"`` [batch, n] and
            optionally ``"mask"`` [batch, n] (True or non-zero = real item).

    Raises:
        ValueError: a dict without ``"labels"``, with other keys, or whose mask shape differs
            from the labels' (``InvalidArgumentError`` when only known at run time).

    Example:
        >>> padded_labels(tf.constant([[2.0, -1.0]])).numpy().tolist()
        [[2.0, -1.0]]
        >>> padded_labels({"labels": [[2.0, 0.0]], "mask": [[1, 0]]}).numpy().tolist()
        [[2.0, -1.0]]
    """
    if not isinstance(y_true, Mapping):
        return tf.cast(y_true, tf.float32)
    unexpected = sorted(set(y_true) - {LABELS_KEY, MASK_KEY})
    if LABELS_KEY not in y_true or unexpected:
        raise ValueError(
            f'y_true as a dict takes the keys "labels" (required) and "mask" (optional, True on '
            f"real items); got keys {sorted(y_true)}"
        )
    labels = tf.cast(y_true[LABELS_KEY], tf.float32)
    if y_true.get(MASK_KEY) is None:
        return labels
    mask = tf.convert_to_tensor(y_true[MASK_KEY])
    if mask.dtype != tf.bool:
        mask = tf.not_equal(mask, tf.zeros([], mask.dtype))
    if not mask.shape.is_compatible_with(labels.shape):
        raise ValueError(
            f'y_true["mask"] shape {mask.shape} must equal y_true["labels"] shape {labels.shape}'
        )
    check = tf.debugging.assert_equal(
        tf.shape(mask), tf.shape(labels), message='y_true["mask"] shape must equal labels shape'
    )
    with tf.control_dependencies([check]):
        return tf.where(mask, labels, PADDING_LABEL)
