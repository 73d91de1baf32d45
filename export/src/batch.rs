//! Batches from workers to the export thread.

use crate::fanout::{ExportStats, Fanout, SinkDefaults};
use crate::sink::url::SinkSpec;
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use detect::app::{AppEvent, OwnedEvent, Spares};
use detect::flow::{EventMeta, FlowRecord, RecordSink};
use std::collections::VecDeque;
use std::io;
use std::thread::JoinHandle;

/// Export settings (the `[export]` table of the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// Records per batch.
    pub batch_size: usize,
    /// A partly filled batch is sent once it is this old (milliseconds).
    pub batch_max_age_ms: u64,
    /// Batches in flight per worker channel.
    pub channel_capacity: usize,
    /// Full batches a worker keeps while its channel is full, before it drops (at least 1).
    pub max_backlog_batches: usize,
    /// Wait for the exporter instead of dropping when the backlog is full: for replays, where
    /// back-pressure costs nothing and the records must not depend on timing.
    pub blocking: bool,
    /// The sinks' queues and spools.
    pub sinks: SinkDefaults,
    /// Threads formatting records (0: by the worker count, one per four workers, at most
    /// four; see [`ExportConfig::formatters`]).
    pub format_threads: usize,
}

impl ExportConfig {
    /// The formatting threads for `workers` workers.
    pub fn formatters(&self, workers: usize) -> usize {
        if self.format_threads > 0 {
            self.format_threads
        } else {
            (workers / 4).clamp(1, 4)
        }
    }
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            sinks: SinkDefaults::default(),
            batch_size: 256,
            batch_max_age_ms: 100,
            channel_capacity: 64,
            max_backlog_batches: 64,
            blocking: false,
            format_threads: 0,
        }
    }
}

/// What an event in a batch is. (Not boxed: the slots live in batches that are reused, so the
/// size costs no allocation.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum EventBody {
    /// An app-layer event, copied ([`OwnedEvent`]).
    App(OwnedEvent),
    /// A rule matched: the shared rule set and the rule's index (the exporter reads the
    /// rule's fields from there).
    Alert {
        set: std::sync::Arc<detect::rules::RuleSet>,
        rule: u32,
        app_proto: detect::app::AppProto,
        to_server: bool,
        ioc: Option<u32>,
    },
}

/// One event in a batch.
#[derive(Debug)]
pub struct BatchEvent {
    /// Flow records that came before it in the batch: records and events are written in the
    /// order they were emitted.
    pub before: u32,
    pub meta: EventMeta,
    pub body: EventBody,
}

/// A thresholded rule's match on its way to the threshold merger: an alert if the merger says
/// so ([`detect::rules::threshold`]).
#[derive(Debug)]
pub struct Candidate {
    pub order: detect::rules::threshold::Order,
    pub key: detect::rules::threshold::TrackKey,
    pub ev: BatchEvent,
}

/// A batch of records from one worker: flow records and app-layer events.
#[derive(Debug, Default)]
pub struct Batch {
    pub worker: usize,
    pub records: Vec<FlowRecord>,
    pub events: Vec<BatchEvent>,
    /// Finished windows of the worker's behaviour evidence, for the aggregator.
    pub sketches: Vec<detect::rules::sketch::WindowSketch>,
    /// Matches of thresholded rules, for the merger.
    pub candidates: Vec<Candidate>,
    /// The worker's watermark when the batch was sealed: its later candidates are at this
    /// packet time or later (`u64::MAX`: its last batch).
    pub mark: detect::time::Micros,
    spares: Spares,
}

impl Batch {
    fn new(worker: usize, cap: usize) -> Self {
        // Event slots and bodies grow on first use and are kept when the batch is recycled.
        Batch {
            worker,
            records: Vec::with_capacity(cap),
            events: Vec::new(),
            sketches: Vec::new(),
            candidates: Vec::new(),
            mark: 0,
            spares: Spares::default(),
        }
    }

    /// Records and events in it.
    pub fn len(&self) -> usize {
        self.records.len() + self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.sketches.is_empty() && self.candidates.is_empty()
    }

    /// What fills it: records, events and candidates.
    fn fill(&self) -> usize {
        self.len() + self.candidates.len()
    }

