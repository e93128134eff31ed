#!/usr/bin/env bash
# The whole test suite, from a clean clone on a fresh machine:
#   1. installs what the tests need from Debian when missing (chromium, postgresql; needs root),
#   2. creates .venv and installs the project with its test extra, fetches axe-core and doiuse-email
#      from npm,
#   3. runs the static gates: ruff (pinned rule set), mypy --strict, import-linter contracts
#      (configured in pyproject.toml; a finding fails the script),
#   4. runs pytest on SQLite, then again on PostgreSQL (a local cluster started on loopback).
# Browser, PostgreSQL and slow tests all run. Extra arguments go to both pytest runs.
# RECONSENT_TEST_SKIP_PG=1 runs the SQLite pass only (quick local iterations; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # load generator of the benchmark smoke test
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing ${need[*]} from Debian…"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "the tests need: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# axe-core for the accessibility checks, from the npm registry (cached in .cache/).
AXE="$ROOT/.cache/axe-core/axe.min.js"
if [ ! -s "$AXE" ]; then
  mkdir -p "$ROOT/.cache/axe-core"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent axe-core@4 >/dev/null && tar -xzf axe-core-*.tgz)
  cp "$tmp/package/axe.min.js" "$AXE"
  rm -rf "$tmp"
fi
export RECONSENT_TEST_AXE="$AXE"

# doiuse-email (caniemail data) for the email-client check of the shipped layout, from the npm
# registry with its dependencies (cached in .cache/; tests/orchestrator/test_email_clients.py).
DOIUSE="$ROOT/.cache/doiuse-email/node_modules/doiuse-email"
if [ ! -s "$DOIUSE/bin/cli.js" ]; then
  mkdir -p "$ROOT/.cache/doiuse-email"
  npm install --silent --no-audit --no-fund --prefix "$ROOT/.cache/doiuse-email" doiuse-email@0.4.1 >/dev/null
fi
export RECONSENT_TEST_DOIUSE_EMAIL="$DOIUSE"
export RECONSENT_TEST_CHROMIUM="$(command -v chromium)"

# Static gates, before any test: versions pinned in the test extra, rules in pyproject.toml.
run_gates() {
  echo "== gates: ruff =="
  .venv/bin/ruff check orchestrator preference_centre tests bench
  echo "== gates: mypy --strict =="
  .venv/bin/mypy
  echo "== gates: import contracts =="
  .venv/bin/lint-imports
}
run_gates

run_pytest() {
  set +e
  .venv/bin/python -m pytest "$@"
  local status=$?
  set -e
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
    return 1
  fi
  return "$status"
}

echo "== test suite on SQLite =="
run_pytest "$@"

if [ "${RECONSENT_TEST_SKIP_PG:-}" = "1" ]; then
  exit 0
fi

echo "== test suite on PostgreSQL =="
PG_VERSION="$(ls /etc/postgresql | sort -n | tail -1)"
pg_ctlcluster "$PG_VERSION" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qAt" >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reconsent') THEN
    CREATE ROLE reconsent LOGIN PASSWORD 'reconsent' CREATEDB;
  END IF;
END $$;
-- DROP DATABASE … WITH (FORCE) after each test must be able to end an autovacuum worker that
-- happens to be analysing the fresh database (it runs as no role: "must be a member of … pg_signal_backend")
GRANT pg_signal_backend TO reconsent;
SQL
su postgres -c "psql -qAtc \"SELECT 1 FROM pg_database WHERE datname = 'reconsent_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O reconsent reconsent_test"
export RECONSENT_TEST_PG_URL="postgresql+psycopg://reconsent:reconsent@127.0.0.1:5432/reconsent_test"
# the wheel tests (tests/packaging) do not touch the database: they ran on the SQLite pass
run_pytest -m "not wheel" "$@"
