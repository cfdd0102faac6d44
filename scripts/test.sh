#!/usr/bin/env bash
# The test suite, exactly as CI runs it: set-up, lint, the full suite under tf-keras (TFRS needs it),
# then the core library's tests again, and the Keras 3 examples (keras-rs), under Keras 3, then the
# tests that compare numerics again on another CPU's kernels (BUILD.md, "Other CPUs"). Ends with
# each pytest run's peak resident memory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "[test] ruff check, ruff format --check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "[test] full suite under tf-keras (TF_USE_LEGACY_KERAS=1)"
TF_USE_LEGACY_KERAS=1 .venv/bin/python -m pytest -q tests "$@" | tee -a "$log"
echo "[test] core library and the Keras 3 examples under Keras 3 (TF_USE_LEGACY_KERAS=0)"
TF_USE_LEGACY_KERAS=0 .venv/bin/python -m pytest -q tests/dftopk_tf tests/examples "$@" | tee -a "$log"
echo "[test] numerics on an older CPU's kernels (ONEDNN_MAX_CPU_ISA=SSE41, XLA capped at SSE4_2)"
ONEDNN_MAX_CPU_ISA=SSE41 XLA_FLAGS="--xla_cpu_max_isa=SSE4_2" TF_USE_LEGACY_KERAS=1 \
  .venv/bin/python -m pytest -q "$@" \
  tests/models/test_ties.py tests/models/test_protocol.py tests/models/test_step_compilation.py \
  tests/models/test_cascade.py tests/dftopk_tf/test_metrics.py tests/dftopk_tf/test_selection.py \
  tests/experiments/test_docstrings.py tests/experiments/test_score_ties.py \
  tests/experiments/test_stage_collapse.py | tee -a "$log"
echo "[test] peak resident memory of the full suite, Keras 3 and other-kernels runs:"
grep "peak resident memory of this pytest process" "$log" | sed 's/^/[test]   /'
