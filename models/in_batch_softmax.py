"""Sampled softmax over in-batch items for a two-tower model: the TFRS retrieval baseline.

The classic TFRS recipe, one positive per query: a request's positive is its best candidate (the
highest label: its ranking stage's first video). ``tfrs.tasks.Retrieval`` scores each request
against its positive and against every ground-truth item (top-``label_k`` by label) of the
*other* requests in the batch, its negatives; the request's own other ground-truth items are
masked out (``score_mask``), so items that are right for a request never count against it.
Requests without any real candidate get weight 0. The loss is the mean over the requests.

Cost: scores [batch, batch * label_k], e.g. 1,024 x 10,240 per step. (One pair per
ground-truth item instead would cost [batch * label_k]^2, 100 times that.)

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
from dftopk_cascade.models.precision import mixed_precision_policy
from dftopk_cascade.models.tf_keras import keras, register_serializable

from dftopk_tf.losses import ground_truth
from dftopk_tf.renamed import renamed_keys, renamed_keyword


def ground_truth_items(
    item_embeddings: tf.Tensor, labels: tf.Tensor, label_k: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The batch's ground-truth items, flattened: their embeddings, validity and request row.

    Args:
        item_embeddings: float [batch, n, d].
        labels: float [batch, n], negative on padded items.
        label_k: ground-truth size per request (<= n).

    Returns:
        ``(items, valid, rows)``: float [batch * label_k, d], bool [batch * label_k] (False on
        the slots of requests with fewer real items) and int32 [batch * label_k] (the request).

    Example:
        >>> labels = tf.constant([[0.0, 2.0, 1.0]])
        >>> items, valid, rows = ground_truth_items(tf.eye(3)[None], labels, 2)
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
        label_k: ground-truth size per request (the top-``label_k`` candidates by label): the
            other requests' ground-truth items are the negatives.
        tau: softmax temperature of the task (None: 1); ``temperature=`` is its deprecated name.
        metrics: ``tfrs.metrics.FactorizedTopK`` (or other ``Factorized``) metrics over an item
            corpus index, updated with each request's positive when ``compute_metrics``; not
            part of the config (an index is rebuilt from the trained item tower).

    Call: ``layer(query_embeddings, item_embeddings, labels, compute_metrics=False)`` with query
    [batch, d], items [batch, n, d] and labels [batch, n] (negative = padded); returns the scalar
    mean loss over the requests of this (replica's) batch that have a real candidate.

    Example:
        >>> InBatchSoftmax(label_k=5).get_config()["label_k"]
        5
    """

    def __init__(
        self,
        label_k: int = 10,
        tau: float | None = None,
        metrics: Sequence[tfrs.metrics.Factorized] = (),
        **kwargs,
    ):
        tau = renamed_keyword(kwargs, "temperature", "tau", tau, type(self).__name__)
        super().__init__(**{"dtype": "float32", **kwargs})  # float32 under mixed precision
        if label_k < 1:
            raise ValueError(f"label_k must be >= 1, got {label_k}")
        self.label_k = int(label_k)
        self.tau = tau
        with mixed_precision_policy("off"):  # the TFRS task takes no dtype: float32 here too
            self.task = tfrs.tasks.Retrieval(
                loss=keras.losses.CategoricalCrossentropy(
                    from_logits=True, reduction=keras.losses.Reduction.SUM
                ),
                metrics=list(metrics),
                temperature=tau,
            )

    def call(
        self,
        query_embeddings: tf.Tensor,
        item_embeddings: tf.Tensor,
        labels: tf.Tensor,
        compute_metrics: bool = False,
    ) -> tf.Tensor:
        items, valid, rows = ground_truth_items(item_embeddings, labels, self.label_k)
        best = tf.gather(item_embeddings, tf.math.top_k(labels, k=1).indices, batch_dims=1)
        requests = tf.shape(labels)[0]
        others = tf.not_equal(rows[None, :], tf.range(requests)[:, None]) & valid[None, :]
        # Column b of the first block is request b's positive; the rest are negatives.
        score_mask = tf.concat([tf.eye(requests, dtype=tf.bool), others], axis=1)
        weights = tf.cast(tf.reduce_any(labels >= 0, axis=-1), tf.float32)
        total = self.task(
            query_embeddings,
            tf.concat([best[:, 0], items], axis=0),
            sample_weight=weights,
            score_mask=score_mask,
            compute_metrics=compute_metrics,
            compute_batch_metrics=False,
        )
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights))

    def get_config(self) -> dict:
        return {**super().get_config(), "label_k": self.label_k, "tau": self.tau}

    @classmethod
    def from_config(cls, config: dict) -> "InBatchSoftmax":
        """Also loads a config saved before ``temperature`` was renamed ``tau``."""
        return super().from_config(renamed_keys(config, {"temperature": "tau"}))
