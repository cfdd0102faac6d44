"""Exact top-N retrieval over the whole item corpus, in plain TensorFlow ops, N given per call.

Why not ``tfrs.layers.factorized_top_k.BruteForce``: inside a SavedModel signature its k is the
Python default traced at save time (a frozen k), and it must be indexed and called before saving.
``ExactItemIndex`` holds the corpus as variables from construction and takes ``top_n`` as a
tensor, so one export serves any N. It uses only ``MatMul`` and ``TopKV2``, which stock TF
Serving has (ScaNN would add custom ops that it cannot load).

Example:
    >>> index = ExactItemIndex(np.eye(3, dtype=np.float32), np.arange(24).reshape(3, 8))
    >>> scores, ids, features = index(tf.constant([[0.0, 2.0, 1.0]]), tf.constant(2))
    >>> ids.numpy().tolist(), features.numpy()[0, :, 0].tolist()
    ([[1, 2]], [8, 16])
"""

import numpy as np
import tensorflow as tf


class ExactItemIndex(tf.Module):
    """Dot-product scores of queries against every corpus item, and the top N of them.

    Args:
        item_embeddings: float [C, d], one row per corpus item (the item tower's output).
        item_features: int [C, F], the features of the same items (returned with the ids).

    Call arguments:
        queries: float32 [B, d].
        top_n: int32 scalar tensor >= 1; min(top_n, C) items are returned.

    Returns: ``(scores float32 [B, n], item_ids int32 [B, n], item_features int32 [B, n, F])``,
    best first, ties in corpus order.

    Example:
        >>> index = ExactItemIndex(np.ones([4, 2], np.float32), np.zeros([4, 8], np.int32))
        >>> index(tf.ones([1, 2]), tf.constant(9))[1].shape.as_list()
        [1, 4]
    """

    def __init__(self, item_embeddings: np.ndarray, item_features: np.ndarray, name=None):
        super().__init__(name=name)
        item_embeddings = np.asarray(item_embeddings, np.float32)
        item_features = np.asarray(item_features, np.int32)
        if item_embeddings.ndim != 2 or item_features.ndim != 2:
            raise ValueError(
                "item_embeddings must be [items, dim] and item_features [items, features], got "
                f"shapes {item_embeddings.shape} and {item_features.shape}"
            )
        if item_embeddings.shape[0] != item_features.shape[0] or item_embeddings.shape[0] == 0:
            raise ValueError(
                "item_embeddings and item_features need the same, non-zero number of items, got "
                f"{item_embeddings.shape[0]} and {item_features.shape[0]}"
            )
        self.item_embeddings = tf.Variable(item_embeddings, trainable=False, name="embeddings")
        self.item_features = tf.Variable(item_features, trainable=False, name="features")

    @property
    def size(self) -> int:
        """Number of corpus items.

        Example:
            >>> ExactItemIndex(np.ones([5, 2]), np.ones([5, 8])).size
            5
        """
        return int(self.item_embeddings.shape[0])

    def __call__(
        self, queries: tf.Tensor, top_n: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        top_n = tf.convert_to_tensor(top_n, tf.int32)
        checked = tf.debugging.assert_positive(top_n, message="top_n must be >= 1")
        with tf.control_dependencies([checked]):
            count = tf.minimum(top_n, self.size)
        scores = tf.matmul(tf.cast(queries, tf.float32), self.item_embeddings, transpose_b=True)
        best_scores, item_ids = tf.math.top_k(scores, k=count)
        return best_scores, item_ids, tf.gather(self.item_features, item_ids)