    pub fn clear(&mut self) {
        self.records.clear();
        self.sketches.clear();
        self.candidates.clear();
        let sp = &mut self.spares;
        for e in self.events.drain(..) {
            match e.body {
                EventBody::App(o) => sp.give_back(o),
                EventBody::Alert { .. } => {}
            }
        }
    }

    /// Copies an event in, reusing a spare body.
    fn push_event(&mut self, meta: &EventMeta, ev: &AppEvent<'_>) {
        let body = EventBody::App(self.spares.copy(ev));
        self.events.push(BatchEvent { before: self.records.len() as u32, meta: *meta, body });
    }
}

/// Writes one carried event as EVE lines (with its Community ID given a seed); returns the line
/// count.
pub fn write_batch_event(out: &mut Vec<u8>, e: &BatchEvent, community_id: Option<u16>) -> usize {
    let meta = EventMeta { community_seed: community_id, ..e.meta };
    match &e.body {
        EventBody::App(o) => o.view().map_or(0, |ev| ev.write_eve(out, &meta)),
        EventBody::Alert { set, rule, app_proto, to_server, ioc } => {
            let ioc = ioc.and_then(|i| set.iocs.entries.get(i as usize));
            crate::eve::write_alert(out, &meta, &set.rules[*rule as usize], *app_proto, *to_server, ioc);
            1
        }
    }
}

/// A worker's export counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Records handed to the batcher: flow records and app-layer events.
    pub records: u64,
    /// Of those, app-layer events and alerts.
    pub events: u64,
    /// Of those, alerts.
    pub alerts: u64,
    /// Records sent to the exporter.
    pub sent: u64,
    /// Records dropped because the backlog was full.
    pub dropped: u64,
    /// Candidates of thresholded rules handed over, and those lost with a dropped batch.
    pub candidates: u64,
    pub candidates_dropped: u64,
    /// Times the channel was full.
    pub channel_full: u64,
    /// Largest backlog seen, in batches.
    pub backlog_peak: u64,
}

impl BatcherStats {
    /// A batch nothing can take: its records and candidates are dropped.
    fn lost(&mut self, b: &Batch) {
        self.dropped += b.len() as u64;
        self.candidates_dropped += b.candidates.len() as u64;
    }
}

/// The worker side: collects records into preallocated batches and hands them over without
/// ever blocking (except in [`Batcher::finish`], at shutdown).
pub struct Batcher {
    worker: usize,
    tx: Sender<Batch>,
    back: Receiver<Batch>,
    pool: Vec<Batch>,
    cur: Batch,
    cur_since_ms: Option<u64>,
    /// The worker's watermark ([`Batch::mark`]), and the one its last sealed batch carried.
    mark: detect::time::Micros,
    sent_mark: detect::time::Micros,
    backlog: VecDeque<Batch>,
    cfg: ExportConfig,
    blocking: bool,
    pub stats: BatcherStats,
}

impl Batcher {
    /// Whether the current batch has something to send: records, or a watermark that moved
    /// (the threshold merger waits on every worker's).
    fn pending(&self) -> bool {
        !self.cur.is_empty() || self.mark > self.sent_mark
    }

    /// The batch to send: the current one, stamped with the watermark.
    fn take_cur(&mut self, fresh: Batch) -> Batch {
        self.cur.mark = self.mark;
        self.sent_mark = self.mark;
        self.cur_since_ms = None;
        std::mem::replace(&mut self.cur, fresh)
    }

    fn take_empty(&mut self) -> Option<Batch> {
        if let Some(b) = self.pool.pop() {
            return Some(b);
        }
        match self.back.try_recv() {
            Ok(mut b) => {
                b.clear();
                Some(b)
            }
            Err(_) => None,
        }
    }

    /// From now on, wait for the exporter rather than drop (shutdown flush, replays).
    pub fn set_blocking(&mut self, on: bool) {
        self.blocking = on;
    }

    fn send_blocking(&mut self, b: Batch) {
        let n = b.len() as u64;
        match self.tx.send(b) {
            Ok(()) => self.stats.sent += n,
            // The exporter is gone: nothing can take them.
            Err(e) => self.stats.lost(&e.0),
        }
    }

