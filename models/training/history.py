"""``history.csv``: one row per completed epoch, kept whole across a killed and resumed run.

``EpochHistory`` (Keras's ``CSVLogger``, appending) writes an epoch's row before the backup of
that epoch is saved (``dftopk_cascade.models.training.train`` puts it first among the callbacks). A
run killed in between has a row for an epoch the backup does not hold, which the resumed run trains
again; so before a run starts, ``trim_history`` keeps the header and the rows of the epochs the
backup completed, in place, and drops the rest (and a last row cut short by a kill or a full disk).
A resumed run's ``history.csv`` thus holds every row written before the kill and one row per epoch.

Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "history.csv")
    >>> _ = open(path, "w").write("epoch,loss\\n0,0.9\\n1,0.8\\n2,0.")
    >>> trim_history(path, completed_epochs=2)
    >>> open(path).read()
    'epoch,loss\\n0,0.9\\n1,0.8\\n'
"""

import os

from dftopk_cascade.models.tf_keras import keras


class EpochHistory(keras.callbacks.CSVLogger):
    """Appends a row of logged metrics per epoch to ``path`` (a header first in a new file).

    Args:
        path: the CSV file (``ModelDir.history_path``).

    Example:
        >>> EpochHistory("/tmp/model/history.csv").append
        True
    """

    def __init__(self, path: str):
        super().__init__(path, append=True)


def trim_history(path: str, completed_epochs: int) -> None:
    """Truncates ``path`` after the rows of epochs ``0 .. completed_epochs - 1``.

    The rows are in epoch order, so what goes is a tail; it is cut in place (no copy, so this
    works on a full disk). A missing file is left missing.

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "resumed.csv")
        >>> _ = open(path, "w").write("epoch,loss\\n0,0.9\\n1,0.8\\n1,0.7\\n")
        >>> trim_history(path, completed_epochs=1)
        >>> open(path).read()
        'epoch,loss\\n0,0.9\\n'
    """
    if not os.path.isfile(path):
        return
    with open(path, "rb") as file:
        lines = file.read().split(b"\n")
    keep = 0
    for index, line in enumerate(lines[:-1]):  # the last piece has no newline: unfinished
        if index > 0 and not _is_row_of_completed_epoch(line, completed_epochs):
            break
        keep += len(line) + 1
    os.truncate(path, keep)


def _is_row_of_completed_epoch(line: bytes, completed_epochs: int) -> bool:
    epoch = line.split(b",", 1)[0]
    return epoch.isdigit() and int(epoch) < completed_epochs
