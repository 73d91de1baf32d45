//! The flow table proper: flow slots, the open-addressing index, the per-class LRU lists, the
//! per-flow counters and TCP state, and the records flows end with. It knows nothing of what
//! flows carry: the [`super::Pipeline`] drives it.

use super::*;
use crate::time::{secs, Micros};

pub(crate) const NIL: u32 = u32::MAX;
/// A flow moves to the tail of its LRU list at most once per this many microseconds of packet
/// time (or at once when its class changes). Moving on every packet would touch two other
/// flows' cache lines per packet; this way a list is ordered by a time at most this much older
/// than `last`, so a sweep may end a flow up to this late. Records are unaffected: a packet
/// that finds its flow expired ends it first, and a record's times come from `last`.
pub const RELINK_US: Micros = 1_000_000;
pub(crate) const CLASSES: usize = 12;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct TcpTrack {
    pub(crate) state: TcpState,
    pub(crate) next_seq: [u32; 2],
    pub(crate) window: [u16; 2],
}

#[derive(Debug, Clone, Copy)]
/// One flow: three cache lines, laid out by use (`repr(C)`, 64-byte aligned) so that
/// [`FlowTable::touch_flow`] can load each of them ahead of the update: line 0 lookup and
/// expiry, line 1 counters and list links, line 2 TCP state and per-direction times.
#[repr(C, align(64))]
pub(crate) struct Flow {
    // line 0
    pub(crate) key: FlowKey,
    pub(crate) last: Micros,
    /// The low 32 bits of the key hash (the index's home slot, the flow_id).
    pub(crate) hash: u32,
    /// Whether the initiator (to-server side) is the key's `lo` end.
    pub(crate) init_is_lo: bool,
    pub(crate) state: FlowState,
    pub(crate) class: u8,
    // line 1
    pub(crate) start: Micros,
    /// When the flow was last moved to its list's tail: lists are ordered by this, and it is
    /// within [`RELINK_US`] of `last`.
    pub(crate) relinked: Micros,
    /// Start of the current record interval (the flow start until an interim record).
    pub(crate) flow_start: Micros,
    pub(crate) pkts: [u64; 2],
    pub(crate) bytes: [u64; 2],
    pub(crate) prev: u32,
    pub(crate) next: u32,
    // line 2
    pub(crate) tcp: TcpTrack,
    pub(crate) flags: [u8; 2],
    /// ICMP (and every other non-TCP flow): the first type and code per direction. TCP: the
    /// sequence number where the body the app layer skips ends (see [`APP_SKIP`]).
    pub(crate) aux: [u8; 4],
    pub(crate) first_seen: [Micros; 2],
    pub(crate) last_seen: [Micros; 2],
    /// The app-layer session ([`NO_SESSION`] when none).
    pub(crate) app: u32,
    pub(crate) app_proto: AppProto,
    /// The flow came through a tunnel: its [`TunnelRec`] is in the table's side array.
    pub(crate) tunneled: bool,
    /// [`APP_OOO`], [`APP_SKIP`], [`APP_SKIP_DIR1`], [`ALERTED`], [`NO_ADDR_RULES`], [`TRACKED`].
    pub(crate) app_bits: u8,
}

/// The app-layer session has out-of-order bytes buffered: pure ACKs matter to it then (an ACK
/// past a hole declares the hole lost). Otherwise they skip the app layer.
pub(crate) const APP_OOO: u8 = 1;
/// The session's parser skips a body in one direction (an HTTP body of known length) and
/// nothing is buffered: that direction's segments exactly in order that end before the body
/// does ([`Flow::skip_end`]) are passed over here without touching the session, which learns
/// how far they went ([`crate::app::AppLayer::fast_sync`]) at the flow's next other packet.
pub(crate) const APP_SKIP: u8 = 2;
/// With [`APP_SKIP`]: the skipping direction is 1 (the responder's).
pub(crate) const APP_SKIP_DIR1: u8 = 4;
/// A rule alerted on the flow (kept across app-layer updates).
pub(crate) const ALERTED: u8 = 8;
/// A thresholded rule matched on the flow (a candidate: the merger decides whether it alerted).
pub(crate) const TRACKED: u8 = 32;
/// The flow's addresses index no rule in the rule set's address index (learnt at its first
/// inspected packet; cleared on every flow when the rules are reloaded): its packets skip the
/// lookups.
pub(crate) const NO_ADDR_RULES: u8 = 16;

