"""The Keras implementation this library runs on: tf-keras or Keras 3, picked by TensorFlow.

``TF_USE_LEGACY_KERAS`` picks it, as it does for ``tf.keras``: ``1`` gives tf-keras (which TFRS
needs), anything else Keras 3 with the TensorFlow backend. The core op, layer, losses and metrics
use only APIs common to both, through this one module.

Example:
    >>> from dftopk_tf.keras_compat import keras
    >>> layer = keras.layers.Dense(2)
"""

import os

if os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true"):
    import tf_keras as keras
else:
    import keras

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
