"""The training callbacks of ``dftopk_cascade.models.training.train``: backup and resume,
TensorBoard summaries.

``EpochSummaries``: TensorBoard logs of every epoch's metrics, written with TensorFlow's own
summary ops.

Keras' ``TensorBoard`` callback calls ``tf.summary.scalar``, which lives in the ``tensorboard``
package; TensorFlow 2.21 no longer installs it, and the project's pinned environment does not
either. This callback writes the same event files with the core op ``tf.summary.write`` and the
scalars plugin's metadata, so a TensorBoard installed anywhere shows them as the usual scalar
charts: ``logs/train`` for the training metrics and ``logs/validation`` for the ``val_`` ones,
one point per epoch.

``RefittableBackupAndRestore``: Keras's ``BackupAndRestore`` that leaves the model fit-able.

tf-keras's ``BackupAndRestore.on_train_end`` deletes the model's ``_training_state`` attribute,
which the next ``model.fit`` reads, so a model trained with it cannot be trained again (an
``AttributeError`` from ``fit``). This subclass puts the attribute back (``None``, the value of a
model never trained with a backup) once the backup has been cleaned up.

Example:
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> summaries = EpochSummaries(os.path.join(folder.name, "logs"))
    >>> summaries.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.7})
    >>> sorted(os.listdir(os.path.join(folder.name, "logs")))
    ['train', 'validation']
    >>> RefittableBackupAndRestore(os.path.join(folder.name, "backup")).backup_dir
    '.../backup'
"""

import os

import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras
from tensorflow.core.framework import summary_pb2

#: TensorBoard's scalars plugin reads summaries tagged with this plugin name.
SCALARS_PLUGIN = "scalars"
VALIDATION_PREFIX = "val_"


def scalar_metadata() -> summary_pb2.SummaryMetadata:
    """Summary metadata that makes TensorBoard chart a value as a scalar.

    Example:
        >>> scalar_metadata().plugin_data.plugin_name
        'scalars'
    """
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=SCALARS_PLUGIN),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )


class EpochSummaries(keras.callbacks.Callback):
    """Writes each epoch's logs as TensorBoard scalars under ``log_dir``/train and /validation.

    Args:
        log_dir: the TensorBoard log folder.

    Example:
        >>> EpochSummaries("/tmp/logs").log_dir
        '/tmp/logs'
    """

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir = log_dir
        self._writers: dict[str, tf.summary.SummaryWriter] = {}

    def _writer(self, split: str) -> tf.summary.SummaryWriter:
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(os.path.join(self.log_dir, split))
        return self._writers[split]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        by_split: dict[str, dict[str, float]] = {}
        for name, value in (logs or {}).items():
            if name.startswith(VALIDATION_PREFIX):
                by_split.setdefault("validation", {})[name[len(VALIDATION_PREFIX) :]] = value
            else:
                by_split.setdefault("train", {})[name] = value
        for split, values in by_split.items():
            writer = self._writer(split)
            with writer.as_default():
                for name, value in values.items():
                    tf.summary.write(
                        f"epoch_{name}",
                        tf.constant(float(value), tf.float32),
                        step=epoch,
                        metadata=scalar_metadata(),
                    )
            writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


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
