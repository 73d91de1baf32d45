#!/usr/bin/env bash
# Every test: installs what is missing (DPDK, clang, Suricata for the side-by-side test), then
# formatting, the build without DPDK, and the whole workspace's tests (unit, pipeline through
# DPDK net_pcap, Suricata comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cargo fmt --all --check
cargo build --workspace --no-default-features --quiet
cargo test --workspace
