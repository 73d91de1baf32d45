#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, nightly) for SECONDS each (default 600) from a seed corpus
# made from a generated capture, and prints each run's executions and result.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs: rustup's nightly toolchain and `cargo install cargo-fuzz`. Crashes land in
# fuzz/artifacts/TARGET/; the script exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode dns dhcp http tls ssh stream defrag pipeline rules config sink_url spool)
if [ ! -d fuzz/corpus/decode ] || [ ! -d fuzz/corpus/spool ]; then
    cargo build --release -p spinewatch >/dev/null
    ./target/release/spinewatch gen --preset imix-dc --flows 400 --out /tmp/sw-fuzz-seed.pcap >/dev/null 2>&1
    python3 scripts/fuzz-seeds.py /tmp/sw-fuzz-seed.pcap fuzz/corpus
fi
cd fuzz
cargo +nightly fuzz build -O >/dev/null
fail=0
for t in "${targets[@]}"; do
    log="/tmp/sw-fuzz-$t.log"
    if cargo +nightly fuzz run -O "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
        res=ok
    else
        res=CRASH
        fail=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$execs" ] || execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
    echo "fuzz $t: ${secs}s, $execs executions, $res (log $log)"
done
exit $fail
