//! Sinks: where the export thread's records go, any number at once.
//!
//! The export thread formats each batch once per format (EVE lines, syslog messages, IPFIX
//! data records) into [`Chunk`]s and hands every sink its chunk. Each sink has its own queue
//! (bounded in bytes) and its own thread, which owns the [`Transport`] (a file, a socket):
//! a slow or dead peer holds up its own thread only. When a sink's queue is full, or while its
//! spool holds anything, chunks go to its on-disk [`spool`] (bounded; past it the oldest
//! segment is dropped, counted), and the sink thread sends the queue first and then the spool,
//! oldest first, so the peer sees records in order. Network transports reconnect with a
//! backoff from 100 ms to 30 s.
//!
//! Every record a sink takes ends in exactly one of its counters: sent, dropped (spool full,
//! or no spool), left in the spool at exit (replayed by the next run), or lost (the sink
//! failed for good: the output of a replay, which waits for it rather than dropping, was down
//! for longer than the drain timeout). [`SinkStats::balanced`] checks it. A live sink retries
//! for as long as the run goes on.

pub mod cef;
pub mod file;
pub mod ipfix;
pub mod net;
pub mod redis;
pub mod relp;
pub mod spool;
pub mod syslog;
pub mod url;

/// The sinks, one entry each: every scheme a sink file declares (its options and its URL
/// parser; the target it makes opens the transport). A sink is its file and its entry here.
pub const SINKS: &[&[url::Scheme]] = &[file::SCHEMES, syslog::SCHEMES, ipfix::SCHEMES, redis::SCHEMES];

use spool::{Peek, Spool, SpoolPos};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A run of formatted messages for one sink format.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub data: Vec<u8>,
    /// Where each message ends in `data`.
    pub ends: Vec<u32>,
    /// Records (flow records, app-layer events, alerts) the messages carry.
    pub records: u32,
}

impl Chunk {
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Closes the message written since the last one.
    pub fn end_message(&mut self) {
        self.ends.push(self.data.len() as u32);
    }

    pub fn messages(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&e| {
            let m = &self.data[start..e as usize];
            start = e as usize;
            m
        })
    }

    /// Appends `o`'s messages.
    pub fn append(&mut self, o: &Chunk) {
        let base = self.data.len() as u32;
        self.data.extend_from_slice(&o.data);
        self.ends.extend(o.ends.iter().map(|e| e + base));
        self.records += o.records;
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.records = 0;
    }
}

/// What a sink writes to: opened by its thread, written a chunk at a time.
pub trait Transport: Send {
    /// Opens the file or connection; called before the first chunk and after a failure.
    fn connect(&mut self) -> io::Result<()>;
    /// Writes every message of a chunk. After an error the connection is dropped and the same
    /// chunk is sent again once [`Transport::connect`] succeeds.
    fn send(&mut self, c: &Chunk) -> io::Result<()>;
    /// Called about every 100 ms while connected and idle, and after each chunk: rotation by
    /// time, template refresh, flushing.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Drops the connection (after an error).
    fn disconnect(&mut self) {}
    /// The end of the run: flush and close.
    fn finish(&mut self) -> io::Result<()> {
        self.disconnect();
        Ok(())
    }
}

/// A sink's counters, live (read by the stats line while the run goes on).
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub records: AtomicU64,
    pub sent: AtomicU64,
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub dropped: AtomicU64,
    pub expired: AtomicU64,
    pub lost: AtomicU64,
    pub errors: AtomicU64,
    pub bytes: AtomicU64,
    pub left: AtomicU64,
    pub recovered: AtomicU64,
    /// CPU time of the sink's thread, set when it ends.
    pub cpu_ns: AtomicU64,
    /// Bytes queued in memory now, and held in the spool now.
    pub queued_bytes: AtomicU64,
    pub spool_bytes: AtomicU64,
}

/// A sink's counters at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// Records the sink took (of the kinds its format carries).
    pub records: u64,
    /// Records the peer took (queue and spool).
    pub sent: u64,
    /// Records written to the spool, and read back from it and sent.
    pub spooled: u64,
    pub replayed: u64,
    /// Records dropped: the spool full (oldest first), the queue full with no spool, or spooled
    /// longer than the spool's maximum age.
    pub dropped: u64,
    /// Of those, spooled longer than the maximum age.
    pub expired: u64,
    /// Records the sink could not write after a fatal error.
    pub lost: u64,
    /// Send and connect errors.
    pub errors: u64,
    /// Message bytes the peer took.
    pub bytes: u64,
    /// Records left in the spool at exit (the next run sends them first), and records an
    /// earlier run left that this one found.
    pub left: u64,
    pub recovered: u64,
    /// CPU time of the sink's thread (nanoseconds).
    pub cpu_ns: u64,
    /// The error that made the sink fail for good.
    pub error: Option<String>,
}

