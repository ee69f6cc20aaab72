#!/usr/bin/env bash
# Throughput through Kafka on loopback (issue 9): agent → broker → aggregator → index.
# Writes N realistic vLLM CRI lines for 20 pods, starts tansu (in memory), a 4-partition
# topic, one aggregator and one agent (release builds), and times from the agent's start
# until the aggregator's index counts every line. Prints records/s, MB/s of raw log and
# of Kafka messages, each process's peak RSS, where the CPU went, and the latency of a
# term query over the index it made.
# Usage: scripts/bench-kafka.sh [LINES]   (default 500000)
# AGENT_CONFIG=FILE runs the agent on that config instead of its preset (to compare message
# encodings, say), AGGREGATOR_CONFIG=FILE the aggregator (to compare index settings);
# INFERSIGHT_BIN=PATH runs that binary instead of building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-500000}
agent_config=(--preset agent)
[ -z "${AGENT_CONFIG:-}" ] || agent_config=(--config "$AGENT_CONFIG")
aggregator_config=(--preset aggregator)
[ -z "${AGGREGATOR_CONFIG:-}" ] || aggregator_config=(--config "$AGGREGATOR_CONFIG")
source scripts/kafka-bench-setup.sh
/usr/bin/time -f "%M %U %S" -o "$work/rss-aggregator" "$bin" run "${aggregator_config[@]}" \
  --data-dir "$work/agg" --listen "127.0.0.1:$aport" --kafka-brokers "$broker" \
  --kafka-topic records >/dev/null 2>"$work/aggregator.log" &
pids+=($!)
until curl -sf "http://127.0.0.1:$aport/healthz" >/dev/null; do
  alive_or_die "${pids[1]}" "the aggregator" "$work/aggregator.log"
  sleep 0.1
done
tansu_start=$(cpu_of "${pids[0]}")
start=$(date +%s.%N)
/usr/bin/time -f "%M %U %S" -o "$work/rss-agent" "$bin" run "${agent_config[@]}" \
  --logs-dir "$work/pods" --data-dir "$work/agent" --kafka-brokers "$broker" \
  --kafka-topic records >/dev/null 2>"$work/agent.log" &
agent=$!
pids+=($agent)
total=0
until [ "$total" -ge "$lines" ]; do
  alive_or_die "${pids[1]}" "the aggregator" "$work/aggregator.log"
  sleep 0.2
  total=$(( $(count "") - $(count "&kind=request") ))
done
end=$(date +%s.%N); echo "WINDOW $start $end" >&2
# Query latency over the finished index, as the API serves it: newest 100 of a term.
query_ms() {
  for _ in $(seq 30); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$aport/api/v1/search?q=finished&limit=100$1"
  done | sort -n | awk '{ t[NR] = $1 * 1000 } END { printf "p50 %.1f ms, p99 %.1f ms", t[int(NR/2)], t[NR] }'
}
queries="term query, newest 100: all $(query_ms ""); last 15 min $(query_ms "&from=now-15m")"
tansu_cpu=$(python3 -c "print($(cpu_of "${pids[0]}") - $tansu_start)")
kafka_bytes=$(curl -s "http://127.0.0.1:$aport/metrics" | awk '/^infersight_kafka_bytes_total/ {print $2}')
# TERM the binaries under /usr/bin/time, which then writes their peak RSS.
pkill -TERM -P "$agent" || true; wait "$agent" || true
pkill -TERM -P "${pids[1]}" || true; wait "${pids[1]}" || true
python3 - "$start" "$end" "$lines" "$bytes" "${kafka_bytes:-0}" "$tansu_cpu" $(cat "$work/rss-agent") $(cat "$work/rss-aggregator") <<'PY'
import sys
start, end, lines, raw, kafka, tansu, rss_agent, u1, s1, rss_agg, u2, s2 = map(float, sys.argv[1:])
s = end - start
print(f"{int(lines)} lines through Kafka in {s:.2f} s: {lines/s:,.0f} records/s; "
      f"{raw/1e6/s:.1f} MB/s of raw log, {kafka/1e6/s:.1f} MB/s of Kafka messages "
      f"({kafka/lines:.0f} B each); peak RSS agent {rss_agent/1024:.0f} MiB, aggregator {rss_agg/1024:.0f} MiB; "
      f"CPU seconds: agent {u1+s1:.1f}, aggregator {u2+s2:.1f}, broker {tansu:.1f}, of {2*s:.1f} on 2 cores")
PY
echo "$queries"
