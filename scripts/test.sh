#!/usr/bin/env bash
# Every test: installs what is missing (DPDK, clang, Suricata for the side-by-side test), then
# formatting, the build without DPDK, and the whole workspace's tests (unit, pipeline through
# DPDK net_pcap, Suricata comparison). Ends with one line of totals.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The binary without DPDK (pcap files only): dpdk-sys must not be needed.
cargo build -p spinewatch --no-default-features --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"
echo
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
