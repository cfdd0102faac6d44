"""Tower building blocks: a multi-layer perceptron and masked mean pooling over a sequence.

Example:
    >>> tower = MLP((16, 4))
    >>> tower(tf.zeros([2, 7, 10])).shape.as_list()  # any leading axes: [batch, items, features]
    [2, 7, 4]
"""

from collections.abc import Sequence

import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras, register_serializable


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` [batch, length, d] over the steps where ``mask`` [batch, length] is True.

    A row with no real step gives zeros.

    Example:
        >>> values = tf.constant([[[1.0], [3.0], [100.0]]])
        >>> masked_mean(values, tf.constant([[True, True, False]])).numpy().tolist()
        [[2.0]]
    """
    weights = tf.cast(mask, values.dtype)[..., None]
    total = tf.reduce_sum(values * weights, axis=-2)
    return tf.math.divide_no_nan(total, tf.reduce_sum(weights, axis=-2))


@register_serializable
class MLP(keras.layers.Layer):
    """Dense layers with ReLU between them and a linear last layer.

    Args:
        units: output size of each Dense layer, e.g. ``(128, 64, 32)``.
        activation: activation of every layer but the last.

    Input: float [..., features]. Output: float32 [..., units[-1]].

    Example:
        >>> MLP((8, 1))(tf.ones([3, 5])).shape.as_list()
        [3, 1]
    """

    def __init__(self, units: Sequence[int], activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        units = [int(size) for size in units]
        if not units or min(units) < 1:
            raise ValueError(f"units must be a non-empty list of sizes >= 1, got {units}")
        self.units = units
        self.activation = activation
        last = len(units) - 1
        self.dense_layers = [
            keras.layers.Dense(size, activation=activation if i < last else None, name=f"dense_{i}")
            for i, size in enumerate(units)
        ]

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        outputs = inputs
        for layer in self.dense_layers:
            outputs = layer(outputs)
        return outputs

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "activation": self.activation}