const _: () = assert!(std::mem::size_of::<Flow>() == 192);

impl Flow {
    pub(crate) const EMPTY: Flow = Flow {
        key: FlowKey::ZERO,
        hash: 0,
        init_is_lo: true,
        state: FlowState::New,
        class: 0,
        flow_start: 0,
        start: 0,
        last: 0,
        relinked: 0,
        pkts: [0; 2],
        bytes: [0; 2],
        first_seen: [0; 2],
        last_seen: [0; 2],
        flags: [0; 2],
        aux: [0; 4],
        tcp: TcpTrack { state: TcpState::None, next_seq: [0; 2], window: [0; 2] },
        prev: NIL,
        next: NIL,
        app: NO_SESSION,
        app_proto: AppProto::Unknown,
        tunneled: false,
        app_bits: 0,
    };

    pub(crate) fn icmp(&self, dir: usize) -> (u8, u8) {
        (self.aux[2 * dir], self.aux[2 * dir + 1])
    }

    pub(crate) fn skip_end(&self) -> u32 {
        u32::from_ne_bytes(self.aux)
    }

    /// The direction whose body is skipped in the flow table, if any.
    pub(crate) fn skip_dir(&self) -> Option<usize> {
        (self.app_bits & APP_SKIP != 0).then_some((self.app_bits & APP_SKIP_DIR1 != 0) as usize)
    }

    /// Suricata's flow_id layout: start seconds and microseconds above a 32-bit flow hash, kept
    /// to 51 bits. Our hash is unseeded, so the id is the same on every run.
    pub(crate) fn flow_id(&self) -> u64 {
        (((self.flow_start / MICROS_PER_SEC) & 0xffff) << 48
            | ((self.flow_start % MICROS_PER_SEC) & 0xffff) << 32
            | self.hash as u64)
            & 0x7_ffff_ffff_ffff
    }

    /// Counts a packet of `bytes` from the key's `lo` end when `src_is_lo`; returns its
    /// direction (0 from the initiator).
    #[inline]
    pub(crate) fn count(&mut self, src_is_lo: bool, bytes: u32, now: Micros) -> usize {
        let dir = (src_is_lo != self.init_is_lo) as usize;
        self.pkts[dir] += 1;
        self.bytes[dir] += bytes as u64;
        if self.first_seen[dir] == 0 {
            self.first_seen[dir] = now;
        }
        self.last_seen[dir] = now;
        if now > self.last {
            self.last = now;
        }
        dir
    }

    /// (src, src port, dest, dest port) from the initiator.
    pub(crate) fn oriented(&self) -> ([u8; 16], u16, [u8; 16], u16) {
        let k = &self.key;
        if self.init_is_lo {
            (k.lo_addr.to_ne_bytes(), k.lo_port, k.hi_addr.to_ne_bytes(), k.hi_port)
        } else {
            (k.hi_addr.to_ne_bytes(), k.hi_port, k.lo_addr.to_ne_bytes(), k.lo_port)
        }
    }

    pub(crate) fn event_meta(&self, timestamp: Micros, tunnel: Option<TunnelRec>) -> EventMeta {
        let (src_ip, src_port, dest_ip, dest_port) = self.oriented();
        EventMeta {
            flow_id: self.flow_id(),
            timestamp,
            ip_version: self.key.ip_version(),
            src_ip,
            dest_ip,
            src_port,
            dest_port,
            proto: self.key.proto,
            vlan: self.key.vlan,
            vlan_count: self.key.vlan_count(),
            tunnel,
            icmp: if matches!(self.key.proto, 1 | 58) {
                let ((t0, c0), (t1, c1)) = (self.icmp(0), self.icmp(1));
                [[t0, c0], [t1, c1]]
            } else {
                [[0; 2]; 2]
            },
            community_seed: None,
        }
    }
}

/// A zeroed vector whose pages are really written now (a `vec![0; n]` may map lazily-zeroed
/// pages, and the packet path would take their page faults).
pub(crate) fn prefaulted_zeros(n: usize) -> Vec<u64> {
    let mut v = vec![0u64; n];
    // Volatile-free but opaque to the optimiser: every page is written.
    for x in v.iter_mut().step_by(512) {
        *x = std::hint::black_box(0);
    }
    v
}

