//! The export thread's loop: batches in, each record formatted once per format, chunks out to
//! every sink of that format.

use crate::batch::{write_batch_event, Batch, BatchEvent, EventBody};
use crate::eve;
use crate::sink::url::{Format, SinkSpec};
use crate::sink::{self, cef, syslog, Chunk, QueueOptions, Sink, SinkStats};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use detect::flow::FlowRecord;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Sink settings shared by every sink (the `[export]` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkDefaults {
    /// Bytes each sink holds in memory.
    pub queue_bytes: usize,
    /// Where network sinks spool (a directory per sink); None: no spool.
    pub spool_dir: Option<PathBuf>,
    /// Bytes each sink's spool may hold.
    pub spool_bytes: u64,
    /// Seconds a sink whose peer is down keeps trying at the end of a run.
    pub drain_timeout_secs: u64,
    /// Seconds a spooled record is kept before it is dropped (counted as expired); 0: no limit.
    pub spool_max_age_secs: u64,
    /// With a blocking export (replays), network sinks wait for their peer too instead of
    /// spooling: for benchmarks only (a dead collector would stall the run).
    pub network_blocking: bool,
    /// EVE records carry `community_id` (Community ID v1) with this seed.
    pub community_id: Option<u16>,
}

impl Default for SinkDefaults {
    fn default() -> Self {
        let q = QueueOptions::default();
        SinkDefaults {
            queue_bytes: q.queue_bytes,
            spool_dir: None,
            spool_bytes: q.spool_bytes,
            drain_timeout_secs: q.drain_timeout.as_secs(),
            spool_max_age_secs: 7 * 86_400,
            network_blocking: false,
            community_id: None,
        }
    }
}

/// A spool directory name from a sink name and its collector's identity: `NAME-HASH`, so that
/// a sink of the same name pointed elsewhere (or writing another format) gets a spool of its
/// own and never sends another collector's records.
pub fn dir_name(name: &str, identity: &str) -> String {
    use sha2::Digest;
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    let h = sha2::Sha256::digest(identity.as_bytes());
    let hex: String = h[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{safe}-{hex}")
}

/// Says which spools under `root` hold records for collectors that none of this run's sinks
/// writes to (`ours`: this run's spool directories): they stay, for a run that names their
/// collector again.
fn report_other_spools(root: &std::path::Path, ours: &[PathBuf]) {
    let Ok(rd) = std::fs::read_dir(root) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if !p.is_dir() || ours.contains(&p) {
            continue;
        }
        let segments = std::fs::read_dir(&p)
            .map(|r| r.flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".spool")).count())
            .unwrap_or(0);
        if segments == 0 {
            continue;
        }
        let who = std::fs::read_to_string(p.join(crate::sink::spool::COLLECTOR_FILE))
            .map(|t| format!("the collector {:?}", t.trim_end()))
            .unwrap_or_else(|_| "an unnamed collector (an older spool)".into());
        tracing::warn!(
            "spool {} ({segments} segment files) is for {who}, which no sink of this run writes to: kept, not sent; \
             delete it to discard those records",
            p.display()
        );
    }
}

/// Where a sink spools: none for a local output.
fn spool_dir_of(spec: &SinkSpec, d: &SinkDefaults) -> Option<PathBuf> {
    let root = d.spool_dir.as_ref().filter(|_| !spec.is_local())?;
    Some(root.join(dir_name(&spec.name, &spec.identity)))
}

