#!/usr/bin/env bash
# The whole test suite: once on SQLite, then again on PostgreSQL (each test
# on its own fresh database). PostgreSQL is the server this project's
# machines run (127.0.0.1:5432, trust auth, database `test`; another one
# with TEST_POSTGRES_URL). Without a reachable server the PostgreSQL run is
# skipped with a message, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")"

url=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
reachable() { psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; }
if ! reachable && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "test.sh: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do reachable && break; sleep 1; done
fi
# The SQLite pass (what `cargo test` alone runs; its PostgreSQL restart
# test uses the server above when there is one).
cargo test

# Anthropic's official SDK (from npm) against the binary the pass above
# built.
if command -v npm >/dev/null; then
  (cd tests/clients && npm ci --silent --no-audit --no-fund && npm test --silent)
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: no npm; under CI the SDK tests must run" >&2
  exit 1
else
  echo "test.sh: SKIPPED the SDK tests: no npm (Node.js)" >&2
fi

# The web app in a real browser (Debian's chromium, driven by
# playwright-core from npm) against the binary the pass above built.
chromium_bin=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium_bin" ] && [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ]; then
  echo "test.sh: installing Debian's chromium for the browser tests" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
if [ -x "$chromium_bin" ]; then
  (cd web/tests && npm ci --silent --no-audit --no-fund && CHROMIUM="$chromium_bin" npm test --silent)
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: no chromium at $chromium_bin; under CI the browser tests must run" >&2
  exit 1
else
  echo "test.sh: SKIPPED the browser tests: no chromium at $chromium_bin (apt-get install chromium)" >&2
fi

if ! reachable; then
  if [ "${CI:-}" = "true" ]; then
    echo "test.sh: PostgreSQL is not reachable at $url; under CI the PostgreSQL tests must run" >&2
    exit 1
  fi
  echo "test.sh: SKIPPED the PostgreSQL run: no server reachable at $url (set TEST_POSTGRES_URL)" >&2
  exit 0
fi
echo "test.sh: the suite again, on PostgreSQL ($url)" >&2
# Leftover databases of earlier runs (each test makes its own).
psql "$url" -qtAc "SELECT 'DROP DATABASE ' || datname || ';' FROM pg_database WHERE datname LIKE 'chatgate_test_%'" \
  | psql "$url" -q >/dev/null 2>&1 || true
TEST_DATABASE=postgres TEST_POSTGRES_URL="$url" cargo test --tests
