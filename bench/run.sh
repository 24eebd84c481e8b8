#!/usr/bin/env bash
# One-hop proxy benchmark: the mock upstream direct, through nginx (a plain
# reverse proxy: the floor for one hop), through a bare actix-web + awc
# pass-through (the floor for chatgate's framework), through a bare tokio +
# hyper pass-through (the same floor on the other Rust stack), and through
# chatgate (auth, limits check, usage accounting on; and once more with
# accounting off). Each proxy is pinned to CPU 0 with one worker; the mock,
# wrk and the streaming client share CPU 1. Writes BENCHMARKS.md.
#   bench/run.sh            (DURATION=10 seconds per run by default)
#   ROUNDS=3 bench/run.sh   (every figure the median of 3 rounds, each round
#                            all targets in turn: steadier, 3x as long)
#   BIN=/path/to/other/chatgate bench/run.sh   (another build of chatgate)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-1}

for tool in wrk nginx taskset; do
  command -v "$tool" >/dev/null || { echo "bench: installing wrk and nginx" >&2; apt-get install -y wrk nginx-light >/dev/null; break; }
done
cargo build --release --bins >&2 && cargo build --release -p chatgate-bench >&2
BIN=${BIN:-$PWD/target/release/chatgate}
MOCK=$PWD/target/release/bench_upstream
STREAM=$PWD/target/release/bench_stream
FLOOR=$PWD/target/release/bench_floor
HYPER=$PWD/target/release/bench_floor_hyper
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
KEY=sk-bench0000000000000000000000000000000000000000000000

