//! IPv4 and IPv6 defragmentation, per worker, bounded.
//!
//! Fragments of one datagram are grouped by (addresses, identification, protocol, IP version,
//! VLAN tags, tunnel id). A datagram is reassembled once its first fragment, its last fragment
//! and every byte between have arrived; the result is decoded like any packet and handed to the
//! flow table as one packet. Bounds, each counted when hit:
//! - at most [`DefragConfig::max_datagrams`] datagrams in progress and
//!   [`DefragConfig::max_bytes`] of fragment data per worker: past either, the oldest datagram
//!   in progress is dropped (a fragment flood cannot grow memory, and recent traffic wins);
//! - at most [`MAX_FRAGMENTS`] fragments and 65 535 bytes of IP payload per datagram;
//! - a datagram not complete [`DefragConfig::timeout`] seconds after its first fragment is
//!   dropped (Suricata's `defrag.timeout`, default 60 s).
//!
//! Overlaps follow the BSD policy, Suricata's default (`defrag.default-config.policy: bsd`):
//! fragments are laid out by offset, so one that starts earlier wins the bytes it shares with one
//! that starts later, and of two that start at the same offset the first received wins. Every
//! overlap is counted, and separately those whose bytes differ (the evasion and teardrop cases).
//! A first fragment too short to hold its TCP or UDP header (RFC 1858's tiny fragment) is
//! counted too.
//!
//! Memory: the table and the per-datagram buffers are allocated while the worker warms up and
//! reused after; the reassembly buffer is one per worker.

use crate::decode::{decode_ip_into, DecodeError, Decoded};
use crate::time::{secs, Micros};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Fragments kept per datagram.
pub const MAX_FRAGMENTS: usize = 256;
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragConfig {
    pub enabled: bool,
    /// Datagrams in reassembly per worker.
    pub max_datagrams: usize,
    /// Fragment data buffered per worker, bytes.
    pub max_bytes: usize,
    /// Seconds a datagram may take to complete.
    pub timeout: u32,
    /// Slots in the ring from each worker to each other for datagrams whose flow the other
    /// owns ([`crate::shard`]).
    pub handoff_ring: usize,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            enabled: true,
            max_datagrams: 4096,
            max_bytes: 32 << 20,
            timeout: 60,
            handoff_ring: crate::shard::DEFAULT_RING,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragCounters {
    /// Fragments taken in.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Reassembled datagrams that then failed to decode.
    pub decode_errors: u64,
    /// Fragments overlapping bytes another fragment of the datagram holds.
    pub overlaps: u64,
    /// Of those, overlaps whose bytes differ.
    pub overlap_mismatch: u64,
    /// First fragments too short for their L4 header (RFC 1858).
    pub tiny: u64,
    /// Datagrams dropped incomplete: timed out.
    pub timeouts: u64,
    /// Datagrams dropped incomplete to make room (datagram or byte bound).
    pub evicted: u64,
    /// Fragments dropped: past 65 535 bytes, too many fragments, cut by the capture.
    pub invalid: u64,
    /// Datagrams in progress now, and their bytes.
    pub pending: u64,
    pub pending_bytes: u64,
}

impl DefragCounters {
    pub fn add(&mut self, o: &DefragCounters) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.decode_errors += o.decode_errors;
        self.overlaps += o.overlaps;
        self.overlap_mismatch += o.overlap_mismatch;
        self.tiny += o.tiny;
        self.timeouts += o.timeouts;
        self.evicted += o.evicted;
        self.invalid += o.invalid;
        self.pending += o.pending;
        self.pending_bytes += o.pending_bytes;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: u128,
    dst: u128,
    id: u32,
    tunnel: u32,
    vlan: [u16; 3],
    proto: u8,
    version: u8,
}

/// FNV-1a over the key's bytes: fragments are rare, this only has to be decent and unseeded.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

#[derive(Debug, Clone, Copy)]
struct Piece {
    offset: u32,
    len: u32,
    /// Where its bytes are in the datagram's `data`.
    at: u32,
}

#[derive(Debug, Default)]
struct Datagram {
    first_seen: Micros,
    generation: u64,
    pieces: Vec<Piece>,
    data: Vec<u8>,
    /// The IP header of the fragment at offset 0, once seen.
    header: Vec<u8>,
    /// End of the datagram's payload, once the last fragment was seen.
    total: Option<u32>,
    /// The decoded summary of the latest fragment (tags and tunnel for the result).
    template: Decoded,
}

/// A reassembled datagram, decoded; `packet` is the IP packet it was decoded from.
pub struct Reassembled<'a> {
    pub d: Decoded,
    pub packet: &'a [u8],
}

