//! Capture files through the worker cores: one reader thread, N worker threads.
//!
//! The reader sends each packet to the worker its symmetric flow hash picks
//! ([`detect::hash::dispatch`]), in preallocated batches that come back for reuse, so every
//! flow is seen whole by one worker and the records do not depend on the number of workers.
//! Timeouts run on packet time.

use crate::counters::RunSummary;
use crate::pcap::{PcapError, PcapReader};
use crate::runner::{Common, Drive, Finished, RunError, Source, WorkerCtx, WorkerInput};
use crate::worker::WorkerCore;
use crossbeam_channel::{bounded, Receiver, Sender};
use detect::FlowConfig;
use export::ExportConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Packets per reader→worker batch.
const BATCH: usize = 256;
/// Batches in flight per worker.
const INFLIGHT: usize = 8;

#[derive(Debug, Clone)]
pub struct FileRunConfig {
    pub workers: usize,
    /// Cores to pin workers to (worker i → cores[i % len]); empty: not pinned.
    pub cores: Vec<usize>,
    pub flow: FlowConfig,
    pub export: ExportConfig,
    /// Triggered packet capture (None: off).
    pub alert_capture: Option<crate::alertpcap::AlertCaptureConfig>,
    /// `--bpf`: only the packets this libpcap filter takes.
    pub bpf: Option<String>,
    /// `--continuous DIR`: after `paths`, every new capture of this folder until the stop.
    pub watch: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileRunError {
    #[error(transparent)]
    Pcap(#[from] PcapError),
    #[error(transparent)]
    Run(#[from] RunError),
}

struct PacketBatch {
    data: Vec<u8>,
    /// (offset, captured length, wire length, timestamp, position in the input)
    meta: Vec<(u32, u32, u32, u64, u64)>,
}

/// A worker's end of the reader's channels, and where it publishes its progress.
pub struct FileInput {
    rx: Receiver<PacketBatch>,
    back: Sender<PacketBatch>,
    processed: Arc<AtomicU64>,
}

/// The file source: the runner's thread reads the captures in order and dispatches.
struct FileSource<'a> {
    paths: &'a [PathBuf],
    cfg: &'a FileRunConfig,
    readers: Vec<PcapReader>,
    /// Spread by addresses, a datagram's flow is where its fragments are: no hand-offs.
    mesh_n: usize,
    txs: Vec<Sender<PacketBatch>>,
    backs: Vec<Receiver<PacketBatch>>,
    processed: Vec<Arc<AtomicU64>>,
    input_packets: u64,
    read_error: Option<PcapError>,
    /// Captures cut short (a note each, for the summary).
    notes: Vec<String>,
}

impl Source for FileSource<'_> {
    type Input = FileInput;
    type WorkerOut = ();
    type Error = FileRunError;
    const NAME: &'static str = "file";

    fn open(&mut self) -> Result<Vec<WorkerInput<FileInput>>, FileRunError> {
        // Open every file first so a bad path fails before anything runs.
        for p in self.paths {
            self.readers.push(PcapReader::open(p)?);
        }
        let n = self.cfg.workers.max(1);
        self.mesh_n = if self.cfg.flow.spread == detect::hash::Spread::Flow { n } else { 1 };
        let mut inputs = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = bounded::<PacketBatch>(INFLIGHT);
            let (btx, brx) = bounded::<PacketBatch>(INFLIGHT + 2);
            for _ in 0..INFLIGHT + 1 {
                let _ =
                    btx.send(PacketBatch { data: Vec::with_capacity(BATCH * 1600), meta: Vec::with_capacity(BATCH) });
            }
            // The last input position each worker has processed (the reader waits on it after
            // a fragment: see `drive`).
            let processed = Arc::new(AtomicU64::new(0));
            self.txs.push(tx);
            self.backs.push(brx);
            self.processed.push(processed.clone());
            let core = self.cfg.cores.get(i % self.cfg.cores.len().max(1)).copied();
            inputs.push(WorkerInput { core, queues: Vec::new(), input: FileInput { rx, back: btx, processed } });
        }
        Ok(inputs)
    }

    fn shards(&self, _workers: usize) -> Vec<detect::shard::Shard> {
        detect::shard::mesh(self.mesh_n, self.cfg.flow.defrag.handoff_ring)
    }

