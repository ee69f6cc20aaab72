#!/usr/bin/env bash
# Each side of Kafka alone (issue 9): which stage limits scripts/bench-kafka.sh. The agent
# publishes N generated vLLM lines (20 pods) to tansu (in memory, 4 partitions) with no
# aggregator running, until the broker has acknowledged them all; then one aggregator
# indexes the full topic with no agent running. Prints each side's records/s, CPU and
# peak RSS.
# Usage: scripts/bench-kafka-stages.sh [LINES]   (default 500000)
# INFERSIGHT_BIN=PATH runs that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-500000}
source scripts/kafka-bench-setup.sh
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }
# A process's peak RSS so far, in MiB.
peak_rss() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$1/status"; }

start=$(date +%s.%N)
"$bin" run --preset agent --logs-dir "$work/pods" --data-dir "$work/agent" \
  --listen "127.0.0.1:$gport" --kafka-brokers "$broker" --kafka-topic records \
  >/dev/null 2>"$work/agent.log" &
agent=$!
pids+=($agent)
# Every line's record delivered: the broker acknowledged the batch that carried it.
delivered=0
until [ "${delivered%.*}" -ge "$lines" ]; do
  alive_or_die "$agent" "the agent" "$work/agent.log"
  sleep 0.2
  delivered=$(curl -s "http://127.0.0.1:$gport/metrics" \
    | awk '/^infersight_files_records_delivered_total/ { print $2 }')
  delivered=${delivered:-0}
done
end=$(date +%s.%N)
echo "agent alone: $(rate "$lines" "$start" "$end") lines/s acknowledged by the broker; CPU $(cpu_of "$agent") s;" \
  "peak RSS $(peak_rss "$agent") MiB"
kill "$agent"
wait "$agent" 2>/dev/null || true  # its drain must not share the aggregator's CPU

start=$(date +%s.%N)
"$bin" run --preset aggregator --data-dir "$work/agg" --listen "127.0.0.1:$aport" \
  --kafka-brokers "$broker" --kafka-topic records >/dev/null 2>"$work/aggregator.log" &
aggregator=$!
pids+=($aggregator)
total=0; first=""
until [ "$total" -ge "$lines" ]; do
  alive_or_die "$aggregator" "the aggregator" "$work/aggregator.log"
  sleep 0.2
  total=$(( $(count "") - $(count "&kind=request") ))
  if [ -z "$first" ] && [ "$total" -gt 0 ]; then first=$(date +%s.%N); first_count=$total; fi
done
end=$(date +%s.%N)
echo "aggregator alone: $(rate "$lines" "$start" "$end") records/s from its start," \
  "$(rate "$((lines - first_count))" "$first" "$end") from its first commit; CPU $(cpu_of "$aggregator") s;" \
  "peak RSS $(peak_rss "$aggregator") MiB"
