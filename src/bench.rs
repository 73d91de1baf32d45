//! `spinewatch bench`: the real pipeline over DPDK `net_pcap` replaying pre-split captures from
//! memory (`infinite_rx=1`, one capture per RX queue) for a fixed time, measured after a
//! warm-up. Reports rates in total and per worker, drops by cause, cycles per packet, per-burst
//! latency percentiles, flow-table occupancy and peak RSS; a table, or one JSON object.

use crate::config::Config;
use anyhow::Result;
use capture::worker::Stage;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Peak resident set size of this process, KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(not(feature = "dpdk"))]
#[allow(clippy::too_many_arguments)]
pub fn run(
    _: &Config,
    _: usize,
    _: &[usize],
    _: Stage,
    _: f64,
    _: f64,
    _: bool,
    _: &[PathBuf],
    _: Vec<export::SinkSpec>,
    _: Arc<AtomicBool>,
) -> Result<i32> {
    let _ = peak_rss_kib;
    anyhow::bail!("this spinewatch was built without DPDK (feature \"dpdk\"): `bench` needs it")
}

#[cfg(feature = "dpdk")]
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &Config,
    workers: usize,
    cores: &[usize],
    stage: Stage,
    warmup: f64,
    duration: f64,
    json: bool,
    pcaps: &[PathBuf],
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<i32> {
    use anyhow::Context;
    use std::time::Duration;
    let window = |what: &str, v: f64, min: f64| -> Result<Duration> {
        if !(min..=86_400.0).contains(&v) {
            anyhow::bail!("--{what} {v}: must be between {min} and 86400 seconds");
        }
        Duration::try_from_secs_f64(v).map_err(|e| anyhow::anyhow!("--{what} {v}: {e}"))
    };
    let (warmup_d, duration_d) = (window("warmup", warmup, 0.0)?, window("duration", duration, 0.001)?);
    crate::with_split("bench", pcaps, workers, cfg.flow_config().spread, |split| {
        let total: u64 = split.packets.iter().sum();
        if total == 0 {
            anyhow::bail!("the captures hold no packets");
        }
        // infinite_rx loads every queue's capture into mbufs of our pool: size the pool (and
        // EAL's memory) for the captures plus the descriptors, bursts and caches.
        let descs = 1024u64;
        let data_room = cfg.capture.mbuf_data_room.max((128 + split.max_frame.min(9600)) as u16);
        let needed =
            total + workers as u64 * (descs + cfg.capture.burst_size as u64 + cfg.capture.mempool_cache as u64) + 4096;
        let pool = needed.min(u32::MAX as u64) as u32;
        // Per mbuf: the data room, the 128-byte rte_mbuf, the mempool header and the padding
        // that spreads objects over memory channels; then EAL's own needs.
        let memory_mb = (pool as u64 * (data_room as u64 + 1280)).div_ceil(1 << 20) + 768;
        let mut rc = crate::net_pcap_run_config(
            cfg,
            "bench",
            split,
            true,
            memory_mb as u32,
            workers,
            cores,
            Some(descs as u16),
            false,
        )?;
        rc.mempool_size = Some(pool);
        rc.mbuf_data_room = data_room;
        rc.stage = stage;
        rc.stats_interval = None;
        rc.bench = Some(capture::dpdk::BenchSpec { warmup: warmup_d, duration: duration_d });
        let (summary, report) = capture::dpdk::run_dpdk_bench(&rc, out, stop)?;
        let report =
            report.context("the benchmark window was cut short (interrupted, or a worker ended): no figures")?;
        let rss_mib = peak_rss_kib() as f64 / 1024.0;
        let secs = report.seconds.max(1e-9);
        let pk: u64 = report.workers.iter().map(|w| w.packets).sum();
        let by: u64 = report.workers.iter().map(|w| w.bytes).sum();
        let backlog: u64 = summary.workers.iter().map(|w| w.export.dropped).sum();
        let capacity: u64 = summary.workers.iter().map(|w| w.flow_capacity).sum();
        let mpps = |p: u64| p as f64 / secs / 1e6;
        let gbps = |b: u64| b as f64 * 8.0 / secs / 1e9;
        // On the wire each frame also takes 24 bytes: preamble, start delimiter, FCS, gap.
        let gbps_wire = |p: u64, b: u64| (b + 24 * p) as f64 * 8.0 / secs / 1e9;
        let cpp =
            |w: &capture::dpdk::WorkerBench| if w.packets > 0 { w.busy_cycles as f64 / w.packets as f64 } else { 0.0 };
        if json {
            let per: Vec<serde_json::Value> = report
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    serde_json::json!({
                        "worker": i,
                        "core": summary.workers.get(i).and_then(|s| s.core),
                        "packets": w.packets,
                        "bytes": w.bytes,
                        "mpps": mpps(w.packets),
                        "gbps": gbps(w.bytes),
                        "cycles_per_packet": cpp(w),
                        "bursts": w.bursts,
                        "latency_ns": {"p50": w.latency_ns[0], "p99": w.latency_ns[1], "p99_9": w.latency_ns[2], "max": w.latency_ns[3]},
                        "flows_active": report.flows_active.get(i).copied().unwrap_or(0),
                    })
                })
                .collect();
            let v = serde_json::json!({
                "pipeline": stage.name(),
                "workers": report.workers.len(),
                "seconds": secs,
                "warmup_seconds": warmup,
                "packets": pk,
                "bytes": by,
                "mpps": mpps(pk),
                "gbps": gbps(by),
                "gbps_wire": gbps_wire(pk, by),
                "per_worker": per,
                "drops": {"imissed": report.imissed, "rx_nombuf": report.rx_nombuf, "export_backlog": backlog},
                "flow_table": {"active": report.flows_active.iter().sum::<u64>(), "capacity": capacity},
                "peak_rss_mib": rss_mib,
                "tsc_hz": report.tsc_hz,
                "capture_packets": total,
                "captures": pcaps.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            });
            println!("{v}");
        } else {
            println!(
                "spinewatch bench: pipeline {}, {} worker(s), {:.1} s measured after {:.1} s warm-up, {} packets in the captures",
                stage.name(),
                report.workers.len(),
                secs,
                warmup,
                total
            );
            println!(
                "{:<10} {:>12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9}",
                "", "packets", "Mpps", "Gbps", "cyc/pkt", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "flows"
            );
            for (i, w) in report.workers.iter().enumerate() {
                println!(
                    "{:<10} {:>12} {:>8.3} {:>8.3} {:>9.1} {:>8} {:>8} {:>9} {:>9} {:>9}",
                    format!("worker {i}"),
                    w.packets,
                    mpps(w.packets),
                    gbps(w.bytes),
                    cpp(w),
                    w.latency_ns[0],
                    w.latency_ns[1],
                    w.latency_ns[2],
                    w.latency_ns[3],
                    report.flows_active.get(i).copied().unwrap_or(0)
                );
            }
            println!(
                "{:<10} {:>12} {:>8.3} {:>8.3}   (Gbps on the wire, +24 B/frame: {:.3})",
                "total",
                pk,
                mpps(pk),
                gbps(by),
                gbps_wire(pk, by)
            );
            println!(
                "drops: imissed {}, rx_nombuf {}, export backlog {}; flow table {} of {} slots; peak RSS {:.0} MiB",
                report.imissed,
                report.rx_nombuf,
                backlog,
                report.flows_active.iter().sum::<u64>(),
                capacity,
                rss_mib
            );
        }
        Ok(0)
    })
}