    fn work(input: FileInput, core: &mut WorkerCore, ctx: &WorkerCtx<'_>) {
        loop {
            let mut b = match input.rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(b) => b,
                // Nothing to read now (a watched folder between captures): batches still age.
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    core.idle(ctx.started.elapsed().as_millis() as u64);
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            let data = &b.data;
            core.burst_numbered(
                b.meta
                    .iter()
                    .map(|&(off, len, wire, ts, seq)| (&data[off as usize..(off + len) as usize], wire, ts, seq)),
            );
            core.end_burst(None, ctx.started.elapsed().as_millis() as u64);
            if let Some(&(.., seq)) = b.meta.last() {
                input.processed.store(seq, Ordering::Release);
            }
            b.data.clear();
            b.meta.clear();
            let _ = input.back.send(b);
        }
    }

    /// The reader: every file in order, then (with a watched folder) each new one as it is
    /// finished, until the stop.
    fn drive(&mut self, d: &mut Drive<'_>) -> Result<(), FileRunError> {
        let n = self.txs.len();
        let mut p = Pump {
            txs: &self.txs,
            backs: &self.backs,
            processed: &self.processed,
            stop: d.stop,
            cur: (0..n).map(|_| None).collect(),
            frag_at: None,
            mesh_n: self.mesh_n,
            spread: self.cfg.flow.spread,
            input_packets: 0,
            read_before: 0,
        };
        let total = crate::pcap::total_bytes(self.paths);
        let mut progress = crate::progress::Progress::new("replay", total, crate::progress::Unit::Bytes);
        let mut outcome = Ok(true);
        for r in self.readers.iter_mut() {
            outcome = p.file(r, &mut progress, &mut self.notes);
            if !matches!(outcome, Ok(true)) {
                break;
            }
        }
        if let (Ok(true), Some(dir)) = (&outcome, &self.cfg.watch) {
            outcome = watch(dir, self.paths, &mut p, &mut self.notes);
        }
        progress.finish();
        if let Err(e) = outcome {
            self.read_error = Some(e);
        }
        self.input_packets = p.input_packets;
        p.flush();
        // The workers end once their channel is empty.
        self.txs.clear();
        Ok(())
    }

    fn input_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn finish(&mut self, cores: &[WorkerCore], _: Vec<()>) -> Result<Finished, FileRunError> {
        // End of input: every flow ends at the latest packet time any worker saw, so a flow's
        // reason (timeout or shutdown) does not depend on which worker held it.
        let end = cores.iter().map(|c| c.now()).max().unwrap_or(0);
        if let Some(e) = self.read_error.take() {
            tracing::error!("{e}; the packets before it were processed");
            return Err(e.into());
        }
        Ok((Vec::new(), self.input_packets, end))
    }
}

/// What the reader carries from file to file: the workers' channels, the batches being
/// filled, the last fragment's worker, the count.
struct Pump<'a> {
    txs: &'a [Sender<PacketBatch>],
    backs: &'a [Receiver<PacketBatch>],
    processed: &'a [Arc<AtomicU64>],
    stop: &'a AtomicBool,
    cur: Vec<Option<PacketBatch>>,
    /// The last fragment dispatched and its worker: before any later packet goes to another
    /// worker, that worker has processed the fragment, so a datagram it completed and handed
    /// over is in the owner's ring before the owner sees a later packet (the same order as one
    /// worker). Only fragments pay for this wait.
    frag_at: Option<(usize, u64)>,
    mesh_n: usize,
    spread: detect::hash::Spread,
    input_packets: u64,
    /// Bytes of the files read before this one (the progress line).
    read_before: u64,
}

impl Pump<'_> {
    /// Reads one file to its end: Ok(false) when the run stops (a signal, or the workers are
    /// gone). A capture cut short ends its file with a note; other corruption is the error.
    fn file(
        &mut self,
        r: &mut PcapReader,
        progress: &mut crate::progress::Progress,
        notes: &mut Vec<String>,
    ) -> Result<bool, PcapError> {
        let n = self.txs.len();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            // A capture cut short: its whole packets are in; the next file goes on.
            let Some(rec) = r.next_whole(notes)? else { break };
            self.input_packets += 1;
            let seq = self.input_packets;
            let (w, is_frag) = detect::hash::dispatch_frag(rec.data, n, self.spread);
            if let Some((a, fseq)) = self.frag_at {
                if a != w {
                    if let Some(b) = self.cur[a].take() {
                        if self.txs[a].send(b).is_err() {
                            return Ok(false);
                        }
                    }
                    while self.processed[a].load(Ordering::Acquire) < fseq && !self.stop.load(Ordering::Relaxed) {
                        std::thread::yield_now();
                    }
                    self.frag_at = None;
                }
            }
            // (Without hand-offs a datagram's flow is where its fragments are: no wait.)
            if is_frag && self.mesh_n > 1 {
                self.frag_at = Some((w, seq));
            }
            let b = match &mut self.cur[w] {
                Some(b) => b,
                slot => slot.insert(self.backs[w].recv().expect("worker batches come back until the worker ends")),
            };
            let off = b.data.len() as u32;
            b.data.extend_from_slice(rec.data);
            // Counted bytes: the captured length as in the file (a rewritten link header
            // does not change it), as Suricata counts them and as net_pcap sets pkt_len: the
            // same on both paths.
            b.meta.push((off, rec.data.len() as u32, rec.cap_len, rec.ts, seq));
            if b.meta.len() == BATCH {
                let full = self.cur[w].take().expect("batch present");
                if self.txs[w].send(full).is_err() {
                    return Ok(false);
                }
                progress.update(self.read_before + r.offset(), self.input_packets);
            }
        }
        self.read_before += r.offset();
        Ok(true)
    }

    /// Sends the batches being filled (at the end, or before waiting for a new file).
    fn flush(&mut self) {
        for (w, slot) in self.cur.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|b| !b.meta.is_empty()) {
                let _ = self.txs[w].send(slot.take().expect("checked above"));
            }
        }
    }
}

/// A file of a watched folder is taken once it has not grown for this long (the writer is
/// done with it: tcpdump's `-G`/`-C` rotation, a copy that finished).
const SETTLED: std::time::Duration = std::time::Duration::from_secs(1);

/// `--continuous DIR` (Suricata's `--pcap-file-continuous`): the folder's capture files in
/// name order, each once, as they are finished, until the stop; each finished file logged.
fn watch(
    dir: &std::path::Path,
    done_already: &[PathBuf],
    p: &mut Pump<'_>,
    notes: &mut Vec<String>,
) -> Result<bool, PcapError> {
    let mut seen: std::collections::HashSet<PathBuf> = done_already.iter().cloned().collect();
    // Size and when it last changed, of the files not taken yet.
    let mut growing: std::collections::HashMap<PathBuf, (u64, std::time::Instant)> = Default::default();
    let mut idle = crate::progress::Progress::new("watch", 0, crate::progress::Unit::Bytes);
    tracing::info!(dir = %dir.display(), "watching for new captures");
    loop {
        if p.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let mut ready = Vec::new();
        for path in capture_files(dir).map_err(|error| PcapError::Io { path: dir.to_path_buf(), error })? {
            if seen.contains(&path) {
                continue;
            }
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let e = growing.entry(path.clone()).or_insert((size, std::time::Instant::now()));
            if e.0 != size {
                *e = (size, std::time::Instant::now());
            } else if e.1.elapsed() >= SETTLED {
                ready.push(path);
            }
        }
        if ready.is_empty() {
            // Nothing new: what is read so far goes to the workers now.
            p.flush();
            std::thread::sleep(std::time::Duration::from_millis(200));
            continue;
        }
        for path in ready {
            seen.insert(path.clone());
            growing.remove(&path);
            let before = p.input_packets;
            let mut r = match PcapReader::open(&path) {
                Ok(r) => r,
                Err(e) => {
                    // One bad file in the folder does not end the watch.
                    tracing::error!("{e}; skipped");
                    notes.push(format!("{e}; skipped"));
                    continue;
                }
            };
            match p.file(&mut r, &mut idle, notes) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => {
                    tracing::error!("{e}; the packets before it were processed, the watch goes on");
                    notes.push(e.to_string());
                }
            }
            tracing::info!(file = %path.display(), packets = p.input_packets - before, "finished");
        }
    }
}

/// The capture files of a folder, in name order: every regular file not hidden (`.name`),
/// as Suricata's `-r DIR` takes them.
pub fn capture_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// Replays `paths` in order through `cfg.workers` workers, writing EVE to `out`.
pub fn run_files(
    paths: &[PathBuf],
    cfg: &FileRunConfig,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, FileRunError> {
    let mut src = FileSource {
        paths,
        cfg,
        readers: Vec::new(),
        mesh_n: 1,
        txs: Vec::new(),
        backs: Vec::new(),
        processed: Vec::new(),
        input_packets: 0,
        read_error: None,
        notes: Vec::new(),
    };
    let common = Common {
        flow: cfg.flow.clone(),
        export: cfg.export.clone(),
        alert_capture: cfg.alert_capture.clone(),
        bpf: cfg.bpf.clone(),
        ..Common::default()
    };
    crate::runner::run(&mut src, &common, out, stop)
}
