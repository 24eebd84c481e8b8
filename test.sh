#!/usr/bin/env bash
# The whole test suite: once on SQLite, again on PostgreSQL, and again on
# MySQL/MariaDB (each test on its own fresh database).
#
# PostgreSQL is the server this project's machines run (127.0.0.1:5432,
# trust auth, database `test`; another one with TEST_POSTGRES_URL). MariaDB
# too (127.0.0.1:3306, root without a password; TEST_MYSQL_URL). MySQL
# support is the `mysql` feature, which links MariaDB's client library
# (Debian's default-libmysqlclient-dev). Without a reachable server, or
# without the library, that run is skipped with a message, except under
# CI=true, where that is a failure (and CI, as root, installs what is
# missing).
set -euo pipefail
cd "$(dirname "$0")"
ci() { [ "${CI:-}" = "true" ]; }
root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@") >/dev/null
}

url=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
reachable() { psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; }
if ! reachable && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "test.sh: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do reachable && break; sleep 1; done
fi

# MySQL: the client library for the build, the server and its client for
# the tests.
my_url=${TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
my_reachable() { mysql -h127.0.0.1 -P3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; }
if ! pkg-config --exists mysqlclient 2>/dev/null && ci && root; then
  echo "test.sh: installing MariaDB's client library (default-libmysqlclient-dev)" >&2
  apt_install default-libmysqlclient-dev
fi
if ! command -v mysql >/dev/null 2>&1 && ci && root; then
  echo "test.sh: installing MariaDB" >&2
  apt_install mariadb-server mariadb-client
fi
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  if ! my_reachable && root; then
    echo "test.sh: starting MariaDB" >&2
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 30); do my_reachable && break; sleep 1; done
  fi
fi
features=()
if pkg-config --exists mysqlclient 2>/dev/null; then
  features=(--features mysql)
fi

# The SQLite pass (what `cargo test` alone runs; its outage test starts
# a PostgreSQL server of its own from initdb). With the library, the
# build has MySQL in it for every pass.
cargo test "${features[@]}"

# An npm stage: the tests in DIR (WHAT, for the messages), which under CI
# must run.
npm_stage() {
  if command -v npm >/dev/null; then
    (cd "$1" && npm ci --silent --no-audit --no-fund && npm test --silent)
  elif ci; then
    echo "test.sh: no npm; under CI the $2 tests must run" >&2
    exit 1
  else
    echo "test.sh: SKIPPED the $2 tests: no npm (Node.js)" >&2
  fi
}
# The official SDKs (Anthropic's, OpenAI's, Google's, from npm) against
# the binary the pass above built.
npm_stage tests/clients SDK

# The coding agents from npm (Claude Code, Codex CLI with their Linux
# binaries, Gemini CLI), headless against the binary the pass above
# built, set up as docs/agents/ says.
npm_stage tests/agents agent

# The web app in a real browser (Debian's chromium, driven by
# playwright-core from npm) against the binary the pass above built.
chromium_bin=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium_bin" ] && ci && root; then
  echo "test.sh: installing Debian's chromium for the browser tests" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
if [ -x "$chromium_bin" ]; then
  (cd web/tests && npm ci --silent --no-audit --no-fund && CHROMIUM="$chromium_bin" npm test --silent)
elif ci; then
  echo "test.sh: no chromium at $chromium_bin; under CI the browser tests must run" >&2
  exit 1
else
  echo "test.sh: SKIPPED the browser tests: no chromium at $chromium_bin (apt-get install chromium)" >&2
fi

# The PostgreSQL and MySQL passes run at once (each test makes its own
# database; the two servers are apart): most of a pass is waiting on
# servers, and one after the other they were a third of CI's time. Each
# pass's output is kept and printed whole when it ends.
passes=()
pass_logs=$(mktemp -d)
trap 'rm -rf "$pass_logs"' EXIT
run_pass() {
  local name=$1
  shift
  ( "$@" >"$pass_logs/$name" 2>&1; echo $? >"$pass_logs/$name.rc" ) &
  passes+=("$name")
}

if reachable; then
  echo "test.sh: the suite again, on PostgreSQL ($url)" >&2
  # Leftover databases of earlier runs (each test makes its own).
  psql "$url" -qtAc "SELECT 'DROP DATABASE ' || datname || ';' FROM pg_database WHERE datname LIKE 'chatgate_test_%'" \
    | psql "$url" -q >/dev/null 2>&1 || true
  run_pass postgres env TEST_DATABASE=postgres TEST_POSTGRES_URL="$url" cargo test "${features[@]}" --tests
elif ci; then
  echo "test.sh: PostgreSQL is not reachable at $url; under CI the PostgreSQL tests must run" >&2
  exit 1
else
  echo "test.sh: SKIPPED the PostgreSQL run: no server reachable at $url (set TEST_POSTGRES_URL)" >&2
fi

if [ ${#features[@]} -gt 0 ] && my_reachable; then
  echo "test.sh: the suite again, on MySQL/MariaDB ($my_url)" >&2
  mysql -h127.0.0.1 -P3306 -uroot -N -e \
    "SELECT CONCAT('DROP DATABASE ', schema_name, ';') FROM information_schema.schemata WHERE schema_name LIKE 'chatgate_test_%'" \
    | mysql -h127.0.0.1 -P3306 -uroot >/dev/null 2>&1 || true
  run_pass mysql env TEST_DATABASE=mysql TEST_MYSQL_URL="$my_url" cargo test --features mysql --tests
elif ci; then
  echo "test.sh: MySQL/MariaDB (the server at $my_url, and the client library) is needed under CI" >&2
  exit 1
else
  echo "test.sh: SKIPPED the MySQL run: $( [ ${#features[@]} -gt 0 ] && echo "no server reachable at $my_url" || echo "no MySQL client library (apt-get install default-libmysqlclient-dev)")" >&2
fi

wait
failed=0
for name in "${passes[@]}"; do
  echo "test.sh: the $name pass:" >&2
  cat "$pass_logs/$name"
  if [ "$(cat "$pass_logs/$name.rc")" != 0 ]; then
    echo "test.sh: the $name pass FAILED" >&2
    failed=1
  fi
done
exit "$failed"
