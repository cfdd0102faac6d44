# Sourced by scripts/main.sh and scripts/main_movielens.sh; defines serve_one_request.
#
#   serve_one_request TAG EXPORT_DIR PORT RUN_DIR COMMAND [ARGUMENT...]
#
# Starts the HTTP front (dftopk_cascade.serving.server, local backend) on EXPORT_DIR at
# 127.0.0.1:PORT, its log in RUN_DIR/server.log; waits up to 120 s for /healthz; runs COMMAND with
# the recommend URL (http://127.0.0.1:PORT/v1/recommend) as its last argument and the caller's
# standard input (a here-document), its output in RUN_DIR/recommendation.json; then stops the
# server. A server that stops before answering: its log after "[TAG] the server stopped; its log:"
# and exit 1. Uses $py, the project's Python; the server is also stopped if the caller exits early.
#
#   py=.venv/bin/python
#   source scripts/serve_one_request.sh
#   request='{"requests": [{"user": [7, 3, 1, 2, 5], "context": [2, 20, 15], "history": []}]}'
#   serve_one_request main runs/demo/export 18571 runs/demo $py - "$request" <<'PY'
#   import sys, urllib.request
#   body, url = sys.argv[1:]
#   call = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
#   print(urllib.request.urlopen(call, timeout=60).read().decode())
#   PY

serve_one_request() {
  local tag="$1" export_dir="$2" port="$3" run_dir="$4"
  shift 4
  local server_pid
  $py -m dftopk_cascade.serving.server --export-dir "$export_dir" --port "$port" --host 127.0.0.1 \
    > "$run_dir/server.log" 2>&1 < /dev/null &
  server_pid=$!
  trap "kill $server_pid 2>/dev/null || true" EXIT
  for _ in $(seq 1 120); do
    if $py -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "http://127.0.0.1:$port/healthz" 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "[$tag] the server stopped; its log:"; cat "$run_dir/server.log"; exit 1
    fi
    sleep 1
  done
  "$@" "http://127.0.0.1:$port/v1/recommend" > "$run_dir/recommendation.json"
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  trap - EXIT
}
