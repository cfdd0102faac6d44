"""Timing scripts: operators, the input pipeline, training steps and serving (``bench_*``).

The research (experiments and their reports) lives in ``experiments/``. The training benchmarks
run the cascade models, which need tf-keras (TFRS does not support Keras 3), so importing this
package selects it (``TF_USE_LEGACY_KERAS=1``) unless the environment chose otherwise; it must
happen before TensorFlow is imported, as in ``models``.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from dftopk_cascade.command_line.start_up import quiet_module_start_up

quiet_module_start_up()  # `python -m benchmarks.<command>`: hide TensorFlow's start-up lines
