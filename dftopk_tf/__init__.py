"""dftopk_tf: DFTopK, a differentiable top-k operator with O(n) cost, for TensorFlow and Keras.

Public API:
- ``dftopk``, ``dftopk_logits``: the operator (``dftopk_tf.ops``).
- ``topk_mask``, ``kth_largest_pair``: linear-time selection (``dftopk_tf.selection``).
- ``DFTopK`` layer; ``DFTopKLoss``, ``TopKSelectionLoss``, ``CascadeTopKLoss`` losses.
- ``RecallAtKM``, ``JointRecall``, ``NDCG``, ``KendallTau`` metrics.
- ``get_operator``, ``OPERATOR_NAMES``: DFTopK and the peer operators by name.

Example:
    >>> import tensorflow as tf
    >>> import dftopk_tf
    >>> dftopk_tf.dftopk(tf.constant([[3.0, 1.0, 2.0]]), k=1, tau=1.0).shape.as_list()
    [1, 3]
"""

from dftopk_tf.layers import DFTopK
from dftopk_tf.losses import CascadeTopKLoss, DFTopKLoss, TopKSelectionLoss, get_loss
from dftopk_tf.masking import PADDING_LABEL
from dftopk_tf.metrics import NDCG, JointRecall, KendallTau, RecallAtKM
from dftopk_tf.operators import OPERATOR_NAMES, get_operator
from dftopk_tf.ops import dftopk, dftopk_logits
from dftopk_tf.selection import kth_largest_pair, topk_mask

__version__ = "0.1.0"

__all__ = [
    "NDCG",
    "OPERATOR_NAMES",
    "PADDING_LABEL",
    "CascadeTopKLoss",
    "DFTopK",
    "DFTopKLoss",
    "JointRecall",
    "KendallTau",
    "RecallAtKM",
    "TopKSelectionLoss",
    "dftopk",
    "dftopk_logits",
    "get_loss",
    "get_operator",
    "kth_largest_pair",
    "topk_mask",
]
