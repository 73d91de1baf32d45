//! Splits a capture into N pcap files by the symmetric flow hash, one per RX queue, so each
//! queue of a `net_pcap` vdev sees whole flows: the file-replay analogue of symmetric RSS.

use crate::pcap::{PcapError, PcapReader, PcapWriter};
use std::path::{Path, PathBuf};

/// The written files and how many packets each holds.
#[derive(Debug, Clone)]
pub struct Split {
    pub files: Vec<PathBuf>,
    pub packets: Vec<u64>,
    /// The longest captured frame.
    pub max_frame: usize,
    /// Some frames were rewritten from another link type (their counted length is marked in
    /// them: see [`crate::pcap::counted_len`]).
    pub rewritten: bool,
    /// Captures cut short: their whole packets are in the split.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Pcap(#[from] PcapError),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

/// Writes `dir/queue{i}.pcap` for i in 0..n from `inputs`, in order.
pub fn split_captures(
    inputs: &[PathBuf],
    n: usize,
    spread: detect::hash::Spread,
    dir: &Path,
) -> Result<Split, SplitError> {
    let n = n.max(1);
    let files: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("queue{i}.pcap"))).collect();
    let mut writers = Vec::with_capacity(n);
    for f in &files {
        writers.push(PcapWriter::create(f).map_err(|error| SplitError::Io { path: f.clone(), error })?);
    }
    let mut packets = vec![0u64; n];
    let mut max_frame = 0;
    let (mut rewritten, mut notes) = (false, Vec::new());
    let total = crate::pcap::total_bytes(inputs);
    let mut progress = crate::progress::Progress::new("reading the captures", total, crate::progress::Unit::Bytes);
    let (mut read_before, mut count) = (0u64, 0u64);
    for input in inputs {
        let mut r = PcapReader::open(input)?;
        while let Some(rec) = r.next_whole(&mut notes)? {
            rewritten |= rec.data.len() >= 6 && rec.data[..6] == crate::pcap::REWRITTEN_MAC;
            let q = detect::hash::dispatch(rec.data, n, spread);
            writers[q]
                .write(rec.ts, rec.data, rec.orig_len)
                .map_err(|error| SplitError::Io { path: files[q].clone(), error })?;
            packets[q] += 1;
            max_frame = max_frame.max(rec.data.len());
            count += 1;
            if count % 4096 == 0 {
                progress.update(read_before + r.offset(), count);
            }
        }
        read_before += r.offset();
    }
    progress.finish();
    for (w, f) in writers.into_iter().zip(&files) {
        w.finish().map_err(|error| SplitError::Io { path: f.clone(), error })?;
    }
    Ok(Split { files, packets, max_frame, rewritten, notes })
}