/// Starts a sink's thread and transport.
fn start(spec: &SinkSpec, d: &SinkDefaults, blocking: bool) -> io::Result<Sink> {
    let t = spec.target.0.open(&spec.name)?;
    let local = spec.is_local();
    let opts = QueueOptions {
        queue_bytes: spec.queue_bytes.unwrap_or(d.queue_bytes),
        spool_dir: spool_dir_of(spec, d),
        identity: spec.identity.clone(),
        spool_bytes: spec.spool_bytes.unwrap_or(d.spool_bytes),
        spool_max_age: (d.spool_max_age_secs > 0).then(|| std::time::Duration::from_secs(d.spool_max_age_secs)),
        blocking: blocking && (local || d.network_blocking),
        drain_timeout: std::time::Duration::from_secs(d.drain_timeout_secs),
    };
    Sink::start(&spec.name, t, opts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eve,
    Syslog { facility: u8, cef: bool },
    Ipfix,
}

/// One format's chunk in the making.
struct Formatter {
    kind: Kind,
    chunk: Chunk,
}

/// An item of a batch, in the order it was emitted.
enum Item<'a> {
    Flow(&'a FlowRecord),
    Event(&'a BatchEvent),
    Finding(&'a detect::rules::sketch::Finding, u64),
}

impl Item<'_> {
    fn msgid(&self) -> &'static str {
        match self {
            Item::Flow(_) => "flow",
            Item::Finding(..) => "alert",
            Item::Event(e) => match e.body {
                EventBody::App(ref o) => o.proto().name().unwrap_or("app"),
                EventBody::Alert { .. } => "alert",
            },
        }
    }
}

/// Formatting: each record once per format, into that format's chunk. The export thread has
/// one; with several formatting threads, each has its own.
pub struct Formats {
    fmts: Vec<Formatter>,
    /// The item's EVE lines (when a format needs them).
    line: Vec<u8>,
    need_eve: bool,
    /// The formatter writing EVE lines, if any.
    eve: Option<usize>,
    /// A syslog formatter carries EVE (copied from the line).
    syslog_eve: bool,
    syslog_ts: Vec<u8>,
    header: Option<syslog::Header>,
    pub lines: u64,
    pub bytes: u64,
    /// The Community ID seed, when EVE records carry one.
    community_id: Option<u16>,
}

/// Every sink, and the formats they need.
pub struct Fanout {
    sinks: Vec<Sink>,
    /// The sinks of each format, by the format's index in [`Formats`].
    sinks_of: Vec<Vec<usize>>,
    f: Formats,
}

/// A chunk is handed to its sinks once it holds this much.
const CHUNK_BYTES: usize = 1 << 20;

impl Fanout {
    pub fn new(specs: &[SinkSpec], d: &SinkDefaults, blocking: bool) -> io::Result<Fanout> {
        let mut sinks = Vec::with_capacity(specs.len());
        let mut kinds: Vec<Kind> = Vec::new();
        let mut sinks_of: Vec<Vec<usize>> = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            sinks.push(start(s, d, blocking)?);
            let kind = match s.format {
                Format::Eve => Kind::Eve,
                Format::Syslog { facility, cef } => Kind::Syslog { facility, cef },
                Format::Ipfix => Kind::Ipfix,
            };
            match kinds.iter().position(|k| *k == kind) {
                Some(k) => sinks_of[k].push(i),
                None => {
                    kinds.push(kind);
                    sinks_of.push(vec![i]);
                }
            }
        }
        if let Some(root) = &d.spool_dir {
            let ours: Vec<PathBuf> = specs.iter().filter_map(|s| spool_dir_of(s, d)).collect();
            report_other_spools(root, &ours);
        }
        Ok(Fanout { sinks, sinks_of, f: Formats::new(kinds, d.community_id) })
    }
}

impl Formats {
    fn new(kinds: Vec<Kind>, community_id: Option<u16>) -> Formats {
        let need_eve = kinds.iter().any(|k| matches!(k, Kind::Eve | Kind::Syslog { cef: false, .. }));
        let eve = kinds.iter().position(|k| *k == Kind::Eve);
        let syslog_eve = kinds.iter().any(|k| matches!(k, Kind::Syslog { cef: false, .. }));
        let header = kinds.iter().any(|k| matches!(k, Kind::Syslog { .. })).then(|| syslog::Header::new(21));
        Formats {
            fmts: kinds.into_iter().map(|kind| Formatter { kind, chunk: Chunk::default() }).collect(),
            line: Vec::with_capacity(1 << 16),
            need_eve,
            eve,
            syslog_eve,
            syslog_ts: Vec::new(),
            header,
            lines: 0,
            bytes: 0,
            community_id,
        }
    }

    /// The same formats, empty (for another formatting thread).
    fn like(&self) -> Formats {
        Formats::new(self.fmts.iter().map(|f| f.kind).collect(), self.community_id)
    }

