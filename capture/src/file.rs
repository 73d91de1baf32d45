//! Capture files through the worker cores: one reader thread, N worker threads.
//!
//! The reader sends each packet to the worker its symmetric flow hash picks
//! ([`detect::hash::dispatch`]), in preallocated batches that come back for reuse, so every
//! flow is seen whole by one worker and the records do not depend on the number of workers.
//! Timeouts run on packet time.

use crate::counters::{shared_stats, RunSummary};
use crate::pcap::{PcapError, PcapReader};
use crate::worker::WorkerCore;
use crossbeam_channel::bounded;
use detect::FlowConfig;
use export::ExportConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
    #[error("export: {0}")]
    Export(std::io::Error),
    #[error("thread: {0}")]
    Thread(std::io::Error),
}

struct PacketBatch {
    data: Vec<u8>,
    /// (offset, captured length, wire length, timestamp, position in the input)
    meta: Vec<(u32, u32, u32, u64, u64)>,
}

/// Replays `paths` in order through `cfg.workers` workers, writing EVE to `out`.
pub fn run_files(
    paths: &[PathBuf],
    cfg: &FileRunConfig,
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<RunSummary, FileRunError> {
    let n = cfg.workers.max(1);
    // Open every file first so a bad path fails before anything runs.
    let mut readers = Vec::with_capacity(paths.len());
    for p in paths {
        readers.push(PcapReader::open(p)?);
    }
    let (export, batchers) = export::spawn(&out, n, &cfg.export).map_err(FileRunError::Export)?;
    let (capture_writer, mut captures) =
        crate::alertpcap::start_if(cfg.alert_capture.as_ref(), n).map_err(FileRunError::Export)?;
    let stats = shared_stats(n);
    // Spread by addresses, a datagram's flow is where its fragments are: no hand-offs.
    let mesh_n = if cfg.flow.spread == detect::hash::Spread::Flow { n } else { 1 };
    let mut shards = detect::shard::mesh(mesh_n, cfg.flow.defrag.handoff_ring).into_iter();
    // The last input position each worker has processed (the reader waits on it after a
    // fragment: see below).
    let processed: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut txs = Vec::with_capacity(n);
    let mut backs = Vec::with_capacity(n);
    let mut worker_ends = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = bounded::<PacketBatch>(INFLIGHT);
        let (btx, brx) = bounded::<PacketBatch>(INFLIGHT + 2);
        for _ in 0..INFLIGHT + 1 {
            let _ = btx.send(PacketBatch { data: Vec::with_capacity(BATCH * 1600), meta: Vec::with_capacity(BATCH) });
        }
        txs.push(tx);
        backs.push(brx);
        worker_ends.push((rx, btx));
    }
    let started = Instant::now();
    let mut input_packets = 0u64;
    let mut read_error = None;
    let cores: Vec<WorkerCore> = std::thread::scope(|s| -> Result<Vec<WorkerCore>, FileRunError> {
        let mut handles = Vec::with_capacity(n);
        for (i, ((rx, btx), batcher)) in worker_ends.into_iter().zip(batchers).enumerate() {
            let mut core = WorkerCore::new(i, cfg.flow.clone(), batcher, stats.clone());
            if let Some(c) = captures[i].take() {
                core.set_alert_capture(c);
            }
            if let Some(sh) = shards.next() {
                core.set_shard(sh);
            }
            let done = processed[i].clone();
            let pin = cfg.cores.get(i % cfg.cores.len().max(1)).copied();
            let h = std::thread::Builder::new()
                .name(format!("sw-worker-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(c) = pin {
                        if crate::pin::pin_current(c) {
                            core.core = Some(c);
                        } else {
                            tracing::warn!(worker = i, core = c, "could not pin worker to core");
                        }
                    }
                    while let Ok(mut b) = rx.recv() {
                        let data = &b.data;
                        core.burst_numbered(b.meta.iter().map(|&(off, len, wire, ts, seq)| {
                            (&data[off as usize..(off + len) as usize], wire, ts, seq)
                        }));
                        core.end_burst(None, started.elapsed().as_millis() as u64);
                        if let Some(&(.., seq)) = b.meta.last() {
                            done.store(seq, Ordering::Release);
                        }
                        b.data.clear();
                        b.meta.clear();
                        let _ = btx.send(b);
                    }
                    core
                })
                .map_err(FileRunError::Thread)?;
            handles.push(h);
        }
        // The reader: this thread.
        let mut cur: Vec<Option<PacketBatch>> = (0..n).map(|_| None).collect();
        // The last fragment dispatched and its worker: before any later packet goes to another
        // worker, that worker has processed the fragment, so a datagram it completed and handed
        // over is in the owner's ring before the owner sees a later packet (the same order as one
        // worker). Only fragments pay for this wait.
        let mut frag_at: Option<(usize, u64)> = None;
        'files: for r in readers.iter_mut() {
            loop {
                if stop.load(Ordering::Relaxed) {
                    break 'files;
                }
                let rec = match r.next_packet() {
                    Ok(Some(rec)) => rec,
                    Ok(None) => break,
                    Err(e) => {
                        read_error = Some(e);
                        break 'files;
                    }
                };
                input_packets += 1;
                let seq = input_packets;
                let (w, is_frag) = detect::hash::dispatch_frag(rec.data, n, cfg.flow.spread);
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
                if is_frag && mesh_n > 1 {
                    frag_at = Some((w, seq));
                }
                let b = match &mut cur[w] {
                    Some(b) => b,
                    slot => slot.insert(backs[w].recv().expect("worker batches come back until the worker ends")),
                };
                let off = b.data.len() as u32;
                b.data.extend_from_slice(rec.data);
                // Bytes are the captured frame length, as Suricata counts them (and as net_pcap sets
                // pkt_len): the same on both paths.
                // Counted bytes: the captured length as in the file (a rewritten link header
                // does not change it).
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
                    let _ = txs[w].send(b);
                }
            }
        }
        drop(txs);
        Ok(handles.into_iter().map(|h| h.join().expect("worker thread panicked")).collect())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    // End of input: every flow ends at the latest packet time any worker saw, so a flow's
    // reason (timeout or shutdown) does not depend on which worker held it.
    let end = cores.iter().map(|c| c.now()).max().unwrap_or(0);
    let workers = cores.into_iter().map(|c| c.finish(end)).collect();
    let alert_capture = capture_writer.map(|w| w.finish());
    let (exporter, export_error) = export.join().map_err(FileRunError::Export)?;
    if let Some(e) = read_error {
        tracing::error!("{e}; the packets before it were processed");
        return Err(e.into());
    }
    Ok(RunSummary {
        source: "file".into(),
        workers,
        ports: Vec::new(),
        exporter,
        export_error: export_error.map(|e| e.to_string()),
        elapsed_secs: elapsed,
        input_packets,
        alert_capture,
    })
}
