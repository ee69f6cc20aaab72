#!/usr/bin/env bash
# Runs every test of Infersight on a fresh machine.
#
# It installs and starts what the tests need first, each skipped when already present:
# Debian's chromium and chromedriver for the UI tests (tests/tests/ui_browser.rs), and
# tansu, a Kafka-protocol broker, for the Kafka tests (tests/tests/kafka_*.rs; the
# tests start it on loopback themselves). tansu is built from crates.io once (about 15
# minutes on 2 cores) and then found in ~/.cargo/bin.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f ../shared/corpus/lines.jsonl ]; then
  echo "scripts/test.sh: ../shared/corpus/lines.jsonl is missing; the tests read the shared corpus and fixtures next to this repository" >&2
  exit 1
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "scripts/test.sh: installing chromium and chromium-driver for the UI tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

tansu="${TANSU_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/tansu}"
if [ ! -x "$tansu" ]; then
  echo "scripts/test.sh: building tansu (a Kafka-protocol broker) for the Kafka tests; once" >&2
  cargo install tansu --version 0.6.0 --features dynostore,libsql
fi

# The UI's script parsed first, where node is at hand: a slip there (a name declared twice)
# otherwise shows as every browser test timing out.
if command -v node >/dev/null; then
  node --check api/ui/app.js
fi

# The black-box tests (tests/) drive target/debug/infersight. `cargo test --workspace`
# builds it (pipelines has integration tests, so cargo builds its binary for them) with the
# same features as everything else; a separate `cargo build --bin infersight` resolved
# other features and compiled a second copy of half the workspace (a gigabyte of disk and
# minutes of CI). Incremental state is of no use to a one-off run and takes ~2 GB.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace
