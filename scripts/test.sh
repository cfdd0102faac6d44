#!/usr/bin/env bash
# The test suite, exactly as CI runs it: set-up, lint, then pytest runs (BUILD.md, "Test"):
# the suite under tf-keras (TFRS needs it), the library's Keras-facing tests again under Keras 3
# (with the keras-rs examples), and the tests that compare numerics again on an older CPU's
# kernels (BUILD.md, "Other CPUs"). Each run is its own pytest process; TEST_JOBS of them run at
# once (default: one per core, fewer where memory is short, MEMORY_PER_RUN_GIB each). Each run's
# output is printed when it ends, with its time and peak resident memory; exits 1 if any failed.
# Arguments go to every pytest run (e.g. -x, -k NAME).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
echo "[test] ruff check, ruff format --check"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

# A run's peak stays under 4 GiB (each compiles its own XLA programs, which a process never gives
# back: one process for the whole suite would grow past a laptop's memory).
MEMORY_PER_RUN_GIB=4
available_gib=$(awk '/^MemAvailable:/ {print int($2 / 1048576)}' /proc/meminfo)
jobs="${TEST_JOBS:-$(nproc)}"
by_memory=$((available_gib / MEMORY_PER_RUN_GIB))
if [ "${TEST_JOBS:-}" = "" ] && [ "$by_memory" -lt "$jobs" ]; then jobs=$by_memory; fi
if [ "$jobs" -lt 1 ]; then jobs=1; fi

legacy="TF_USE_LEGACY_KERAS=1"
keras3="TF_USE_LEGACY_KERAS=0"
older_cpu="$legacy ONEDNN_MAX_CPU_ISA=SSE41 XLA_FLAGS=--xla_cpu_max_isa=SSE4_2"
# Each run: "label;environment;pytest targets".
runs=(
  # Longest first (wall times of a 2-job run), so that the last to start are short.
  "library: operator;$legacy;tests/dftopk_tf/test_ops.py tests/dftopk_tf/test_threshold_gradient.py"
  "benchmarks;$legacy;tests/benchmarks"
  "library: Keras;$legacy;tests/dftopk_tf/test_losses.py tests/dftopk_tf/test_metrics.py
    tests/dftopk_tf/test_layers.py tests/dftopk_tf/test_label_inputs.py
    tests/dftopk_tf/test_loss_validation.py tests/dftopk_tf/test_renamed_keywords.py
    tests/dftopk_tf/test_docstrings.py"
  "models;$legacy;tests/models"
  "numerics on an older CPU;$older_cpu;tests/models/test_ties.py tests/models/test_protocol.py
    tests/models/test_step_compilation.py tests/dftopk_tf/test_metrics.py
    tests/dftopk_tf/test_selection.py tests/experiments/test_score_ties.py
    tests/experiments/test_stage_collapse.py"
  "library under Keras 3;$keras3;tests/dftopk_tf/test_losses.py tests/dftopk_tf/test_metrics.py
    tests/dftopk_tf/test_layers.py tests/dftopk_tf/test_label_inputs.py
    tests/dftopk_tf/test_loss_validation.py tests/dftopk_tf/test_renamed_keywords.py
    tests/dftopk_tf/test_official_losses.py tests/dftopk_tf/test_docstrings.py
    tests/dftopk_tf/test_ops.py::test_saved_model_round_trip_gives_identical_outputs"
  "experiments;$legacy;tests/experiments"
  "library: selection;$legacy;tests/dftopk_tf/test_selection.py tests/dftopk_tf/test_bracket_select.py
    tests/dftopk_tf/test_key_passes.py tests/dftopk_tf/test_instruction_sets.py
    tests/dftopk_tf/test_selection_autotune.py tests/dftopk_tf/test_pass_timing.py"
  "reliability;$legacy;tests/reliability"
  "serving;$legacy;tests/serving"
  "examples under Keras 3;$keras3;tests/examples"
  "pipelines;$legacy;tests/pipelines"
  "library: peers;$legacy;tests/dftopk_tf/test_peers_contract.py tests/dftopk_tf/test_peers_values.py
    tests/dftopk_tf/test_official_losses.py"
  "packaging;$legacy;tests/packaging"
  "examples;$legacy;tests/examples"
)

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
status=0
declare -A run_of_pid=() started_at=()
# Starts run number $1 in the background; its output goes to $logs/$1.log.
start_run() {
  local label environment targets
  IFS=";" read -r label environment targets <<<"${runs[$1]//$'\n'/ }"
  # shellcheck disable=SC2086  # the environment and targets are word lists
  env $environment .venv/bin/python -m pytest -q $targets "${pytest_args[@]}" >"$logs/$1.log" 2>&1 &
  run_of_pid[$!]=$1
  started_at[$1]=$SECONDS
  echo "[test] started: $label"
}
# Waits for any run to end and prints its output, time and result.
finish_one() {
  local pid rc=0 index label
  wait -n -p pid || rc=$?
  index=${run_of_pid[$pid]}
  unset "run_of_pid[$pid]"
  label="${runs[$index]%%;*}"
  echo "[test] ===== $label: $((SECONDS - started_at[$index])) s ====="
  cat "$logs/$index.log"
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then  # 5: nothing selected by -k
    status=1
    echo "[test] FAILED: $label (exit $rc)"
  fi
}

pytest_args=("$@")
echo "[test] ${#runs[@]} pytest runs, $jobs at a time (TEST_JOBS; ${available_gib} GiB available)"
for index in "${!runs[@]}"; do
  while [ "${#run_of_pid[@]}" -ge "$jobs" ]; do finish_one; done
  start_run "$index"
done
while [ "${#run_of_pid[@]}" -gt 0 ]; do finish_one; done

echo "[test] CPU time and peak resident memory of each pytest process (at most $jobs at once):"
for index in "${!runs[@]}"; do
  cpu=$(grep -h "CPU time of this pytest process" "$logs/$index.log" | tail -1 || true)
  peak=$(grep -h "peak resident memory of this pytest process" "$logs/$index.log" | tail -1 || true)
  echo "[test]   ${runs[$index]%%;*}: ${cpu##*: } CPU, ${peak##*: }"
done
echo "[test] $([ "$status" -eq 0 ] && echo "all runs passed" || echo "some runs FAILED") in ${SECONDS} s"
exit "$status"
