#!/usr/bin/env bash
# The main job on any Debian/Ubuntu machine, no NIC and no hugepages needed: installs what is
# missing, builds spinewatch, generates a mixed capture and runs the sensor over it through DPDK
# (the net_pcap PMD, 2 RX queues / 2 pinned workers). Flow records (EVE JSON) go to stdout, the
# counters summary to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --quiet
out=${TMPDIR:-/tmp}/spinewatch-demo
mkdir -p "$out"
./target/release/spinewatch gen --scenario mixed --out "$out/mixed.pcap"
./target/release/spinewatch replay --config configs/replay.toml --source dpdk --workers 2 "$out/mixed.pcap"
