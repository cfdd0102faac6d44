"""The shared entry of every ``python -m ...`` command: quiet start-up and one-line user errors.

Every command of the project (``dftopk_cascade.pipelines.simulator.simulate``,
``dftopk_cascade.pipelines.convert``, ``dftopk_cascade.models.training.train``,
``dftopk_cascade.models.training.evaluate``, ``dftopk_cascade.serving.export``,
``dftopk_cascade.serving.server``, the ``benchmarks``) starts the same way:

- ``start_up``: before TensorFlow is imported, hide its start-up log lines (oneDNN, the CUDA stub,
  absl's pre-initialisation warning, CPU feature guard) unless ``--verbose``. The packages'
  ``__init__`` call it when Python runs one of their modules with ``-m``.
- ``entry``: ``run_command`` turns a user error (a bad value, a missing file, a port in use) into
  one line naming the problem and exit code 2; a bug keeps its traceback, and ``--debug`` shows the
  traceback of any error. ``add_entry_flags`` documents ``--debug`` and ``--verbose`` in ``--help``.

This package imports neither TensorFlow nor any other package of the project, so every layer
(dftopk_tf <- pipelines <- models <- serving <- benchmarks) may use it.

Example:
    >>> from dftopk_cascade.command_line.entry import run_command
    >>> def main(argv):
    ...     raise ValueError("--days must be >= 1, got 0")
    >>> run_command(main, "python -m tool", ["--days", "0"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
"""