/// The flow table proper: slots, index, LRU lists, records. What flows through it (the app
/// layer, the rules, the behaviour evidence) is the [`super::Pipeline`]'s.
pub struct FlowTable {
    pub(crate) cfg: FlowConfig,
    pub(crate) flows: Vec<Flow>,
    pub(crate) free: Vec<u32>,
    /// (hash high 32 bits << 32) | (slot + 1); 0 is empty.
    pub(crate) index: Vec<u64>,
    pub(crate) mask: usize,
    pub(crate) head: [u32; CLASSES],
    pub(crate) tail: [u32; CLASSES],
    pub(crate) timeout_us: [Micros; CLASSES],
    pub(crate) next_class: usize,
    pub counters: FlowCounters,
    /// Tunnel details of tunnelled flows, by slot: allocated at the first tunnelled flow (most
    /// links carry none).
    pub(crate) tunnels: Vec<Option<TunnelRec>>,
}

impl FlowTable {
    /// Allocates everything the table will ever use. `cfg.capacity` must be ≥ 1.
    pub fn new(cfg: FlowConfig) -> Self {
        let cap = cfg.capacity.clamp(1, (u32::MAX / 2) as usize);
        let index_len = (cap * 2).next_power_of_two();
        let mut timeout_us = [0; CLASSES];
        for (g, t) in [cfg.tcp, cfg.udp, cfg.icmp, cfg.default].iter().enumerate() {
            timeout_us[g * 3] = secs(t.new);
            timeout_us[g * 3 + 1] = secs(t.established);
            timeout_us[g * 3 + 2] = secs(t.closed);
        }
        FlowTable {
            flows: vec![Flow::EMPTY; cap],
            free: (0..cap as u32).rev().collect(),
            index: prefaulted_zeros(index_len),
            mask: index_len - 1,
            head: [NIL; CLASSES],
            tail: [NIL; CLASSES],
            timeout_us,
            next_class: 0,
            counters: FlowCounters::default(),
            tunnels: Vec::new(),
            cfg,
        }
    }

    pub fn capacity(&self) -> usize {
        self.flows.len()
    }

