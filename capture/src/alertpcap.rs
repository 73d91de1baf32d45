//! Triggered packet capture: the packets of the flows a rule alerted on, and the packets of
//! each such flow that came just before the alert, written to rotating pcapng files per worker
//! (bounded in size), so an analyst has the evidence behind an alert.
//!
//! A rule with a `threshold` or `detection_filter` counts as alerting here from its first
//! match on the flow: whether that match alerts is decided across workers later, off the
//! packet path ([`detect::rules::threshold`]), when the packets have gone by. So the capture
//! also keeps flows whose thresholded matches were suppressed (bounded by the same budgets).
//!
//! Each worker keeps its last `ring_packets` packets (at most `snaplen` bytes each) in a
//! preallocated ring. When a packet's flow has alerted, the worker writes that flow's packets
//! still in the ring (at most `packets_before`, oldest first) the first time, then every later
//! packet of the flow (at most `max_flow_packets`), as pcapng Enhanced Packet Blocks into a
//! buffer that goes to the writer thread once per burst. The writer (its own thread, off the
//! packet path) appends to `DIR/alerts-wN-SEQ.pcapng`, starts a new file past `file_bytes`,
//! and keeps the newest `files` files of each worker. A buffer the writer cannot take at once
//! is dropped, counted: the packet path never waits for the disk.

use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// `[alert_capture]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCaptureConfig {
    pub dir: PathBuf,
    /// Packets of an alerting flow written from before the alert (from the worker's ring).
    pub packets_before: usize,
    /// Packets written per alerting flow at most.
    pub max_flow_packets: u64,
    /// Packets each worker keeps for `packets_before`.
    pub ring_packets: usize,
    /// Bytes kept of each packet.
    pub snaplen: usize,
    /// A file is closed past this size.
    pub file_bytes: u64,
    /// Files kept per worker (the oldest are removed).
    pub files: usize,
}

impl Default for AlertCaptureConfig {
    fn default() -> Self {
        AlertCaptureConfig {
            dir: PathBuf::from("/var/log/spinewatch/pcap"),
            packets_before: 16,
            max_flow_packets: 10_000,
            ring_packets: 2048,
            snaplen: 4096,
            file_bytes: 64 << 20,
            files: 16,
        }
    }
}

/// Counters shared by the workers and the writer.
#[derive(Debug, Default)]
pub struct Shared {
    pub flows: AtomicU64,
    pub packets: AtomicU64,
    /// Packets dropped: the writer was behind, or a write failed.
    pub dropped: AtomicU64,
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// What the capture did in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertCaptureStats {
    pub dir: PathBuf,
    pub flows: u64,
    pub packets: u64,
    pub dropped: u64,
    pub files: u64,
    pub bytes: u64,
}

const BUF: usize = 1 << 20;
const BUFS_PER_WORKER: usize = 8;

/// Appends an Enhanced Packet Block (interface 0, microsecond timestamps).
fn epb(out: &mut Vec<u8>, data: &[u8], wire_len: u32, ts: u64) {
    let pad = (4 - data.len() % 4) % 4;
    let total = (32 + data.len() + pad) as u32;
    for v in [6u32, total, 0, (ts >> 32) as u32, ts as u32, data.len() as u32, wire_len] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(data);
    out.extend_from_slice(&[0u8; 3][..pad]);
    out.extend_from_slice(&total.to_le_bytes());
}

/// A file's head: the Section Header Block and one Ethernet interface with microsecond
/// timestamps (pcapng's default resolution).
fn file_head(snaplen: u32) -> Vec<u8> {
    let mut o = Vec::new();
    for v in [0x0a0d_0d0au32, 28, 0x1a2b_3c4d] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&1u16.to_le_bytes());
    o.extend_from_slice(&0u16.to_le_bytes());
    o.extend_from_slice(&(-1i64).to_le_bytes());
    o.extend_from_slice(&28u32.to_le_bytes());
    for v in [1u32, 20] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&1u16.to_le_bytes()); // LINKTYPE_ETHERNET
    o.extend_from_slice(&0u16.to_le_bytes());
    o.extend_from_slice(&snaplen.to_le_bytes());
    o.extend_from_slice(&20u32.to_le_bytes());
    o
}

