#!/usr/bin/env bash
# The main job on real data, MovieLens-100K; run it as `DATASET=movielens bash scripts/main.sh`.
# Fetches the pinned recbole wheel that carries MovieLens-100K (pip download --no-deps, checked
# against its sha256, never installed), converts it to the project's TFRecord contract in ten time
# windows (docs/pipelines.md, "MovieLens-100K"), trains the DFTopK cascade on the training windows,
# evaluates it on the last window (the test) with the paper's protocol, exports SavedModels in TF
# Serving's layout and serves the first test request through the HTTP front. Each step prints its
# time. Everything goes under RUN_DIR.
#
#   DATASET=movielens bash scripts/main.sh
#   WHEEL=/path/to/recbole-1.2.1-py3-none-any.whl DATASET=movielens bash scripts/main.sh  # offline
#   RUN_DIR=/tmp/ml EPOCHS=10 DATASET=movielens bash scripts/main.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup_env.sh
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2
py=.venv/bin/python
source scripts/serve_one_request.sh

run_dir="${RUN_DIR:-runs/movielens}"
epochs="${EPOCHS:-5}"
seed="${SEED:-42}"
port="${PORT:-18572}"
wheel_dir="$run_dir/wheel"
tfrecords="$run_dir/tfrecords"
model_dir="$run_dir/model"
export_dir="$run_dir/export"
mkdir -p "$run_dir"
step_started=$SECONDS
step_done() { echo "[movielens] $1 took $((SECONDS - step_started)) s"; step_started=$SECONDS; }

if [[ -n "${WHEEL:-}" ]]; then
  echo "[movielens] 1/6 take the recbole wheel given by WHEEL=$WHEEL"
  wheel="$WHEEL"
else
  echo "[movielens] 1/6 fetch the pinned recbole wheel (MovieLens-100K inside) -> $wheel_dir"
  wheel="$($py -m dftopk_cascade.pipelines.movielens.wheel --download-dir "$wheel_dir")"
fi
step_done fetch

echo "[movielens] 2/6 convert MovieLens-100K to TFRecords (checks the sha256) -> $tfrecords"
$py -m dftopk_cascade.pipelines.movielens.convert --wheel "$wheel" --data "$tfrecords" --seed "$seed"
step_done convert

read -r -a train_windows <<< "$($py -c 'import json, sys
print(" ".join(json.load(open(sys.argv[1]))["splits"]["train"]))' "$tfrecords/movielens.json")"
test_window="$($py -c 'import json, sys
print(json.load(open(sys.argv[1]))["splits"]["test"][0])' "$tfrecords/movielens.json")"

echo "[movielens] 3/6 train the DFTopK cascade for $epochs epochs on ${train_windows[*]}"
# 40 in-batch negatives per training request, as in the simulated main job.
$py -m dftopk_cascade.models.training.train --data "$tfrecords" --model-dir "$model_dir" --method dftopk \
  --epochs "$epochs" --batch-size 256 --negatives 40 --seed "$seed" --overwrite \
  --train-days "${train_windows[@]}" --no-evaluation
step_done train

echo "[movielens] 4/6 evaluate on the test window $test_window (10 next-rated movies among 200)"
$py -m dftopk_cascade.models.training.evaluate --model-dir "$model_dir" --data "$tfrecords" \
  --days "$test_window" --seed "$seed"
step_done evaluate

echo "[movielens] 5/6 export SavedModels for TF Serving -> $export_dir"
$py -m dftopk_cascade.serving.export --model-dir "$model_dir" --data "$tfrecords" --export-dir "$export_dir"
step_done export

echo "[movielens] 6/6 serve the first test request through the HTTP front on 127.0.0.1:$port"
# The first request of the test window, as stored (ids - 1 are the raw ids the API takes).
serve_one_request movielens "$export_dir" "$port" "$run_dir" $py - "$tfrecords" "$test_window" <<'PY'
import json, sys, urllib.request
import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.data_schema import read_data_schema, shard_paths
data_dir, window, url = sys.argv[1:]
paths = shard_paths(data_dir, read_data_schema(data_dir), [window])
record = next(iter(tf.data.TFRecordDataset(paths[:1], fmt.COMPRESSION).take(1)))
stored = {name: value[0].numpy() for name, value in fmt.parse_examples(record[None], False).items()}
history = [(row - 1).tolist() for row in stored[fmt.SEQ] if row[0] > 0]
body = {"requests": [{"user": (stored[fmt.USER] - 1).tolist(),
                      "context": (stored[fmt.CONTEXT] - 1).tolist(), "history": history}],
        "retrieval_keep": 200, "prerank_keep": 50, "rank_keep": 10}
call = urllib.request.Request(url, data=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})
answer = json.loads(urllib.request.urlopen(call, timeout=60).read().decode())
answer["request"] = body
answer["rated_next"] = (stored[fmt.ITEMS][:fmt.GROUP_SIZE, 0] - 1).tolist()
print(json.dumps(answer))
PY
step_done serve

echo
echo "[movielens] done. Artefacts:"
echo "  recbole wheel:         ${WHEEL:-$wheel_dir}"
echo "  TFRecords + schema:    $tfrecords/schema.json (windows and mapping: movielens.json)"
echo "  trained model:         $model_dir (TensorBoard logs in $model_dir/logs)"
echo "  metrics:               $model_dir/metrics.json"
echo "  SavedModels:           $export_dir/{retrieval,prerank,rank}/<version>"
echo "  one recommendation:    $run_dir/recommendation.json"
$py - "$model_dir/metrics.json" "$run_dir/recommendation.json" "$tfrecords/movielens.json" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
print("\n| metric (MovieLens-100K, test window) | value |\n|---|---|")
for key, value in metrics.items():
    if isinstance(value, (int, float)):
        print(f"| {key} | {value:.4f} |")
answer = json.load(open(sys.argv[2]))
titles = json.load(open(sys.argv[3]))["movie_titles"]
user = answer["request"]["requests"][0]["user"][0]
served = answer["results"][0]["video_ids"]
rated = answer["rated_next"]
print(f"\nuser {user}: top-10 served movies (* = among the 10 the user rated next)")
for movie in served:
    print(f"  {'*' if movie in rated else ' '} {movie:5d} {titles.get(str(movie), '?')}")
PY
