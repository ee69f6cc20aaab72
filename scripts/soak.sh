#!/usr/bin/env bash
# Soak and fault suite (issue 10), by hand: the fault tests over and over, then the local
# pipeline under a steady load for a long while.
#   - crash_rotation: SIGKILL five times under rotation, every record once;
#   - faults: the data disk full then freed, log directories unreadable for a while;
#   - kafka_scale_out: the broker away for a while, an aggregator stopped, one SIGKILLed;
#   - kube_watch: the API server dropping watches and away for a while;
#   each ends with a SIGTERM that must drain. Then e2e-bench at RATE lines/s for MINUTES.
# Usage: scripts/soak.sh [ROUNDS] [RATE] [MINUTES]   (default 5 rounds, 15000/s, 30 min)
# Needs root (tmpfs, setpriv) and tansu (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
rate=${2:-15000}
minutes=${3:-30}
cargo build --bin infersight -q
cargo build --release --bin infersight -q
for round in $(seq 1 "$rounds"); do
  echo "soak: fault round $round of $rounds" >&2
  cargo test -q -p tests --test crash_rotation --test faults --test kafka_scale_out --test kube_watch
done
echo "soak: $minutes minutes at $rate lines/s" >&2
cargo run --release -q -p tests --bin e2e-bench -- --rate "$rate" --step-s $((minutes * 60)) \
  --json "soak-$(date +%Y%m%d-%H%M%S).json"