/// A worker's side.
pub struct AlertCapture {
    cfg: AlertCaptureConfig,
    /// The last packets: (flow hash, ts, wire length, captured length), their bytes in
    /// `ring_data` at slot × snaplen.
    ring: Vec<(u64, u64, u32, u32)>,
    ring_data: Vec<u8>,
    next: usize,
    /// Alerting flows being written: hash → packets written (oldest first, bounded).
    flows: VecDeque<(u64, u64)>,
    buf: Vec<u8>,
    /// Packets in `buf`.
    in_buf: u64,
    last_flush_ms: u64,
    tx: Sender<(usize, Vec<u8>, u64)>,
    back: Receiver<Vec<u8>>,
    worker: usize,
    shared: Arc<Shared>,
}

/// Flows a worker tracks at once (the oldest is forgotten past it).
const FLOWS: usize = 1024;

impl AlertCapture {
    #[inline]
    fn slot(&self, i: usize) -> &[u8] {
        let (_, _, _, len) = self.ring[i];
        let at = i * self.cfg.snaplen;
        &self.ring_data[at..at + len as usize]
    }

    /// A packet after its flow was updated (see [`detect::flow::RecordSink::packet`]).
    #[inline]
    pub fn packet(&mut self, data: &[u8], wire_len: u32, ts: u64, flow: u64, alerted: bool) {
        if flow == 0 {
            return;
        }
        let snap = data.len().min(self.cfg.snaplen);
        if alerted {
            match self.flows.iter().rposition(|&(h, _)| h == flow) {
                Some(i) => {
                    if self.flows[i].1 < self.cfg.max_flow_packets {
                        self.flows[i].1 += 1;
                        self.write(&data[..snap], wire_len, ts);
                    }
                }
                None => {
                    // The first packet since the alert: the flow's packets still in the ring first.
                    if self.flows.len() == FLOWS {
                        self.flows.pop_front();
                    }
                    self.shared.flows.fetch_add(1, Relaxed);
                    let n = if self.cfg.packets_before == 0 { 0 } else { self.ring.len() };
                    let mut before: Vec<usize> = Vec::new();
                    for k in 1..=n {
                        let i = (self.next + n - k) % n;
                        if self.ring[i].0 == flow {
                            before.push(i);
                            if before.len() == self.cfg.packets_before {
                                break;
                            }
                        }
                    }
                    let mut written = 0;
                    // Within the flow's budget: the newest of the ring's packets and this one.
                    let room = self.cfg.max_flow_packets.saturating_sub(1) as usize;
                    before.truncate(room);
                    for &i in before.iter().rev() {
                        let (_, t, w, _) = self.ring[i];
                        let d = self.slot(i).to_vec();
                        self.write(&d, w, t);
                        written += 1;
                    }
                    if self.cfg.max_flow_packets > 0 {
                        self.write(&data[..snap], wire_len, ts);
                        written += 1;
                    }
                    self.flows.push_back((flow, written));
                }
            }
        }
        let i = self.next;
        let at = i * self.cfg.snaplen;
        self.ring_data[at..at + snap].copy_from_slice(&data[..snap]);
        self.ring[i] = (flow, ts, wire_len, snap as u32);
        self.next = (i + 1) % self.ring.len();
    }

    fn write(&mut self, data: &[u8], wire_len: u32, ts: u64) {
        epb(&mut self.buf, data, wire_len, ts);
        self.in_buf += 1;
        if self.buf.len() >= BUF - 64 * 1024 {
            self.flush();
        }
    }

    /// Once per burst: hands what was written to the writer when there is a good part of a
    /// buffer or it has waited 20 ms (so a buffer is not spent on every burst).
    pub fn tick(&mut self, mono_ms: u64) {
        if self.in_buf > 0 && (self.buf.len() >= BUF / 4 || mono_ms.saturating_sub(self.last_flush_ms) >= 20) {
            self.last_flush_ms = mono_ms;
            self.flush();
        }
    }

    /// Hands what was written to the writer. Never waits.
    pub fn flush(&mut self) {
        if self.in_buf == 0 {
            return;
        }
        let Ok(mut fresh) = self.back.try_recv() else {
            // Every buffer is with the writer: these packets are dropped, counted.
            self.shared.dropped.fetch_add(self.in_buf, Relaxed);
            self.buf.clear();
            self.in_buf = 0;
            return;
        };
        fresh.clear();
        let full = std::mem::replace(&mut self.buf, fresh);
        let n = std::mem::take(&mut self.in_buf);
        if let Err(e) = self.tx.try_send((self.worker, full, n)) {
            self.shared.dropped.fetch_add(n, Relaxed);
            let (_, b, _) = e.into_inner();
            self.buf = b;
            self.buf.clear();
        }
    }
}

impl AlertCapture {
    /// The end of the run: what is left goes to the writer, waiting for it this once.
    pub fn finish(mut self) {
        if self.in_buf == 0 {
            return;
        }
        let t = std::time::Duration::from_secs(10);
        let n = self.in_buf;
        let sent = self.back.recv_timeout(t).is_ok_and(|_| {
            let full = std::mem::take(&mut self.buf);
            self.tx.send_timeout((self.worker, full, n), t).is_ok()
        });
        if !sent {
            self.shared.dropped.fetch_add(n, Relaxed);
        }
    }
}

/// The writer thread.
pub struct Writer {
    thread: std::thread::JoinHandle<()>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Writer {
    /// Waits for the writer (every worker's [`AlertCapture`] must be gone) and returns the
    /// counters.
    pub fn finish(self) -> AlertCaptureStats {
        let _ = self.thread.join();
        let s = &self.shared;
        AlertCaptureStats {
            dir: self.dir,
            flows: s.flows.load(Relaxed),
            packets: s.packets.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
            files: s.files.load(Relaxed),
            bytes: s.bytes.load(Relaxed),
        }
    }
}

/// [`start`] when `cfg` says so: the writer, and a capture for each of `workers` (all None
/// when off).
pub fn start_if(
    cfg: Option<&AlertCaptureConfig>,
    workers: usize,
) -> std::io::Result<(Option<Writer>, Vec<Option<AlertCapture>>)> {
    match cfg {
        Some(c) => {
            let (w, v) = start(c, workers)?;
            Ok((Some(w), v.into_iter().map(Some).collect()))
        }
        None => Ok((None, (0..workers).map(|_| None).collect())),
    }
}

/// Starts the writer and one [`AlertCapture`] per worker. The directory is made now, so a bad
/// one fails the start.
pub fn start(cfg: &AlertCaptureConfig, workers: usize) -> std::io::Result<(Writer, Vec<AlertCapture>)> {
    std::fs::create_dir_all(&cfg.dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("alert_capture.dir {}: {e}", cfg.dir.display())))?;
    let shared = Arc::new(Shared::default());
    let (tx, rx) = bounded::<(usize, Vec<u8>, u64)>(workers * BUFS_PER_WORKER);
    let mut caps = Vec::with_capacity(workers);
    let mut backs = Vec::with_capacity(workers);
    let snaplen = cfg.snaplen.max(64);
    let cfg = AlertCaptureConfig { snaplen, ring_packets: cfg.ring_packets.max(1), ..cfg.clone() };
    for w in 0..workers {
        let (btx, brx) = bounded::<Vec<u8>>(BUFS_PER_WORKER);
        for _ in 0..BUFS_PER_WORKER - 1 {
            let _ = btx.send(Vec::with_capacity(BUF));
        }
        backs.push(btx);
        caps.push(AlertCapture {
            ring: vec![(0, 0, 0, 0); cfg.ring_packets],
            ring_data: vec![0; cfg.ring_packets * snaplen],
            next: 0,
            flows: VecDeque::with_capacity(FLOWS),
            buf: Vec::with_capacity(BUF),
            in_buf: 0,
            last_flush_ms: 0,
            tx: tx.clone(),
            back: brx,
            worker: w,
            shared: shared.clone(),
            cfg: cfg.clone(),
        });
    }
    drop(tx);
    let (sh, dir) = (shared.clone(), cfg.dir.clone());
    let thread = std::thread::Builder::new().name("sw-pcap".into()).spawn(move || write_loop(&cfg, rx, backs, &sh))?;
    Ok((Writer { thread, shared, dir }, caps))
}

struct Out {
    file: Option<std::io::BufWriter<std::fs::File>>,
    size: u64,
    seq: u64,
    kept: VecDeque<PathBuf>,
}

fn write_loop(cfg: &AlertCaptureConfig, rx: Receiver<(usize, Vec<u8>, u64)>, backs: Vec<Sender<Vec<u8>>>, sh: &Shared) {
    let mut outs: Vec<Out> =
        (0..backs.len()).map(|_| Out { file: None, size: 0, seq: 0, kept: VecDeque::new() }).collect();
    let head = file_head(cfg.snaplen as u32);
    loop {
        let (w, buf, n) = match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(m) => m,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                // Idle: what is buffered goes to the files, so they are readable now.
                for o in outs.iter_mut() {
                    if let Some(f) = o.file.as_mut() {
                        let _ = f.flush();
                    }
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let o = &mut outs[w];
        // Block by block (each says its length), so a file ends before the block that would
        // take it past `file_bytes`.
        let mut at = 0;
        let mut written = 0u64;
        let r = (|| -> std::io::Result<()> {
            while at + 8 <= buf.len() {
                let len = u32::from_le_bytes(buf[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
                let block = &buf[at..(at + len).min(buf.len())];
                let full = o.size + block.len() as u64 > cfg.file_bytes && o.size > head.len() as u64;
                if o.file.is_none() || full {
                    // A new file, never over an existing one; the oldest beyond `files` go.
                    let mut p;
                    loop {
                        p = cfg.dir.join(format!("alerts-w{w}-{:06}.pcapng", o.seq));
                        o.seq += 1;
                        if !p.exists() {
                            break;
                        }
                    }
                    if let Some(mut old) = o.file.take() {
                        old.flush()?;
                    }
                    let mut f = std::io::BufWriter::with_capacity(
                        1 << 16,
                        std::fs::OpenOptions::new().create_new(true).write(true).open(&p)?,
                    );
                    f.write_all(&head)?;
                    o.size = head.len() as u64;
                    o.file = Some(f);
                    o.kept.push_back(p);
                    sh.files.fetch_add(1, Relaxed);
                    while o.kept.len() > cfg.files.max(1) {
                        if let Some(old) = o.kept.pop_front() {
                            let _ = std::fs::remove_file(old);
                        }
                    }
                }
                o.file.as_mut().expect("opened above").write_all(block)?;
                o.size += block.len() as u64;
                sh.bytes.fetch_add(block.len() as u64, Relaxed);
                written += 1;
                at += len.max(8);
            }
            Ok(())
        })();
        sh.packets.fetch_add(written, Relaxed);
        if let Err(e) = r {
            tracing::error!("alert capture: {e}");
            sh.dropped.fetch_add(n.saturating_sub(written), Relaxed);
            o.file = None;
        }
        let _ = backs[w].try_send(buf);
    }
    for o in outs.iter_mut() {
        if let Some(f) = o.file.as_mut() {
            if let Err(e) = f.flush() {
                tracing::error!("alert capture: {e}");
            }
        }
    }
}
