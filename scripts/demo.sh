#!/usr/bin/env bash
# The main job on any Debian/Ubuntu machine, no NIC and no hugepages needed: installs what is
# missing, builds spinewatch, generates a datacenter capture (300 flows: HTTP, TLS, DNS, SSH and
# others, some in VLANs, QinQ, VXLAN and GRE) and runs the sensor over it through DPDK (the
# net_pcap PMD, 2 RX queues / 2 pinned workers). Flow and transaction records (EVE JSON) go to
# stdout, the counters summary to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --quiet
out=${TMPDIR:-/tmp}/spinewatch-demo
mkdir -p "$out"
./target/release/spinewatch gen --preset imix-dc --flows 300 --out "$out/dc.pcap" >&2
./target/release/spinewatch replay --config configs/replay.toml --source dpdk --workers 2 "$out/dc.pcap"
