#!/usr/bin/env bash
# Each side of Kafka alone (issue 9): which stage limits scripts/bench-kafka.sh. The agent
# publishes N generated vLLM lines (20 pods) to tansu (in memory, 4 partitions) with no
# aggregator running, until the broker has acknowledged them all; then one aggregator
# indexes the full topic with no agent running. Prints each side's records/s and CPU.
# Usage: scripts/bench-kafka-stages.sh [LINES]   (default 500000)
# INFERSIGHT_BIN=PATH runs that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-500000}
tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
work=$(mktemp -d /tmp/infersight-kafka-stages-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
bin="${INFERSIGHT_BIN:-target/release/infersight}"
[ -n "${INFERSIGHT_BIN:-}" ] || cargo build --release --bin infersight -q
python3 scripts/gen-pod-logs.py "$work/pods" "$lines" >/dev/null
kport=$((20000 + RANDOM % 20000)); aport=$((kport + 1)); gport=$((kport + 2))
broker="127.0.0.1:$kport"
(cd "$work" && RUST_LOG=error exec "$tansu" broker --listener-url "tcp://$broker" \
  --advertised-listener-url "tcp://$broker" --storage-engine memory://tansu/ >/dev/null 2>&1) &
pids+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null; do sleep 0.1; done
"$tansu" topic create records --partitions 4 --broker "tcp://$broker" >/dev/null
# CPU seconds of a process so far (utime + stime; the fields after the command name).
cpu_of() { awk '{ sub(/.*\) /, ""); print ($12 + $13) / 100 }' "/proc/$1/stat"; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }

start=$(date +%s.%N)
"$bin" run --preset agent --logs-dir "$work/pods" --data-dir "$work/agent" \
  --listen "127.0.0.1:$gport" --kafka-brokers "$broker" --kafka-topic records \
  >/dev/null 2>"$work/agent.log" &
agent=$!
pids+=($agent)
# Every line's record delivered: the broker acknowledged the batch that carried it.
delivered=0
until [ "${delivered%.*}" -ge "$lines" ]; do
  sleep 0.2
  delivered=$(curl -s "http://127.0.0.1:$gport/metrics" \
    | awk '/^infersight_files_records_delivered_total/ { print $2 }')
  delivered=${delivered:-0}
done
end=$(date +%s.%N)
echo "agent alone: $(rate "$lines" "$start" "$end") lines/s acknowledged by the broker; CPU $(cpu_of "$agent") s"
kill "$agent"

start=$(date +%s.%N)
"$bin" run --preset aggregator --data-dir "$work/agg" --listen "127.0.0.1:$aport" \
  --kafka-brokers "$broker" --kafka-topic records >/dev/null 2>"$work/aggregator.log" &
aggregator=$!
pids+=($aggregator)
count() {
  curl -s "http://127.0.0.1:$aport/api/v1/search?q=*&limit=1$1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin).get("total",0))' 2>/dev/null || echo 0
}
total=0; first=""
until [ "$total" -ge "$lines" ]; do
  sleep 0.2
  total=$(( $(count "") - $(count "&kind=request") ))
  if [ -z "$first" ] && [ "$total" -gt 0 ]; then first=$(date +%s.%N); first_count=$total; fi
done
end=$(date +%s.%N)
echo "aggregator alone: $(rate "$lines" "$start" "$end") records/s from its start," \
  "$(rate "$((lines - first_count))" "$first" "$end") from its first commit; CPU $(cpu_of "$aggregator") s"
