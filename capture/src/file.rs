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
        while let Ok(mut b) = input.rx.recv() {
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

    /// The reader.
    fn drive(&mut self, d: &mut Drive<'_>) -> Result<(), FileRunError> {
        let n = self.txs.len();
        let (txs, backs, processed, stop) = (&self.txs, &self.backs, &self.processed, d.stop);
        let mut cur: Vec<Option<PacketBatch>> = (0..n).map(|_| None).collect();
        // The last fragment dispatched and its worker: before any later packet goes to another
        // worker, that worker has processed the fragment, so a datagram it completed and handed
        // over is in the owner's ring before the owner sees a later packet (the same order as one
        // worker). Only fragments pay for this wait.
        let mut frag_at: Option<(usize, u64)> = None;
        'files: for r in self.readers.iter_mut() {
            loop {
                if stop.load(Ordering::Relaxed) {
                    break 'files;
                }
                let rec = match r.next_packet() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e @ crate::pcap::PcapError::Truncated { .. }) => {
                        // Its whole packets are in; the next file goes on.
                        tracing::warn!("{e}");
                        self.notes.push(e.to_string());
                        break;
                    }
                    Err(e) => {
                        self.read_error = Some(e);
                        break 'files;
                    }
                };
                self.input_packets += 1;
                let seq = self.input_packets;
                let (w, is_frag) = detect::hash::dispatch_frag(rec.data, n, self.cfg.flow.spread);
                if let Some((a, fseq)) = frag_at {
                    if a != w {
                        if let Some(b) = cur[a].take() {
                            if txs[a].send(b).is_err() {
                                break 'files;
                            }
                        }
                        while processed[a].load(Ordering::Acquire) < fseq && !stop.load(Ordering::Relaxed) {
                            std::thread::yield_now();
                        }
                        frag_at = None;
                    }
                }
                // (Without hand-offs a datagram's flow is where its fragments are: no wait.)
                if is_frag && self.mesh_n > 1 {
                    frag_at = Some((w, seq));
                }
                let b = match &mut cur[w] {
                    Some(b) => b,
                    slot => slot.insert(backs[w].recv().expect("worker batches come back until the worker ends")),
                };
                let off = b.data.len() as u32;
                b.data.extend_from_slice(rec.data);
                // Counted bytes: the captured length as in the file (a rewritten link header
                // does not change it), as Suricata counts them and as net_pcap sets pkt_len: the
                // same on both paths.
                b.meta.push((off, rec.data.len() as u32, rec.cap_len, rec.ts, seq));
                if b.meta.len() == BATCH {
                    let full = cur[w].take().expect("batch present");
                    if txs[w].send(full).is_err() {
                        break 'files;
                    }
                }
            }
        }
        for (w, b) in cur.into_iter().enumerate() {
            if let Some(b) = b {
                if !b.meta.is_empty() {
                    let _ = self.txs[w].send(b);
                }
            }
        }
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
        ..Common::default()
    };
    crate::runner::run(&mut src, &common, out, stop)
}
