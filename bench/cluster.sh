#!/usr/bin/env bash
# Several instances on one PostgreSQL database (issue #35, SPEC §10):
# - latency: a user with an rpm and a parallel limit (so every request
#   passes the leased shares) against one instance, then against three at
#   once, one wrk per instance (a round-robin client's load, spread evenly);
#   p50 and p99 of each, and what the three add over the one;
# - database round trips: PostgreSQL's transactions in the bench database
#   (pg_stat_database) per 1,000 requests, idle heartbeats included;
# - admitted counts: a user with rpm RPM, hammered on all three at once for
#   a few seconds: how many were served (at most RPM within the minute).
# The upstream is the built-in echo (no network), the instances one worker
# each. Needs the machine's PostgreSQL (as test.sh finds it) and wrk.
#   bench/cluster.sh                 (DURATION=10 RPM=600)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
RPM=${RPM:-600}
PG=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
command -v wrk >/dev/null || { echo "bench: installing wrk" >&2; apt-get install -y wrk >/dev/null; }
cargo build --release --bins >&2
BIN=${BIN:-$PWD/target/release/chatgate}
WORK=$(mktemp -d)
PIDS=()
NAME=chatgate_bench_cluster_$$
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG" -qtAc "DROP DATABASE IF EXISTS $NAME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$PG" -qtAc "CREATE DATABASE $NAME" >/dev/null
DB=$(python3 -c "import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path='/' + sys.argv[2]).geturl())" "$PG" "$NAME")
"$BIN" --database "$DB" -q db migrate >/dev/null 2>&1 || true
# Ample limits: every request passes the shares, none is refused.
FAST=$("$BIN" --database "$DB" -q user add fast --rpm 100000000 --max-parallel 1000)
SLOW=$("$BIN" --database "$DB" -q user add capped --rpm "$RPM")

start() { # port
  cat > "$WORK/$1.yaml" <<YAML
listen: 127.0.0.1:$1
workers: 1
database: { url: "$DB" }
upstreams:
  - { name: echo, kind: echo, models: ["*"] }
YAML
  "$BIN" -c "$WORK/$1.yaml" -q serve & PIDS+=($!)
  until curl -sf -o /dev/null "http://127.0.0.1:$1/readyz"; do sleep 0.05; done
}
lua() { # key
  cat > "$WORK/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $1"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}'
LUA
  echo "$WORK/$1.lua"
}
transactions() {
  psql "$PG" -qtAc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$NAME'"
}
# wrk's p50 and p99 in ms, and its request and non-2xx counts.
run() { # port key connections seconds
  wrk -t1 -c"$3" -d"${4}s" --latency -s "$(lua "$2")" "http://127.0.0.1:$1/v1/chat/completions" > "$WORK/wrk-$1.txt"
}
ms() { # file percentile -> ms
  awk -v p="$2" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } printf "%.3f", v }' "$1"
}
requests() { awk '/requests in/ { print $1 }' "$1"; }
refused() { awk '/Non-2xx/ { print $5 }' "$1" | grep . || echo 0; }

start 9301
sleep 2
t0=$(transactions)
run 9301 "$FAST" 1 "$DURATION"
t1=$(transactions)
one50=$(ms "$WORK/wrk-9301.txt" 50%); one99=$(ms "$WORK/wrk-9301.txt" 99%)
n1=$(requests "$WORK/wrk-9301.txt")
echo "one instance, 1 connection: p50 ${one50} ms, p99 ${one99} ms, $n1 requests, $(( (t1 - t0) * 1000 / n1 )) database transactions per 1,000 requests"

start 9302
start 9303
sleep 2
t0=$(transactions)
LOADS=()
for p in 9301 9302 9303; do run "$p" "$FAST" 1 "$DURATION" & LOADS+=($!); done
wait "${LOADS[@]}"
t1=$(transactions)
n3=0
for p in 9301 9302 9303; do
  n3=$(( n3 + $(requests "$WORK/wrk-$p.txt") ))
  echo "three instances, instance :$p: p50 $(ms "$WORK/wrk-$p.txt" 50%) ms, p99 $(ms "$WORK/wrk-$p.txt" 99%) ms"
done
three50=$(for p in 9301 9302 9303; do ms "$WORK/wrk-$p.txt" 50%; echo; done | sort -n | sed -n 2p)
three99=$(for p in 9301 9302 9303; do ms "$WORK/wrk-$p.txt" 99%; echo; done | sort -n | tail -1)
echo "three instances: median p50 ${three50} ms (+$(python3 -c "print(f'{$three50 - $one50:.3f}')") ms), worst p99 ${three99} ms, $n3 requests, $(( (t1 - t0) * 1000 / n3 )) database transactions per 1,000 requests"

LOADS=()
for p in 9301 9302 9303; do run "$p" "$SLOW" 4 5 & LOADS+=($!); done
wait "${LOADS[@]}"
served=0
for p in 9301 9302 9303; do
  f="$WORK/wrk-$p.txt"
  served=$(( served + $(requests "$f") - $(refused "$f") ))
done
echo "rpm $RPM, hammered on three instances for 5 s: $served served"
