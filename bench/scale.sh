#!/usr/bin/env bash
# What chatgate costs as the work grows (issue #21's table):
# - users: `user import` of USERS users from CSV, `user list` of them, then
#   KEYS_PER_USER - 1 more keys each (issue #33: 100k users x 3 keys); the
#   server's start until /readyz and its idle RSS with them; one CLI
#   change (`user disable`)
#   until the server refuses that key, and the CPU the key thread spent
#   taking it in;
# - streams: STREAMS slow streams open at once through chatgate and through
#   the actix-web + awc floor (bench/src/floor.rs), RSS growth over idle
#   per stream for each;
# - records: RECORDS usage records over 400 days written through the usage
#   writer (bench/src/records.rs), their bytes per record (tables, indexes
#   and daily totals, as the backend counts them), and `usage report` over
#   them, on each backend of RECORD_DBS (sqlite, postgres, mysql: a fresh
#   database on the machine's server, as test.sh finds it).
# Times are wall-clock on this machine; run it twice before believing one.
#   bench/scale.sh                          (USERS=100000 RECORDS=10000000)
#   RECORD_DBS="sqlite postgres mysql" bench/scale.sh   (all three; mysql
#     builds with the `mysql` feature)
#   BIN=/path/to/other/chatgate bench/scale.sh   (another build, same data)
#   PARTS=users bench/scale.sh              (some of: users streams records)
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
KEYS_PER_USER=${KEYS_PER_USER:-3}
RECORDS=${RECORDS:-10000000}
STREAMS=${STREAMS:-2000}
RECORD_DBS=${RECORD_DBS:-sqlite}
PARTS=" ${PARTS:-users streams records} "
part() { [[ "$PARTS" == *" $1 "* ]]; }
FEATURES=()
case " $RECORD_DBS " in *" mysql "*) FEATURES=(--features mysql) ;; esac
command -v wrk >/dev/null || { echo "bench: installing wrk" >&2; apt-get install -y wrk >/dev/null; }
cargo build --release --bins "${FEATURES[@]}" >&2 && cargo build --release -p chatgate-bench "${FEATURES[@]}" >&2
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

if part users; then
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
t0=$(now_ms)
"$BIN" --database "$DB" user list --format json >/dev/null
t1=$(now_ms)
echo "user list --format json: $(( t1 - t0 )) ms"
# More keys, as `key add` makes them (labels key-1, key-2, …), written
# straight into the table: 200,000 runs of the CLI would measure process
# starts.
python3 - "$WORK/users.db" "$KEYS_PER_USER" <<'PY'
import sys, sqlite3, os
db, per = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
for n in range(1, per):
    c.execute("""INSERT INTO keys (user_id, label, key_hash, key_hint, created_at)
                 SELECT id, 'key-%d', lower(hex(randomblob(32))), 'sk-be…nch', created_at
                 FROM users""" % n)
c.commit()
print("keys: %d" % c.execute("SELECT COUNT(*) FROM keys").fetchone()[0])
PY

# An OpenAI upstream with a fixed model list, as in production: the
# gateway answers /v1/models itself, and holds no tokenizer tables (the
# demo's echo upstream loads tiktoken's, some 33 MiB, at start).
cat > "$WORK/chatgate.yaml" <<YAML
listen: 127.0.0.1:$PORT
database: { url: "$DB" }
upstreams:
  - { name: up, kind: openai, base_url: "http://127.0.0.1:9/v1", api_keys: [sk-up], models: [gpt-4o-mini] }
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
fi

if part streams; then
echo
echo "## Open streams ($STREAMS, 500 chunks 20 ms apart)"
ulimit -n "$(ulimit -Hn)"  # 2 sockets a stream, and the upstream's
BENCH=$PWD/target/release
CHUNKS=500 CHUNK_DELAY_MS=20 "$BENCH/bench_upstream" 127.0.0.1:9122 & PIDS+=($!)
"$BENCH/bench_floor" 127.0.0.1:9123 http://127.0.0.1:9122 & PIDS+=($!)
FLOOR=$!
KEY=sk-bench0000000000000000000000000000000000000000000000
cat > "$WORK/streams.yaml" <<YAML
listen: 127.0.0.1:9124
workers: 1
database: { url: "sqlite://$WORK/streams.db" }
upstreams:
  - { name: slow, kind: openai, base_url: "http://127.0.0.1:9122/v1", api_keys: [sk-up], models: ["*"] }
users: [ { name: bench, token: $KEY } ]
YAML
"$BIN" -c "$WORK/streams.yaml" -q serve & PIDS+=($!)
GATE=$!
for port in 9123 9124; do
  until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.05; done
done
cat > "$WORK/slow.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello there"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
# streams NAME PORT PID: RSS growth per open stream, read 6 s into 10 s streams.
streams() {
  local idle open
  curl -s -o /dev/null -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o-mini","messages":[]}' "http://127.0.0.1:$2/v1/chat/completions"
  idle=$(awk '/^VmRSS/ {print $2}' /proc/"$3"/status)
  ( wrk -t1 -c"$STREAMS" -d9s --timeout 30s -s "$WORK/slow.lua" "http://127.0.0.1:$2/v1/chat/completions" >/dev/null 2>&1 ) &
  sleep 6
  open=$(awk '/^VmRSS/ {print $2}' /proc/"$3"/status)
  wait $! || true
  echo "$1: RSS idle $((idle / 1024)) MiB, with $STREAMS open streams $((open / 1024)) MiB: $(( (open - idle) / STREAMS )) KiB per stream"
}
streams "actix-web + awc alone" 9123 "$FLOOR"
streams chatgate 9124 "$GATE"
fi

# A fresh database of KIND for the records.
fresh_db() {
  local name="chatgate_scale_$$"
  case "$1" in
    sqlite) echo "sqlite://$WORK/records.db" ;;
    postgres)
      psql postgres://postgres@127.0.0.1:5432/test -qc "DROP DATABASE IF EXISTS $name" -qc "CREATE DATABASE $name" >/dev/null
      echo "postgres://postgres@127.0.0.1:5432/$name" ;;
    mysql)
      mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $name; CREATE DATABASE $name CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
      echo "mysql://root@127.0.0.1:3306/$name" ;;
  esac
}
report() {
  local t0 t1 rows
  t0=$(now_ms)
  rows=$("$BIN" --database "$RDB" usage report "$@" --format csv | wc -l)
  t1=$(now_ms)
  echo "usage report $*: $(( t1 - t0 )) ms ($(( rows - 1 )) rows)"
}
part records || RECORD_DBS=
for kind in $RECORD_DBS; do
  echo
  echo "## Records ($RECORDS over 400 days, $kind)"
  RDB=$(fresh_db "$kind")
  "$BIN" --database "$RDB" db migrate >/dev/null
  "$RECORDS_BIN" "$RDB" "$RECORDS"
  report --period last-month --by user,model
  SINCE=$(date -u -d '15 days ago' +%Y-%m-%dT06:00:00Z)
  UNTIL=$(date -u -d '14 days ago' +%Y-%m-%dT06:00:00Z)
  report --since "$SINCE" --until "$UNTIL" --by user,model
done
