"""DIN-style target attention: each candidate attends over the user's behaviour sequence.

For candidate i (the query q_i) and behaviour j (the key k_j), the weight is a masked softmax over
j of (W_q q_i) . (W_k k_j) / sqrt(units), and the candidate's user-interest vector is
sum_j a_ij k_j. DIN scores each (candidate, behaviour) pair with a small MLP over
[q, k, q - k, q * k]; that costs a [batch, candidates, length, 4 * d] tensor, about 1.6 GB per
batch of 1,024 requests x 200 candidates x 50 behaviours at d = 40, so this layer uses the
bilinear form, [batch, candidates, length] only, which keeps evaluation over 200 candidates
within a 2-core CPU machine's memory. Padded behaviours get weight 0; a request without any
behaviour gets a zero interest vector.

Example:
    >>> attention = TargetAttention(units=4)
    >>> queries, keys = tf.ones([2, 3, 5]), tf.ones([2, 6, 5])
    >>> attention(queries, keys, tf.ones([2, 6], tf.bool)).shape.as_list()
    [2, 3, 5]
"""

import math

import tensorflow as tf

from models.tf_keras import keras, register_serializable


def masked_softmax_pooling(logits: tf.Tensor, keys: tf.Tensor, key_mask: tf.Tensor) -> tf.Tensor:
    """sum_j softmax_j(logits)_ij k_j over the real keys only; rows without one give zeros.

    ``logits`` [batch, n, length], ``keys`` [batch, length, d], ``key_mask`` bool
    [batch, length]; returns [batch, n, d].

    Example:
        >>> logits = tf.constant([[[0.0, 0.0, 9.0]]])
        >>> keys = tf.constant([[[1.0], [3.0], [100.0]]])
        >>> masked_softmax_pooling(logits, keys, tf.constant([[True, True, False]])).numpy()
        array([[[2.]]], dtype=float32)
    """
    real = tf.cast(key_mask, tf.bool)[:, None, :]
    # The dtype's lowest finite value (not -inf, and not a constant that overflows float16)
    # keeps rows without any real key free of NaN; the mask then zeroes them.
    weights = tf.nn.softmax(tf.where(real, logits, logits.dtype.min), axis=-1)
    weights = weights * tf.cast(real, weights.dtype)
    return tf.matmul(weights, keys)


@register_serializable
class TargetAttention(keras.layers.Layer):
    """Masked bilinear attention of candidates over a sequence.

    Args:
        units: size of the query and key projections.

    Call: ``layer(queries, keys, key_mask)`` with queries float [batch, n, dq] (the candidates),
    keys float [batch, length, dk] (the behaviours) and key_mask bool [batch, length] (True on
    real behaviours); returns float32 [batch, n, dk], each candidate's weighted sum of the keys.

    Example:
        >>> layer = TargetAttention(units=2)
        >>> keys = tf.constant([[[1.0], [5.0]]])
        >>> layer(tf.ones([1, 1, 3]), keys, tf.constant([[True, False]])).numpy().tolist()
        [[[1.0]]]
    """

    def __init__(self, units: int = 32, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units = int(units)
        self.query_projection = keras.layers.Dense(self.units, use_bias=False, name="query")
        self.key_projection = keras.layers.Dense(self.units, use_bias=False, name="key")

    def call(self, queries: tf.Tensor, keys: tf.Tensor, key_mask: tf.Tensor) -> tf.Tensor:
        # Two batched matrix products per request (BatchMatMul), without the transposes that
        # the same products written as einsums add on CPU.
        logits = tf.matmul(
            self.query_projection(queries), self.key_projection(keys), transpose_b=True
        ) / math.sqrt(self.units)
        return masked_softmax_pooling(logits, keys, key_mask)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}
