//! Live capture with Linux AF_PACKET (TPACKET_V3 rings) for hosts without a DPDK-capable NIC:
//! each worker opens a ring on every configured interface, all of one interface's rings in a
//! fanout group that spreads flows by a symmetric hash (both directions of a flow on one
//! worker), and runs the same [`WorkerCore`] as the other sources on the blocks the kernel
//! hands over. VLAN tags the kernel took out of frames are put back, so the decoder sees the
//! frame as it was on the wire. Timeouts run on the capture clock.

use crate::counters::{shared_stats, PortSummary, RunSummary};
use crate::worker::WorkerCore;
use afpacket_sys::{Ring, RingConfig};
use detect::FlowConfig;
use export::ExportConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct AfPacketRunConfig {
    pub interfaces: Vec<String>,
    /// One worker per core.
    pub cores: Vec<usize>,
    pub ring: RingConfig,
    pub flow: FlowConfig,
    pub export: ExportConfig,
    pub stats_interval: Option<Duration>,
    pub metrics: Option<String>,
    /// A file the periodic stats are appended to as JSON lines.
    pub stats_file: Option<std::path::PathBuf>,
    /// Triggered packet capture (None: off).
    pub alert_capture: Option<crate::alertpcap::AlertCaptureConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    #[error("{0}")]
    Ring(std::io::Error),
    #[error("export: {0}")]
    Export(std::io::Error),
    #[error("thread: {0}")]
    Thread(std::io::Error),
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Captures until `stop` is set.
pub fn run_afpacket(
    cfg: &AfPacketRunConfig,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, AfPacketError> {
    let n = cfg.cores.len().max(1);
    // Every ring first, so a bad interface or a missing capability fails before anything runs.
    let base = (std::process::id() & 0x7fff) as u16;
    let mut rings: Vec<Vec<Ring>> = Vec::with_capacity(n);
    for _ in 0..n {
        let mut mine = Vec::with_capacity(cfg.interfaces.len());
        for (k, ifname) in cfg.interfaces.iter().enumerate() {
            let rc = RingConfig { fanout_group: Some(base.wrapping_add(k as u16)), ..cfg.ring.clone() };
            mine.push(Ring::open(ifname, &rc).map_err(AfPacketError::Ring)?);
        }
        rings.push(mine);
    }
    tracing::info!(interfaces = ?cfg.interfaces, workers = n, "AF_PACKET rings open");
    let (export, batchers) = export::spawn(&out, n, &cfg.export).map_err(AfPacketError::Export)?;
    let (capture_writer, mut captures) =
        crate::alertpcap::start_if(cfg.alert_capture.as_ref(), n).map_err(AfPacketError::Export)?;
    let stats = shared_stats(n);
    let mut live = crate::metrics::Live::new(stats.clone(), cfg.flow.capacity as u64);
    live.sinks = export.sink_counters().to_vec();
    live.ports = cfg
        .interfaces
        .iter()
        .map(|i| Arc::new(crate::metrics::PortLive { name: i.clone(), ..Default::default() }))
        .collect();
    let live = Arc::new(live);
    let mut stats_file = crate::metrics::open_stats_file(cfg.stats_file.as_deref()).map_err(AfPacketError::Ring)?;
    let _metrics = crate::metrics::serve_if(cfg.metrics.as_deref(), &live);
    let started = Instant::now();
    let results: Vec<(WorkerCore, Vec<Ring>)> = std::thread::scope(|s| -> Result<_, AfPacketError> {
        let mut handles = Vec::with_capacity(n);
        for (i, (mut mine, batcher)) in rings.into_iter().zip(batchers).enumerate() {
            let mut core = WorkerCore::new(i, cfg.flow.clone(), batcher, stats.clone());
            if let Some(c) = captures[i].take() {
                core.set_alert_capture(c);
            }
            let cpu = cfg.cores.get(i).copied();
            let stop = stop.clone();
            let live = live.clone();
            let h = std::thread::Builder::new()
                .name(format!("sw-worker-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(c) = cpu {
                        if crate::pin::pin_current(c) {
                            core.core = Some(c);
                        } else {
                            tracing::warn!(worker = i, core = c, "could not pin worker to core");
                        }
                    }
                    // Frames whose VLAN tag the kernel took out, with the tag put back.
                    let mut arena: Vec<u8> = Vec::with_capacity(1 << 20);
                    let mut own: Vec<(usize, usize)> = Vec::with_capacity(4096);
                    let wait = (10 / mine.len().max(1)).max(1) as i32;
                    let mut take = |ring: &mut Ring, core: &mut WorkerCore, wait: i32| -> bool {
                        let block = match ring.next_block(wait) {
                            Ok(Some(b)) => b,
                            Ok(None) => return false,
                            Err(e) => {
                                tracing::error!(worker = i, "AF_PACKET: {e}");
                                std::thread::sleep(Duration::from_millis(100));
                                return false;
                            }
                        };
                        arena.clear();
                        own.clear();
                        for p in block.packets() {
                            if let (Some((tpid, tci)), true) = (p.vlan, p.data.len() >= 12) {
                                let at = arena.len();
                                arena.extend_from_slice(&p.data[..12]);
                                arena.extend_from_slice(&tpid.to_be_bytes());
                                arena.extend_from_slice(&tci.to_be_bytes());
                                arena.extend_from_slice(&p.data[12..]);
                                own.push((at, arena.len() - at));
                            } else {
                                own.push((0, usize::MAX));
                            }
                        }
                        core.burst(block.packets().zip(own.iter()).map(|(p, &(at, len))| {
                            let ts = p.ts_ns / 1000;
                            if len == usize::MAX {
                                (p.data, p.wire_len, ts)
                            } else {
                                (&arena[at..at + len], p.wire_len + 4, ts)
                            }
                        }));
                        true
                    };
                    // The kernel's counters are 32-bit and reset at each read: read them often.
                    let mut next_stats = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        for ring in mine.iter_mut() {
                            take(ring, &mut core, wait);
                        }
                        core.end_burst(Some(now_us()), started.elapsed().as_millis() as u64);
                        if Instant::now() >= next_stats {
                            // The kernel's counts since the last read go to the interface's
                            // live counters (every worker adds its own ring's).
                            for (ring, port) in mine.iter_mut().zip(&live.ports) {
                                let before = ring.totals();
                                if let Ok(st) = ring.stats() {
                                    let dp = st.packets - before.packets;
                                    let dd = st.drops - before.drops;
                                    port.ipackets.fetch_add(dp.saturating_sub(dd), Ordering::Relaxed);
                                    port.imissed.fetch_add(dd, Ordering::Relaxed);
                                }
                            }
                            next_stats += Duration::from_secs(1);
                        }
                    }
                    // What the kernel still holds: the blocks it retires within a few ms.
                    let t0 = Instant::now();
                    while t0.elapsed() < Duration::from_millis(50) {
                        for ring in mine.iter_mut() {
                            while take(ring, &mut core, 5) {}
                        }
                    }
                    core.end_burst(Some(now_us()), started.elapsed().as_millis() as u64);
                    (core, mine)
                })
                .map_err(AfPacketError::Thread)?;
            handles.push(h);
        }
        // The stats line, outside the packet path.
        let mut next = Instant::now() + cfg.stats_interval.unwrap_or(Duration::from_secs(3600));
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            live.export_queue.store(export.queued_batches() as u64, Ordering::Relaxed);
            if cfg.stats_interval.is_some() && Instant::now() >= next {
                crate::metrics::report(&live, stats_file.as_mut());
                next += cfg.stats_interval.unwrap_or_default();
            }
        }
        Ok(handles.into_iter().map(|h| h.join().expect("worker thread panicked")).collect())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let end = now_us();
    let mut ports: Vec<PortSummary> =
        cfg.interfaces.iter().map(|i| PortSummary { name: i.clone(), ..Default::default() }).collect();
    let mut workers = Vec::with_capacity(n);
    for (core, mut mine) in results {
        for (k, r) in mine.iter_mut().enumerate() {
            if let Ok(st) = r.stats() {
                // The kernel's count includes what it dropped: what reached the ring is the rest.
                ports[k].ipackets += st.packets.saturating_sub(st.drops);
                ports[k].imissed += st.drops;
            }
        }
        workers.push(core.finish(end));
    }
    let alert_capture = capture_writer.map(|w| w.finish());
    let (exporter, export_error) = export.join().map_err(AfPacketError::Export)?;
    let input_packets = ports.iter().map(|p| p.ipackets).sum();
    Ok(RunSummary {
        source: "af_packet".into(),
        workers,
        ports,
        exporter,
        export_error: export_error.map(|e| e.to_string()),
        elapsed_secs: elapsed,
        input_packets,
        alert_capture,
    })
}
