"""Sampled softmax over in-batch items for a two-tower model: the TFRS retrieval baseline.

Every ground-truth item of a request (its top-``label_k`` candidates by label) makes one positive
pair (request, item). ``tfrs.tasks.Retrieval`` scores every pair's query against every pair's
item and applies a softmax cross-entropy with the pair's own item as the target: the negatives of
a pair are the positives of the *other* requests in the batch. The request's other positives are
masked out of its rows (``score_mask``), so two items that are both right for a request do not
compete, and padded pairs get weight 0. The loss is the mean over the real pairs.

Example:
    >>> softmax = InBatchSoftmax(label_k=1)
    >>> query = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    >>> items = tf.constant([[[1.0, 0.0]], [[0.0, 1.0]]])  # [batch, n, d]: each request's item
    >>> float(softmax(query, items, tf.constant([[1.0], [1.0]]))) < 0.69
    True
"""

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs

from dftopk_tf.losses import ground_truth
from models.tf_keras import keras, register_serializable


def positive_pairs(
    item_embeddings: tf.Tensor, labels: tf.Tensor, label_k: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Each request's ground-truth items: their embeddings, validity and request row.

    Args:
        item_embeddings: float [batch, n, d].
        labels: float [batch, n], negative on padded items.
        label_k: ground-truth size per request (<= n).

    Returns:
        ``(items, valid, rows)``: float [batch * label_k, d], bool [batch * label_k] (False on
        pairs of requests with fewer real items) and int32 [batch * label_k] (the request row).

    Example:
        >>> items, valid, rows = positive_pairs(tf.eye(3)[None], tf.constant([[0.0, 2.0, 1.0]]), 2)
        >>> items.numpy().tolist(), rows.numpy().tolist()
        ([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [0, 0])
    """
    _, truth = ground_truth(labels, label_k)
    # Ground-truth items first (at most label_k per row), in index order: top_k is stable.
    index = tf.math.top_k(tf.cast(truth, tf.int32), k=label_k).indices
    dim = item_embeddings.shape[-1]
    items = tf.reshape(tf.gather(item_embeddings, index, batch_dims=1), [-1, dim])
    valid = tf.reshape(tf.gather(truth, index, batch_dims=1), [-1])
    rows = tf.repeat(tf.range(tf.shape(labels)[0]), label_k)
    return items, valid, rows


@register_serializable
class InBatchSoftmax(keras.layers.Layer):
    """In-batch sampled-softmax retrieval loss over ground-truth pairs (``tfrs.tasks.Retrieval``).

    Args:
        label_k: ground-truth size per request (the top-``label_k`` candidates by label).
        temperature: softmax temperature of the task (None: 1).
        metrics: ``tfrs.metrics.FactorizedTopK`` (or other ``Factorized``) metrics over an item
            corpus index, updated with every real pair when ``compute_metrics``; not part of
            the config (an index is rebuilt from the trained item tower, not serialised).

    Call: ``layer(query_embeddings, item_embeddings, labels, compute_metrics=False)`` with query
    [batch, d], items [batch, n, d] and labels [batch, n] (negative = padded); returns the scalar
    mean loss over the real pairs of this (replica's) batch.

    Example:
        >>> InBatchSoftmax(label_k=5).get_config()["label_k"]
        5
    """

    def __init__(
        self,
        label_k: int = 10,
        temperature: float | None = None,
        metrics: Sequence[tfrs.metrics.Factorized] = (),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if label_k < 1:
            raise ValueError(f"label_k must be >= 1, got {label_k}")
        self.label_k = int(label_k)
        self.temperature = temperature
        self.task = tfrs.tasks.Retrieval(
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, reduction=keras.losses.Reduction.SUM
            ),
            metrics=list(metrics),
            temperature=temperature,
        )

    def call(
        self,
        query_embeddings: tf.Tensor,
        item_embeddings: tf.Tensor,
        labels: tf.Tensor,
        compute_metrics: bool = False,
    ) -> tf.Tensor:
        items, valid, rows = positive_pairs(item_embeddings, labels, self.label_k)
        queries = tf.repeat(query_embeddings, self.label_k, axis=0)
        pairs = tf.shape(rows)[0]
        own = tf.eye(pairs, dtype=tf.bool)
        same_request = tf.equal(rows[:, None], rows[None, :])
        score_mask = (own | ~same_request) & valid[None, :]
        weights = tf.cast(valid, tf.float32)
        total = self.task(
            queries,
            items,
            sample_weight=weights,
            score_mask=score_mask,
            compute_metrics=compute_metrics,
            compute_batch_metrics=False,
        )
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights))

    def get_config(self) -> dict:
        return {**super().get_config(), "label_k": self.label_k, "temperature": self.temperature}