    /// The syslog timestamp of the next items (the time the exporter took them), if a syslog
    /// format needs one.
    fn now_stamp(&self) -> Option<Vec<u8>> {
        self.header.is_some().then(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            syslog::timestamp(now.as_micros() as u64)
        })
    }

    fn add(&mut self, it: Item<'_>) {
        // EVE: straight into the EVE chunk when there is one (the common case, no copy), else
        // into the scratch line; the syslog-EVE formatters copy from there.
        let mut nlines = 0;
        if self.need_eve {
            self.line.clear();
            let (buf, start) = match self.eve {
                Some(i) => {
                    let d = &mut self.fmts[i].chunk.data;
                    let st = d.len();
                    (d, st)
                }
                None => (&mut self.line, 0),
            };
            nlines = match &it {
                Item::Flow(r) => {
                    eve::write_flow(buf, r, self.community_id);
                    1
                }
                Item::Event(e) => write_batch_event(buf, e, self.community_id),
                Item::Finding(f, ts) => {
                    eve::write_finding(buf, f, *ts);
                    1
                }
            };
            self.lines += nlines as u64;
            self.bytes += (buf.len() - start) as u64;
            if let Some(i) = self.eve {
                let c = &mut self.fmts[i].chunk;
                if nlines > 1 {
                    for e in memchr::memchr_iter(b'\n', &c.data[start..]) {
                        c.ends.push((start + e + 1) as u32);
                    }
                } else if nlines == 1 {
                    c.end_message();
                }
                if nlines > 0 {
                    c.records += 1;
                }
                if self.syslog_eve {
                    self.line.extend_from_slice(&c.data[start..]);
                }
            }
        }
        let msgid = it.msgid();
        for f in &mut self.fmts {
            let c = &mut f.chunk;
            match f.kind {
                Kind::Eve => {}
                Kind::Syslog { facility, cef } => {
                    let h = self.header.as_mut().expect("made when a syslog sink is");
                    h.facility = facility;
                    let sev = if msgid == "alert" { syslog::SEV_WARNING } else { syslog::SEV_INFO };
                    if cef {
                        let start = c.data.len();
                        h.write(&mut c.data, sev, msgid, &self.syslog_ts);
                        let body = c.data.len();
                        write_cef(&mut c.data, &it);
                        if c.data.len() == body {
                            c.data.truncate(start);
                            continue;
                        }
                        cef::finish_line(&mut c.data, body);
                        c.end_message();
                    } else {
                        if nlines == 0 {
                            continue;
                        }
                        for l in self.line.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                            h.write(&mut c.data, sev, msgid, &self.syslog_ts);
                            c.data.extend_from_slice(l);
                            c.end_message();
                        }
                    }
                    c.records += 1;
                }
                Kind::Ipfix => {
                    if let Item::Flow(r) = &it {
                        sink::ipfix::encode(c, r);
                        c.records += 1;
                    }
                }
            }
        }
    }

    fn full(&self) -> bool {
        self.fmts.iter().any(|f| f.chunk.data.len() >= CHUNK_BYTES)
    }

    /// Each format's chunk, taken; the formats start new ones the size of the last (a batch's
    /// chunks are about the same size: one allocation each, no growing).
    fn take(&mut self) -> Vec<Chunk> {
        self.fmts
            .iter_mut()
            .map(|f| {
                let next = Chunk {
                    data: Vec::with_capacity(f.chunk.data.len() + (f.chunk.data.len() >> 2)),
                    ends: Vec::with_capacity(f.chunk.ends.len() + (f.chunk.ends.len() >> 2)),
                    records: 0,
                };
                std::mem::replace(&mut f.chunk, next)
            })
            .collect()
    }
}

impl Fanout {
    /// Each sink's name and live counters.
    pub fn counters(&self) -> Vec<(String, Arc<sink::SinkCounters>)> {
        self.sinks.iter().map(|s| (s.name().to_string(), s.counters())).collect()
    }

    fn full(&self) -> bool {
        self.f.full()
    }

    /// A formatting thread's chunks (one batch's), to the sinks in order: appended to the
    /// chunks in the making when those are small, else handed over as they are (no copy).
    fn absorb(&mut self, chunks: Vec<Chunk>) {
        for ((f, sinks), c) in self.f.fmts.iter_mut().zip(&self.sinks_of).zip(chunks) {
            if c.is_empty() {
                continue;
            }
            if f.chunk.data.len() + c.data.len() < (64 << 10) {
                f.chunk.append(&c);
                continue;
            }
            if !f.chunk.is_empty() {
                let held = Arc::new(std::mem::take(&mut f.chunk));
                for &i in sinks {
                    self.sinks[i].push(held.clone());
                }
            }
            let c = Arc::new(c);
            for &i in sinks {
                self.sinks[i].push(c.clone());
            }
        }
    }