    /// Blocking seal: the backlog, then the current batch, wait their turn.
    fn seal_blocking(&mut self) {
        while let Some(b) = self.backlog.pop_front() {
            self.send_blocking(b);
        }
        let fresh = match self.take_empty() {
            Some(b) => b,
            // Every other batch is on its way back from the exporter.
            None => match self.back.recv() {
                Ok(mut b) => {
                    b.clear();
                    b
                }
                Err(_) => Batch::new(self.worker, self.cfg.batch_size),
            },
        };
        let full = self.take_cur(fresh);
        self.send_blocking(full);
    }

    /// Moves the current batch to the backlog and starts a new one.
    fn seal(&mut self) {
        if !self.pending() {
            return;
        }
        if self.blocking {
            return self.seal_blocking();
        }
        self.pump();
        if self.backlog.len() < self.cfg.max_backlog_batches {
            if let Some(fresh) = self.take_empty() {
                let full = self.take_cur(fresh);
                self.backlog.push_back(full);
                self.stats.backlog_peak = self.stats.backlog_peak.max(self.backlog.len() as u64);
                self.pump();
                return;
            }
        }
        // Backlog full (or, impossibly, no empty batch left): drop this batch's records.
        self.stats.lost(&self.cur);
        self.cur.clear();
        self.cur_since_ms = None;
    }

    /// Sends what the channel takes, oldest first.
    pub fn pump(&mut self) {
        while let Some(b) = self.backlog.pop_front() {
            let n = b.len() as u64;
            match self.tx.try_send(b) {
                Ok(()) => self.stats.sent += n,
                Err(TrySendError::Full(b)) => {
                    self.stats.channel_full += 1;
                    self.backlog.push_front(b);
                    return;
                }
                Err(TrySendError::Disconnected(b)) => {
                    // Exporter gone (its sink failed): count as dropped.
                    self.stats.lost(&b);
                    let mut b = b;
                    b.clear();
                    self.pool.push(b);
                }
            }
        }
    }

    /// Once per burst: sends a batch that is old enough and retries the backlog. `now_ms` is
    /// any monotonic clock in milliseconds.
    pub fn tick(&mut self, now_ms: u64) {
        if self.pending() {
            match self.cur_since_ms {
                None => self.cur_since_ms = Some(now_ms),
                Some(t) if now_ms.saturating_sub(t) >= self.cfg.batch_max_age_ms => self.seal(),
                _ => {}
            }
        }
        if !self.backlog.is_empty() {
            self.pump();
        }
    }

    /// At shutdown: sends everything, waiting for the exporter as long as it takes.
    pub fn finish(mut self) -> BatcherStats {
        // The last batch says the worker is done (even empty: the threshold merger waits for it).
        self.cur.mark = u64::MAX;
        let cur = std::mem::replace(&mut self.cur, Batch { worker: self.worker, ..Batch::default() });
        self.backlog.push_back(cur);
        while let Some(b) = self.backlog.pop_front() {
            let n = b.len() as u64;
            match self.tx.send(b) {
                Ok(()) => self.stats.sent += n,
                Err(e) => self.stats.lost(&e.0),
            }
        }
        self.stats
    }
}

impl RecordSink for Batcher {
    #[inline]
    fn emit(&mut self, rec: &FlowRecord) {
        self.stats.records += 1;
        if self.cur.fill() >= self.cfg.batch_size {
            self.seal();
        }
        self.cur.records.push(*rec);
    }

    #[inline]
    fn emit_event(&mut self, meta: &EventMeta, ev: &AppEvent<'_>) {
        self.stats.records += 1;
        self.stats.events += 1;
        if self.cur.fill() >= self.cfg.batch_size {
            self.seal();
        }
        self.cur.push_event(meta, ev);
    }

    fn emit_sketch(&mut self, s: detect::rules::sketch::WindowSketch) {
        // Once a window per worker: travels with the current batch.
        self.cur.sketches.push(s);
    }

    #[inline]
    fn mark(&mut self, now: detect::time::Micros) {
        self.mark = self.mark.max(now);
    }

