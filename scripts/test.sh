#!/usr/bin/env bash
# Runs every test of Infersight on a fresh machine.
#
# It installs and starts what the tests need first; today that is nothing outside cargo.
# Later issues add their peers here, each skipped when already present: a Kafka-protocol
# broker (tansu) for the Kafka tests, Debian's chromium for the UI tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f ../shared/corpus/lines.jsonl ]; then
  echo "scripts/test.sh: ../shared/corpus/lines.jsonl is missing; the tests read the shared corpus and fixtures next to this repository" >&2
  exit 1
fi

# The black-box tests (tests/) drive target/debug/infersight; build it explicitly so they
# never run against a stale binary, whatever subset of the workspace is tested.
cargo build --bin infersight
cargo test --workspace