    /// Hands every chunk to its sinks.
    fn flush(&mut self) {
        for (f, sinks) in self.f.fmts.iter_mut().zip(&self.sinks_of) {
            if f.chunk.is_empty() {
                continue;
            }
            // Under load the next chunk starts at its full size (growing one by doubling copies
            // it); at a trickle it starts small, and a chunk queued with room to spare gives it
            // back, since a sink whose peer is down holds its chunks for a while.
            let busy = f.chunk.data.len() >= CHUNK_BYTES / 2;
            let next = Chunk {
                data: Vec::with_capacity(if busy { CHUNK_BYTES + (64 << 10) } else { 64 << 10 }),
                ends: Vec::with_capacity(if busy { f.chunk.ends.capacity() } else { 256 }),
                records: 0,
            };
            let mut full = std::mem::replace(&mut f.chunk, next);
            if full.data.capacity() > 2 * full.data.len() + (64 << 10) {
                full.data.shrink_to_fit();
                full.ends.shrink_to_fit();
            }
            let c = Arc::new(full);
            for &i in sinks {
                self.sinks[i].push(c.clone());
            }
        }
    }

    /// Ends every sink (each sends what it holds, or spools it) and returns their counters.
    pub fn finish(mut self) -> Vec<SinkStats> {
        self.flush();
        // In parallel: each sink may wait for its peer up to the drain timeout.
        let handles: Vec<_> = self.sinks.drain(..).map(|s| std::thread::spawn(move || s.finish())).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    }
}

/// Appends the CEF body of an item, or nothing for what CEF does not carry.
fn write_cef(out: &mut Vec<u8>, it: &Item<'_>) {
    match it {
        Item::Flow(r) => cef::write_flow(out, r),
        Item::Finding(f, ts) => cef::write_finding(out, f, *ts),
        Item::Event(e) => match &e.body {
            EventBody::App(o) => {
                if let Some(ev) = o.view() {
                    ev.write_cef(out, &e.meta);
                }
            }
            EventBody::Alert { set, rule, app_proto, ioc, .. } => {
                let ioc = ioc.and_then(|i| set.iocs.entries.get(i as usize));
                cef::write_alert(out, &e.meta, &set.rules[*rule as usize], *app_proto, ioc);
            }
        },
    }
}

/// Waits for the next batch by polling with a short sleep rather than parking: a parked
/// exporter makes every worker's send a futex wake (a system call on the packet path). The sleep
/// grows from 50 µs to 2 ms while nothing comes, so an idle exporter costs little and a busy one
/// is never more than a batch behind. None once every worker has hung up and the channel is empty.
fn next_batch(rx: &Receiver<Batch>) -> Option<Batch> {
    let mut nap = std::time::Duration::from_micros(50);
    loop {
        match rx.try_recv() {
            Ok(b) => return Some(b),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(std::time::Duration::from_millis(2));
            }
        }
    }
}

/// What the export thread did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Records (flow records, app-layer events, alerts) formatted and handed to the sinks.
    pub records: u64,
    /// EVE lines formatted (a DNS query with several questions is one event, several lines).
    pub lines: u64,
    /// Records some sink could not write after a fatal error (the sum over sinks).
    pub lost: u64,
    pub batches: u64,
    /// EVE bytes formatted.
    pub bytes: u64,
    /// Alerts of the behaviours judged on every worker's merged evidence (written by this
    /// thread, not counted in `records`).
    pub spanning_alerts: u64,
    /// Behaviour evidence keys lost to full sketch maps.
    pub sketch_keys_dropped: u64,
    /// Behaviour windows judged before every worker had handed its part over (a worker more
    /// than [`detect::rules::sketch::MAX_PENDING_WINDOWS`] windows behind), and parts that came
    /// after their window was judged.
    pub sketch_windows_early: u64,
    pub sketch_late: u64,
    /// The thresholded rules' candidates, decided here across workers (their alerts are
    /// written by this thread, not counted in `records`).
    pub thresholds: crate::thresholds::ThresholdStats,
    /// CPU time of the export thread (nanoseconds; each sink's is in its stats).
    pub cpu_ns: u64,
    pub sinks: Vec<SinkStats>,
}

/// The export: one thread formatting everything (`format_threads` ≤ 1), or the parallel
/// stages of [`export_parallel`].
pub(crate) fn export_loop(
    out: Fanout,
    rx: Receiver<Batch>,
    returns: Vec<Sender<Batch>>,
    format_threads: usize,
) -> ExportStats {
    if format_threads > 1 {
        return export_parallel(out, rx, returns, format_threads);
    }
    export_serial(out, rx, returns)
}

