"""Runnable examples: ``python -m examples.<name>`` from the repository root (see README).

They run on Keras 3 (keras-rs needs it): importing this package selects it
(``TF_USE_LEGACY_KERAS=0``) unless the environment chose otherwise, before TensorFlow is imported.
"""

import os

from dftopk_cascade.command_line.start_up import quiet_module_start_up

os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")
quiet_module_start_up()  # `python -m examples.<name>`: hide TensorFlow's start-up lines
