#!/usr/bin/env bash
# The main job on an embedded default: simulate a small RecFlow-format dataset, convert it to
# TFRecords, train the DFTopK cascade (retrieval -> pre-ranking -> ranking) for an epoch, evaluate it
# with the paper's protocol, export SavedModels in TF Serving's layout, and serve one recommendation
# through the HTTP front. No download, no server to install. Everything goes under RUN_DIR.
#
#   bash scripts/main.sh                 # defaults below; about 5 minutes on 2 cores
#   RUN_DIR=/tmp/demo DAYS=8 REQUESTS_PER_DAY=20000 bash scripts/main.sh
#
# Re-running reuses finished steps (simulation and conversion skip complete outputs) and trains a
# fresh model.
#
# DATASET=movielens runs the same job on real data, MovieLens-100K (docs/pipelines.md): it fetches
# the pinned recbole wheel that carries it (pip download --no-deps, sha256-checked, never
# installed; WHEEL=path gives a local copy instead), converts it to ten time windows, trains on all
# but the last two for EPOCHS (default 5) epochs, evaluates on the last (the test window), exports
# and serves the first test request. Runs go under runs/movielens unless RUN_DIR says otherwise.
#
#   DATASET=movielens bash scripts/main.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dataset="${DATASET:-simulated}"
if [[ "$dataset" == movielens ]]; then
  exec bash scripts/main_movielens.sh
elif [[ "$dataset" != simulated ]]; then
  echo "scripts/main.sh: error: DATASET=$dataset; use simulated (the default) or movielens" >&2
  exit 2
fi

bash scripts/setup_env.sh
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
py=.venv/bin/python
source scripts/serve_one_request.sh

run_dir="${RUN_DIR:-runs/demo}"
days="${DAYS:-4}"
requests_per_day="${REQUESTS_PER_DAY:-4000}"
seed="${SEED:-42}"
port="${PORT:-18571}"
recflow="$run_dir/recflow"
tfrecords="$run_dir/tfrecords"
model_dir="$run_dir/model"
export_dir="$run_dir/export"

echo "[main] 1/5 simulate $days days x $requests_per_day requests (RecFlow layout) -> $recflow"
$py -m dftopk_cascade.pipelines.simulator.simulate --recflow "$recflow" --days "$days" \
  --requests-per-day "$requests_per_day" --seed "$seed"

echo "[main] 2/5 convert to sharded GZIP TFRecords -> $tfrecords"
$py -m dftopk_cascade.pipelines.convert --recflow "$recflow" --data "$tfrecords"

echo "[main] 3/5 train the DFTopK cascade for one epoch, then evaluate on the last day -> $model_dir"
# 40 in-batch negatives per training request: evaluation ranks 160 of them per request, and
# training against a few lifts joint recall for every top-k method (docs/results/method_comparison/report.md).
$py -m dftopk_cascade.models.training.train --data "$tfrecords" --model-dir "$model_dir" --method dftopk \
  --epochs 1 --batch-size 256 --negatives 40 --seed "$seed" --overwrite

echo "[main] 4/5 export SavedModels for TF Serving -> $export_dir"
$py -m dftopk_cascade.serving.export --model-dir "$model_dir" --data "$tfrecords" --export-dir "$export_dir"

echo "[main] 5/5 serve one recommendation through the HTTP front (local backend) on 127.0.0.1:$port"
request='{"requests": [{"user": [7, 3, 1, 2, 5], "context": [2, 20, 15],
          "history": [[11, 4, 3, 1, 0], [42, 9, 3, 1, 0]]}],
         "retrieval_keep": 200, "prerank_keep": 50, "rank_keep": 10}'
serve_one_request main "$export_dir" "$port" "$run_dir" $py - "$request" <<'PY'
import sys, urllib.request
request, url = sys.argv[1:]
call = urllib.request.Request(url, data=request.encode(),
                              headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(call, timeout=60).read().decode())
PY

echo
echo "[main] done. Artefacts:"
echo "  RecFlow-format data:   $recflow"
echo "  TFRecords + schema:    $tfrecords/schema.json"
echo "  trained model:         $model_dir (TensorBoard logs in $model_dir/logs)"
echo "  metrics:               $model_dir/metrics.json"
echo "  SavedModels:           $export_dir/{retrieval,prerank,rank}/<version>"
echo "  one recommendation:    $run_dir/recommendation.json"
$py - "$model_dir/metrics.json" "$run_dir/recommendation.json" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
print("\n| metric | value |\n|---|---|")
for key, value in metrics.items():
    if isinstance(value, (int, float)):
        print(f"| {key} | {value:.4f} |")
answer = json.load(open(sys.argv[2]))
print("\ntop-10 video ids for the demo request:", answer["results"][0]["video_ids"])
PY
