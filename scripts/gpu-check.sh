#!/usr/bin/env bash
# The NVML source alone: samples every GPU of this machine for 15 s (or $1 seconds) and
# prints each snapshot as one JSON line on stdout; where nvidia-smi exists, its own view of
# the same seconds goes to stderr, prefixed `nvidia-smi:`, to hold the figures against.
# Without an NVIDIA driver it prints why NVML is unavailable and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
bin="${INFERSIGHT_BIN:-target/release/infersight}"
if [[ ! -x "$bin" ]]; then
  cargo build --release -q --bin infersight
fi
smi=""
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,index,uuid,utilization.gpu,memory.used,memory.total,power.draw,temperature.gpu \
    --format=csv,noheader,nounits -l 1 2>&1 | sed 's/^/nvidia-smi: /' >&2 &
  smi=$!
fi
status=0
"$bin" gpu-check --seconds "$seconds" || status=$?
if [[ -n "$smi" ]]; then
  kill "$smi" 2>/dev/null || true
  pkill -f "nvidia-smi --query-gpu" 2>/dev/null || true
fi
exit "$status"
