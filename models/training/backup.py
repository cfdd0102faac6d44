"""``RefittableBackupAndRestore``: Keras's ``BackupAndRestore`` that leaves the model fit-able.

tf-keras's ``BackupAndRestore.on_train_end`` deletes the model's ``_training_state`` attribute,
which the next ``model.fit`` reads, so a model trained with it cannot be trained again (an
``AttributeError`` from ``fit``). This subclass puts the attribute back (``None``, the value of a
model never trained with a backup) once the backup has been cleaned up.

Example:
    >>> callback = RefittableBackupAndRestore("/tmp/run/backup")
    >>> callback.backup_dir
    '/tmp/run/backup'
"""

import os

import tensorflow as tf

from models.tf_keras import keras


class RefittableBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up the run every epoch and resumes a killed one; the model stays fit-able after.

    Args:
        backup_dir: where the backup lives while training runs (deleted when it completes).

    Example:
        >>> model = keras.Sequential([keras.layers.Dense(1)])
        >>> model.compile("sgd", "mse")
        >>> import tempfile
        >>> import numpy as np
        >>> x = np.ones((4, 2))
        >>> folder = tempfile.TemporaryDirectory()
        >>> backup = RefittableBackupAndRestore(folder.name)
        >>> _ = model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[backup])
        >>> len(model.fit(x, x[:, :1], epochs=1, verbose=0).history["loss"])  # trains again
        1
    """

    def on_train_end(self, logs=None) -> None:
        super().on_train_end(logs)
        if not hasattr(self.model, "_training_state"):
            self.model._training_state = None


def completed_epochs(backup_dir: str) -> int:
    """Epochs a killed run completed, from its backup (0 without one): where fit resumes.

    Keras's ``BackupAndRestore`` saves the 0-based index of the last completed epoch in the
    checkpoint under ``backup_dir/chief`` (variable ``ckpt_saved_epoch``) and resumes after it.

    Example:
        >>> import tempfile
        >>> completed_epochs(os.path.join(tempfile.mkdtemp(), "no_backup"))
        0
    """
    checkpoint = tf.train.latest_checkpoint(os.path.join(backup_dir, "chief"))
    if checkpoint is None:
        return 0
    reader = tf.train.load_checkpoint(checkpoint)
    keys = [key for key in reader.get_variable_to_shape_map() if key.startswith("ckpt_saved_epoch")]
    if not keys:
        return 0
    return max(0, int(reader.get_tensor(keys[0])) + 1)