/// One worker's defragmenter.
pub struct Defrag {
    cfg: DefragConfig,
    table: HashMap<Key, Datagram, BuildHasherDefault<Fnv>>,
    /// Datagrams by first fragment time: (time, key, generation); stale entries are skipped.
    order: VecDeque<(Micros, Key, u64)>,
    spare: Vec<Datagram>,
    out: Vec<u8>,
    generation: u64,
    bytes: usize,
    pub counters: DefragCounters,
}

impl Defrag {
    pub fn new(cfg: DefragConfig) -> Self {
        Defrag {
            cfg,
            table: HashMap::default(),
            order: VecDeque::new(),
            spare: Vec::new(),
            out: Vec::new(),
            generation: 0,
            bytes: 0,
            counters: DefragCounters::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    fn drop_datagram(&mut self, key: &Key) {
        if let Some(mut g) = self.table.remove(key) {
            self.bytes -= g.data.len();
            g.pieces.clear();
            g.data.clear();
            g.header.clear();
            g.total = None;
            if self.spare.len() < 256 {
                self.spare.push(g);
            }
        }
        self.counters.pending = self.table.len() as u64;
        self.counters.pending_bytes = self.bytes as u64;
    }

    /// Drops datagrams that timed out by `now`, and the oldest while over a bound.
    pub fn expire(&mut self, now: Micros) {
        let timeout = secs(self.cfg.timeout);
        while let Some(&(t, key, generation)) = self.order.front() {
            let live = self.table.get(&key).is_some_and(|g| g.generation == generation);
            if !live {
                self.order.pop_front();
                continue;
            }
            let over = self.table.len() > self.cfg.max_datagrams || self.bytes > self.cfg.max_bytes;
            if now.saturating_sub(t) >= timeout {
                self.counters.timeouts += 1;
            } else if over {
                self.counters.evicted += 1;
            } else {
                break;
            }
            self.order.pop_front();
            self.drop_datagram(&key);
        }
    }

    /// Takes one fragment (`d` decoded from `frame`, `d.kind == Fragment`). Returns the datagram
    /// when this fragment completed it.
    pub fn add(&mut self, frame: &[u8], d: &Decoded, now: Micros) -> Option<Result<Reassembled<'_>, DecodeError>> {
        self.counters.fragments += 1;
        let f = &d.frag;
        let data = frame.get(f.data_start as usize..f.data_start as usize + f.data_len as usize);
        let header = frame.get(f.ip_start as usize..f.ip_start as usize + f.ip_hdr_len as usize);
        let (Some(data), Some(header)) = (data, header) else {
            self.counters.invalid += 1;
            return None;
        };
        let end = f.offset as u32 + data.len() as u32;
        if end as usize > MAX_DATAGRAM {
            self.counters.invalid += 1;
            return None;
        }
        if f.offset == 0 && f.more {
            let need = match d.proto {
                6 => 20,
                17 => 8,
                _ => 0,
            };
            if data.len() < need {
                self.counters.tiny += 1;
            }
        }
        let t = &d.tunnel;
        let key = Key {
            src: d.src,
            dst: d.dst,
            id: f.id,
            tunnel: if t.kind.keys_flows() { t.id } else { 0 },
            vlan: d.vlan,
            proto: d.proto,
            version: d.ip_version,
        };
        if !self.table.contains_key(&key) {
            self.generation += 1;
            let mut g = self.spare.pop().unwrap_or_default();
            g.first_seen = now;
            g.generation = self.generation;
            self.order.push_back((now, key, self.generation));
            self.table.insert(key, g);
        }
        let g = self.table.get_mut(&key)?;
        if g.pieces.len() == MAX_FRAGMENTS {
            self.counters.invalid += 1;
            return None;
        }
        g.template = *d;
        if f.offset == 0 && g.header.is_empty() {
            g.header.extend_from_slice(header);
        }
        if !f.more {
            g.total = Some(end);
        }
        let at = g.data.len() as u32;
        g.data.extend_from_slice(data);
        self.bytes += data.len();
        // Laid out by offset; equal offsets keep arrival order.
        let pos = g.pieces.iter().position(|p| p.offset > f.offset as u32).unwrap_or(g.pieces.len());
        g.pieces.insert(pos, Piece { offset: f.offset as u32, len: data.len() as u32, at });
        let complete = g.total.is_some() && !g.header.is_empty() && covers(&g.pieces, g.total.unwrap_or(0));
        self.counters.pending = self.table.len() as u64;
        self.counters.pending_bytes = self.bytes as u64;
        if !complete {
            if self.table.len() > self.cfg.max_datagrams || self.bytes > self.cfg.max_bytes {
                self.expire(now);
            }
            return None;
        }
        // Lay the datagram out: header, then every byte from the earliest-starting piece that
        // holds it.
        let g = self.table.get(&key)?;
        let total = g.total.unwrap_or(0) as usize;
        self.out.clear();
        self.out.extend_from_slice(&g.header);
        let hl = g.header.len();
        self.out.resize(hl + total, 0);
        let mut filled = 0u32;
        for p in &g.pieces {
            // A fragment may run past the end the last fragment gave (inconsistent fragments, an
            // evasion): the datagram ends there, the rest is ignored (and counted as overlap).
            if p.offset >= total as u32 {
                self.counters.overlaps += 1;
                continue;
            }
            let len = p.len.min(total as u32 - p.offset);
            let bytes = &g.data[p.at as usize..(p.at + len) as usize];
            let pend = p.offset + len;
            if p.offset < filled {
                self.counters.overlaps += 1;
                let shared = (filled.min(pend) - p.offset) as usize;
                let old = &self.out[hl + p.offset as usize..hl + p.offset as usize + shared];
                if old != &bytes[..shared] {
                    self.counters.overlap_mismatch += 1;
                }
            }
            if pend > filled {
                let from = filled.max(p.offset);
                let src = &bytes[(from - p.offset) as usize..];
                self.out[hl + from as usize..hl + pend as usize].copy_from_slice(src);
                filled = pend;
            }
        }
        let template = g.template;
        // Fix the header: a whole datagram.
        if template.ip_version == 4 {
            let len = (hl + total) as u16;
            self.out[2..4].copy_from_slice(&len.to_be_bytes());
            self.out[6] &= 0x40; // keep DF, clear MF and the offset
            self.out[7] = 0;
        } else {
            self.out[4..6].copy_from_slice(&(total as u16).to_be_bytes());
            self.out[6] = template.proto;
        }
        self.drop_datagram(&key);
        self.counters.reassembled += 1;
        let mut out = template;
        Some(match decode_ip_into(&self.out, &mut out) {
            Ok(()) => Ok(Reassembled { d: out, packet: &self.out }),
            Err(e) => {
                self.counters.decode_errors += 1;
                Err(e)
            }
        })
    }
}

/// Whether the pieces (sorted by offset) cover 0..total without a hole.
fn covers(pieces: &[Piece], total: u32) -> bool {
    let mut filled = 0;
    for p in pieces {
        if p.offset > filled {
            return false;
        }
        filled = filled.max(p.offset + p.len);
    }
    filled >= total
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::{decode, Kind};

    /// An IPv4 UDP datagram cut into fragments at the given (offset, len) pieces.
    fn frags(payload: &[u8], cuts: &[(usize, usize)], id: u16) -> Vec<Vec<u8>> {
        let mut udp = vec![0x30, 0x39, 0, 53];
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let total = udp.len();
        cuts.iter()
            .map(|&(off, len)| {
                let more = off + len < total;
                let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
                let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
                ip[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
                ip[4..6].copy_from_slice(&id.to_be_bytes());
                let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
                ip[6..8].copy_from_slice(&fo.to_be_bytes());
                f.extend_from_slice(&ip);
                f.extend_from_slice(&udp[off..off + len]);
                f
            })
            .collect()
    }

    fn feed(df: &mut Defrag, frames: &[Vec<u8>]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let d = decode(f).unwrap();
            assert_eq!(d.kind, Kind::Fragment);
            if let Some(Ok(r)) = df.add(f, &d, 1_000 + i as u64) {
                let p = r.packet;
                out.push((r.d.dst_port, p[r.d.payload_offset as usize..][..r.d.payload_len as usize].to_vec()));
            }
        }
        out
    }

    #[test]
    fn test_in_order_out_of_order_and_duplicates() {
        let payload: Vec<u8> = (0..40u8).collect();
        let mut df = Defrag::new(DefragConfig::default());
        assert_eq!(feed(&mut df, &frags(&payload, &[(0, 16), (16, 16), (32, 16)], 1)), [(53, payload.clone())]);
        assert_eq!(feed(&mut df, &frags(&payload, &[(32, 16), (0, 16), (16, 16)], 2)), [(53, payload.clone())]);
        // a duplicate of the first fragment: an identical overlap
        let f = frags(&payload, &[(0, 16), (0, 16), (16, 32)], 3);
        assert_eq!(feed(&mut df, &f), [(53, payload.clone())]);
        assert_eq!((df.counters.reassembled, df.counters.overlaps, df.counters.overlap_mismatch), (3, 1, 0));
        assert_eq!((df.counters.pending, df.counters.pending_bytes), (0, 0));
    }

    #[test]
    fn test_overlap_policy_bsd_and_teardrop() {
        let payload: Vec<u8> = vec![0xaa; 40];
        let mut df = Defrag::new(DefragConfig::default());
        let mut f = frags(&payload, &[(0, 24), (16, 32)], 9);
        // The second fragment (offset 16) carries different bytes where it overlaps the first:
        // the first starts earlier, so its bytes are kept.
        let n = f[1].len();
        for b in &mut f[1][n - 32..n - 24] {
            *b = 0xbb;
        }
        let out = feed(&mut df, &f);
        assert_eq!(out[0].1, payload);
        assert_eq!((df.counters.overlaps, df.counters.overlap_mismatch), (1, 1));
    }

    #[test]
    fn test_fragment_past_the_end_is_cut() {
        // The last fragment says the datagram ends at 40; an earlier one claims [32, 48).
        // (Found by the `defrag` fuzz target.)
        let payload: Vec<u8> = vec![7; 32];
        let mut df = Defrag::new(DefragConfig::default());
        let mut f = frags(&payload, &[(32, 8), (0, 32)], 11);
        let mut long = frags(&[7u8; 40], &[(32, 16)], 11).remove(0);
        long[14 + 6] = 0x20; // MF set
        long[14 + 7] = 0x04; // offset 32
        f.insert(0, long);
        let out = feed(&mut df, &f);
        assert_eq!(out.len(), 1);
        assert!(df.counters.overlaps >= 1);
    }

    #[test]
    fn test_ipv6_fragments_out_of_order() {
        // UDP (8 + 32 bytes) after a fragment header, in two pieces sent last first.
        let mut udp = vec![0x30, 0x39, 0, 53, 0, 40, 0, 0];
        udp.extend((0..32u8).map(|i| i ^ 0x5a));
        let frame = |off: usize, len: usize| {
            let more = off + len < udp.len();
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&((8 + len) as u16).to_be_bytes());
            ip.extend_from_slice(&[44, 64]);
            ip.extend_from_slice(&[0x20; 16]);
            ip.extend_from_slice(&[0x21; 16]);
            f.extend_from_slice(&ip);
            let fo = (off as u16) | more as u16;
            f.extend_from_slice(&[17, 0]);
            f.extend_from_slice(&fo.to_be_bytes());
            f.extend_from_slice(&0xabcdu32.to_be_bytes());
            f.extend_from_slice(&udp[off..off + len]);
            f
        };
        let mut df = Defrag::new(DefragConfig::default());
        let out = feed(&mut df, &[frame(24, 16), frame(0, 24)]);
        assert_eq!(out, [(53, udp[8..].to_vec())]);
        assert_eq!(df.counters.reassembled, 1);
    }

    #[test]
    fn test_bounds_timeout_and_tiny() {
        let payload: Vec<u8> = vec![1; 40];
        let cfg = DefragConfig { max_datagrams: 2, ..DefragConfig::default() };
        let mut df = Defrag::new(cfg);
        // Three incomplete datagrams: the oldest is dropped for the third.
        for id in 0..3 {
            feed(&mut df, &frags(&payload, &[(0, 16)], id));
        }
        assert_eq!((df.counters.evicted, df.counters.pending), (1, 2));
        df.expire(1_000 + 61_000_000);
        assert_eq!((df.counters.timeouts, df.counters.pending, df.counters.pending_bytes), (2, 0, 0));
        // A first fragment of 8 bytes holds the UDP header, one of 0 does not... use TCP's 20:
        let mut df = Defrag::new(DefragConfig::default());
        let mut f = frags(&payload, &[(0, 8), (8, 40)], 5);
        f[0][14 + 9] = 6; // call it TCP: 8 bytes cannot hold its header
        f[1][14 + 9] = 6;
        feed(&mut df, &f);
        assert_eq!(df.counters.tiny, 1);
    }
}
