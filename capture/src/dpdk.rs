//! DPDK capture: ports (PCI devices or vdevs), one RX queue per worker per port, symmetric RSS,
//! pinned worker threads registered with DPDK, and the run-to-completion loop.

use crate::counters::{PortSummary, RunSummary};
use crate::runner::{Common, Drive, Finished, RunError, Source, WorkerCtx, WorkerInput};
use crate::worker::{Stage, WorkerCore};
use detect::FlowConfig;
use dpdk_sys::{Burst, DpdkError, Eal, Mempool, Port, RxQueue, TimestampField};
use export::ExportConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One port and the cores that serve its RX queues (queue i → `cores[i]`).
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// The name DPDK knows the port by: a PCI address (`0000:3b:00.0`) or a vdev name
    /// (`net_pcap0`).
    pub name: String,
    pub cores: Vec<usize>,
    /// RX descriptors per queue; `None`: the device's maximum, capped at 4096.
    pub rx_descriptors: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct DpdkRunConfig {
    /// EAL arguments, program name first (`-a PCI`, `--vdev ...`, `-m`, `--file-prefix`...).
    pub eal_args: Vec<String>,
    pub ports: Vec<PortSpec>,
    pub burst_size: usize,
    /// Mbufs in the pool; `None`: sized from descriptors, workers, burst and cache.
    pub mempool_size: Option<u32>,
    pub mempool_cache: u32,
    /// Data room per mbuf, headroom included.
    pub mbuf_data_room: u16,
    /// Port MTU; 0 keeps the driver's default.
    pub mtu: u32,
    pub flow: FlowConfig,
    pub export: ExportConfig,
    /// Use the PMD's RX timestamps (replay of a capture through `net_pcap`) instead of the TSC
    /// clock.
    pub hw_timestamps: bool,
    /// Frames may be rewritten from another link type (a replay's split): count each for the
    /// length it had in its capture ([`crate::pcap::counted_len`]). Off for live ports.
    pub rewritten_links: bool,
    /// For replay: packets each worker must receive before its input is done.
    pub expected_per_worker: Option<Vec<u64>>,
    /// For replay: a worker gives up waiting after this long without a packet.
    pub idle_exit: Duration,
    pub stats_interval: Option<Duration>,
    /// Where the Prometheus endpoint listens (None: no endpoint).
    pub metrics: Option<String>,
    /// A file the periodic stats are appended to as JSON lines (every `stats_interval`).
    pub stats_file: Option<std::path::PathBuf>,
    /// Triggered packet capture (None: off).
    pub alert_capture: Option<crate::alertpcap::AlertCaptureConfig>,
    /// `--bpf`: only the packets this libpcap filter takes.
    pub bpf: Option<String>,
    /// How much of the pipeline workers run (`Full` except in `spinewatch bench`).
    pub stage: Stage,
    /// Benchmark mode: measure for `duration` after `warmup`, then stop.
    pub bench: Option<BenchSpec>,
}

/// A benchmark window.
#[derive(Debug, Clone, Copy)]
pub struct BenchSpec {
    pub warmup: Duration,
    pub duration: Duration,
}

/// One worker's measurements over the benchmark window.
#[derive(Debug, Clone)]
pub struct WorkerBench {
    pub packets: u64,
    pub bytes: u64,
    /// TSC cycles spent in non-empty polls (receive, process, free).
    pub busy_cycles: u64,
    /// Per-burst processing time percentiles, nanoseconds: p50, p99, p99.9, max.
    pub latency_ns: [u64; 4],
    pub bursts: u64,
}

