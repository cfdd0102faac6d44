"""The Keras implementation the models run on: tf-keras, which TFRS needs.

``models/__init__.py`` selects tf-keras before TensorFlow is imported; this module fails early,
with the fix in the message, when TensorFlow was already set up for Keras 3.

Example:
    >>> from dftopk_cascade.models.tf_keras import keras, register_serializable
    >>> keras.__name__
    'tf_keras'
"""

from dftopk_tf.keras_compat import IS_KERAS_3, keras

if IS_KERAS_3:
    raise ImportError(
        "models/ needs tf-keras (TensorFlow Recommenders does not support Keras 3): set "
        "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported"
    )


def register_serializable(cls: type) -> type:
    """Registers a model-side layer or model class for Keras serialization under ``models``.

    Example:
        >>> @register_serializable
        ... class Scorer(keras.layers.Layer):
        ...     pass
    """
    return keras.saving.register_keras_serializable(package="models")(cls)
