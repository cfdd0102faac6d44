"""The Keras implementation this library runs on: tf-keras or Keras 3, picked by TensorFlow.

TensorFlow decides what ``tf.keras`` means from ``TF_USE_LEGACY_KERAS`` (``1`` gives tf-keras, which
TFRS needs; otherwise Keras 3 with the TensorFlow backend). The core op, layer, losses and metrics
use only APIs common to both, through this one module.

Example:
    >>> from dftopk_tf.keras_compat import keras
    >>> layer = keras.layers.Dense(2)
"""

import tensorflow as tf

keras = tf.keras

#: True when running on Keras 3 (multi-backend Keras with the TensorFlow backend).
IS_KERAS_3: bool = keras.__version__.startswith("3.")


def register_serializable(cls: type) -> type:
    """Registers a layer, loss or metric class for Keras serialization under ``dftopk_tf``.

    Example:
        >>> @register_serializable
        ... class MyLayer(keras.layers.Layer):
        ...     pass
    """
    return keras.saving.register_keras_serializable(package="dftopk_tf")(cls)
