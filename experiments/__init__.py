"""The lab: the paper's experiments and their reports, run from a checkout (not installed).

- ``runner``: the one runner every experiment trains and scores a run with, writing the one
  record format (``run_records``).
- ``method_comparison``: the paper-protocol comparison of the training methods, resumable, one
  JSON record per run; ``comparison_report`` builds its report from the records;
  ``temperature_scale`` maps the official runs' temperatures to our score scale;
  ``learning_curves`` draws the runs' validation curves (``--steps`` runs) for the report.
- ``reproduce``: the experiments report in one command (main table, temperature sensitivity,
  negative sampling, streaming, operator runtime, gradient conflict); its sections are in
  ``experiments/report/``, which also holds the report builder (``report_document``,
  ``report_files``) that every report here is written with.
- One-off studies: ``stage_collapse``, ``score_ties``, ``compare_runs``.

The training experiments run the cascade models, which need tf-keras (TFRS does not support
Keras 3), so importing this package selects it (``TF_USE_LEGACY_KERAS=1``) unless the
environment chose otherwise; it must happen before TensorFlow is imported, as in ``models``.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from dftopk_cascade.command_line.start_up import quiet_module_start_up

quiet_module_start_up()  # `python -m experiments.<command>`: hide TensorFlow's start-up lines
