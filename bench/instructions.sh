#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: unlike
# CPU time, the same for the same binary however busy the host is, so two
# builds can be compared on a noisy machine. JSON chat completions over one
# keep-alive connection, through the actix-web + awc floor, the tokio +
# hyper floor and chatgate (accounting on; all its threads counted).
#   bench/instructions.sh                 (N=3000 requests per target)
#   BIN=/path/to/other/chatgate bench/instructions.sh   (another build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
command -v valgrind >/dev/null || { echo "bench: installing valgrind" >&2; apt-get install -y valgrind >/dev/null; }
cargo build --release --bins >&2 && cargo build --release -p chatgate-bench >&2
BIN=${BIN:-$PWD/target/release/chatgate}
BENCH=$PWD/target/release
WORK=$(mktemp -d)
PIDS=()
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

# count NAME PORT COMMAND...: sets COUNTED to the instructions per request,
# counted only while the N measured requests run (after a warm-up). Not
# run in a subshell, so that cleanup still knows the process on failure.
count() {
  local name=$1 port=$2 pid total
  shift 2
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$name.out" \
    "$@" 2>"$WORK/$name.log" & PIDS+=($!)
  pid=$!
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
  python3 "$WORK/client.py" "$port" 200 "$KEY"
  callgrind_control -i on "$pid" >/dev/null
  python3 "$WORK/client.py" "$port" "$N" "$KEY"
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  total=$(awk '/^totals:/ {s += $2} END {print s + 0}' "$WORK/$name".out*)
  COUNTED=$((total / N))
}

count floor 9108 "$BENCH/bench_floor" 127.0.0.1:9108 http://127.0.0.1:9101
FLOOR=$COUNTED
count hyper 9110 "$BENCH/bench_floor_hyper" 127.0.0.1:9110 http://127.0.0.1:9101
HYPER=$COUNTED
count chatgate 9103 "$BIN" -c "$WORK/chatgate.yaml" serve
GATE=$COUNTED
echo "Instructions per request (callgrind, $N JSON requests on one connection, $(date -u +%Y-%m-%d)):"
echo
echo "| actix-web + awc alone | tokio + hyper alone | chatgate | chatgate over actix-web + awc |"
echo "|---|---|---|---|"
echo "| $FLOOR | $HYPER | $GATE | +$((GATE - FLOOR)) |"