# Upstreams: fast (JSON, or 20 SSE chunks at once); slow streams for the
# 1,000-open-streams memory run (500 chunks, 20 ms apart: 10 s each); and
# timed streams for latency (20 chunks 10 ms apart, each stamped with the
# time it was sent).
taskset -c 1 "$MOCK" 127.0.0.1:9101 & PIDS+=($!)
CHUNKS=500 CHUNK_DELAY_MS=20 taskset -c 1 "$MOCK" 127.0.0.1:9104 & PIDS+=($!)
CHUNKS=20 CHUNK_DELAY_MS=10 taskset -c 1 "$MOCK" 127.0.0.1:9105 & PIDS+=($!)

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream mock { server 127.0.0.1:9101; keepalive 256; }
  upstream timed { server 127.0.0.1:9105; keepalive 256; }
  server {
    listen 127.0.0.1:9102;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
  server {
    listen 127.0.0.1:9106;
    location / {
      proxy_pass http://timed;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
taskset -c 0 nginx -c "$WORK/nginx.conf" -p "$WORK" & PIDS+=($!)
# The worker process serves the requests; its CPU time is what counts.
for _ in $(seq 1 50); do NGINX_PID=$(pgrep -P $! nginx | head -n1 || true); [ -n "$NGINX_PID" ] && break; sleep 0.1; done

# The framework floor: actix-web + awc passing requests on, nothing else.
taskset -c 0 "$FLOOR" 127.0.0.1:9108 http://127.0.0.1:9101 & PIDS+=($!)
FLOOR_PID=$!
taskset -c 0 "$FLOOR" 127.0.0.1:9109 http://127.0.0.1:9105 & PIDS+=($!)
# The same on tokio + hyper: would leaving actix-web and awc lower it?
taskset -c 0 "$HYPER" 127.0.0.1:9110 http://127.0.0.1:9101 & PIDS+=($!)
HYPER_PID=$!
taskset -c 0 "$HYPER" 127.0.0.1:9111 http://127.0.0.1:9105 & PIDS+=($!)

cat > "$WORK/chatgate.yaml" <<YAML
listen: 127.0.0.1:9103
workers: 1
database: { url: "sqlite://$WORK/bench.db" }
upstreams:
  - { name: slow, kind: openai, base_url: "http://127.0.0.1:9104/v1", api_keys: [sk-up], models: [slow-stream] }
  - { name: timed, kind: openai, base_url: "http://127.0.0.1:9105/v1", api_keys: [sk-up], models: [timed-stream] }
  - { name: mock, kind: openai, base_url: "http://127.0.0.1:9101/v1", api_keys: [sk-up], models: ["*"] }
users: [ { name: bench, token: $KEY } ]
log: { level: ${LOG_LEVEL:-info} }
YAML
taskset -c 0 "$BIN" -c "$WORK/chatgate.yaml" serve 2>"$WORK/chatgate.log" & PIDS+=($!)
GATE_PID=$!
# The same with accounting off (a hidden flag, for this comparison only).
taskset -c 0 "$BIN" -c "$WORK/chatgate.yaml" --database "sqlite://$WORK/off.db" serve \
  --listen 127.0.0.1:9107 --no-accounting 2>"$WORK/chatgate-off.log" & PIDS+=($!)
OFF_PID=$!
for port in 9103 9107 9108 9109 9110 9111; do
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
done
sleep 1

script() { # $1: stream true|false, $2: model
  cat > "$WORK/$2-$1.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model":"$2","stream":$1,"messages":[{"role":"user","content":"Hello there"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
  echo "$WORK/$2-$1.lua"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
HZ=$(getconf CLK_TCK)

# run NAME URL CONNECTIONS SCRIPT PID(or -): prints "rps p50_ms p99_ms cpu_us_per_req"
run() {
  local out before after requests
  before=$([ "$5" = - ] && echo 0 || ticks "$5")
  out=$(taskset -c 1 wrk -t1 -c"$3" -d"${DURATION}s" --latency -s "$4" "$2")
  after=$([ "$5" = - ] && echo 0 || ticks "$5")
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx"; then
    echo "bench: $1 answered errors: $(echo "$out" | grep Non-2xx)" >&2
    exit 1
  fi
  echo "$out" | awk -v req="$requests" -v cpu=$((after - before)) -v hz="$HZ" -v pid="$5" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f %s\n", rps, p50, p99, (pid == "-" ? "-" : sprintf("%.1f", cpu * 1e6 / hz / req)) }'
}

JSON=$(script false gpt-4o-mini)
SSE=$(script true gpt-4o-mini)
SLOW=$(script true slow-stream)
RSS_IDLE=$(rss_mib "$GATE_PID")

# stream_latency URL MODEL: "streams first_p50 first_p99 chunk_p50 chunk_p99"
stream_latency() {
  taskset -c 1 "$STREAM" "$1" "$KEY" "$2" 32 "$DURATION"
}

# median ROW...: each field's median over the rows given (one per round),
# printed as measured (for an even count, the lower of the middle two).
median() {
  printf '%s\n' "$@" | awk '
    { for (i = 1; i <= NF; i++) v[i, NR] = $i; n = NF }
    END {
      for (i = 1; i <= n; i++) {
        m = 0
        for (r = 1; r <= NR; r++) if (v[i, r] != "-") a[++m] = v[i, r]
        if (m == 0) { printf "%s-", (i > 1 ? " " : ""); continue }
        for (x = 2; x <= m; x++) for (y = x; y > 1 && a[y - 1] + 0 > a[y] + 0; y--) { t = a[y]; a[y] = a[y - 1]; a[y - 1] = t }
        printf "%s%s", (i > 1 ? " " : ""), a[int((m + 1) / 2)]
      }
      print ""
    }'
}

declare -A R
for round in $(seq 1 "$ROUNDS"); do
for target in direct nginx floor hyper chatgate off; do
  case $target in
    direct) base=http://127.0.0.1:9101; timed=http://127.0.0.1:9105; model=gpt-4o-mini; pid=- ;;
    nginx) base=http://127.0.0.1:9102; timed=http://127.0.0.1:9106; model=gpt-4o-mini; pid=$NGINX_PID ;;
    floor) base=http://127.0.0.1:9108; timed=http://127.0.0.1:9109; model=gpt-4o-mini; pid=$FLOOR_PID ;;
    hyper) base=http://127.0.0.1:9110; timed=http://127.0.0.1:9111; model=gpt-4o-mini; pid=$HYPER_PID ;;
    chatgate) base=http://127.0.0.1:9103; timed=$base; model=timed-stream; pid=$GATE_PID ;;
    off) base=http://127.0.0.1:9107; timed=$base; model=timed-stream; pid=$OFF_PID ;;
  esac
  url=$base/v1/chat/completions
  R[$target,c1,$round]=$(run "$target" "$url" 1 "$JSON" "$pid")
  R[$target,c64,$round]=$(run "$target" "$url" 64 "$JSON" "$pid")
  [ "$target" = chatgate ] && RSS_C64=$(rss_mib "$GATE_PID")
  R[$target,s32,$round]=$(run "$target" "$url" 32 "$SSE" "$pid")
  R[$target,lat,$round]=$(stream_latency "$timed/v1/chat/completions" "$model")
