# Sourced by scripts/bench-kafka.sh and scripts/bench-kafka-stages.sh (not run alone): the
# part of a Kafka bench both share. Expects `lines`; sets `work` (a temporary directory,
# removed at exit with every process in `pids`), `bin`, `bytes` (of the generated logs
# under $work/pods), `broker` (tansu in memory, topic `records` of 4 partitions; its pid is
# ${pids[0]}), free ports `aport` and `gport`, and the helpers `cpu_of` and `count`.
# BENCH_LOGS=DIR keeps the processes' logs (stderr) there.
# TMPDIR=DIR puts the work directory (logs, indexes) there (a tmpfs: no fsync costs).
source scripts/bench-lib.sh
tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
work=$(mktemp -d "${TMPDIR:-/tmp}/infersight-kafka-bench-XXXXXX")
pids=()
# A process may run under /usr/bin/time: its child goes first, or it outlives the bench.
trap 'for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; [ -z "${BENCH_LOGS:-}" ] || { mkdir -p "$BENCH_LOGS"; cp "$work"/*.log "$BENCH_LOGS"/ 2>/dev/null || true; }; rm -rf "$work"' EXIT
bin="${INFERSIGHT_BIN:-target/release/infersight}"
[ -n "${INFERSIGHT_BIN:-}" ] || cargo build --release --bin infersight -q
bytes=$(python3 scripts/gen-pod-logs.py "$work/pods" "$lines")
kport=$((20000 + RANDOM % 20000)); aport=$((kport + 1)); gport=$((kport + 2))
broker="127.0.0.1:$kport"
(cd "$work" && RUST_LOG=error exec "$tansu" broker --listener-url "tcp://$broker" \
  --advertised-listener-url "tcp://$broker" --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1) &
pids+=($!)
until (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null; do
  alive_or_die "${pids[0]}" "tansu (on port $kport)" "$work/tansu.log"
  sleep 0.1
done
"$tansu" topic create records --partitions 4 --broker "tcp://$broker" >/dev/null

# The aggregator's (on $aport) count of records matching the query suffix $1.
count() { search_total "$aport" "$1"; }