    #[inline]
    fn emit_alert(&mut self, meta: &EventMeta, a: &detect::flow::AlertInfo<'_>) {
        if self.cur.fill() >= self.cfg.batch_size {
            self.seal();
        }
        if let Some((key, seq)) = a.tracked {
            // A candidate: not a record until the merger says it alerts.
            self.stats.candidates += 1;
            let order = detect::rules::threshold::Order { ts: meta.timestamp, seq, flow: meta.flow_id };
            let ev = BatchEvent { before: 0, meta: *meta, body: alert_body(a) };
            self.cur.candidates.push(Candidate { order, key, ev });
            return;
        }
        self.stats.records += 1;
        self.stats.events += 1;
        self.stats.alerts += 1;
        let body = alert_body(a);
        let before = self.cur.records.len() as u32;
        self.cur.events.push(BatchEvent { before, meta: *meta, body });
    }
}

fn alert_body(a: &detect::flow::AlertInfo<'_>) -> EventBody {
    EventBody::Alert { set: a.set.clone(), rule: a.rule, app_proto: a.app_proto, to_server: a.to_server, ioc: a.ioc }
}

/// The export thread.
pub struct ExportHandle {
    thread: JoinHandle<ExportStats>,
    /// The workers' channel, to see how many batches wait in it.
    queue: Receiver<Batch>,
    sinks: Vec<(String, std::sync::Arc<crate::sink::SinkCounters>)>,
}

impl ExportHandle {
    /// Batches waiting for the export thread.
    pub fn queued_batches(&self) -> usize {
        self.queue.len()
    }

    /// Each sink's name and live counters (for the periodic stats line).
    pub fn sink_counters(&self) -> &[(String, std::sync::Arc<crate::sink::SinkCounters>)] {
        &self.sinks
    }

    /// Waits for the thread; it ends once every worker's [`Batcher`] is gone. Returns its
    /// counters and the output error that made it lose records, if any.
    pub fn join(self) -> io::Result<(ExportStats, Option<io::Error>)> {
        match self.thread.join() {
            Ok(st) => {
                let err = st.sinks.iter().find_map(|s| s.error.clone()).map(io::Error::other);
                Ok((st, err))
            }
            Err(_) => Err(io::Error::other("export thread panicked")),
        }
    }
}

/// Starts the sinks, the export thread writing to them, and one [`Batcher`] per worker. With
/// no sink the records are counted and not written (benchmarks).
pub fn spawn(sinks: &[SinkSpec], workers: usize, cfg: &ExportConfig) -> io::Result<(ExportHandle, Vec<Batcher>)> {
    let out = Fanout::new(sinks, &cfg.sinks, cfg.blocking)?;
    let formatters = cfg.formatters(workers);
    let counters = out.counters();
    let mut cfg = cfg.clone();
    cfg.max_backlog_batches = cfg.max_backlog_batches.max(1);
    let cfg = &cfg;
    let (tx, rx) = bounded::<Batch>(cfg.channel_capacity.max(1) * workers.max(1));
    let mut batchers = Vec::with_capacity(workers);
    let mut returns = Vec::with_capacity(workers);
    // Every batch a worker can have out at once: its current one, its backlog, its share of the
    // channel and the one the exporter is writing. Allocated here, never again.
    let per_worker = cfg.channel_capacity.max(1) * workers.max(1) + cfg.max_backlog_batches + 2;
    for w in 0..workers {
        let (btx, brx) = bounded::<Batch>(per_worker);
        returns.push(btx);
        let pool = (0..per_worker - 1).map(|_| Batch::new(w, cfg.batch_size)).collect();
        batchers.push(Batcher {
            worker: w,
            tx: tx.clone(),
            back: brx,
            pool,
            cur: Batch::new(w, cfg.batch_size),
            cur_since_ms: None,
            mark: 0,
            sent_mark: 0,
            backlog: VecDeque::with_capacity(cfg.max_backlog_batches + 1),
            cfg: cfg.clone(),
            blocking: cfg.blocking,
            stats: BatcherStats::default(),
        });
    }
    drop(tx);
    let queue = rx.clone();
    let thread = std::thread::Builder::new()
        .name("sw-export".into())
        .spawn(move || crate::fanout::export_loop(out, rx, returns, formatters))?;
    Ok((ExportHandle { thread, queue, sinks: counters }, batchers))
}
