#!/usr/bin/env bash
# The main job on any Debian/Ubuntu machine, no NIC and no hugepages needed: installs what is
# missing, builds spinewatch, generates a datacenter capture (300 flows: HTTP, TLS, DNS, SSH and
# others, some in VLANs, QinQ, VXLAN and GRE, plus the generator's attack scenarios) and runs the
# sensor over it through DPDK (the net_pcap PMD, 2 RX queues / 2 pinned workers) with the demo
# rules and indicators. Flow and transaction records and alerts (EVE JSON) go to stdout, the
# counters summary to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --quiet
out=${TMPDIR:-/tmp}/spinewatch-demo
mkdir -p "$out"
./target/release/spinewatch gen --preset imix-dc --flows 300 --attacks all --out "$out/dc.pcap" >&2
./target/release/spinewatch replay --config configs/replay.toml --source dpdk --workers 2 \
    --rules configs/rules/demo.rules --ioc configs/rules/demo-ioc.csv "$out/dc.pcap"