done
done
for target in direct nginx floor hyper chatgate off; do
  for kind in c1 c64 s32 lat; do
    rows=()
    for round in $(seq 1 "$ROUNDS"); do rows+=("${R[$target,$kind,$round]}"); done
    R[$target,$kind]=$(median "${rows[@]}")
  done
done

# 1,000 open streams through chatgate, RSS read in the middle.
( DURATION=8; taskset -c 1 wrk -t1 -c1000 -d8s --timeout 30s -s "$SLOW" http://127.0.0.1:9103/v1/chat/completions >/dev/null 2>&1 ) &
sleep 5
RSS_1000=$(rss_mib "$GATE_PID")
wait $! || true

# Accounting must have kept up: a dropped usage record fails the run.
DROPPED=$(curl -sf http://127.0.0.1:9103/metrics | awk '/^chatgate_usage_dropped_total/ {print $2}')
if [ "${DROPPED:-missing}" != 0 ]; then
  echo "bench: chatgate dropped usage records: ${DROPPED:-no metric}" >&2
  exit 1
fi

f() { echo "${R[$1]}" | awk -v i="$2" '{print $i}'; }
added() { awk -v a="$(f "$1" "$3")" -v b="$(f "$2" "$3")" 'BEGIN {printf "%+.3f", a - b}'; }
ratio() { awk -v a="$(f "$1" 1)" -v b="$(f "$2" 1)" 'BEGIN {printf "%.2f", a / b}'; }

{
  echo "<!-- results: written by bench/run.sh -->"
  echo "Produced by \`bench/run.sh\` (DURATION=${DURATION}s per run, ROUNDS=${ROUNDS}: each figure the median of ${ROUNDS} round(s), the targets taking turns) on $(date -u +%Y-%m-%d):"
  echo "$(nproc) CPUs ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')), $(uname -r);"
  echo "$(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), chatgate $($BIN --version | awk '{print $2}') (release)."
  echo "Each proxy is pinned to CPU 0 with one worker; the mock upstreams, wrk and the streaming client share CPU 1."
  echo "CPU µs/req is the proxy process's user+sys time (all its threads) over the requests it served."
  echo "\"actix-web + awc alone\" is bench/src/floor.rs: the two crates chatgate is built on, passing every request on, with nothing else (no auth, routing, accounting or log)."
  echo "\"tokio + hyper alone\" is bench/src/floor_hyper.rs: the same pass-through on one current-thread tokio runtime with hyper's server and pooled client (not used by chatgate; it shows what leaving actix-web and awc would change)."
  echo "\"accounting off\" is the same chatgate with \`serve --no-accounting\` (hidden, for this comparison): no usage records, replies not watched."
  echo
  echo "| run | direct | nginx | actix-web + awc alone | tokio + hyper alone | chatgate | chatgate, accounting off | chatgate vs nginx | chatgate vs actix-web + awc |"
  echo "|---|---|---|---|---|---|---|---|---|"
  echo "| JSON, 1 connection: p50 ms | $(f direct,c1 2) | $(f nginx,c1 2) | $(f floor,c1 2) | $(f hyper,c1 2) | $(f chatgate,c1 2) | $(f off,c1 2) | $(added chatgate,c1 nginx,c1 2) ms | $(added chatgate,c1 floor,c1 2) ms |"
  echo "| JSON, 1 connection: p99 ms | $(f direct,c1 3) | $(f nginx,c1 3) | $(f floor,c1 3) | $(f hyper,c1 3) | $(f chatgate,c1 3) | $(f off,c1 3) | $(added chatgate,c1 nginx,c1 3) ms | $(added chatgate,c1 floor,c1 3) ms |"
  echo "| JSON, 64 connections: requests/s | $(f direct,c64 1) | $(f nginx,c64 1) | $(f floor,c64 1) | $(f hyper,c64 1) | $(f chatgate,c64 1) | $(f off,c64 1) | ×$(ratio chatgate,c64 nginx,c64) | ×$(ratio chatgate,c64 floor,c64) |"
  echo "| JSON, 64 connections: CPU µs/req | - | $(f nginx,c64 4) | $(f floor,c64 4) | $(f hyper,c64 4) | $(f chatgate,c64 4) | $(f off,c64 4) | $(added chatgate,c64 nginx,c64 4) µs | $(added chatgate,c64 floor,c64 4) µs |"
  echo "| SSE (20 chunks at once), 32 connections: streams/s | $(f direct,s32 1) | $(f nginx,s32 1) | $(f floor,s32 1) | $(f hyper,s32 1) | $(f chatgate,s32 1) | $(f off,s32 1) | ×$(ratio chatgate,s32 nginx,s32) | ×$(ratio chatgate,s32 floor,s32) |"
  echo "| SSE, 32 connections: CPU µs/stream | - | $(f nginx,s32 4) | $(f floor,s32 4) | $(f hyper,s32 4) | $(f chatgate,s32 4) | $(f off,s32 4) | $(added chatgate,s32 nginx,s32 4) µs | $(added chatgate,s32 floor,s32 4) µs |"
  echo "| SSE (20 chunks 10 ms apart), 32 connections: first chunk p50 ms | $(f direct,lat 2) | $(f nginx,lat 2) | $(f floor,lat 2) | $(f hyper,lat 2) | $(f chatgate,lat 2) | $(f off,lat 2) | $(added chatgate,lat nginx,lat 2) ms | $(added chatgate,lat floor,lat 2) ms |"
  echo "| same: first chunk p99 ms | $(f direct,lat 3) | $(f nginx,lat 3) | $(f floor,lat 3) | $(f hyper,lat 3) | $(f chatgate,lat 3) | $(f off,lat 3) | $(added chatgate,lat nginx,lat 3) ms | $(added chatgate,lat floor,lat 3) ms |"
  echo "| same: chunk sent → received p50 ms | $(f direct,lat 4) | $(f nginx,lat 4) | $(f floor,lat 4) | $(f hyper,lat 4) | $(f chatgate,lat 4) | $(f off,lat 4) | $(added chatgate,lat nginx,lat 4) ms | $(added chatgate,lat floor,lat 4) ms |"
  echo "| same: chunk sent → received p99 ms | $(f direct,lat 5) | $(f nginx,lat 5) | $(f floor,lat 5) | $(f hyper,lat 5) | $(f chatgate,lat 5) | $(f off,lat 5) | $(added chatgate,lat nginx,lat 5) ms | $(added chatgate,lat floor,lat 5) ms |"
  echo
  echo "chatgate RSS: idle ${RSS_IDLE} MiB, after 64 connections ${RSS_C64} MiB, with 1,000 open streams ${RSS_1000} MiB."
  echo "Usage records dropped by chatgate over all runs: ${DROPPED} (the run fails otherwise)."
  echo
  echo "Exact commands: see \`bench/run.sh\`: wrk -t1 -cN -d${DURATION}s --latency with a Lua script per body;"
  echo "\`bench_stream URL KEY MODEL 32 ${DURATION}\` (bench/src/stream.rs) for the chunk timings."
  echo "<!-- /results -->"
} > "$WORK/results.md"
# The results replace the marked block; what is written around it stays.
if grep -q '^<!-- results' BENCHMARKS.md 2>/dev/null; then
  awk -v new="$WORK/results.md" '
    /^<!-- results/ { while ((getline line < new) > 0) print line; skip = 1; next }
    /^<!-- \/results -->/ { skip = 0; next }
    !skip' BENCHMARKS.md > "$WORK/BENCHMARKS.md"
else
  { echo "# Benchmarks"; echo; cat "$WORK/results.md"; } > "$WORK/BENCHMARKS.md"
fi
mv "$WORK/BENCHMARKS.md" BENCHMARKS.md
cat BENCHMARKS.md