fn export_serial(mut out: Fanout, rx: Receiver<Batch>, returns: Vec<Sender<Batch>>) -> ExportStats {
    let mut intake = Intake::new(returns.len());
    while let Some(mut batch) = next_batch(&rx) {
        let stamp = out.f.now_stamp();
        loop {
            let mut u = intake.unit(0, batch, stamp.clone());
            format_unit(&mut out.f, &mut u);
            if let Some(b) = u.batch.take() {
                give_back(&returns, b);
            }
            intake.spare = u.admit;
            if out.full() {
                break;
            }
            match rx.try_recv() {
                Ok(b) => batch = b,
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        out.flush();
    }
    let mut u = intake.last(0, out.f.now_stamp());
    format_unit(&mut out.f, &mut u);
    let mut stats = intake.stats;
    stats.lines = out.f.lines;
    stats.bytes = out.f.bytes;
    stats.cpu_ns = sink::thread_cpu_ns();
    stats.sinks = out.finish();
    stats.lost = stats.sinks.iter().map(|s| s.lost).sum();
    stats
}

/// Hands an emptied batch back to its worker.
fn give_back(returns: &[Sender<Batch>], mut b: Batch) {
    b.clear();
    if let Some(ret) = returns.get(b.worker) {
        let _ = ret.try_send(b);
    }
}

/// What the export decides across workers, batch by batch, before anything is formatted: the
/// threshold merger (which flow records go out now, which alerts it releases) and the behaviour
/// aggregator (the behaviours judged over every worker's evidence).
struct Intake {
    workers: usize,
    thr: crate::thresholds::ThresholdStage,
    agg: Option<detect::rules::sketch::Aggregator>,
    /// An `admit` buffer to reuse.
    spare: Vec<bool>,
    stats: ExportStats,
}

impl Intake {
    fn new(workers: usize) -> Intake {
        let workers = workers.max(1);
        let thr = crate::thresholds::ThresholdStage::new(workers);
        Intake { workers, thr, agg: None, spare: Vec::new(), stats: ExportStats::default() }
    }

    /// One batch's unit (number `seq`).
    fn unit(&mut self, seq: u64, mut batch: Batch, stamp: Option<Vec<u8>>) -> Unit {
        self.thr.take(&mut batch);
        let mut admit = std::mem::take(&mut self.spare);
        admit.clear();
        admit.extend(batch.records.iter_mut().map(|r| self.thr.admit(r)));
        let mut released = Vec::new();
        self.thr.release(false, &mut |x| released.push(x));
        let mut findings = Vec::new();
        for sk in batch.sketches.drain(..) {
            let workers = self.workers;
            let a = self.agg.get_or_insert_with(|| detect::rules::sketch::Aggregator::new(sk.cfg, workers));
            for f in a.add(batch.worker, sk) {
                let end = a.window_end(f.window);
                findings.push((f, end));
                self.stats.spanning_alerts += 1;
            }
        }
        self.stats.records += batch.len() as u64;
        self.stats.batches += 1;
        Unit { seq, batch: Some(batch), admit, released, findings, stamp }
    }

    /// The last unit: the candidates and windows no worker can add to now (the end of the
    /// input).
    fn last(&mut self, seq: u64, stamp: Option<Vec<u8>>) -> Unit {
        let mut released = Vec::new();
        self.thr.release(true, &mut |x| released.push(x));
        self.stats.thresholds = self.thr.stats;
        let mut findings = Vec::new();
        if let Some(a) = self.agg.as_mut() {
            for f in a.finish() {
                let end = a.window_end(f.window);
                findings.push((f, end));
                self.stats.spanning_alerts += 1;
            }
            self.stats.sketch_keys_dropped = a.dropped;
            self.stats.sketch_windows_early = a.judged_early;
            self.stats.sketch_late = a.late;
        }
        Unit { seq, batch: None, admit: Vec::new(), released, findings, stamp }
    }
}

/// One batch's work for a formatting thread, in the order the serial exporter writes it: the
/// batch's records and events (flow records only where `admit` says), then what the threshold
/// merger released, then the behaviours judged.
struct Unit {
    seq: u64,
    batch: Option<Batch>,
    admit: Vec<bool>,
    released: Vec<crate::thresholds::Released>,
    findings: Vec<(detect::rules::sketch::Finding, u64)>,
    stamp: Option<Vec<u8>>,
}

/// What a formatting thread did.
struct FormatStats {
    lines: u64,
    bytes: u64,
    cpu_ns: u64,
}

/// Formats `u` into `fm`'s chunks.
fn format_unit(fm: &mut Formats, u: &mut Unit) {
    if let Some(ts) = u.stamp.take() {
        fm.syslog_ts = ts;
    }
    if let Some(batch) = &u.batch {
        let mut ev = batch.events.iter().peekable();
        for (i, r) in batch.records.iter().enumerate() {
            while let Some(e) = ev.next_if(|e| e.before as usize <= i) {
                fm.add(Item::Event(e));
            }
            if u.admit[i] {
                fm.add(Item::Flow(r));
            }
        }
        for e in ev {
            fm.add(Item::Event(e));
        }
    }
    for x in &u.released {
        match x {
            crate::thresholds::Released::Alert(e) => fm.add(Item::Event(e)),
            crate::thresholds::Released::Flow(r) => fm.add(Item::Flow(r)),
        }
    }
    for (f, ts) in &u.findings {
        fm.add(Item::Finding(f, *ts));
    }
}

/// The export in three stages, for many workers: this thread takes the batches in and makes the
/// cross-worker decisions (thresholds, behaviours), `threads` formatting threads format whole
/// batches in turn, and a writer thread appends their chunks in the batches' order and hands
/// them to the sinks. The records, their order and the accounting are the serial exporter's.
fn export_parallel(out: Fanout, rx: Receiver<Batch>, returns: Vec<Sender<Batch>>, threads: usize) -> ExportStats {
    let mut intake = Intake::new(returns.len());
    let proto = out.f.like();
    let (ctx, crx) = crossbeam_channel::bounded::<(u64, Vec<Chunk>)>(4 * threads);
    // The writer: chunks in sequence order, to the sinks.
    let writer = std::thread::Builder::new()
        .name("sw-export-write".into())
        .spawn(move || {
            let mut out = out;
            let mut next = 0u64;
            let mut held: std::collections::BTreeMap<u64, Vec<Chunk>> = std::collections::BTreeMap::new();
            loop {
                let (seq, chunks) = match crx.try_recv() {
                    Ok(x) => x,
                    Err(TryRecvError::Empty) => {
                        out.flush();
                        match crx.recv() {
                            Ok(x) => x,
                            Err(_) => break,
                        }
                    }
                    Err(TryRecvError::Disconnected) => break,
                };
                held.insert(seq, chunks);
                while let Some(c) = held.remove(&next) {
                    out.absorb(c);
                    next += 1;
                }
            }
            let cpu = sink::thread_cpu_ns();
            (out.finish(), cpu)
        })
        .expect("spawn the export writer");
    let mut inputs = Vec::with_capacity(threads);
    let mut formatters = Vec::with_capacity(threads);
    for t in 0..threads {
        let (utx, urx) = crossbeam_channel::bounded::<Unit>(2);
        inputs.push(utx);
        let (mut fm, ctx, returns) = (proto.like(), ctx.clone(), returns.clone());
        formatters.push(
            std::thread::Builder::new()
                .name(format!("sw-export-fmt-{t}"))
                .spawn(move || {
                    while let Ok(mut u) = urx.recv() {
                        format_unit(&mut fm, &mut u);
                        if let Some(b) = u.batch.take() {
                            give_back(&returns, b);
                        }
                        if ctx.send((u.seq, fm.take())).is_err() {
                            break;
                        }
                    }
                    FormatStats { lines: fm.lines, bytes: fm.bytes, cpu_ns: sink::thread_cpu_ns() }
                })
                .expect("spawn an export formatter"),
        );
    }
    drop(ctx);
    let mut seq = 0u64;
    let send = |u: Unit| {
        let _ = inputs[(u.seq % threads as u64) as usize].send(u);
    };
    while let Some(mut batch) = next_batch(&rx) {
        let stamp = proto.now_stamp();
        loop {
            send(intake.unit(seq, batch, stamp.clone()));
            seq += 1;
            match rx.try_recv() {
                Ok(b) => batch = b,
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
    }
    send(intake.last(seq, proto.now_stamp()));
    let mut stats = intake.stats;
    drop(inputs);
    stats.cpu_ns = sink::thread_cpu_ns();
    for f in formatters {
        let f = f.join().expect("export formatter panicked");
        stats.lines += f.lines;
        stats.bytes += f.bytes;
        stats.cpu_ns += f.cpu_ns;
    }
    let (sinks, cpu) = writer.join().expect("export writer panicked");
    stats.cpu_ns += cpu;
    stats.sinks = sinks;
    stats.lost = stats.sinks.iter().map(|s| s.lost).sum();
    stats
}