impl SinkStats {
    /// Every record taken (and every record found in the spool) is sent, dropped, lost or
    /// left in the spool.
    pub fn balanced(&self) -> bool {
        self.records + self.recovered == self.sent + self.dropped + self.lost + self.left
    }
}

/// Options of a sink's queue and spool.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Bytes of chunks held in memory.
    pub queue_bytes: usize,
    /// Spool directory (created when first needed); None: no spool, the oldest chunk in
    /// memory is dropped when the queue is full.
    pub spool_dir: Option<PathBuf>,
    /// The collector the spool's records are for (its directory holds no other's).
    pub identity: String,
    pub spool_bytes: u64,
    /// Spooled records older than this are dropped (counted as expired); None: no limit.
    pub spool_max_age: Option<Duration>,
    /// Wait for room instead of spooling or dropping (replays of local files: the records must
    /// not depend on timing).
    pub blocking: bool,
    /// At the end of the run, how long a sink whose peer is down keeps trying before it
    /// leaves the rest in its spool.
    pub drain_timeout: Duration,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            queue_bytes: 64 << 20,
            spool_dir: None,
            identity: String::new(),
            spool_bytes: 1 << 30,
            spool_max_age: None,
            blocking: false,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

struct State {
    mem: VecDeque<(u64, Arc<Chunk>)>,
    mem_bytes: usize,
    next_seq: u64,
    spool: Option<Spool>,
    /// The spool could not be opened: no spool from then on.
    spool_failed: bool,
    closed: bool,
    /// The sink failed for good, and why.
    failed: bool,
    error: Option<String>,
}

struct Shared {
    name: String,
    opts: QueueOptions,
    st: Mutex<State>,
    /// New work for the sink thread.
    work: Condvar,
    /// Room in the queue (blocking pushes).
    room: Condvar,
    c: Arc<SinkCounters>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the queue's and the spool's sizes.
    fn gauges(&self, st: &State) {
        self.c.queued_bytes.store(st.mem_bytes as u64, Relaxed);
        self.c.spool_bytes.store(st.spool.as_ref().map_or(0, |s| s.bytes()), Relaxed);
    }

    /// The spool, opened on first need.
    fn spool<'a>(&self, st: &'a mut State) -> Option<&'a mut Spool> {
        if st.spool.is_none() && !st.spool_failed {
            let dir = self.opts.spool_dir.as_ref()?;
            match Spool::open(dir, &self.opts.identity, self.opts.spool_bytes, self.opts.spool_max_age) {
                Ok((s, held)) => {
                    self.c.recovered.fetch_add(held, Relaxed);
                    st.spool = Some(s);
                }
                Err(e) => {
                    tracing::error!(sink = %self.name, "cannot open spool {}: {e}; no spool", dir.display());
                    st.spool_failed = true;
                }
            }
        }
        st.spool.as_mut()
    }
}

/// The export thread's handle on a sink.
pub struct Sink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What the sink thread does next.
enum Next {
    Mem(u64, Arc<Chunk>),
    Spooled(SpoolPos, Arc<Chunk>),
    Idle,
    Done,
}

