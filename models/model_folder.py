"""The layout of a trained model's folder, shared by training, evaluation and serving.

::

    MODEL_DIR/
      config.json         CascadeConfig (vocab sizes, columns, layer sizes, method, ks,
                          tau): written before training starts
      weights/            the trained weights, a TensorFlow checkpoint with prefix
                          weights/cascade (cascade.index, cascade.data-*): written atomically
                          when training completes
      checkpoints/        epoch-0001.index, ...: the weights after every epoch
      backup/             BackupAndRestore state while training runs (model, optimizer,
                          epoch); a killed run resumes from it; emptied when training completes
      logs/               TensorBoard logs (train/, validation/;
      dftopk_cascade.models.training.callbacks) history.csv         one row of logged metrics per
      completed epoch (appended on resume) metrics.json        the evaluation (python -m
      dftopk_cascade.models.training.evaluate, or the end of
                          training)
      data.json           the --data folder it was trained on (the default of
      dftopk_cascade.serving.export) precision.json      the run's --mixed-precision value (a
      resumed run must keep it) .dftopk-model.json  the marker: writer, format version, random id
      and the manifest of the
                          paths above (dftopk_cascade.pipelines.owned_folder); train writes only
                          into an empty folder or one with this marker, and --overwrite deletes only
                          those paths
      .dftopk-model.lock  held (fcntl) by the training that writes the folder

To rebuild a trained model: ``CascadeConfig.load(config.json)``, build the model, and
``load_weights(weights/cascade)`` (``dftopk_cascade.models.cascade.load_cascade`` does exactly
that).

Example:
    >>> layout = ModelDir("/tmp/dftopk_model")
    >>> layout.weights_prefix
    '/tmp/dftopk_model/weights/cascade'
"""

import json
import os
import shutil
from dataclasses import dataclass

from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.pipelines.atomic_files import TEMPORARY_SUFFIX, write_json

#: ``weights`` is renamed to ``weights.old`` while new weights replace it.
PREVIOUS_SUFFIX = ".old"


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

    @property
    def data_record_path(self) -> str:
        return os.path.join(self.root, "data.json")

    def record_data(self, data_dir: str) -> None:
        """Records the absolute path of the training data folder in ``data.json``.

        Example:
            >>> import tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> ModelDir(folder.name).record_data("/data/tfrec")
            >>> ModelDir(folder.name).recorded_data()
            '/data/tfrec'
        """
        write_json(self.data_record_path, {"data": os.path.abspath(data_dir)})

    def recorded_data(self) -> str | None:
        """The data folder recorded by ``record_data``, or None for a folder without one.

        Example:
            >>> ModelDir("/nonexistent").recorded_data() is None
            True
        """
        if not os.path.isfile(self.data_record_path):
            return None
        with open(self.data_record_path) as file:
            return json.load(file)["data"]

    @property
    def precision_record_path(self) -> str:
        return os.path.join(self.root, "precision.json")

    def record_precision(self, precision: str) -> None:
        """Records the run's ``--mixed-precision`` value in ``precision.json``.

        Example:
            >>> import tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> ModelDir(folder.name).record_precision("mixed_float16")
            >>> ModelDir(folder.name).recorded_precision()
            'mixed_float16'
        """
        write_json(self.precision_record_path, {"mixed_precision": precision})

    def recorded_precision(self) -> str:
        """The value recorded by ``record_precision``; "off" for a folder without one (a run
        from before the flag, which trained in float32).

        Example:
            >>> ModelDir("/nonexistent").recorded_precision()
            'off'
        """
        if not os.path.isfile(self.precision_record_path):
            return "off"
        with open(self.precision_record_path) as file:
            return json.load(file)["mixed_precision"]

    def has_weights(self) -> bool:
        """True when the trained weights are there (training completed).

        Example:
            >>> ModelDir("/nonexistent").has_weights()
            False
        """
        return os.path.isfile(self.weights_prefix + ".index")

    def entries(self) -> list[str]:
        """What training writes here, relative to the folder, present or not: the manifest of
        the folder's ``.dftopk-model.json`` marker (``dftopk_cascade.pipelines.owned_folder``), the
        only paths ``--overwrite`` deletes.

        Example:
            >>> ModelDir("/m").entries()[:3]
            ['config.json', 'weights', 'weights.tmp']
        """
        paths = [
            self.config_path,
            self.weights_dir,
            self.weights_dir + TEMPORARY_SUFFIX,
            self.weights_dir + PREVIOUS_SUFFIX,
            self.checkpoints_dir,
            self.backup_dir,
            self.logs_dir,
            self.history_path,
            self.metrics_path,
            self.data_record_path,
            self.precision_record_path,
        ]
        return [os.path.relpath(path, self.root) for path in paths]

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
        temporary = self.weights_dir + TEMPORARY_SUFFIX
        previous = self.weights_dir + PREVIOUS_SUFFIX
        for leftover in (temporary, previous):
            shutil.rmtree(leftover, ignore_errors=True)
        model.save_weights(os.path.join(temporary, os.path.basename(self.weights_prefix)))
        if os.path.isdir(self.weights_dir):
            os.replace(self.weights_dir, previous)
        os.replace(temporary, self.weights_dir)
        shutil.rmtree(previous, ignore_errors=True)
