#!/usr/bin/env bash
# Installs what spinewatch needs on Debian 12 / Ubuntu, only what is missing.
#   scripts/deps.sh          build deps: DPDK 22.11 (dev), pkg-config, clang/libclang (bindgen),
#                            Hyperscan (dev, on x86-64)
#   scripts/deps.sh --test   also the receivers the export tests start (rsyslog with TLS and RELP, nfdump's
#                            nfcapd, redis-server, openssl) and Suricata 7 from
#                            bookworm-backports (the side-by-side test)
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need=()
# libpcap: `--bpf` (its filter compiler) and DPDK's net_pcap.
pkgs=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev libpcap-dev)
# Hyperscan, the rules' prefilter (x86-64 only in Debian; elsewhere Aho-Corasick is used).
if [ "$(dpkg --print-architecture)" = "amd64" ]; then pkgs+=(libhyperscan-dev); fi
if [ "${1:-}" = "--test" ]; then pkgs+=(rsyslog rsyslog-gnutls rsyslog-relp nfdump redis-server redis-tools openssl iproute2 python3 bsdutils dpkg-dev); fi
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
updated=0
if [ ${#need[@]} -gt 0 ]; then
    echo "deps: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    updated=1
    $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ] && ! command -v suricata >/dev/null 2>&1; then
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
        if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
            updated=0
        fi
        [ $updated -eq 1 ] || $SUDO apt-get update -qq
        echo "deps: installing suricata from bookworm-backports" >&2
        $SUDO apt-get install -y -qq -t bookworm-backports suricata >/dev/null
    else
        [ $updated -eq 1 ] || $SUDO apt-get update -qq
        echo "deps: installing suricata" >&2
        $SUDO apt-get install -y -qq suricata >/dev/null
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "deps: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