    pub fn len(&self) -> usize {
        self.flows.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub(crate) fn class_of(proto: u8, state: FlowState) -> u8 {
        let g = match proto {
            6 => 0,
            17 => 1,
            1 | 58 => 2,
            _ => 3,
        };
        g * 3 + state as u8
    }

    // ---- index -----------------------------------------------------------------------------

    #[inline]
    /// Whether a rule alerted on the live flow of `key` (`hash` its [`key_hash`]), or a
    /// thresholded rule matched on it (the triggered capture keeps those flows too: whether
    /// they alerted is decided later, across workers).
    pub fn alerted(&self, key: &FlowKey, hash: u64) -> bool {
        self.find(key, hash).is_some_and(|s| self.flows[s as usize].app_bits & (ALERTED | TRACKED) != 0)
    }

    pub(crate) fn find(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let tag = hash >> 32;
        let mut i = hash as usize & self.mask;
        loop {
            let e = self.index[i];
            if e == 0 {
                return None;
            }
            if e >> 32 == tag {
                let slot = (e as u32).wrapping_sub(1);
                if self.flows[slot as usize].key == *key {
                    return Some(slot);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    pub(crate) fn index_insert(&mut self, hash: u64, slot: u32) {
        let mut i = hash as usize & self.mask;
        while self.index[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.index[i] = ((hash >> 32) << 32) | (slot as u64 + 1);
    }

    pub(crate) fn index_remove(&mut self, hash: u64, slot: u32) {
        let want = slot as u64 + 1;
        let mut i = hash as usize & self.mask;
        while self.index[i] & 0xffff_ffff != want {
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion keeps every probe chain unbroken.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let e = self.index[j];
            if e == 0 {
                break;
            }
            let s = (e as u32 - 1) as usize;
            let home = self.flows[s].hash as usize & self.mask;
            // Move e into the hole if its home is not cyclically in (hole, j].
            let dist_home = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.index[hole] = e;
                hole = j;
            }
        }
        self.index[hole] = 0;
    }

    // ---- LRU lists ---------------------------------------------------------------------------

    #[inline]
    pub(crate) fn unlink(&mut self, slot: u32) {
        let (prev, next, class) = {
            let f = &self.flows[slot as usize];
            (f.prev, f.next, f.class as usize)
        };
        if prev == NIL {
            self.head[class] = next;
        } else {
            self.flows[prev as usize].next = next;
        }
        if next == NIL {
            self.tail[class] = prev;
        } else {
            self.flows[next as usize].prev = prev;
        }
    }

    #[inline]
    pub(crate) fn push_tail(&mut self, slot: u32, class: u8) {
        let c = class as usize;
        let t = self.tail[c];
        {
            let f = &mut self.flows[slot as usize];
            f.class = class;
            f.prev = t;
            f.next = NIL;
        }
        if t == NIL {
            self.head[c] = slot;
        } else {
            self.flows[t as usize].next = slot;
        }
        self.tail[c] = slot;
    }

    // ---- records ----------------------------------------------------------------------------

    pub(crate) fn record(&self, slot: u32, reason: EndReason, timestamp: Micros) -> FlowRecord {
        let f = &self.flows[slot as usize];
        let k = &f.key;
        let tcp = (k.proto == 6).then(|| TcpInfo {
            flags_ts: f.flags[0],
            flags_tc: f.flags[1],
            state: (f.tcp.state != TcpState::None).then_some(f.tcp.state),
        });
        let icmp = matches!(k.proto, 1 | 58).then(|| IcmpInfo {
            icmp_type: f.icmp(0).0,
            icmp_code: f.icmp(0).1,
            response: (f.pkts[1] > 0 || f.state == FlowState::Established).then_some(f.icmp(1)),
        });
        FlowRecord {
            meta: f.event_meta(timestamp, self.tunnel_of(slot)),
            pkts_toserver: f.pkts[0],
            pkts_toclient: f.pkts[1],
            bytes_toserver: f.bytes[0],
            bytes_toclient: f.bytes[1],
            start: f.start,
            end: f.last,
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            state: f.state,
            reason,
            tcp,
            icmp,
            app_proto: f.app_proto,
            alerted: f.app_bits & ALERTED != 0,
            tracked: f.app_bits & TRACKED != 0,
        }
    }

    #[inline]
    pub(crate) fn tunnel_of(&self, slot: u32) -> Option<TunnelRec> {
        if self.flows[slot as usize].tunneled {
            self.tunnels.get(slot as usize).copied().flatten()
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn expires_at(&self, slot: u32) -> Micros {
        let f = &self.flows[slot as usize];
        f.last.saturating_add(self.timeout_us[f.class as usize])
    }

    /// Loads the index entry a key hash points to, so that a later update finds it in cache.
    /// Called for a whole chunk of packets in a tight loop, the loads' cache misses overlap
    /// instead of following one another. The caller folds the result into a `black_box` so
    /// the load is kept.
    #[inline]
    pub fn touch_index(&self, hash: u64) -> u64 {
        self.index[hash as usize & self.mask]
    }

    /// Loads the three cache lines of the flow the index entry of `hash` names (after
    /// [`FlowTable::touch_index`]).
    #[inline]
    pub fn touch_flow(&self, hash: u64) -> u64 {
        let e = self.index[hash as usize & self.mask];
        if e >> 32 == hash >> 32 {
            if let Some(f) = self.flows.get((e as u32).wrapping_sub(1) as usize) {
                return f.last ^ f.pkts[0] ^ f.first_seen[0];
            }
        }
        0
    }

    /// Counts a packet (`bytes`, from the key's `lo` end when `src_is_lo`) on an existing live
    /// flow without touching its state (an ICMP error quoting one of its packets). Returns
    /// false when there is no such flow.
    pub fn account_existing(&mut self, key: &FlowKey, hash: u64, src_is_lo: bool, bytes: u32, now: Micros) -> bool {
        let Some(slot) = self.find(key, hash) else { return false };
        if now >= self.expires_at(slot) {
            return false;
        }
        let f = &mut self.flows[slot as usize];
        f.count(src_is_lo, bytes, now);
        if now >= f.relinked + RELINK_US {
            f.relinked = now;
            let class = f.class;
            self.unlink(slot);
            self.push_tail(slot, class);
        }
        true
    }
}
