#!/usr/bin/env bash
# What chatgate costs as the work grows (issue #21's table):
# - users: `user import` of USERS users from CSV; the server's start until
#   /readyz and its idle RSS with them; one CLI change (`user disable`)
#   until the server refuses that key, and the CPU the key thread spent
#   taking it in;
# - records: RECORDS usage records over 400 days written through the usage
#   writer (bench/src/records.rs), their bytes per record on SQLite (table,
#   index and daily totals, from dbstat), and `usage report` over them.
# Times are wall-clock on this machine; run it twice before believing one.
#   bench/scale.sh                          (USERS=100000 RECORDS=10000000)
#   BIN=/path/to/other/chatgate bench/scale.sh   (another build, same data)
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
RECORDS=${RECORDS:-10000000}
cargo build --release --bins >&2 && cargo build --release -p chatgate-bench >&2
BIN=${BIN:-$PWD/target/release/chatgate}
RECORDS_BIN=${RECORDS_BIN:-$PWD/target/release/bench_records}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=9121

now_ms() { date +%s%3N; }
# CPU nanoseconds a thread of PID has run, by thread name.
thread_ns() {
  local pid=$1 name=$2 t
  for t in /proc/"$pid"/task/*; do
    if [ "$(cat "$t/comm")" = "$name" ]; then cut -d' ' -f1 "$t/schedstat"; return; fi
  done
  echo 0
}
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' /proc/"$1"/status; }

echo "## Users ($USERS)"
python3 - "$WORK/users.csv" "$USERS" <<'PY'
import sys, random
path, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(21)
abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
with open(path, "w") as f:
    f.write("name,token\n")
    for i in range(n):
        f.write("u%06d,sk-%s\n" % (i, "".join(rnd.choice(abc) for _ in range(48))))
PY
DB="sqlite://$WORK/users.db"
"$BIN" --database "$DB" db migrate >/dev/null
t0=$(now_ms)
"$BIN" --database "$DB" -q user import "$WORK/users.csv" >/dev/null
t1=$(now_ms)
echo "user import: $(( t1 - t0 )) ms"

cat > "$WORK/chatgate.yaml" <<YAML
listen: 127.0.0.1:$PORT
database: { url: "$DB" }
upstreams:
  - { name: echo, kind: echo, models: ["*"] }
YAML
t0=$(now_ms)
"$BIN" -c "$WORK/chatgate.yaml" -q serve & PIDS+=($!)
SERVER=$!
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.01; done
t1=$(now_ms)
echo "serve: ready after $(( t1 - t0 )) ms"
sleep 3
echo "serve: RSS idle $(rss_mib "$SERVER") MiB"

# The last user's key, from the CSV; refused once the change is seen.
KEY=$(tail -n1 "$WORK/users.csv" | cut -d, -f2)
NAME=$(tail -n1 "$WORK/users.csv" | cut -d, -f1)
status() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY"; }
[ "$(status)" = 200 ] || { echo "bench: $NAME's key is not accepted" >&2; exit 1; }
idle0=$(thread_ns "$SERVER" chatgate-keys); sleep 3; idle1=$(thread_ns "$SERVER" chatgate-keys)
cpu0=$(thread_ns "$SERVER" chatgate-keys)
t0=$(now_ms)
"$BIN" --database "$DB" -q user disable "$NAME" >/dev/null
until [ "$(status)" != 200 ]; do sleep 0.02; done
t1=$(now_ms)
sleep 1.5
cpu1=$(thread_ns "$SERVER" chatgate-keys)
echo "one CLI change: seen after $(( t1 - t0 )) ms; key thread CPU $(( (cpu1 - cpu0) / 1000000 )) ms (idle: $(( (idle1 - idle0) / 1000000 )) ms per 3 s)"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true

echo
echo "## Records ($RECORDS over 400 days)"
RDB="sqlite://$WORK/records.db"
"$BIN" --database "$RDB" db migrate >/dev/null
"$RECORDS_BIN" "$RDB" "$RECORDS"
report() {
  local t0 t1 rows
  t0=$(now_ms)
  rows=$("$BIN" --database "$RDB" usage report "$@" --format csv | wc -l)
  t1=$(now_ms)
  echo "usage report $*: $(( t1 - t0 )) ms ($(( rows - 1 )) rows)"
}
report --period last-month --by user,model
SINCE=$(date -u -d '15 days ago' +%Y-%m-%dT06:00:00Z)
UNTIL=$(date -u -d '14 days ago' +%Y-%m-%dT06:00:00Z)
report --since "$SINCE" --until "$UNTIL" --by user,model
