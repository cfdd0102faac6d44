#!/usr/bin/env bash
# The test suite, exactly as CI runs it: set-up, lint, the full suite under tf-keras (TFRS needs it),
# then the core library's tests again, and the Keras 3 examples (keras-rs), under Keras 3.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
echo "[test] ruff check, ruff format --check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] full suite under tf-keras (TF_USE_LEGACY_KERAS=1)"
TF_USE_LEGACY_KERAS=1 .venv/bin/python -m pytest -q tests "$@"
echo "[test] core library and the Keras 3 examples under Keras 3 (TF_USE_LEGACY_KERAS=0)"
TF_USE_LEGACY_KERAS=0 .venv/bin/python -m pytest -q tests/dftopk_tf tests/examples "$@"
