#!/usr/bin/env bash
# The test suite, exactly as CI runs it: set-up, lint, the full suite under tf-keras (TFRS needs it),
# then the core library's tests again, and the Keras 3 examples (keras-rs), under Keras 3, then the
# tests that compare numerics again on another CPU's kernels (BUILD.md, "Other CPUs"). Ends with
# each pytest run's peak resident memory; exits 1 if any run failed.
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
status=0
# Runs one pytest command, logging its output; a failure is remembered, the other runs go on.
run_pytest() {
  set +e
  "$@" | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=1; fi  # 5: nothing selected by -k
}
echo "[test] the suite under tf-keras (TF_USE_LEGACY_KERAS=1), one pytest process per test folder"
# One process per folder: compiled XLA code and TensorFlow's caches are not given back within a
# process, so a single process for the whole suite would grow past a laptop's memory.
# tests/dftopk_tf compiles the most XLA shapes: one process per file there.
for target in tests/dftopk_tf/test_*.py tests/pipelines tests/models tests/serving \
    tests/reliability tests/benchmarks tests/experiments tests/examples tests/packaging; do
  echo "[test] $target"
  run_pytest env TF_USE_LEGACY_KERAS=1 .venv/bin/python -m pytest -q "$target" "$@"
done
echo "[test] core library and the Keras 3 examples under Keras 3 (TF_USE_LEGACY_KERAS=0)"
# The threshold search's own tests (selection, bracket, key passes, threshold gradient, instruction
# sets) use no Keras: they run once, above.
keras_free="test_selection.py test_bracket_select.py test_key_passes.py test_threshold_gradient.py"
keras_free+=" test_instruction_sets.py"
for target in tests/dftopk_tf/test_*.py tests/examples; do
  case " $keras_free " in *" $(basename "$target") "*) continue ;; esac
  echo "[test] $target (Keras 3)"
  run_pytest env TF_USE_LEGACY_KERAS=0 .venv/bin/python -m pytest -q "$target" "$@"
done
echo "[test] numerics on an older CPU's kernels (ONEDNN_MAX_CPU_ISA=SSE41, XLA capped at SSE4_2)"
run_pytest env ONEDNN_MAX_CPU_ISA=SSE41 XLA_FLAGS="--xla_cpu_max_isa=SSE4_2" TF_USE_LEGACY_KERAS=1 \
  .venv/bin/python -m pytest -q "$@" \
  tests/models/test_ties.py tests/models/test_protocol.py tests/models/test_step_compilation.py \
  tests/models/test_cascade.py tests/dftopk_tf/test_metrics.py tests/dftopk_tf/test_selection.py \
  tests/experiments/test_score_ties.py tests/experiments/test_stage_collapse.py
echo "[test] peak resident memory of each pytest process:"
grep "peak resident memory of this pytest process" "$log" | sed 's/^/[test]   /'
echo "[test] $([ "$status" -eq 0 ] && echo "all runs passed" || echo "some runs FAILED")"
exit "$status"
