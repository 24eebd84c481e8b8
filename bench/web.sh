#!/usr/bin/env bash
# The chat page under load in Debian's chromium: a 500-message
# conversation opened, scrolled and streamed into (web/tests/bench.mjs
# measures in the page). Prints a Markdown table for BENCHMARKS.md.
#   bench/web.sh        (CHROMIUM=/path/to/chromium to use another)
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "bench: installing chromium" >&2; apt-get install -y chromium >/dev/null; }
cargo build --release --bins >&2
(cd web/tests && npm ci --silent --no-audit --no-fund)
BIN=$PWD/target/release/chatgate CHROMIUM=$CHROMIUM node web/tests/bench.mjs
