"""The padding convention shared by the operator, losses and metrics.

Requests have different candidate counts, so tensors are padded to [batch, n]. A padded item is
marked either by an explicit boolean ``mask`` (True = real item) or, for losses and metrics that
only see ``(y_true, y_pred)``, by a negative label (``PADDING_LABEL``, as in TF Ranking).

Example:
    >>> labels = tf.constant([[3.0, 1.0, PADDING_LABEL]])
    >>> mask_from_labels(labels).numpy().tolist()
    [[True, True, False]]
"""

import tensorflow as tf

#: Label value that marks a padded item in ``y_true`` (any negative label counts as padding).
PADDING_LABEL: float = -1.0


def mask_from_labels(labels: tf.Tensor) -> tf.Tensor:
    """Returns the boolean mask of real items (label >= 0) for labels padded with ``PADDING_LABEL``.

    Example:
        >>> mask_from_labels(tf.constant([[1.0, -1.0]])).numpy().tolist()
        [[True, False]]
    """
    return tf.greater_equal(labels, 0.0)


def resolve_mask(scores: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Returns ``mask`` as a boolean tensor of ``scores``' shape, or all-True when ``mask`` is None.

    Raises ``ValueError`` (statically known shapes) or ``InvalidArgumentError`` (at run time) when
    the shapes differ.

    Example:
        >>> resolve_mask(tf.zeros([2, 3]), None).shape.as_list()
        [2, 3]
    """
    if mask is None:
        return tf.ones_like(scores, dtype=tf.bool)
    mask = tf.convert_to_tensor(mask)
    if mask.dtype != tf.bool:
        mask = tf.cast(mask, tf.bool)
    if not mask.shape.is_compatible_with(scores.shape):
        raise ValueError(
            f"mask shape {mask.shape} does not match scores shape {scores.shape}; the mask marks "
            "real items with True and must have the scores' shape."
        )
    with tf.control_dependencies(
        [
            tf.debugging.assert_equal(
                tf.shape(mask), tf.shape(scores), message="mask shape must equal scores shape"
            )
        ]
    ):
        return tf.identity(mask)
