#!/usr/bin/env bash
# The index's disk floor (min_free_disk_percent) on real, small filesystems. Needs root
# (it mounts two tmpfs) and a built binary (default target/debug/infersight; pass another
# as $1 to compare builds).
#
#   own:    a 48 MB tmpfs that the index alone fills (~470k vLLM lines in 50 s): the floor
#           must keep the disk under 85 % used and every line committed.
#   others: a 400 MB tmpfs; ~235k lines indexed (~34 MB), then another file fills the disk
#           to 93 %, far past the floor, and ~235k lines more come: the index must keep its
#           size (not empty itself for the other file) and commit everything.
#
# Prints, per scenario, the lines written and committed, the splits dropped, the index's
# records and bytes at the end, and `df` of the disk.
set -euo pipefail
bin=$(realpath "${1:-target/debug/infersight}")
work=$(mktemp -d /tmp/disk-floor.XXXXXX)
port=$((20000 + RANDOM % 20000))
cleanup() {
    pkill -f "$work/cfg.toml" 2>/dev/null || true
    umount "$work/disk" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# run SECONDS [keep]: the pipeline on $work/disk/data while vLLM lines are written for
# SECONDS, then its figures.
run() {
    local seconds=$1 keep=${2:-}
    [ -n "$keep" ] || rm -rf "$work/disk/data" "$work/logs"
    mkdir -p "$work/logs/llm_vllm-0_uid0/vllm"
    cat > "$work/cfg.toml" <<TOML
data_dir = "$work/disk/data"
[api]
listen = "127.0.0.1:$port"
[sources.pod_logs]
type = "files"
logs_dir = "$work/logs"
[transforms.parse]
type = "inference_logs"
inputs = ["pod_logs"]
[sinks.index]
type = "index"
inputs = ["parse"]
split_docs = 20000
split_minutes = 1
min_free_disk_percent = 15
TOML
    "$bin" run --config "$work/cfg.toml" > "$work/out.log" 2>&1 &
    local pid=$!
    python3 - "$work/logs/llm_vllm-0_uid0/vllm/0.log" "$seconds" <<'PY'
import random, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
f = open(path, 'a'); t0 = time.time(); n = 0
while time.time() - t0 < seconds:
    for _ in range(2000):
        ts = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime()) + '.%06dZ' % random.randrange(1000000)
        f.write(f'{ts} stdout F INFO 12-04 12:00:00 [logger.py:49] Received request chatcmpl-{random.getrandbits(64):016x}: params: SamplingParams(n=1, temperature=0.7, top_p=0.95, max_tokens={random.randrange(1, 2048)}), prompt_token_ids: None, lora_request: None.\n')
        n += 1
    f.flush(); time.sleep(0.2)
print('  lines written', n)
PY
    sleep 5
    if kill -0 "$pid" 2>/dev/null; then
        echo "  readyz: $(curl -s "127.0.0.1:$port/readyz")"
        curl -s "127.0.0.1:$port/metrics" | grep -E "^infersight_(index_(splits_dropped|commit_failures|records_committed)|pipeline_restarts)" | sed 's/^/  /'
        kill "$pid"; wait "$pid" || true
    else
        wait "$pid" || echo "  the pipeline exited: $?"
    fi
    echo "  $(df -h "$work/disk" | tail -1)"
}

echo "own: the index alone fills a 48 MB disk"
mkdir -p "$work/disk" && mount -t tmpfs -o size=48m tmpfs "$work/disk"
run 50
umount "$work/disk"

echo "others: another file fills a 400 MB disk to 93 % under a 34 MB index"
mount -t tmpfs -o size=400m tmpfs "$work/disk"
run 25
used=$(du -sm "$work/disk" | cut -f1)
dd if=/dev/zero of="$work/disk/filler" bs=1M count=$((400 - used - 30)) status=none
echo "  after the other file: $(df -h "$work/disk" | tail -1)"
run 25 keep