/// What `spinewatch bench` reports besides the run summary.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub stage: Stage,
    pub seconds: f64,
    pub tsc_hz: u64,
    pub workers: Vec<WorkerBench>,
    /// Port drops inside the window.
    pub imissed: u64,
    pub rx_nombuf: u64,
    /// Live flows per worker at the end of the window.
    pub flows_active: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DpdkRunError {
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Run(#[from] RunError),
}

struct WorkerPlan {
    core: usize,
    queues: Vec<(usize, u16)>, // (port index, queue)
}

fn plan_workers(ports: &[PortSpec]) -> Vec<WorkerPlan> {
    let mut plans: Vec<WorkerPlan> = Vec::new();
    for (pi, p) in ports.iter().enumerate() {
        for (q, &core) in p.cores.iter().enumerate() {
            match plans.iter_mut().find(|w| w.core == core) {
                Some(w) => w.queues.push((pi, q as u16)),
                None => plans.push(WorkerPlan { core, queues: vec![(pi, q as u16)] }),
            }
        }
    }
    plans
}

/// Runs the DPDK pipeline until `stop` is set or, for replay, every worker has its expected
/// packets. Writes EVE to `out`.
pub fn run_dpdk(
    cfg: &DpdkRunConfig,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, DpdkRunError> {
    run_dpdk_bench(cfg, out, stop).map(|(s, _)| s)
}

/// [`run_dpdk`], with the benchmark report when `cfg.bench` is set.
pub fn run_dpdk_bench(
    cfg: &DpdkRunConfig,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<(RunSummary, Option<BenchReport>), DpdkRunError> {
    let plans = plan_workers(&cfg.ports);
    if plans.is_empty() {
        return Err(DpdkRunError::Config("no ports/cores configured".into()));
    }
    let eal = Eal::init(&cfg.eal_args)?;
    tracing::info!(dpdk = dpdk_sys::DPDK_VERSION, ports = eal.port_count(), "EAL initialised");
    let ts_field = if cfg.hw_timestamps { Some(TimestampField::register(&eal)?) } else { None };

    // Size the pool: every descriptor, plus what workers hold in bursts and caches.
    let mut ports = Vec::with_capacity(cfg.ports.len());
    let mut infos = Vec::with_capacity(cfg.ports.len());
    for spec in &cfg.ports {
        let port = Port::by_name(&eal, &spec.name)?;
        let info = port.info()?;
        if (spec.cores.len() as u16) > info.max_rx_queues {
            return Err(DpdkRunError::Config(format!(
                "port {}: {} RX queues asked (one per core) but driver {} has {}",
                spec.name,
                spec.cores.len(),
                info.driver,
                info.max_rx_queues
            )));
        }
        ports.push(port);
        infos.push(info);
    }
    let descs: Vec<u16> = cfg
        .ports
        .iter()
        .zip(&infos)
        .map(|(s, i)| {
            let want = s.rx_descriptors.unwrap_or_else(|| i.rx_desc_max.min(4096));
            let want = if want == 0 { 1024 } else { want };
            let max = if i.rx_desc_max == 0 { u16::MAX } else { i.rx_desc_max };
            want.min(max).max(i.rx_desc_min.min(max).max(1))
        })
        .collect();
    let needed: u64 = cfg.ports.iter().zip(&descs).map(|(s, &d)| s.cores.len() as u64 * d as u64).sum::<u64>()
        + plans.len() as u64 * (cfg.burst_size as u64 + cfg.mempool_cache as u64)
        + 1024;
    let n_mbufs = match cfg.mempool_size {
        Some(n) => {
            if (n as u64) < needed {
                tracing::warn!(
                    configured = n,
                    needed,
                    "capture.mempool_size is below what the descriptors and caches hold; expect rx_nombuf drops"
                );
            }
            n
        }
        None => ((needed + 1).next_power_of_two() - 1).min(u32::MAX as u64) as u32,
    };
    let socket = infos.first().map(|i| i.socket).unwrap_or(-1);
    // DPDK requires the per-lcore cache to stay under n / 1.5.
    let cache = cfg.mempool_cache.min((n_mbufs as f64 / 1.5) as u32).min(512);
    let pool = Mempool::create(&eal, "sw_rx_pool", n_mbufs, cache, cfg.mbuf_data_room, socket).map(Arc::new).map_err(|e| {
        DpdkRunError::Config(format!(
            "could not allocate the mbuf pool ({n_mbufs} mbufs of {} bytes, about {} MiB): {e}. Give EAL more memory (-m, or hugepages) or lower capture.mempool_size / rx_descriptors",
            cfg.mbuf_data_room,
            (n_mbufs as u64 * (cfg.mbuf_data_room as u64 + 192)) >> 20
        ))
    })?;
    tracing::info!(mbufs = n_mbufs, cache = cfg.mempool_cache, "mbuf pool created");

    // Datagrams reassembled on one worker go to the worker owning their flow when the queues
    // are fed by our own flow hash (net_pcap reading the split capture); a device's RSS picks
    // queues by its Toeplitz hash, which the workers do not compute yet: there a datagram stays
    // on the worker that reassembled it.
    let mut hand_off = true;
    for ((port, info), (spec, &desc)) in ports.iter_mut().zip(&infos).zip(cfg.ports.iter().zip(&descs)) {
        let nq = spec.cores.len() as u16;
        let by_addresses = cfg.flow.spread == detect::hash::Spread::Addresses;
        let hf = info.rss_offloads & if by_addresses { dpdk_sys::rss_hf_ip() } else { dpdk_sys::rss_hf_default() };
        let rss = if nq > 1 {
            if hf == 0 && info.driver == "net_pcap" {
                tracing::info!(port = %spec.name, "net_pcap has no RSS: each RX queue reads its own rx_pcap file");
            } else if hf == 0 {
                tracing::warn!(port = %spec.name, driver = %info.driver, "device has no RSS: all traffic arrives on queue 0, the other queues stay idle");
            }
            hf
        } else {
            0
        };
        if nq > 1 && (rss != 0 || info.driver != "net_pcap") || by_addresses {
            // (By addresses a datagram's flow is where its fragments are: nothing to hand off.)
            hand_off = false;
        }
        let mut offloads = 0;
        if rss != 0 && info.rx_offload_capa & dpdk_sys::rx_offload_rss_hash() != 0 {
            offloads |= dpdk_sys::rx_offload_rss_hash();
        }
        if info.rx_offload_capa & dpdk_sys::rx_offload_scatter() != 0 {
            offloads |= dpdk_sys::rx_offload_scatter();
        }
        let txq = if info.max_tx_queues > 0 { 1 } else { 0 };
        port.configure(nq, txq, rss, info.hash_key_size as usize, offloads, cfg.mtu)?;
        // The driver's own bounds and alignment for the descriptor count.
        let desc = port.adjust_rx_descriptors(desc)?;
        for q in 0..nq {
            port.rx_queue_setup(q, desc, info.socket, &pool)?;
        }
        if txq > 0 {
            port.tx_queue_setup(0, 512, info.socket)?;
        }
        port.promiscuous_enable()?;
        port.start()?;
        let link = port.link();
        tracing::info!(
            port = %spec.name, driver = %info.driver, queues = nq, rx_descriptors = desc,
            rss_hf = format_args!("{rss:#x}"), link_up = link.up, speed_mbps = link.speed_mbps,
            "port started"
        );
    }

    let n = plans.len();
    if n > 1 && !hand_off && cfg.flow.spread == detect::hash::Spread::Flow {
        tracing::info!(
            "RSS by the device: a datagram reassembled from fragments stays on the worker that received them"
        );
    }
    let tsc_hz = dpdk_sys::tsc_hz(&eal).max(1);
    let measuring = AtomicBool::new(false);
    let params = WorkerParams {
        burst_size: cfg.burst_size,
        idle_exit: cfg.idle_exit,
        rewritten: cfg.rewritten_links,
        hw_ts: cfg.hw_timestamps,
        stage: cfg.stage,
        measure: cfg.bench.is_some(),
        tsc_hz,
        tsc0: dpdk_sys::tsc(),
        epoch_us: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0),
    };
    // Every queue handle, once; each goes to the worker of its core.
    let mut port_queues: Vec<Vec<Option<RxQueue>>> = Vec::with_capacity(ports.len());
    for p in &ports {
        port_queues.push(p.rx_queues(ts_field)?.into_iter().map(Some).collect());
    }
    let mut inputs = Vec::with_capacity(n);
    for (i, plan) in plans.iter().enumerate() {
        let queues: Vec<RxQueue> = plan
            .queues
            .iter()
            .map(|&(pi, q)| port_queues[pi][q as usize].take().expect("each queue goes to one worker"))
            .collect();
        let expected = cfg.expected_per_worker.as_ref().map(|v| v.get(i).copied().unwrap_or(0));
        let input = DpdkInput { queues, eal: &eal, expected, measuring: &measuring, p: params };
        let names = plan.queues.iter().map(|&(pi, q)| format!("{}:{q}", cfg.ports[pi].name)).collect();
        inputs.push(WorkerInput { core: Some(plan.core), queues: names, input });
    }
    let mut src = DpdkSource {
        cfg,
        ports: &ports,
        inputs: Some(inputs),
        hand_off,
        measuring: &measuring,
        window: None,
        benches: Vec::new(),
        worker_queues: plans.iter().map(|p| p.queues.clone()).collect(),
    };
    let stats = (cfg.stats_interval, &cfg.metrics, &cfg.stats_file);
    let common = Common::live(&cfg.flow, &cfg.export, &cfg.alert_capture, stats, &cfg.bpf);
    let summary = crate::runner::run(&mut src, &common, out, stop)?;
    let (window, benches) = (src.window.take(), std::mem::take(&mut src.benches));
    drop(src);
    for p in ports.iter_mut() {
        p.stop();
    }
    drop(ports);
    drop(pool);
    let report = window.map(|(seconds, per, (imissed, rx_nombuf), flows_active)| BenchReport {
        stage: cfg.stage,
        seconds,
        tsc_hz,
        workers: benches
            .into_iter()
            .zip(per)
            .map(|(b, (packets, bytes))| {
                let mut b =
                    b.unwrap_or(WorkerBench { packets: 0, bytes: 0, busy_cycles: 0, latency_ns: [0; 4], bursts: 0 });
                b.packets = packets;
                b.bytes = bytes;
                b
            })
            .collect(),
        imissed,
        rx_nombuf,
        flows_active,
    });
    Ok((summary, report))
}

/// What every DPDK worker's loop is told.
/// The length a received frame counts for: as received, or (a replay of rewritten link types)
/// its length in the capture.
#[inline]
fn counted(rewritten: bool, frame: &[u8], len: u32) -> u32 {
    if rewritten {
        crate::pcap::counted_len(frame, len)
    } else {
        len
    }
}

#[derive(Debug, Clone, Copy)]
struct WorkerParams {
    burst_size: usize,
    rewritten: bool,
    idle_exit: Duration,
    hw_ts: bool,
    stage: Stage,
    measure: bool,
    tsc_hz: u64,
    tsc0: u64,
    epoch_us: u64,
}

/// A DPDK worker's RX queues and what its loop needs.
pub struct DpdkInput<'p> {
    queues: Vec<RxQueue<'p>>,
    eal: &'p Eal,
    /// For replay: the packets this worker must receive.
    expected: Option<u64>,
    measuring: &'p AtomicBool,
    p: WorkerParams,
}

/// (seconds, per-worker (packets, bytes), (imissed, rx_nombuf), per-worker live flows)
type Window = (f64, Vec<(u64, u64)>, (u64, u64), Vec<u64>);

/// The DPDK source: ports set up and queues handed out before the runner starts.
struct DpdkSource<'p> {
    cfg: &'p DpdkRunConfig,
    ports: &'p [Port],
    inputs: Option<Vec<WorkerInput<DpdkInput<'p>>>>,
    hand_off: bool,
    measuring: &'p AtomicBool,
    window: Option<Window>,
    benches: Vec<Option<WorkerBench>>,
    /// Each worker's (port, queue) pairs, for its per-queue counters.
    worker_queues: Vec<Vec<(usize, u16)>>,
}

