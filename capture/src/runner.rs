//! The one runner every packet source goes through: it starts the export and the triggered
//! capture, the shared counters, the live metrics and the stats file, one pinned thread per
//! worker with its [`WorkerCore`] (and its hand-off shard), and at the end joins them and
//! assembles the [`RunSummary`]. What differs between sources (how a worker gets its packets,
//! what the runner's own thread does meanwhile, the ports' counters) is the [`Source`] trait: a
//! new source is one implementation of it.

use crate::counters::{shared_stats, PortSummary, RunSummary, SharedStats};
use crate::metrics::Live;
use crate::worker::WorkerCore;
use detect::time::Micros;
use detect::FlowConfig;
use export::ExportConfig;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the runner does the same for every source.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub flow: FlowConfig,
    pub export: ExportConfig,
    /// Triggered packet capture (None: off).
    pub alert_capture: Option<crate::alertpcap::AlertCaptureConfig>,
    /// How often the stats line is written (None: never).
    pub stats_interval: Option<Duration>,
    /// Where the Prometheus endpoint listens (None: no endpoint).
    pub metrics: Option<String>,
    /// A file the periodic stats are appended to as JSON lines.
    pub stats_file: Option<std::path::PathBuf>,
    /// `--bpf`: only the packets this libpcap filter takes.
    pub bpf: Option<String>,
}

impl Common {
    /// The settings of a live source (the same keys in every source's config).
    pub fn live(
        flow: &FlowConfig,
        export: &ExportConfig,
        alert_capture: &Option<crate::alertpcap::AlertCaptureConfig>,
        stats: (Option<Duration>, &Option<String>, &Option<std::path::PathBuf>),
        bpf: &Option<String>,
    ) -> Common {
        Common {
            bpf: bpf.clone(),
            flow: flow.clone(),
            export: export.clone(),
            alert_capture: alert_capture.clone(),
            stats_interval: stats.0,
            metrics: stats.1.clone(),
            stats_file: stats.2.clone(),
        }
    }
}

/// Errors of the runner's own part.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("export: {0}")]
    Export(std::io::Error),
    #[error("thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Filter(String),
}

/// One worker's input, as a source opened it.
pub struct WorkerInput<I> {
    /// The core to pin the worker to (None: not pinned).
    pub core: Option<usize>,
    /// The queues it takes packets from (`PORT:QUEUE`, an interface), for the stats and the
    /// metrics; none for a file.
    pub queues: Vec<String>,
    pub input: I,
}

/// What a worker's loop sees besides its input.
pub struct WorkerCtx<'a> {
    pub id: usize,
    pub stop: &'a AtomicBool,
    /// When the run started (batch ageing runs on milliseconds since).
    pub started: Instant,
}

/// What the runner's thread sees while the workers run.
pub struct Drive<'a> {
    pub stop: &'a AtomicBool,
    /// Workers whose loop has ended.
    pub done: &'a AtomicUsize,
    pub workers: usize,
    pub stats: &'a SharedStats,
    pub live: &'a Live,
    pub export: &'a export::ExportHandle,
    report: &'a mut dyn FnMut(),
    next_report: Instant,
    interval: Option<Duration>,
}

impl Drive<'_> {
    /// Writes the stats line when it is due (and the export queue's gauge); call it often.
    pub fn tick(&mut self) {
        self.live.export_queue.store(self.export.queued_batches() as u64, Ordering::Relaxed);
        if let Some(i) = self.interval {
            if Instant::now() >= self.next_report {
                (self.report)();
                self.next_report += i;
            }
        }
    }

    /// Ticks every `nap` until `until` says the run is over.
    pub fn wait(&mut self, nap: Duration, mut until: impl FnMut(&Self) -> bool) {
        while !until(self) {
            std::thread::sleep(nap);
            self.tick();
        }
    }
}

/// What a source reports at the end: its ports' summaries, the input packet count and the time
/// the remaining flows end at.
pub type Finished = (Vec<PortSummary>, u64, Micros);

/// A packet source: pcap files, AF_PACKET rings, DPDK ports.
pub trait Source {
    /// A worker's input, moved onto its thread (its queues, its rings, its channel).
    type Input: Send;
    /// What a worker's loop hands back besides its core.
    type WorkerOut: Send;
    type Error: From<RunError>;
    /// The summary's name of the source.
    const NAME: &'static str;

