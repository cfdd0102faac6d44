"""The layout of a trained model's folder, shared by training, evaluation and serving.

::

    MODEL_DIR/
      config.json         CascadeConfig (vocab sizes, columns, layer sizes, method, ks,
                          temperature): written before training starts
      weights/            the trained weights, a TensorFlow checkpoint with prefix
                          weights/cascade (cascade.index, cascade.data-*): written atomically
                          when training completes
      checkpoints/        epoch-0001.index, ...: the weights after every epoch
      backup/             BackupAndRestore state while training runs (model, optimizer,
                          epoch); a killed run resumes from it; emptied when training completes
      logs/               TensorBoard logs (train/, validation/; models.epoch_summaries)
      history.csv         one row of logged metrics per completed epoch (appended on resume)
      metrics.json        the evaluation (python -m models.evaluate, or the end of training)

To rebuild a trained model: ``CascadeConfig.load(config.json)``, build the model, and
``load_weights(weights/cascade)`` (``models.cascade.load_cascade`` does exactly that).

Example:
    >>> layout = ModelDir("/tmp/dftopk_model")
    >>> layout.weights_prefix
    '/tmp/dftopk_model/weights/cascade'
"""

import os
import shutil
from dataclasses import dataclass

from models.tf_keras import keras


@dataclass(frozen=True)
class ModelDir:
    """Paths inside a model folder (see the module docstring).

    Example:
        >>> ModelDir("/m").config_path
        '/m/config.json'
    """

    root: str

    @property
    def config_path(self) -> str:
        return os.path.join(self.root, "config.json")

    @property
    def weights_dir(self) -> str:
        return os.path.join(self.root, "weights")

    @property
    def weights_prefix(self) -> str:
        return os.path.join(self.weights_dir, "cascade")

    @property
    def checkpoints_dir(self) -> str:
        return os.path.join(self.root, "checkpoints")

    @property
    def checkpoint_pattern(self) -> str:
        """``ModelCheckpoint`` file pattern (Keras fills in the 1-based epoch)."""
        return os.path.join(self.checkpoints_dir, "epoch-{epoch:04d}")

    @property
    def backup_dir(self) -> str:
        return os.path.join(self.root, "backup")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def history_path(self) -> str:
        return os.path.join(self.root, "history.csv")

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.root, "metrics.json")

    def has_weights(self) -> bool:
        """True when the trained weights are there (training completed).

        Example:
            >>> ModelDir("/nonexistent").has_weights()
            False
        """
        return os.path.isfile(self.weights_prefix + ".index")

    def save_weights(self, model: keras.Model) -> None:
        """Saves ``model``'s weights to ``weights/``, replacing earlier ones atomically.

        They are written to a temporary folder first, so a reader never sees half of them.

        Example:
            >>> import tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
            >>> ModelDir(folder.name).save_weights(model)
            >>> ModelDir(folder.name).has_weights()
            True
        """
        temporary = self.weights_dir + ".tmp"
        previous = self.weights_dir + ".old"
        for leftover in (temporary, previous):
            shutil.rmtree(leftover, ignore_errors=True)
        model.save_weights(os.path.join(temporary, os.path.basename(self.weights_prefix)))
        if os.path.isdir(self.weights_dir):
            os.replace(self.weights_dir, previous)
        os.replace(temporary, self.weights_dir)
        shutil.rmtree(previous, ignore_errors=True)
