"""Suite-wide set-up: pick the Keras implementation before TensorFlow is imported.

The full suite runs on tf-keras (TFRS needs it); scripts/test.sh runs tests/dftopk_tf a second
time with TF_USE_LEGACY_KERAS=0 to check the core library on Keras 3.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