    /// The ports' or interfaces' live counters (none for files), which the source updates and
    /// the metrics read. Called once, after [`Source::open`].
    fn live_ports(&self) -> Vec<Arc<crate::metrics::PortLive>> {
        Vec::new()
    }
    /// Every worker's input (before anything starts, so a bad input fails the run first).
    fn open(&mut self) -> Result<Vec<WorkerInput<Self::Input>>, Self::Error>;
    /// The hand-off shards between workers (defragmentation), one per worker, if any.
    fn shards(&self, _workers: usize) -> Vec<detect::shard::Shard> {
        Vec::new()
    }
    /// A worker's loop, on its (pinned) thread, until its input ends or `ctx.stop`.
    fn work(input: Self::Input, core: &mut WorkerCore, ctx: &WorkerCtx<'_>) -> Self::WorkerOut;
    /// The runner's thread while the workers run: the file source reads and dispatches; live
    /// sources refresh their ports' counters and call [`Drive::tick`]. Returns when the run is
    /// over for the runner (the workers are joined after).
    fn drive(&mut self, d: &mut Drive<'_>) -> Result<(), Self::Error>;
    /// After the workers ended: the ports' summaries, the input packet count and the time the
    /// remaining flows end at.
    fn finish(&mut self, cores: &[WorkerCore], outs: Vec<Self::WorkerOut>) -> Result<Finished, Self::Error>;
    /// What the input said about itself (captures cut short...), for the summary.
    fn input_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Runs `src` to the end: see the module.
pub fn run<S: Source>(
    src: &mut S,
    common: &Common,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, S::Error> {
    let inputs = src.open()?;
    let n = inputs.len().max(1);
    // One compiled filter per worker; a bad expression fails before anything starts.
    let mut filters = Vec::new();
    if let Some(expr) = &common.bpf {
        for _ in 0..n {
            filters.push(crate::bpf::Filter::compile(expr).map_err(RunError::Filter)?);
        }
    }
    let mut filters = filters.into_iter();
    let (export, batchers) = export::spawn(&out, n, &common.export).map_err(RunError::Export)?;
    let (capture_writer, mut captures) =
        crate::alertpcap::start_if(common.alert_capture.as_ref(), n).map_err(RunError::Export)?;
    let stats = shared_stats(n);
    let mut live = Live::new(stats.clone(), common.flow.capacity as u64);
    live.worker_info = inputs.iter().map(|wi| (wi.core, wi.queues.clone())).collect();
    live.sinks = export.sink_counters().to_vec();
    live.ports = src.live_ports();
    let live = Arc::new(live);
    let mut stats_file = crate::metrics::open_stats_file(common.stats_file.as_deref()).map_err(RunError::Export)?;
    let _metrics = crate::metrics::serve_if(common.metrics.as_deref(), &live);
    let mut shards = src.shards(n).into_iter();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<(WorkerCore, S::WorkerOut)> = std::thread::scope(|s| -> Result<_, S::Error> {
        let mut handles = Vec::with_capacity(n);
        for (i, (wi, batcher)) in inputs.into_iter().zip(batchers).enumerate() {
            let mut core = WorkerCore::new(i, common.flow.clone(), batcher, stats.clone());
            if let Some(c) = captures[i].take() {
                core.set_alert_capture(c);
            }
            if let Some(sh) = shards.next() {
                core.set_shard(sh);
            }
            if let Some(f) = filters.next() {
                core.set_filter(f);
            }
            let (stop, done) = (&*stop, &done);
            let h = std::thread::Builder::new()
                .name(format!("sw-worker-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(c) = wi.core {
                        if crate::pin::pin_current(c) {
                            core.core = Some(c);
                        } else {
                            tracing::warn!(worker = i, core = c, "could not pin worker to core");
                        }
                    }
                    // Whatever happens to this thread, the runner learns it ended.
                    struct Done<'a>(&'a AtomicUsize);
                    impl Drop for Done<'_> {
                        fn drop(&mut self) {
                            self.0.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let _done = Done(done);
                    let out = S::work(wi.input, &mut core, &WorkerCtx { id: i, stop, started });
                    (core, out)
                })
                .map_err(RunError::Thread)?;
            handles.push(h);
        }
        // The stats file is reopened with the other output files (SIGHUP, after logrotate).
        let mut stats_opened_at = export::sink::file::reopen_requests();
        let mut report = || {
            let asked = export::sink::file::reopen_requests();
            if asked != stats_opened_at && stats_file.is_some() {
                stats_opened_at = asked;
                match crate::metrics::open_stats_file(common.stats_file.as_deref()) {
                    Ok(f) => stats_file = f,
                    Err(e) => tracing::error!("reopening: {e}"),
                }
            }
            crate::metrics::report(&live, stats_file.as_mut())
        };
        let mut d = Drive {
            stop: &stop,
            done: &done,
            workers: n,
            stats: &stats,
            live: &live,
            export: &export,
            report: &mut report,
            next_report: Instant::now() + common.stats_interval.unwrap_or(Duration::from_secs(3600)),
            interval: common.stats_interval,
        };
        let driven = src.drive(&mut d);
        if driven.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let joined: Vec<_> = handles.into_iter().map(|h| h.join().expect("worker thread panicked")).collect();
        driven.map(|()| joined)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let (cores, outs): (Vec<WorkerCore>, Vec<S::WorkerOut>) = results.into_iter().unzip();
    let finished = src.finish(&cores, outs);
    let end = finished.as_ref().map_or_else(|_| cores.iter().map(|c| c.now()).max().unwrap_or(0), |f| f.2);
    let workers = cores.into_iter().map(|c| c.finish(end)).collect();
    let alert_capture = capture_writer.map(|w| w.finish());
    let (exporter, export_error) = export.join().map_err(RunError::Export)?;
    let (ports, input_packets, _) = finished?;
    Ok(RunSummary {
        source: S::NAME.into(),
        workers,
        ports,
        exporter,
        export_error: export_error.map(|e| e.to_string()),
        elapsed_secs: elapsed,
        input_packets,
        alert_capture,
        interrupted: None,
        input_notes: src.input_notes(),
    })
}
