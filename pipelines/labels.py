"""Stage ids and per-item labels of the public two-stage training protocol.

A ``rank_pos`` candidate is labelled ``30 - rank_index`` (its real ranking position); the other
stage groups get constants below every ``rank_pos`` label: ``rank_neg`` 7, ``coarse_neg`` 6,
``prerank_neg`` 5. In-batch negatives get 0 and padded slots ``dftopk_tf.masking.PADDING_LABEL``,
so the ground truth (top 10 by label) is essentially the ``rank_pos`` candidates.

Example:
    >>> rank_index = tf.zeros([1, 10], tf.int32)
    >>> mask = tf.ones([1, 40], tf.bool)
    >>> protocol_labels(rank_index, mask)[0, ::10].numpy().tolist()
    [30.0, 7.0, 6.0, 5.0]
"""

import tensorflow as tf

from dftopk_tf.masking import PADDING_LABEL

STAGE_RANK_POS = 0
STAGE_RANK_NEG = 1
STAGE_COARSE_NEG = 2
STAGE_PRERANK_NEG = 3
STAGE_IN_BATCH_NEGATIVE = 4
#: Stage id of each of the four stage groups, in slot order.
STAGE_GROUP_IDS = (STAGE_RANK_POS, STAGE_RANK_NEG, STAGE_COARSE_NEG, STAGE_PRERANK_NEG)
RANK_POS_LABEL_BASE = 30.0
#: Constant labels of the groups after rank_pos (30 - 23, 30 - 24, 30 - 25).
GROUP_LABELS = {STAGE_RANK_NEG: 7.0, STAGE_COARSE_NEG: 6.0, STAGE_PRERANK_NEG: 5.0}
IN_BATCH_NEGATIVE_LABEL = 0.0


def stage_ids(batch_size: tf.Tensor | int, group_size: int) -> tf.Tensor:
    """Returns int32 [batch, 4 * group_size]: the stage id of every stage-group slot.

    Example:
        >>> stage_ids(1, 2).numpy().tolist()
        [[0, 0, 1, 1, 2, 2, 3, 3]]
    """
    row = tf.repeat(tf.constant(STAGE_GROUP_IDS, tf.int32), group_size)
    return tf.tile(row[None, :], [batch_size, 1])


def protocol_labels(rank_index: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Returns float32 [batch, 4 * group]: the protocol label of every stage-group slot.

    Args:
        rank_index: int [batch, group]: ``rank_index`` of the rank_pos candidates.
        mask: bool [batch, 4 * group]: True on real candidates.

    Example:
        >>> labels = protocol_labels(tf.constant([[2]]), tf.constant([[True, True, True, False]]))
        >>> labels.numpy().tolist()
        [[28.0, 7.0, 6.0, -1.0]]
    """
    group_size = tf.shape(rank_index)[1]
    rank_pos = RANK_POS_LABEL_BASE - tf.cast(rank_index, tf.float32)
    constants = tf.repeat(
        tf.constant([GROUP_LABELS[stage] for stage in STAGE_GROUP_IDS[1:]], tf.float32),
        group_size,
    )
    others = tf.tile(constants[None, :], [tf.shape(rank_index)[0], 1])
    labels = tf.concat([rank_pos, others], axis=1)
    return tf.where(mask, labels, tf.constant(PADDING_LABEL, tf.float32))
