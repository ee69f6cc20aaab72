#!/usr/bin/env bash
# Baseline ingest measurement of the local pipeline (tail → parse → index → searchable):
# writes N realistic vLLM CRI lines for 20 pods, runs the release binary on them from
# scratch, and times until the search API counts every line (all records but the derived
# kind=request ones). Prints lines/s, MB/s and
# peak RSS. Usage: scripts/bench-ingest.sh [LINES]   (default 1000000)
# The proper end-to-end benchmark is issue 10's; this is the skeleton's yardstick.
# INFERSIGHT_BIN=PATH runs that binary instead of building this tree's (to compare builds
# in one session).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
lines=${1:-1000000}
work=$(mktemp -d /tmp/infersight-bench-XXXXXX)
# infersight runs under /usr/bin/time: its child goes first, or it outlives the bench.
trap '[ -z "${pid:-}" ] || { pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; }; rm -rf "$work"' EXIT
bin="${INFERSIGHT_BIN:-target/release/infersight}"
[ -n "${INFERSIGHT_BIN:-}" ] || cargo build --release --bin infersight -q
bytes=$(python3 scripts/gen-pod-logs.py "$work/pods" "$lines")
port=$((20000 + RANDOM % 20000))
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" run --logs-dir "$work/pods" \
  --data-dir "$work/data" --listen "127.0.0.1:$port" >/dev/null 2>"$work/stderr" &
pid=$!
total=0
until [ "$total" = "$lines" ]; do
  alive_or_die "$pid" "infersight" "$work/stderr"
  sleep 0.2
  total=$(( $(search_total "$port" "") - $(search_total "$port" "&kind=request") ))
done
end=$(date +%s.%N)
pkill -TERM -P "$pid"; wait "$pid" || true
python3 - "$start" "$end" "$lines" "$bytes" "$(cat "$work/rss")" "$(du -sb "$work/data" | cut -f1)" <<'PY'
import sys
start, end, lines, nbytes, rss_kb, index_bytes = map(float, sys.argv[1:])
s = end - start
print(f"{int(lines)} lines, {nbytes/1e6:.1f} MB in {s:.2f} s: {lines/s:,.0f} lines/s, {nbytes/1e6/s:.1f} MB/s; "
      f"peak RSS {rss_kb/1024:.0f} MiB; index {index_bytes/1e6:.1f} MB ({index_bytes/nbytes:.2f} of raw)")
PY
