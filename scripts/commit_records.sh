#!/usr/bin/env bash
# Commits each run record of a long comparison as it lands, with the regenerated report(s).
#
# Usage: scripts/commit_records.sh RESULTS STEPS [INTERVAL_SECONDS]
#   e.g. nohup scripts/commit_records.sh docs/results/method_comparison 5400 >> commits.log 2>&1 &
# Every INTERVAL_SECONDS (default 120) it looks for new or changed records of STEPS steps under
# RESULTS/runs, rebuilds the report at that length (and DIN's when a DIN record exists) and
# commits the records and the reports. While the file named by $COMMIT_RECORDS_PAUSE exists
# (default /tmp/commit_records.pause) it commits nothing, so you can commit by hand meanwhile.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 RESULTS STEPS [INTERVAL_SECONDS]" >&2
  exit 2
fi
if [ ! -d "$1/runs" ]; then
  echo "no run records under $1/runs" >&2
  exit 2
fi
results=$(realpath "$1")
steps=$2
interval=${3:-120}
pause=${COMMIT_RECORDS_PAUSE:-/tmp/commit_records.pause}
cd "$(dirname "$0")/.."
source .venv/bin/activate
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
while true; do
  if [ ! -f "$pause" ]; then
    new=$(git status --porcelain --untracked-files=all "$results/runs" | grep -c "steps$steps" || true)
    if [ "$new" -gt 0 ]; then
      echo "$(date -u) $new new or changed record(s)"
      python -m experiments.comparison_report --results "$results" --steps "$steps" > /dev/null
      if ls "$results/runs/"*"steps$steps-attention_din.json" > /dev/null 2>&1; then
        python -m experiments.comparison_report --results "$results" --steps "$steps" \
          --prerank-attention din > /dev/null
      fi
      git add "$results"
      git commit -q -m "Comparison at $steps steps: $new more record(s) and the regenerated report(s)"
    fi
  fi
  sleep "$interval"
done
