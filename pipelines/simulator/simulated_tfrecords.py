"""A small simulated RecFlow dataset, converted to TFRecords, in one call.

For examples, tests and benchmarks that need a real ``python -m dftopk_cascade.pipelines.convert``
folder without a download: it runs ``simulate`` into ``FOLDER/recflow`` and ``convert`` into
``FOLDER/tfrec`` (the same two steps as ``scripts/main.sh``, without progress bars) and returns the
TFRecord folder.

Example:
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
    >>> sorted(os.listdir(data_dir))[-1]
    'schema.json'
"""

import os

from dftopk_cascade.pipelines.convert import convert
from dftopk_cascade.pipelines.simulator.simulate import simulate


def simulated_tfrecords(folder: str, days: int, requests_per_day: int, seed: int = 0) -> str:
    """Simulates ``days`` x ``requests_per_day`` requests into ``folder`` and converts them.

    Returns ``folder/tfrec``, the converted data (``folder/recflow`` holds the RecFlow files).

    Example:
        >>> import tempfile
        >>> folder = tempfile.TemporaryDirectory()
        >>> os.path.basename(simulated_tfrecords(folder.name, days=1, requests_per_day=50))
        'tfrec'
    """
    recflow_root = os.path.join(folder, "recflow")
    data_dir = os.path.join(folder, "tfrec")
    simulate(recflow_root, days, requests_per_day, seed, progress=False)
    convert(recflow_root, data_dir, workers=1, progress=False)
    return data_dir