impl Sink {
    /// Starts a sink's thread on `transport`. A spool an earlier run left is opened at once,
    /// so its records go first.
    pub fn start(name: &str, transport: Box<dyn Transport>, opts: QueueOptions) -> io::Result<Sink> {
        let shared = Arc::new(Shared {
            name: name.to_string(),
            st: Mutex::new(State {
                mem: VecDeque::new(),
                mem_bytes: 0,
                next_seq: 0,
                spool: None,
                spool_failed: false,
                closed: false,
                failed: false,
                error: None,
            }),
            opts,
            work: Condvar::new(),
            room: Condvar::new(),
            c: Arc::new(SinkCounters::default()),
        });
        if shared.opts.spool_dir.as_ref().is_some_and(|d| d.exists()) {
            let mut st = shared.lock();
            shared.spool(&mut st);
        }
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sw-sink-{}", name.chars().take(7).collect::<String>()))
            .spawn(move || sink_loop(&s, transport))?;
        Ok(Sink { shared, thread: Some(thread) })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn counters(&self) -> Arc<SinkCounters> {
        self.shared.c.clone()
    }

    /// Queues a chunk: in memory if there is room and nothing is spooled, else in the spool,
    /// else (no spool) in place of the oldest chunk in memory. Never blocks unless the sink
    /// is blocking.
    pub fn push(&self, c: Arc<Chunk>) {
        if c.is_empty() {
            return;
        }
        let sh = &*self.shared;
        sh.c.records.fetch_add(c.records as u64, Relaxed);
        let mut st = sh.lock();
        let size = cost(&c);
        loop {
            if st.failed {
                sh.c.lost.fetch_add(c.records as u64, Relaxed);
                return;
            }
            let spooling = st.spool.as_ref().is_some_and(|s| !s.is_empty());
            if !spooling && (st.mem_bytes + size <= sh.opts.queue_bytes || st.mem.is_empty()) {
                let seq = st.next_seq;
                st.next_seq += 1;
                st.mem_bytes += size;
                st.mem.push_back((seq, c));
                break;
            }
            if sh.opts.blocking {
                st = sh.room.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            if let Some(sp) = sh.spool(&mut st) {
                match sp.append(&c) {
                    Ok(dropped) => {
                        sh.c.spooled.fetch_add(c.records as u64, Relaxed);
                        sh.c.dropped.fetch_add(dropped, Relaxed);
                    }
                    Err(e) => {
                        sh.c.errors.fetch_add(1, Relaxed);
                        sh.c.dropped.fetch_add(c.records as u64, Relaxed);
                        tracing::error!(sink = %sh.name, "spool write failed: {e}; {} records dropped", c.records);
                    }
                }
                break;
            }
            // No spool: the oldest in memory makes room.
            if let Some((_, old)) = st.mem.pop_front() {
                st.mem_bytes -= cost(&old);
                sh.c.dropped.fetch_add(old.records as u64, Relaxed);
            }
        }
        sh.gauges(&st);
        drop(st);
        sh.work.notify_one();
    }

    /// Tells the thread no more chunks come, waits for it (it sends what it holds, or keeps it
    /// in its spool once its peer has been down for the drain timeout) and returns the
    /// counters.
    pub fn finish(mut self) -> SinkStats {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let c = &self.shared.c;
        let error = self.shared.lock().error.clone();
        SinkStats {
            name: self.shared.name.clone(),
            records: c.records.load(Relaxed),
            sent: c.sent.load(Relaxed),
            spooled: c.spooled.load(Relaxed),
            replayed: c.replayed.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            expired: c.expired.load(Relaxed),
            lost: c.lost.load(Relaxed),
            errors: c.errors.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            left: c.left.load(Relaxed),
            recovered: c.recovered.load(Relaxed),
            cpu_ns: c.cpu_ns.load(Relaxed),
            error,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.lock().closed = true;
            self.shared.work.notify_all();
            let _ = t.join();
        }
    }
}

fn next(sh: &Shared) -> Next {
    let mut st = sh.lock();
    loop {
        if let Some((seq, c)) = st.mem.front() {
            return Next::Mem(*seq, c.clone());
        }
        if let Some(sp) = st.spool.as_mut() {
            let expired = sp.expire();
            if expired > 0 {
                tracing::warn!(sink = %sh.name, "{expired} spooled records older than the spool's maximum age dropped");
                sh.c.expired.fetch_add(expired, Relaxed);
                sh.c.dropped.fetch_add(expired, Relaxed);
            }
            match sp.peek() {
                Ok(Peek::Entry(pos, c)) => return Next::Spooled(pos, Arc::new(c)),
                Ok(Peek::Empty) => {}
                Err((e, lost)) => {
                    tracing::error!(sink = %sh.name, "spool read failed: {e}; {lost} records dropped");
                    sh.c.errors.fetch_add(1, Relaxed);
                    sh.c.dropped.fetch_add(lost, Relaxed);
                    continue;
                }
            }
        }
        if st.closed {
            return Next::Done;
        }
        let (g, to) = sh.work.wait_timeout(st, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner());
        st = g;
        if to.timed_out() && st.mem.is_empty() {
            return Next::Idle;
        }
    }
}

/// What a chunk counts against the memory queue: what it holds in memory.
fn cost(c: &Chunk) -> usize {
    c.data.capacity() + 4 * c.ends.capacity()
}

/// The chunk was sent: take it off the queue or the spool. A chunk that was dropped meanwhile
/// (to make room) was counted as dropped; it went to the peer after all, so it counts as sent.
fn commit(sh: &Shared, n: &Next) {
    let mut st = sh.lock();
    let (present, records) = match n {
        Next::Mem(seq, c) => {
            let present = st.mem.front().is_some_and(|(s, _)| s == seq);
            if present {
                st.mem.pop_front();
                st.mem_bytes -= cost(c);
            }
            (present, c.records)
        }
        Next::Spooled(pos, c) => {
            let present = st.spool.as_mut().is_some_and(|sp| sp.advance(*pos, c.records, spool::entry_bytes(c)));
            sh.c.replayed.fetch_add(c.records as u64, Relaxed);
            (present, c.records)
        }
        _ => return,
    };
    sh.c.sent.fetch_add(records as u64, Relaxed);
    if !present {
        let _ = sh.c.dropped.fetch_update(Relaxed, Relaxed, |d| Some(d.saturating_sub(records as u64)));
    }
    sh.room.notify_all();
    sh.gauges(&st);
}

/// The sink failed for good: everything it holds is lost.
fn fail(sh: &Shared, e: &io::Error) {
    tracing::error!(sink = %sh.name, "{e}; records from now on are counted as lost");
    let mut st = sh.lock();
    st.failed = true;
    st.error = Some(e.to_string());
    let lost: u64 = st.mem.drain(..).map(|(_, c)| c.records as u64).sum();
    st.mem_bytes = 0;
    if let Some(sp) = st.spool.as_mut() {
        // Spooled records stay for the next run.
        sh.c.left.fetch_add(sp.records(), Relaxed);
        let _ = sp.close();
    }
    st.spool = None;
    st.spool_failed = true;
    sh.c.lost.fetch_add(lost, Relaxed);
    sh.room.notify_all();
}

/// CPU time of the calling thread in nanoseconds (Linux's `/proc/thread-self/schedstat`), 0 if
/// unknown.
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Counts a failure (connect or send) and says whether the sink gives up for good: only a
/// blocking sink does (a replay waits for its output rather than dropping, but not longer than
/// the drain timeout), a live one retries for as long as the run goes on.
fn gave_up(sh: &Shared, down_since: &mut Option<Instant>, failures: &mut u64) -> bool {
    sh.c.errors.fetch_add(1, Relaxed);
    *failures += 1;
    let t0 = *down_since.get_or_insert_with(Instant::now);
    sh.opts.blocking && t0.elapsed() >= sh.opts.drain_timeout
}

/// A sink's warnings about its peer, rate-limited: the first, then at most one per
/// [`Throttle::EVERY`], saying how many were held back meanwhile. A collector that is down, or
/// a UDP one that refuses every other datagram, gets a line every half minute, not ten a second.
struct Throttle {
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(30);

    fn new() -> Throttle {
        Throttle { last: None, held: 0 }
    }

    /// Logs `msg` if its turn has come.
    fn warn(&mut self, sink: &str, msg: std::fmt::Arguments<'_>) {
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            self.held += 1;
            return;
        }
        match std::mem::take(&mut self.held) {
            0 => tracing::warn!(sink = %sink, "{msg}"),
            n => tracing::warn!(sink = %sink, "{msg} ({n} more such messages in the last {} s)", Self::EVERY.as_secs()),
        }
        self.last = Some(Instant::now());
    }
}

fn sink_loop(sh: &Shared, t: Box<dyn Transport>) {
    sink_run(sh, t);
    sh.c.cpu_ns.store(thread_cpu_ns(), Relaxed);
}

fn sink_run(sh: &Shared, mut t: Box<dyn Transport>) {
    let mut connected = false;
    let mut backoff = Duration::from_millis(100);
    let mut next_try = Instant::now();
    let mut closed_at: Option<Instant> = None;
    let mut log = Throttle::new();
    // Since when nothing could be written (connect or send failing), how many failures, and
    // when the last was: the backoff starts again from its shortest only after a quiet spell
    // (a UDP peer that is down lets every first datagram after a reconnect through).
    let mut down_since: Option<Instant> = None;
    let mut failures = 0u64;
    let mut last_failure: Option<Instant> = None;
    let mut last_error: Option<io::Error> = None;
    loop {
        let n = next(sh);
        match &n {
            Next::Done => break,
            Next::Idle => {
                if connected {
                    if let Err(e) = t.tick() {
                        if gave_up(sh, &mut down_since, &mut failures) {
                            fail(sh, &e);
                            break;
                        }
                        log.warn(&sh.name, format_args!("{e}; retrying"));
                        last_failure = Some(Instant::now());
                        t.disconnect();
                        connected = false;
                    }
                }
                continue;
            }
            Next::Mem(..) | Next::Spooled(..) => {}
        }
        if closed_at.is_none() && sh.lock().closed {
            closed_at = Some(Instant::now());
        }
        if !connected {
            if closed_at.is_some_and(|t0| t0.elapsed() >= sh.opts.drain_timeout) {
                // A replay's own output (a blocking sink) that is still failing has failed for
                // good: what it holds is lost to that error, not dropped.
                if let Some(e) = last_error.take().filter(|_| sh.opts.blocking && down_since.is_some()) {
                    fail(sh, &e);
                }
                break;
            }
            let now = Instant::now();
            if now < next_try {
                std::thread::sleep((next_try - now).min(Duration::from_millis(100)));
                continue;
            }
            match t.connect() {
                Ok(()) => connected = true,
                Err(e) => {
                    if gave_up(sh, &mut down_since, &mut failures) {
                        fail(sh, &e);
                        break;
                    }
                    let msg = format!("cannot connect: {e}");
                    last_error = Some(io::Error::new(e.kind(), msg));
                    log.warn(&sh.name, format_args!("cannot connect: {e}; retrying in {backoff:?}"));
                    last_failure = Some(Instant::now());
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        let c = match &n {
            Next::Mem(_, c) | Next::Spooled(_, c) => c.clone(),
            _ => unreachable!("handled above"),
        };
        // A tick's failure (a rotation, a template refresh) does not undo a chunk that went out.
        match t
            .send(&c)
            .map(|_| {
                sh.c.bytes.fetch_add(c.data.len() as u64, Relaxed);
                commit(sh, &n);
                if let Some(t0) = down_since.take() {
                    log.warn(
                        &sh.name,
                        format_args!("writing again after {:.1} s ({failures} failures)", t0.elapsed().as_secs_f64()),
                    );
                    failures = 0;
                }
                if last_failure.is_some_and(|t| t.elapsed() >= Throttle::EVERY) {
                    backoff = Duration::from_millis(100);
                    last_failure = None;
                }
            })
            .and_then(|_| t.tick())
        {
            Ok(()) => {}
            Err(e) => {
                if gave_up(sh, &mut down_since, &mut failures) {
                    // This chunk is still queued (counted lost) or spooled (left).
                    fail(sh, &e);
                    break;
                }
                log.warn(&sh.name, format_args!("send failed: {e}; retrying in {backoff:?}"));
                last_failure = Some(Instant::now());
                last_error = Some(e);
                t.disconnect();
                connected = false;
                next_try = Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    if let Err(e) = t.finish() {
        tracing::error!(sink = %sh.name, "closing: {e}");
    }
    // What could not be sent: into the spool for the next run, or dropped.
    let mut st = sh.lock();
    if st.failed {
        return;
    }
    // The memory queue was due before the spool: it goes in front of it.
    let rest: Vec<_> = st.mem.drain(..).map(|(_, c)| c).collect();
    st.mem_bytes = 0;
    let rest_records: u64 = rest.iter().map(|c| c.records as u64).sum();
    let mut dropped = 0;
    if !rest.is_empty() {
        match sh.spool(&mut st) {
            Some(sp) => match sp.prepend(&rest) {
                Ok(d) => {
                    dropped += d;
                    sh.c.spooled.fetch_add(rest_records, Relaxed);
                }
                Err(e) => {
                    tracing::error!(sink = %sh.name, "spool write failed: {e}");
                    dropped += rest_records;
                }
            },
            None => dropped += rest_records,
        }
    }
    if dropped > 0 {
        tracing::error!(sink = %sh.name, "{dropped} records dropped at exit (peer down, no room to spool them)");
    }
    sh.c.dropped.fetch_add(dropped, Relaxed);
    if let Some(sp) = st.spool.as_mut() {
        let held = sp.records();
        if held > 0 {
            tracing::warn!(sink = %sh.name, "{held} records left in the spool for the next run");
        }
        sh.c.left.fetch_add(held, Relaxed);
        if let Err(e) = sp.close() {
            tracing::error!(sink = %sh.name, "closing the spool: {e}");
        }
    }
    sh.room.notify_all();
}
