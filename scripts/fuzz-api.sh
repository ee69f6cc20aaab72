#!/usr/bin/env bash
# API fuzz pass (issue 6): schemathesis generates requests from /api/v1/openapi.json against
# the demo (live simulated logs) and checks every answer: no 5xx, status codes, content types,
# headers and bodies as documented (the endless SSE tail is left out: its test is e2e_local).
# Input strictness checks are left out too: a query's tantivy syntax and a date's calendar
# cannot be written as a schema, so a "schema-valid" query may fairly get a 400.
# Usage: scripts/fuzz-api.sh [MAX_EXAMPLES]   (default 300 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-300}
venv=${SCHEMATHESIS_VENV:-$HOME/.cache/infersight/schemathesis-venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build --bin infersight -q
port=$((20000 + RANDOM % 20000))
target/debug/infersight demo --listen "127.0.0.1:$port" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --url "http://127.0.0.1:$port" --checks all \
  --exclude-checks positive_data_acceptance,negative_data_rejection \
  --exclude-path /api/v1/tail \
  --max-examples "$examples"
