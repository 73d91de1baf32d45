//! Live capture with Linux AF_PACKET (TPACKET_V3 rings) for hosts without a DPDK-capable NIC:
//! each worker opens a ring on every configured interface, all of one interface's rings in a
//! fanout group that spreads flows by a symmetric hash (both directions of a flow on one
//! worker), and runs the same [`WorkerCore`] as the other sources on the blocks the kernel
//! hands over. VLAN tags the kernel took out of frames are put back, so the decoder sees the
//! frame as it was on the wire. Timeouts run on the capture clock.

use crate::counters::{PortSummary, RunSummary};
use crate::runner::{Common, Drive, Finished, RunError, Source, WorkerCtx, WorkerInput};
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
    /// `--bpf`: only the packets this libpcap filter takes.
    pub bpf: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    #[error("{0}")]
    Ring(std::io::Error),
    #[error(transparent)]
    Run(#[from] RunError),
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// A worker's rings (one per interface), and the interfaces' live counters it adds to.
pub struct AfPacketInput {
    rings: Vec<Ring>,
    ports: Vec<Arc<crate::metrics::PortLive>>,
}

/// The AF_PACKET source.
struct AfPacketSource<'a> {
    cfg: &'a AfPacketRunConfig,
    /// Filled at open: each worker gets the interfaces' live counters to add its rings' to.
    ports: Vec<Arc<crate::metrics::PortLive>>,
}

impl Source for AfPacketSource<'_> {
    type Input = AfPacketInput;
    type WorkerOut = Vec<Ring>;
    type Error = AfPacketError;
    const NAME: &'static str = "af_packet";

    fn live_ports(&self) -> Vec<Arc<crate::metrics::PortLive>> {
        self.ports.clone()
    }

    fn open(&mut self) -> Result<Vec<WorkerInput<AfPacketInput>>, AfPacketError> {
        let cfg = self.cfg;
        let n = cfg.cores.len().max(1);
        // Every ring first, so a bad interface or a missing capability fails before anything runs.
        let base = (std::process::id() & 0x7fff) as u16;
        let mut inputs = Vec::with_capacity(n);
        for i in 0..n {
            let mut mine = Vec::with_capacity(cfg.interfaces.len());
            for (k, ifname) in cfg.interfaces.iter().enumerate() {
                let rc = RingConfig { fanout_group: Some(base.wrapping_add(k as u16)), ..cfg.ring.clone() };
                mine.push(Ring::open(ifname, &rc).map_err(AfPacketError::Ring)?);
            }
            inputs.push(WorkerInput {
                core: cfg.cores.get(i).copied(),
                queues: cfg.interfaces.iter().map(|ifname| format!("{ifname}:{i}")).collect(),
                input: AfPacketInput { rings: mine, ports: Vec::new() },
            });
        }
        tracing::info!(interfaces = ?cfg.interfaces, workers = n, "AF_PACKET rings open");
        self.ports = cfg
            .interfaces
            .iter()
            .map(|i| Arc::new(crate::metrics::PortLive { name: i.clone(), ..Default::default() }))
            .collect();
        for wi in inputs.iter_mut() {
            wi.input.ports = self.ports.clone();
        }
        Ok(inputs)
    }

    fn work(input: AfPacketInput, core: &mut WorkerCore, ctx: &WorkerCtx<'_>) -> Vec<Ring> {
        let AfPacketInput { rings: mut mine, ports } = input;
        let (i, stop, started) = (ctx.id, ctx.stop, ctx.started);
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
                take(ring, core, wait);
            }
            core.end_burst(Some(now_us()), started.elapsed().as_millis() as u64);
            if Instant::now() >= next_stats {
                // The kernel's counts since the last read go to the interface's live counters
                // (every worker adds its own ring's).
                for (ring, port) in mine.iter_mut().zip(&ports) {
                    let before = ring.totals();
                    if let Ok(st) = ring.stats() {
                        let dp = st.packets - before.packets;
                        let dd = st.drops - before.drops;
                        port.ipackets.fetch_add(dp.saturating_sub(dd), Ordering::Relaxed);
                        port.imissed.fetch_add(dd, Ordering::Relaxed);
                        core.stats().queue_drops.fetch_add(dd, Ordering::Relaxed);
                    }
                }
                next_stats += Duration::from_secs(1);
            }
        }
        // What the kernel still holds: the blocks it retires within a few ms.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(50) {
            for ring in mine.iter_mut() {
                while take(ring, core, 5) {}
            }
        }
        core.end_burst(Some(now_us()), started.elapsed().as_millis() as u64);
        mine
    }

    /// The stats line, outside the packet path.
    fn drive(&mut self, d: &mut Drive<'_>) -> Result<(), AfPacketError> {
        d.wait(Duration::from_millis(50), |d| d.stop.load(Ordering::Relaxed));
        Ok(())
    }

    fn finish(&mut self, _: &[WorkerCore], outs: Vec<Vec<Ring>>) -> Result<Finished, AfPacketError> {
        let end = now_us();
        let mut ports: Vec<PortSummary> =
            self.cfg.interfaces.iter().map(|i| PortSummary { name: i.clone(), ..Default::default() }).collect();
        for mut mine in outs {
            for (k, r) in mine.iter_mut().enumerate() {
                if let Ok(st) = r.stats() {
                    // The kernel's count includes what it dropped: what reached the ring is the rest.
                    ports[k].ipackets += st.packets.saturating_sub(st.drops);
                    ports[k].imissed += st.drops;
                }
            }
        }
        let input_packets = ports.iter().map(|p| p.ipackets).sum();
        Ok((ports, input_packets, end))
    }
}

/// Captures until `stop` is set.
pub fn run_afpacket(
    cfg: &AfPacketRunConfig,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, AfPacketError> {
    let stats = (cfg.stats_interval, &cfg.metrics, &cfg.stats_file);
    let common = Common::live(&cfg.flow, &cfg.export, &cfg.alert_capture, stats, &cfg.bpf);
    crate::runner::run(&mut AfPacketSource { cfg, ports: Vec::new() }, &common, out, stop)
}
