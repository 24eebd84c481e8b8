#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: unlike
# CPU time, the same for the same binary however busy the host is, so two
# builds can be compared on a noisy machine. JSON chat completions over one
# keep-alive connection, through the actix-web + awc floor, the tokio +
# hyper floor and chatgate (accounting on; all its threads counted).
#   bench/instructions.sh                 (N=3000 requests per target)
#   BIN=/path/to/other/chatgate bench/instructions.sh   (another build)
#   STRETCH=0 bench/instructions.sh   (the writer's window not stretched: see below)
#   OUT=/tmp/prof bench/instructions.sh   (keeps the callgrind files there,
#     for callgrind_annotate --inclusive=yes /tmp/prof/chatgate.out*)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
command -v valgrind >/dev/null || { echo "bench: installing valgrind" >&2; apt-get install -y valgrind >/dev/null; }
cargo build --release --bins >&2 && cargo build --release -p chatgate-bench >&2
BIN=${BIN:-$PWD/target/release/chatgate}
BENCH=$PWD/target/release
WORK=$(mktemp -d)
PIDS=()
COUNTED_BATCH="?"
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
KEY=sk-bench0000000000000000000000000000000000000000000000

"$BENCH/bench_upstream" 127.0.0.1:9101 & PIDS+=($!)
cat > "$WORK/chatgate.yaml" <<YAML
listen: 127.0.0.1:9103
workers: 1
database: { url: "sqlite://$WORK/bench.db" }
upstreams:
  - { name: mock, kind: openai, base_url: "http://127.0.0.1:9101/v1", api_keys: [sk-up], models: ["*"] }
users: [ { name: bench, token: $KEY } ]
YAML
cat > "$WORK/client.py" <<'PY'
import http.client, json, sys
port, n, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"model": "gpt-4o-mini", "stream": False,
                   "messages": [{"role": "user", "content": "Hello there"}]})
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
for _ in range(n):
    conn.request("POST", "/v1/chat/completions", body, headers)
    reply = conn.getresponse()
    reply.read()
    if reply.status != 200:
        sys.exit(f"bench: status {reply.status} on port {port}")
PY

# The usage writer commits what gathered in `usage.batch_window` (5 ms)
# after a batch's first record. Valgrind runs the server several times
# slower (about ten here), so at that window a counted batch would hold
# that many times fewer records than a real one, and each record would
# carry that much more of a commit's cost. So chatgate is first run at full speed, to learn its
# time per request and records per batch at one connection, then timed
# under valgrind, and counted with the window stretched by the slowdown:
# the counted batches are then as large as the real ones (both printed).
gate_config() { # FILE [WINDOW]
  cp "$WORK/chatgate.yaml" "$1"
  if [ -n "${2:-}" ]; then echo "usage: { batch_window: $2 }" >> "$1"; fi
}
batches() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^chatgate_usage_batches_total/ {print $2}'; }
# timed PORT N: milliseconds the client takes for N requests
timed() {
  local t0 t1
  t0=$(date +%s%N)
  python3 "$WORK/client.py" "$1" "$2" "$KEY"
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
wait_up() { for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return; sleep 0.2; done; }

# count NAME PORT COMMAND...: sets COUNTED to the instructions per request,
# counted only while the N measured requests run (after a warm-up). Not
# run in a subshell, so that cleanup still knows the process on failure.
count() {
  local name=$1 port=$2 pid total
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$name.out" \
    "$@" 2>"$WORK/$name.log" & PIDS+=($!)
  pid=$!
  wait_up "$port"
  python3 "$WORK/client.py" "$port" 200 "$KEY"
  local b0 b1
  b0=$(batches "$port")
  callgrind_control -i on "$pid" >/dev/null
  python3 "$WORK/client.py" "$port" "$N" "$KEY"
  callgrind_control -i off "$pid" >/dev/null
  b1=$(batches "$port")
  if [ -n "$b0" ] && [ -n "$b1" ] && [ "$b1" != "$b0" ]; then
    COUNTED_BATCH=$(awk -v n="$N" -v b="$b1" -v a="$b0" 'BEGIN {printf "%.1f", n / (b - a)}')
  fi
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$WORK/$name".out* "$OUT"/; fi
  total=$(awk '/^totals:/ {s += $2} END {print s + 0}' "$WORK/$name".out*)
  COUNTED=$((total / N))
}

count floor 9108 "$BENCH/bench_floor" 127.0.0.1:9108 http://127.0.0.1:9101
FLOOR=$COUNTED
count hyper 9110 "$BENCH/bench_floor_hyper" 127.0.0.1:9110 http://127.0.0.1:9101
HYPER=$COUNTED
WINDOW=""
if [ "${STRETCH:-1}" != 0 ] && gate_config "$WORK/probe.yaml" 5ms && "$BIN" -c "$WORK/probe.yaml" config check >/dev/null 2>&1; then
  gate_config "$WORK/native.yaml"
  "$BIN" -c "$WORK/native.yaml" serve 2>"$WORK/native.log" & PIDS+=($!)
  pid=$!
  wait_up 9103
  python3 "$WORK/client.py" 9103 200 "$KEY"
  b0=$(batches 9103)
  NATIVE_MS=$(timed 9103 "$N")
  b1=$(batches 9103)
  NATIVE_BATCH=$(awk -v n="$N" -v b=$((b1 - b0)) 'BEGIN {printf "%.1f", n / b}')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/slow.out" \
    "$BIN" -c "$WORK/native.yaml" serve 2>"$WORK/slow.log" & PIDS+=($!)
  pid=$!
  wait_up 9103
  python3 "$WORK/client.py" 9103 200 "$KEY"
  callgrind_control -i on "$pid" >/dev/null
  SLOW_MS=$(timed 9103 1000)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # 5 ms × (valgrind's time per request / the real one), in microseconds
  WINDOW=$(awk -v s="$SLOW_MS" -v n="$NATIVE_MS" -v N="$N" \
    'BEGIN {printf "%dus", 5000 * (s / 1000) / (n / N)}')
fi
gate_config "$WORK/counted.yaml" "$WINDOW"
count chatgate 9103 "$BIN" -c "$WORK/counted.yaml" serve
GATE=$COUNTED
echo "Instructions per request (callgrind, $N JSON requests on one connection, $(date -u +%Y-%m-%d)):"
echo
echo "| actix-web + awc alone | tokio + hyper alone | chatgate | chatgate over actix-web + awc |"
echo "|---|---|---|---|"
echo "| $FLOOR | $HYPER | $GATE | +$((GATE - FLOOR)) |"
echo
if [ -n "$WINDOW" ]; then
  echo "Records per batch: $NATIVE_BATCH at full speed ($((NATIVE_MS * 1000 / N)) µs a request);" \
    "$COUNTED_BATCH counted, with usage.batch_window stretched to $WINDOW."
else
  echo "Records per batch counted: $COUNTED_BATCH (usage.batch_window not stretched: STRETCH=0, or a build without it)."
fi
