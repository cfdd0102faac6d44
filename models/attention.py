"""Target attention: each candidate attends over the user's behaviour sequence.

Two forms, chosen by name (``TARGET_ATTENTIONS``, ``make_target_attention``):

- ``bilinear`` (``TargetAttention``): for candidate i (the query q_i) and behaviour j (the key
  k_j), the weight is a masked softmax over j of (W_q q_i) . (W_k k_j) / sqrt(units). Its largest
  tensor is [batch, candidates, length].
- ``din`` (``DINAttention``): the form of DIN (Zhou et al., 2018) as the official DFTopK/LCRON
  pre-ranking model uses it: an MLP over the concatenation [k_j, q_i], one hidden ReLU layer of
  80 units and one output, gives the logit of each (candidate, behaviour) pair; the weights are
  a masked softmax of those logits over j. Its largest tensor is the hidden layer,
  [batch, candidates, length, units]: batch x candidates x length x units x 4 bytes, so lower
  the evaluation batch when memory is short.

Either way the candidate's user-interest vector is sum_j a_ij k_j; padded behaviours get weight
0, and a request without any behaviour gets a zero interest vector.

Example:
    >>> attention = make_target_attention("din")
    >>> queries, keys = tf.ones([2, 3, 5]), tf.ones([2, 6, 5])
    >>> attention(queries, keys, tf.ones([2, 6], tf.bool)).shape.as_list()
    [2, 3, 5]
"""

import math

import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras, register_serializable

#: The target attention forms, by name: the first is the default.
TARGET_ATTENTIONS: tuple[str, ...] = ("bilinear", "din")
#: Hidden units of DIN's attention MLP in the official DFTopK/LCRON pre-ranking model.
DIN_ATTENTION_UNITS: int = 80


def check_target_attention(kind: str) -> str:
    """``kind`` if it is one of ``TARGET_ATTENTIONS``, else a ValueError naming them.

    Example:
        >>> check_target_attention("transformer")
        Traceback (most recent call last):
        ...
        ValueError: unknown target attention 'transformer'; choose one of bilinear, din
    """
    if kind not in TARGET_ATTENTIONS:
        raise ValueError(
            f"unknown target attention {kind!r}; choose one of {', '.join(TARGET_ATTENTIONS)}"
        )
    return kind


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


@register_serializable
class DINAttention(keras.layers.Layer):
    """DIN's masked attention: an MLP over [key, query] scores every (candidate, behaviour) pair.

    The logit of candidate i and behaviour j is v . relu(W_k k_j + W_q q_i + b): one Dense layer
    of ``units`` ReLU units over the concatenation [k_j, q_i] (its kernel split into the key's
    and the query's part, so the concatenation is never built), then one linear output. The
    output layer has no bias: softmax ignores a shift of all logits, so a bias would never train.

    Args:
        units: hidden units of the attention MLP.

    Call: ``layer(queries, keys, key_mask)`` with queries float [batch, n, dq] (the candidates),
    keys float [batch, length, dk] (the behaviours) and key_mask bool [batch, length] (True on
    real behaviours); returns float32 [batch, n, dk], each candidate's weighted sum of the keys.

    Example:
        >>> layer = DINAttention(units=4)
        >>> keys = tf.constant([[[1.0], [5.0]]])
        >>> layer(tf.ones([1, 1, 3]), keys, tf.constant([[True, False]])).numpy().tolist()
        [[[1.0]]]
    """

    def __init__(self, units: int = DIN_ATTENTION_UNITS, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        self.units = int(units)
        self.key_projection = keras.layers.Dense(self.units, use_bias=False, name="key")
        self.query_projection = keras.layers.Dense(self.units, name="query")
        self.output_projection = keras.layers.Dense(1, use_bias=False, name="logit")

    def call(self, queries: tf.Tensor, keys: tf.Tensor, key_mask: tf.Tensor) -> tf.Tensor:
        hidden = tf.nn.relu(
            self.query_projection(queries)[:, :, None, :] + self.key_projection(keys)[:, None]
        )
        logits = self.output_projection(hidden)[..., 0]
        return masked_softmax_pooling(logits, keys, key_mask)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


def make_target_attention(
    kind: str, bilinear_units: int = 32, **kwargs
) -> TargetAttention | DINAttention:
    """The target attention of form ``kind`` (one of ``TARGET_ATTENTIONS``).

    ``bilinear_units`` sizes the bilinear projections; DIN's MLP has the official
    ``DIN_ATTENTION_UNITS`` hidden units. ``kwargs`` go to the layer (``name=...``).

    Example:
        >>> make_target_attention("bilinear", 8).units, make_target_attention("din").units
        (8, 80)
    """
    if check_target_attention(kind) == "din":
        return DINAttention(DIN_ATTENTION_UNITS, **kwargs)
    return TargetAttention(bilinear_units, **kwargs)