impl<'p> Source for DpdkSource<'p> {
    type Input = DpdkInput<'p>;
    type WorkerOut = Option<WorkerBench>;
    type Error = DpdkRunError;
    const NAME: &'static str = "dpdk";

    fn live_ports(&self) -> Vec<Arc<crate::metrics::PortLive>> {
        self.cfg
            .ports
            .iter()
            .map(|p| Arc::new(crate::metrics::PortLive { name: p.name.clone(), ..Default::default() }))
            .collect()
    }

    fn open(&mut self) -> Result<Vec<WorkerInput<DpdkInput<'p>>>, DpdkRunError> {
        Ok(self.inputs.take().unwrap_or_default())
    }

    fn shards(&self, n: usize) -> Vec<detect::shard::Shard> {
        let cfg = self.cfg;
        let mut shards = detect::shard::mesh(if self.hand_off { n } else { 1 }, cfg.flow.defrag.handoff_ring);
        // A replay of split files on their own timestamps: the queues carry no common order, so
        // the workers keep packet-time order between them (a datagram reassembled on one worker
        // reaches its flow's before any later packet).
        if cfg.expected_per_worker.is_some() && cfg.hw_timestamps && self.hand_off && n > 1 {
            let gate = detect::shard::Gate::new(n);
            for s in shards.iter_mut() {
                s.set_gate(gate.clone());
            }
        }
        shards
    }

    fn work(input: DpdkInput<'p>, core: &mut WorkerCore, ctx: &WorkerCtx<'_>) -> Option<WorkerBench> {
        let DpdkInput { mut queues, eal, expected, measuring, p } = input;
        let WorkerParams { burst_size, rewritten, idle_exit, hw_ts, stage, measure, tsc_hz, tsc0, epoch_us } = p;
        let (i, stop) = (ctx.id, ctx.stop);
        let cfg_bench_none = !measure;
        match eal.register_thread() {
            Ok(lcore) => tracing::debug!(worker = i, lcore, "registered with DPDK"),
            Err(e) => tracing::warn!(worker = i, "{e}: mempool caches unused on this worker"),
        }
        // The live clock: wall time at start plus TSC cycles since, no syscall, and no
        // division: cycles × (2^32 · 10^6 / hz) >> 32.
        let us_mult = ((1_000_000u128 << 32) / tsc_hz as u128) as u64;
        let since = || ((dpdk_sys::tsc().saturating_sub(tsc0) as u128 * us_mult as u128) >> 32) as u64;
        let wall_us = || epoch_us + since();
        // Milliseconds since start for batch ageing, from the TSC too.
        let mono_ms = || since() / 1000;
        let mut burst = Burst::new(burst_size);
        let mut last_rx = Instant::now();
        let mut polls = 0u64;
        let mut tsc_now_us = 0u64;
        let mut hist =
            measure.then(|| hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 3).expect("histogram bounds"));
        let (mut busy, mut mbursts) = (0u64, 0u64);
        loop {
            if stop.load(Ordering::Relaxed) {
                // Live capture: take what is already in the RX rings (bounded in
                // time, for sources that never run dry), so it is counted.
                if expected.is_none() && cfg_bench_none {
                    let until = Instant::now() + Duration::from_millis(100);
                    while Instant::now() < until {
                        let mut got = 0;
                        for q in queues.iter_mut() {
                            let k = q.rx_burst(&mut burst);
                            got += k;
                            if k > 0 {
                                let now_us = wall_us();
                                core.burst(
                                    burst.frames().map(|(d, l, ts)| {
                                        (d, counted(rewritten, d, l), if hw_ts { ts } else { now_us })
                                    }),
                                );
                                burst.free();
                            }
                        }
                        if got == 0 {
                            break;
                        }
                        core.end_burst((!hw_ts).then(&wall_us), mono_ms());
                    }
                }
                break;
            }
            if let Some(exp) = expected {
                if core.received >= exp {
                    break;
                }
            }
            let t_a = if measure { dpdk_sys::tsc() } else { 0 };
            let mut got = 0;
            for q in queues.iter_mut() {
                let k = q.rx_burst(&mut burst);
                if k == 0 {
                    continue;
                }
                got += k;
                // The clock, once per burst.
                if !hw_ts {
                    tsc_now_us = wall_us();
                }
                if stage == Stage::Rx {
                    let bytes = burst.frames().map(|f| f.1 as u64).sum();
                    core.rx_only(k, bytes);
                } else {
                    core.burst_stage(
                        stage,
                        burst.frames().map(|(data, len, ts)| {
                            (data, counted(rewritten, data, len), if hw_ts { ts } else { tsc_now_us })
                        }),
                    );
                }
                burst.free();
            }
            polls += 1;
            if got > 0 {
                last_rx = Instant::now();
                let clock = (!hw_ts).then_some(tsc_now_us);
                core.end_burst(clock, mono_ms());
                if let Some(h) = hist.as_mut() {
                    if measuring.load(Ordering::Relaxed) {
                        let dt = dpdk_sys::tsc().wrapping_sub(t_a);
                        busy += dt;
                        mbursts += 1;
                        h.saturating_record(dt.max(1));
                    }
                }
            } else if polls.is_multiple_of(1024) {
                // Idle: keep expiry and batch ageing going on the live clock.
                let now = Instant::now();
                if !hw_ts {
                    tsc_now_us = wall_us();
                    core.end_burst(Some(tsc_now_us), mono_ms());
                } else {
                    core.end_burst(None, mono_ms());
                }
                if expected.is_some() && now.duration_since(last_rx) > idle_exit {
                    tracing::warn!(
                        worker = i,
                        received = core.received,
                        expected = expected.unwrap_or(0),
                        "input idle; ending this worker's replay early"
                    );
                    break;
                }
            }
        }
        // The other workers stop waiting for this one.
        core.input_done();
        hist.map(|h| {
            let ns = |c: u64| (c as u128 * 1_000_000_000 / tsc_hz as u128) as u64;
            WorkerBench {
                packets: 0,
                bytes: 0,
                busy_cycles: busy,
                latency_ns: [
                    ns(h.value_at_quantile(0.5)),
                    ns(h.value_at_quantile(0.99)),
                    ns(h.value_at_quantile(0.999)),
                    ns(h.max()),
                ],
                bursts: mbursts,
            }
        })
    }

    fn drive(&mut self, d: &mut Drive<'_>) -> Result<(), DpdkRunError> {
        let (cfg, ports, stats, done, stop, n, measuring) =
            (self.cfg, self.ports, d.stats, d.done, d.stop, d.workers, self.measuring);
        let mut window = None;
        // Benchmark window: after the warm-up, snapshot, measure, snapshot, stop.
        if let Some(b) = cfg.bench {
            let snap = || -> (Vec<(u64, u64)>, (u64, u64)) {
                let w = stats
                    .iter()
                    .map(|s| (s.received.load(Ordering::Relaxed), s.received_bytes.load(Ordering::Relaxed)))
                    .collect();
                let p = ports.iter().map(|p| p.stats()).fold((0, 0), |a, s| (a.0 + s.imissed, a.1 + s.rx_nombuf));
                (w, p)
            };
            let wait = |d: Duration| {
                let end = Instant::now() + d;
                while Instant::now() < end && done.load(Ordering::Relaxed) < n && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            };
            wait(b.warmup);
            let (w0, p0) = snap();
            let t0 = Instant::now();
            measuring.store(true, Ordering::Relaxed);
            wait(b.duration);
            measuring.store(false, Ordering::Relaxed);
            let secs = t0.elapsed().as_secs_f64();
            // A window cut short (a worker ended, or SIGINT) measures nothing worth printing.
            let complete =
                t0.elapsed() >= b.duration && done.load(Ordering::Relaxed) == 0 && !stop.load(Ordering::Relaxed);
            let (w1, p1) = snap();
            let per: Vec<(u64, u64)> = w0.iter().zip(&w1).map(|(a, b)| (b.0 - a.0, b.1 - a.1)).collect();
            let flows = stats.iter().map(|s| s.flows_active.load(Ordering::Relaxed)).collect();
            if complete {
                window = Some((secs, per, (p1.0 - p0.0, p1.1 - p0.1), flows));
            }
            stop.store(true, Ordering::Relaxed);
        }
        // Stats reporter: this thread, outside the packet path.
        let mut next_refresh = Instant::now();
        let expected: Option<u64> = cfg.expected_per_worker.as_ref().map(|v| v.iter().sum());
        let mut progress =
            expected.map(|t| crate::progress::Progress::new("replay", t, crate::progress::Unit::Packets));
        while done.load(Ordering::Relaxed) < n {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(p) = progress.as_mut() {
                let got: u64 = stats.iter().map(|s| s.received.load(Ordering::Relaxed)).sum();
                p.update(got, got);
            }
            // The ports' counters and the export queue, for the metrics, once a second.
            if Instant::now() >= next_refresh {
                let mut all = Vec::with_capacity(ports.len());
                for (p, l) in ports.iter().zip(&d.live.ports) {
                    let st = p.stats();
                    l.ipackets.store(st.ipackets, Ordering::Relaxed);
                    l.ibytes.store(st.ibytes, Ordering::Relaxed);
                    l.imissed.store(st.imissed, Ordering::Relaxed);
                    l.ierrors.store(st.ierrors, Ordering::Relaxed);
                    l.rx_nombuf.store(st.rx_nombuf, Ordering::Relaxed);
                    all.push(st);
                }
                // The drivers' per-queue drops, summed over each worker's queues.
                for (w, qs) in stats.iter().zip(&self.worker_queues) {
                    let drops = qs
                        .iter()
                        .map(|&(pi, q)| all.get(pi).and_then(|s| s.q_drops.get(q as usize)).copied().unwrap_or(0));
                    w.queue_drops.store(drops.sum(), Ordering::Relaxed);
                }
                next_refresh += Duration::from_secs(1);
            }
            d.tick();
        }
        if let Some(p) = progress.as_mut() {
            p.finish();
        }
        self.window = window;
        Ok(())
    }

    fn finish(&mut self, cores: &[WorkerCore], outs: Vec<Option<WorkerBench>>) -> Result<Finished, DpdkRunError> {
        self.benches = outs;
        let mut port_summaries = Vec::new();
        for (p, spec) in self.ports.iter().zip(&self.cfg.ports) {
            let st = p.stats();
            if tracing::enabled!(tracing::Level::DEBUG) {
                for (name, v) in p.xstats().into_iter().filter(|(_, v)| *v != 0) {
                    tracing::debug!(port = %spec.name, xstat = %name, value = v);
                }
            }
            port_summaries.push(PortSummary {
                name: spec.name.clone(),
                ipackets: st.ipackets,
                imissed: st.imissed,
                ierrors: st.ierrors,
                rx_nombuf: st.rx_nombuf,
            });
        }
        let end = cores.iter().map(|c| c.now()).max().unwrap_or(0);
        // What the NICs delivered, to check against what the workers processed.
        let input_packets = port_summaries.iter().map(|p| p.ipackets).sum();
        Ok((port_summaries, input_packets, end))
    }
}
