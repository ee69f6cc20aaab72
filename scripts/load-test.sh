#!/usr/bin/env bash
# Load test of the search API (issue 6): 50 connections for 30 s of 15-minute searches
# (8 queries × 4 filters, limit 100) over the newest 15 minutes of an index, e.g. the one
# the indexer bench leaves: BENCH_DIR=/tmp/bench10m cargo bench -p indexer --bench index
# Usage: scripts/load-test.sh DATA_DIR [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/load-test.sh DATA_DIR [CONNECTIONS] [SECONDS]}
connections=${2:-50}
seconds=${3:-30}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --bin infersight -q
read -r from to pod1 pod2 namespace < <(target/release/infersight search '*' --data-dir "$data" \
  --limit 1 --json | python3 -c '
import datetime, json, sys
r = json.loads(sys.stdin.readline())
end = datetime.datetime.fromisoformat(r["timestamp"][:26] + "+00:00")
fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
res = r["resource"]
print(fmt(end - datetime.timedelta(minutes=15)), fmt(end + datetime.timedelta(seconds=1)),
      res.get("k8s.pod.name", "-"), "none", res.get("k8s.namespace.name", "-"))')
work=$(mktemp -d /tmp/infersight-load-XXXXXX)
mkdir -p "$work/pods"
cat > "$work/search.lua" <<LUA
local queries = { "preempted", "%22CUDA%20out%20of%20memory%22", "chatcmpl-0000000000327*", "*",
  "llm.e2e_ms:%3E20000", "error.type:cuda_oom", "Received%20request", "finished" }
local filters = { "", "&pod=$pod1", "&pod=$pod2", "&namespace=$namespace" }
local n = 0
request = function()
  n = n + 1
  local q = queries[(n % #queries) + 1]
  local f = filters[(math.floor(n / #queries) % #filters) + 1]
  return wrk.format("GET", "/api/v1/search?q=" .. q .. "&from=$from&to=$to&limit=100" .. f)
end
LUA
port=$((20000 + RANDOM % 20000))
target/release/infersight run --data-dir "$data" --logs-dir "$work/pods" \
  --listen "127.0.0.1:$port" >/dev/null 2>"$work/stderr" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
echo "15-minute searches over $from … $to, $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/search.lua" "http://127.0.0.1:$port"
