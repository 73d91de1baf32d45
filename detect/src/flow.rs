//! The per-worker flow table.
//!
//! One table per worker, never shared. Everything is allocated up front in [`FlowTable::new`]:
//! the flow slots, an open-addressing index (linear probing, backward-shift deletion) and the
//! intrusive LRU lists; the packet path never allocates and never rehashes.
//!
//! Keys are canonical and bidirectional ([`FlowKey`]): addresses, ports, protocol and VLAN ids,
//! the lower (address, port) end first. The sender of a flow's first packet is its initiator and
//! is written as `src`, as Suricata does.
//!
//! Expiry follows Suricata's flow timeouts per protocol and state (new / established / closed),
//! on packet time: a flow times out when `now >= last_seen + timeout`. Each (protocol, state)
//! class has its own LRU list; all flows of a list share one timeout, so the oldest flow of a
//! list is always the first to expire, and [`FlowTable::expire`] only looks at list heads, a
//! bounded number per call. A packet that finds its flow already expired ends it first (reason
//! `timeout`) and starts a new one, so records do not depend on when sweeps ran. An active
//! timeout emits interim records (reason `active`) for long flows: each record carries the
//! packets and bytes since the previous one, so the records of a flow add up to its totals.
//!
//! When the table is full the flow idle the longest (the oldest list head) is evicted with a
//! record of reason `evicted` (or `timeout` if it had expired anyway).

use crate::app::{wants_packets, AppConfig, AppEvent, AppLayer, AppProto, TcpSeg, NO_SESSION};
use crate::decode::{Decoded, Kind, TunnelKind};
use crate::hash::key_hash;
use crate::rules::sketch::WindowSketch;
use crate::rules::{Hdr, Matcher, RuleSet};
use crate::time::{secs, Micros, MICROS_PER_SEC};
use crate::wire::TcpFlags;
use std::sync::Arc;

/// Timeouts of one protocol, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub new: u32,
    pub established: u32,
    pub closed: u32,
}

/// Flow-table settings of one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// Flows per worker table, preallocated.
    pub capacity: usize,
    pub tcp: Timeouts,
    pub udp: Timeouts,
    pub icmp: Timeouts,
    /// Every other IP protocol.
    pub default: Timeouts,
    /// Seconds after which a live flow emits an interim record; 0 turns it off.
    pub active_timeout: u32,
    /// The most flows one [`FlowTable::expire`] call ends.
    pub expire_budget: usize,
    /// The application layer (protocol identification, reassembly, parsers).
    pub app: AppConfig,
    /// IP defragmentation.
    pub defrag: crate::defrag::DefragConfig,
    /// How the source spreads packets over workers (`capture.rss`).
    pub spread: crate::hash::Spread,
    /// The rule set the workers inspect with (none: no detection).
    pub rules: SharedRules,
}

/// The workers' rule set: read-only, shared, and replaceable (a reload) without stopping
/// them. A worker reads the generation once per burst (one atomic load) and takes the new set
/// only when it changed: no lock on the packet path.
#[derive(Debug)]
pub struct RulesSlot {
    generation: std::sync::atomic::AtomicU64,
    current: std::sync::Mutex<Arc<RuleSet>>,
}

impl RulesSlot {
    pub fn new(set: Arc<RuleSet>) -> RulesSlot {
        RulesSlot { generation: std::sync::atomic::AtomicU64::new(1), current: std::sync::Mutex::new(set) }
    }

    /// Puts `set` in place of the current one; workers take it at their next burst.
    pub fn replace(&self, set: Arc<RuleSet>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *cur = set;
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current set and its generation.
    pub fn current(&self) -> (u64, Arc<RuleSet>) {
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (self.generation(), cur.clone())
    }
}

/// A handle on the rules slot (none: no detection); equal when it is the same slot.
#[derive(Debug, Clone, Default)]
pub struct SharedRules(pub Option<Arc<RulesSlot>>);

impl SharedRules {
    pub fn new(set: RuleSet) -> SharedRules {
        SharedRules(Some(Arc::new(RulesSlot::new(Arc::new(set)))))
    }
}

impl PartialEq for SharedRules {
    fn eq(&self, o: &SharedRules) -> bool {
        match (&self.0, &o.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for SharedRules {}

/// An alert for [`RecordSink::emit_alert`].
#[derive(Debug, Clone, Copy)]
pub struct AlertInfo<'a> {
    pub set: &'a Arc<RuleSet>,
    /// Index into the set's rules.
    pub rule: u32,
    /// The flow's app protocol (for the alert's `app_proto`).
    pub app_proto: AppProto,
    /// The direction the rule matched in (the meta is oriented that way).
    pub to_server: bool,
    /// An indicator match: the indicator (index into the set's `iocs.entries`).
    pub ioc: Option<u32>,
    /// A thresholded rule's match: its track, and the input position of the packet it matched
    /// on (`u64::MAX`: when the flow ended). A candidate for the threshold merger, not yet an
    /// alert.
    pub tracked: Option<(crate::rules::threshold::TrackKey, u64)>,
}

impl Default for FlowConfig {
    /// Suricata 7's default timeouts; 30 minutes active timeout (NetFlow's usual value).
    fn default() -> Self {
        FlowConfig {
            capacity: 65_536,
            tcp: Timeouts { new: 60, established: 600, closed: 60 },
            udp: Timeouts { new: 30, established: 300, closed: 0 },
            icmp: Timeouts { new: 30, established: 300, closed: 0 },
            default: Timeouts { new: 30, established: 300, closed: 0 },
            active_timeout: 1800,
            expire_budget: 64,
            app: AppConfig::default(),
            defrag: crate::defrag::DefragConfig::default(),
            spread: crate::hash::Spread::Flow,
            rules: SharedRules::default(),
        }
    }
}

/// Suricata's flow state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlowState {
    #[default]
    New = 0,
    Established = 1,
    Closed = 2,
}

impl FlowState {
    pub fn name(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Why a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Idle past its timeout.
    Timeout,
    /// Still live when the input ended or the sensor stopped.
    Shutdown,
    /// Pushed out of a full table.
    Evicted,
    /// Interim record of a live flow (active timeout).
    Active,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::Evicted => "evicted",
            EndReason::Active => "active",
        }
    }
}

/// TCP session state, with Suricata's names (its stream engine's view of the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TcpState {
    /// No session: the flow did not start with a SYN (Suricata's default, midstream off).
    #[default]
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    TimeWait,
    LastAck,
    CloseWait,
    Closing,
    Closed,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::LastAck => "last_ack",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }

    /// The flow state Suricata derives from the session state.
    fn flow_state(self) -> FlowState {
        match self {
            TcpState::None | TcpState::SynSent | TcpState::SynRecv => FlowState::New,
            TcpState::Established
            | TcpState::FinWait1
            | TcpState::FinWait2
            | TcpState::Closing
            | TcpState::CloseWait => FlowState::Established,
            TcpState::LastAck | TcpState::TimeWait | TcpState::Closed => FlowState::Closed,
        }
    }
}

/// Canonical bidirectional flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[repr(C)]
pub struct FlowKey {
    /// Addresses as the bytes of a `u128` in native order (`u128::from_ne_bytes`): comparing
    /// and hashing them is then a few integer operations. The order between `lo` and `hi` only
    /// has to be consistent, not numeric.
    pub lo_addr: u128,
    pub hi_addr: u128,
    pub lo_port: u16,
    pub hi_port: u16,
    /// The VNI or GRE key of the tunnel the flow runs in, when that tunnel kind keys flows
    /// ([`TunnelKind::keys_flows`]); else 0.
    pub tunnel_id: u32,
    pub vlan: [u16; 3],
    pub proto: u8,
    /// Bit 0: IPv6; bits 1-2: the VLAN count; bits 3-5: the [`TunnelKind`] of `tunnel_id`.
    /// Packed so the key stays 48 bytes (a flow's first cache line holds it and the expiry
    /// fields).
    pub info: u8,
}

impl FlowKey {
    /// The all-zero key, for preallocated slots.
    pub const ZERO: FlowKey =
        FlowKey { lo_addr: 0, hi_addr: 0, lo_port: 0, hi_port: 0, tunnel_id: 0, vlan: [0; 3], proto: 0, info: 0 };

    #[inline]
    pub fn ip_version(&self) -> u8 {
        if self.info & 1 != 0 {
            6
        } else {
            4
        }
    }

    #[inline]
    pub fn vlan_count(&self) -> u8 {
        (self.info >> 1) & 3
    }

    /// The key of a decoded packet and whether the packet's source is the key's `lo` end.
    /// ICMP and ICMPv6 flows are keyed by addresses only, as Suricata keys them.
    #[inline]
    pub fn from_decoded(d: &Decoded) -> (FlowKey, bool) {
        let (sp, dp) = if has_ports(d.proto) { (d.src_port, d.dst_port) } else { (0, 0) };
        let (src, dst) = (d.src, d.dst);
        let src_is_lo = (src, sp) <= (dst, dp);
        let (lo_addr, lo_port, hi_addr, hi_port) = if src_is_lo { (src, sp, dst, dp) } else { (dst, dp, src, sp) };
        let t = &d.tunnel;
        let (kind, id) = if t.kind.keys_flows() { (t.kind as u8, t.id) } else { (0, 0) };
        (
            FlowKey {
                lo_addr,
                hi_addr,
                lo_port,
                hi_port,
                tunnel_id: id,
                vlan: d.vlan,
                proto: d.proto,
                info: (d.ip_version == 6) as u8 | (d.vlan_count & 3) << 1 | kind << 3,
            },
            src_is_lo,
        )
    }
}

#[inline]
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

/// The tunnel a flow's first packet came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelRec {
    /// The innermost tunnel's kind and id (VNI, GRE key, ERSPAN session).
    pub kind: TunnelKind,
    pub id: u32,
    pub depth: u8,
    /// The outermost IP tuple, as on that packet.
    pub ip_version: u8,
    pub src_ip: [u8; 16],
    pub dest_ip: [u8; 16],
    pub src_port: u16,
    pub dest_port: u16,
    pub proto: u8,
}

impl TunnelRec {
    pub fn of(d: &Decoded) -> Option<TunnelRec> {
        let t = &d.tunnel;
        (t.kind != TunnelKind::None).then(|| TunnelRec {
            kind: t.kind,
            id: t.id,
            depth: t.depth,
            ip_version: t.outer_version,
            src_ip: t.outer_src.to_ne_bytes(),
            dest_ip: t.outer_dst.to_ne_bytes(),
            src_port: t.outer_sport,
            dest_port: t.outer_dport,
            proto: t.outer_proto,
        })
    }
}

/// TCP details of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    pub flags_ts: u8,
    pub flags_tc: u8,
    /// `None` when no session was tracked (the flow did not open with a SYN).
    pub state: Option<TcpState>,
}

/// ICMP details of a record: type and code of the first packet each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpInfo {
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub response: Option<(u8, u8)>,
}

/// A finished (or interim) flow record, a plain value the exporter formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// The flow's id and tuple. Its `flow_id` is deterministic (the same on every run: from
    /// the flow's start time and key hash); its `timestamp` is when the record was due on the
    /// packet clock: the expiry time for a timeout, the end of input for a shutdown, the
    /// packet's time for an eviction or interim record.
    pub meta: EventMeta,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Micros,
    pub end: Micros,
    /// First and last packet of each direction (to server, to client); 0 when none.
    pub first_seen: [Micros; 2],
    pub last_seen: [Micros; 2],
    pub state: FlowState,
    pub reason: EndReason,
    pub tcp: Option<TcpInfo>,
    pub icmp: Option<IcmpInfo>,
    pub app_proto: AppProto,
    /// A rule alerted on the flow.
    pub alerted: bool,
    /// A thresholded rule matched on it: whether that alerted is the threshold merger's to
    /// say (the exporter completes `alerted`).
    pub tracked: bool,
}

/// A flow's id and tuple, oriented from the initiator (as Suricata orients `src`/`dest` of flow
/// and app-layer events): the head of a flow record and the context of an app-layer event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    pub flow_id: u64,
    /// The time of the packet that completed the event (the flow's end for events logged when
    /// it ends).
    pub timestamp: Micros,
    pub ip_version: u8,
    pub src_ip: [u8; 16],
    pub dest_ip: [u8; 16],
    pub src_port: u16,
    pub dest_port: u16,
    pub proto: u8,
    pub vlan: [u16; 3],
    pub vlan_count: u8,
    pub tunnel: Option<TunnelRec>,
}

impl EventMeta {
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..self.vlan_count as usize]
    }
}

impl FlowRecord {
    pub fn vlans(&self) -> &[u16] {
        self.meta.vlans()
    }

    /// Whole seconds between start and end, as Suricata computes `age`.
    pub fn age(&self) -> u64 {
        (self.end / MICROS_PER_SEC).saturating_sub(self.start / MICROS_PER_SEC)
    }
}

/// Where the table writes records and app-layer events.
pub trait RecordSink {
    fn emit(&mut self, rec: &FlowRecord);
    fn emit_event(&mut self, meta: &EventMeta, ev: &AppEvent<'_>);
    /// A rule matched; `meta` is oriented in the direction it matched.
    fn emit_alert(&mut self, _meta: &EventMeta, _alert: &AlertInfo<'_>) {}
    /// A finished window of this worker's behaviour evidence, for the aggregator.
    fn emit_sketch(&mut self, _sketch: crate::rules::sketch::WindowSketch) {}
    /// The worker's watermark, once per burst: its later thresholded matches are at packet
    /// time `now` or later (the threshold merger waits for every worker's).
    fn mark(&mut self, _now: Micros) {}
    /// Whether the sink wants every packet after its flow update ([`RecordSink::packet`]);
    /// asked once per burst.
    fn wants_packets(&self) -> bool {
        false
    }
    /// A packet once its flow is updated: its flow's hash (0 when it is on no flow: not IP, a
    /// fragment, undecodable) and whether a rule has alerted on that flow (triggered capture).
    fn packet(&mut self, _data: &[u8], _wire_len: u32, _ts: Micros, _flow: u64, _alerted: bool) {}
}

/// This worker's behaviour evidence for the window of `now`: a window it leaves goes to the
/// aggregator, even empty (the aggregator judges a window once every worker has left it).
fn roll_sketch<'m, S: RecordSink>(
    matcher: &'m mut Matcher,
    sp: &crate::rules::sketch::SketchConfig,
    now: Micros,
    sink: &mut S,
) -> &'m mut WindowSketch {
    let w = now / (sp.window_secs.max(1) * 1_000_000);
    let sk = matcher.sketch(sp);
    if !sk.started {
        sk.start(w, *sp);
    } else if w > sk.window {
        let done = std::mem::take(sk);
        sink.emit_sketch(done);
        sk.start(w, *sp);
    }
    sk
}

/// Collects flow records; app-layer events are only counted (`AppCounters::events` has them).
impl RecordSink for Vec<FlowRecord> {
    fn emit(&mut self, rec: &FlowRecord) {
        self.push(*rec);
    }
    fn emit_event(&mut self, _: &EventMeta, _: &AppEvent<'_>) {}
}

/// Flow-table counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub created: u64,
    pub timed_out: u64,
    pub evicted: u64,
    pub shutdown: u64,
    pub interim: u64,
    /// TCP flows ended early because a new SYN reused their tuple after they closed (their
    /// records say `timeout`, as Suricata's do).
    pub tcp_reuse: u64,
    /// Live flows now.
    pub active: u64,
}

impl FlowCounters {
    /// Adds another table's counters (for totals across workers).
    pub fn add(&mut self, o: &FlowCounters) {
        self.created += o.created;
        self.timed_out += o.timed_out;
        self.evicted += o.evicted;
        self.shutdown += o.shutdown;
        self.interim += o.interim;
        self.tcp_reuse += o.tcp_reuse;
        self.active += o.active;
    }
}

const NIL: u32 = u32::MAX;
/// A flow moves to the tail of its LRU list at most once per this many microseconds of packet
/// time (or at once when its class changes). Moving on every packet would touch two other
/// flows' cache lines per packet; this way a list is ordered by a time at most this much older
/// than `last`, so a sweep may end a flow up to this late. Records are unaffected: a packet
/// that finds its flow expired ends it first, and a record's times come from `last`.
pub const RELINK_US: Micros = 1_000_000;
const CLASSES: usize = 12;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct TcpTrack {
    state: TcpState,
    next_seq: [u32; 2],
    window: [u16; 2],
}

#[derive(Debug, Clone, Copy)]
/// One flow: three cache lines, laid out by use (`repr(C)`, 64-byte aligned) so that
/// [`FlowTable::touch_flow`] can load each of them ahead of the update: line 0 lookup and
/// expiry, line 1 counters and list links, line 2 TCP state and per-direction times.
#[repr(C, align(64))]
struct Flow {
    // line 0
    key: FlowKey,
    last: Micros,
    /// The low 32 bits of the key hash (the index's home slot, the flow_id).
    hash: u32,
    /// Whether the initiator (to-server side) is the key's `lo` end.
    init_is_lo: bool,
    state: FlowState,
    class: u8,
    // line 1
    start: Micros,
    /// When the flow was last moved to its list's tail: lists are ordered by this, and it is
    /// within [`RELINK_US`] of `last`.
    relinked: Micros,
    /// Start of the current record interval (the flow start until an interim record).
    flow_start: Micros,
    pkts: [u64; 2],
    bytes: [u64; 2],
    prev: u32,
    next: u32,
    // line 2
    tcp: TcpTrack,
    flags: [u8; 2],
    /// ICMP (and every other non-TCP flow): the first type and code per direction. TCP: the
    /// sequence number where the body the app layer skips ends (see [`APP_SKIP`]).
    aux: [u8; 4],
    first_seen: [Micros; 2],
    last_seen: [Micros; 2],
    /// The app-layer session ([`NO_SESSION`] when none).
    app: u32,
    app_proto: AppProto,
    /// The flow came through a tunnel: its [`TunnelRec`] is in the table's side array.
    tunneled: bool,
    /// [`APP_OOO`], [`APP_SKIP`], [`APP_SKIP_DIR1`], [`ALERTED`], [`NO_ADDR_RULES`], [`TRACKED`].
    app_bits: u8,
}

/// The app-layer session has out-of-order bytes buffered: pure ACKs matter to it then (an ACK
/// past a hole declares the hole lost). Otherwise they skip the app layer.
const APP_OOO: u8 = 1;
/// The session's parser skips a body in one direction (an HTTP body of known length) and
/// nothing is buffered: that direction's segments exactly in order that end before the body
/// does ([`Flow::skip_end`]) are passed over here without touching the session, which learns
/// how far they went ([`crate::app::AppLayer::fast_sync`]) at the flow's next other packet.
const APP_SKIP: u8 = 2;
/// With [`APP_SKIP`]: the skipping direction is 1 (the responder's).
const APP_SKIP_DIR1: u8 = 4;
/// A rule alerted on the flow (kept across app-layer updates).
const ALERTED: u8 = 8;
/// A thresholded rule matched on the flow (a candidate: the merger decides whether it alerted).
const TRACKED: u8 = 32;
/// The flow's addresses index no rule in the rule set's address index (learnt at its first
/// inspected packet; cleared on every flow when the rules are reloaded): its packets skip the
/// lookups.
const NO_ADDR_RULES: u8 = 16;

const _: () = assert!(std::mem::size_of::<Flow>() == 192);

impl Flow {
    const EMPTY: Flow = Flow {
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

    fn icmp(&self, dir: usize) -> (u8, u8) {
        (self.aux[2 * dir], self.aux[2 * dir + 1])
    }

    fn skip_end(&self) -> u32 {
        u32::from_ne_bytes(self.aux)
    }

    /// The direction whose body is skipped in the flow table, if any.
    fn skip_dir(&self) -> Option<usize> {
        (self.app_bits & APP_SKIP != 0).then_some((self.app_bits & APP_SKIP_DIR1 != 0) as usize)
    }

    /// Suricata's flow_id layout: start seconds and microseconds above a 32-bit flow hash, kept
    /// to 51 bits. Our hash is unseeded, so the id is the same on every run.
    fn flow_id(&self) -> u64 {
        (((self.flow_start / MICROS_PER_SEC) & 0xffff) << 48
            | ((self.flow_start % MICROS_PER_SEC) & 0xffff) << 32
            | self.hash as u64)
            & 0x7_ffff_ffff_ffff
    }

    /// Counts a packet of `bytes` from the key's `lo` end when `src_is_lo`; returns its
    /// direction (0 from the initiator).
    #[inline]
    fn count(&mut self, src_is_lo: bool, bytes: u32, now: Micros) -> usize {
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
    fn oriented(&self) -> ([u8; 16], u16, [u8; 16], u16) {
        let k = &self.key;
        if self.init_is_lo {
            (k.lo_addr.to_ne_bytes(), k.lo_port, k.hi_addr.to_ne_bytes(), k.hi_port)
        } else {
            (k.hi_addr.to_ne_bytes(), k.hi_port, k.lo_addr.to_ne_bytes(), k.lo_port)
        }
    }

    fn event_meta(&self, timestamp: Micros, tunnel: Option<TunnelRec>) -> EventMeta {
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
        }
    }
}

/// `meta` (oriented from the initiator) turned to face the direction a rule matched in.
fn oriented_meta(mut meta: EventMeta, to_server: bool) -> EventMeta {
    if !to_server {
        std::mem::swap(&mut meta.src_ip, &mut meta.dest_ip);
        std::mem::swap(&mut meta.src_port, &mut meta.dest_port);
    }
    meta
}

/// An app-layer event out: to the sink, then through the transaction rules.
#[allow(clippy::too_many_arguments)]
fn event_out<S: RecordSink>(
    sink: &mut S,
    rules: &Option<Arc<RuleSet>>,
    matcher: &mut Matcher,
    f: &Flow,
    slot: u32,
    ts: Micros,
    tunnel: Option<TunnelRec>,
    seq: u64,
    alerted: &mut u8,
    ev: &AppEvent<'_>,
) {
    let meta = f.event_meta(ts, tunnel);
    sink.emit_event(&meta, ev);
    let Some(set) = rules else { return };
    let v6 = meta.ip_version == 6;
    let h = Hdr {
        src: crate::rules::addr::from_raw(u128::from_ne_bytes(meta.src_ip), v6),
        dst: crate::rules::addr::from_raw(u128::from_ne_bytes(meta.dest_ip), v6),
        sport: meta.src_port,
        dport: meta.dest_port,
        proto: meta.proto,
        to_server: true,
        established: f.state != FlowState::New,
        app: ev.proto(),
        ..Hdr::default()
    };
    if let (Some(sp), AppEvent::Dns(crate::app::dns::DnsEvent { msg, .. })) = (set.behave.spanning(), ev) {
        if !msg.is_response() {
            let sk = roll_sketch(matcher, sp, ts, sink);
            msg.for_each_question_name(|q, name| sk.dns_query(h.src, name, q.rrtype));
        }
    }
    matcher.on_event(set, &h, ev, slot, &mut |hit| {
        *alerted |= hit_bit(&hit);
        let m = oriented_meta(meta, hit.to_server);
        sink.emit_alert(&m, &AlertInfo::of(set, &hit, ev.proto(), seq));
    });
}

/// The flow bit a hit sets: [`ALERTED`], or [`TRACKED`] for a thresholded rule's candidate.
#[inline]
fn hit_bit(hit: &crate::rules::Hit) -> u8 {
    if hit.tracked.is_some() {
        TRACKED
    } else {
        ALERTED
    }
}

impl<'a> AlertInfo<'a> {
    /// A rule's hit on a flow of `app_proto`, on the packet at input position `seq`.
    #[inline]
    pub fn of(set: &'a Arc<RuleSet>, hit: &crate::rules::Hit, app_proto: AppProto, seq: u64) -> Self {
        AlertInfo {
            set,
            rule: hit.rule,
            app_proto,
            to_server: hit.to_server,
            ioc: hit.ioc,
            tracked: hit.tracked.map(|k| (k, seq)),
        }
    }
}

/// A zeroed vector whose pages are really written now (a `vec![0; n]` may map lazily-zeroed
/// pages, and the packet path would take their page faults).
fn prefaulted_zeros(n: usize) -> Vec<u64> {
    let mut v = vec![0u64; n];
    // Volatile-free but opaque to the optimiser: every page is written.
    for x in v.iter_mut().step_by(512) {
        *x = std::hint::black_box(0);
    }
    v
}

/// Sequence-number comparison modulo 2^32.
#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// A per-worker flow table. See the module docs.
pub struct FlowTable {
    cfg: FlowConfig,
    flows: Vec<Flow>,
    free: Vec<u32>,
    /// (hash high 32 bits << 32) | (slot + 1); 0 is empty.
    index: Vec<u64>,
    mask: usize,
    head: [u32; CLASSES],
    tail: [u32; CLASSES],
    timeout_us: [Micros; CLASSES],
    next_class: usize,
    pub counters: FlowCounters,
    pub app: AppLayer,
    /// Tunnel details of tunnelled flows, by slot: allocated at the first tunnelled flow (most
    /// links carry none).
    tunnels: Vec<Option<TunnelRec>>,
    rules: Option<Arc<RuleSet>>,
    rules_slot: Option<Arc<RulesSlot>>,
    rules_generation: u64,
    /// Rule sets taken after a reload.
    pub rule_reloads: u64,
    pub matcher: Matcher,
    /// The input position of the packet being processed (0: the source numbers none): the
    /// order of a thresholded match among every worker's ([`crate::rules::threshold`]).
    pub seq: u64,
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
            seq: 0,
            flows: vec![Flow::EMPTY; cap],
            free: (0..cap as u32).rev().collect(),
            index: prefaulted_zeros(index_len),
            mask: index_len - 1,
            head: [NIL; CLASSES],
            tail: [NIL; CLASSES],
            timeout_us,
            next_class: 0,
            counters: FlowCounters::default(),
            app: AppLayer::new(cfg.app),
            tunnels: Vec::new(),
            rules: cfg.rules.0.as_ref().map(|s| s.current().1).filter(|r| !r.is_empty()),
            rules_slot: cfg.rules.0.clone(),
            rules_generation: cfg.rules.0.as_ref().map_or(0, |s| s.generation()),
            rule_reloads: 0,
            matcher: Matcher::default(),
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
    fn class_of(proto: u8, state: FlowState) -> u8 {
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

    fn find(&self, key: &FlowKey, hash: u64) -> Option<u32> {
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
    fn index_insert(&mut self, hash: u64, slot: u32) {
        let mut i = hash as usize & self.mask;
        while self.index[i] != 0 {
            i = (i + 1) & self.mask;
        }
        self.index[i] = ((hash >> 32) << 32) | (slot as u64 + 1);
    }

    fn index_remove(&mut self, hash: u64, slot: u32) {
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
    fn unlink(&mut self, slot: u32) {
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
    fn push_tail(&mut self, slot: u32, class: u8) {
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

    fn record(&self, slot: u32, reason: EndReason, timestamp: Micros) -> FlowRecord {
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
    fn tunnel_of(&self, slot: u32) -> Option<TunnelRec> {
        if self.flows[slot as usize].tunneled {
            self.tunnels.get(slot as usize).copied().flatten()
        } else {
            None
        }
    }

    /// Writes the flow's record and frees its slot.
    fn end_flow<S: RecordSink>(&mut self, slot: u32, reason: EndReason, ts: Micros, sink: &mut S) {
        let f = &mut self.flows[slot as usize];
        if f.app != NO_SESSION {
            // Pending app-layer events first, with the flow's last packet time.
            let (mut sid, mut proto) = (f.app, f.app_proto);
            let ports = (f.key.lo_port, f.key.hi_port);
            let f = &self.flows[slot as usize];
            let last = f.last;
            let tunnel = self.tunnel_of(slot);
            let mut alerted = 0;
            let (rules, matcher) = (&self.rules, &mut self.matcher);
            // Matches when a flow ends come after its packets' at the same time.
            let emit = &mut |ev: &AppEvent<'_>| {
                event_out(sink, rules, matcher, f, slot, last, tunnel, u64::MAX, &mut alerted, ev)
            };
            if let Some(sd) = f.skip_dir() {
                self.app.fast_sync(sid, &mut proto, ports, sd, f.tcp.next_seq[sd], emit);
            }
            self.app.close(&mut sid, &mut proto, ports, emit);
            let f = &mut self.flows[slot as usize];
            f.app = sid;
            f.app_proto = proto;
            f.app_bits |= alerted;
        }
        self.matcher.flow_ended(slot);
        self.detect_flow_end(slot, sink);
        let rec = self.record(slot, reason, ts);
        sink.emit(&rec);
        match reason {
            EndReason::Timeout => self.counters.timed_out += 1,
            EndReason::Evicted => self.counters.evicted += 1,
            EndReason::Shutdown => self.counters.shutdown += 1,
            EndReason::Active => {}
        }
        self.unlink(slot);
        let hash = self.flows[slot as usize].hash as u64;
        self.index_remove(hash, slot);
        self.free.push(slot);
        self.counters.active -= 1;
    }

    #[inline]
    fn expires_at(&self, slot: u32) -> Micros {
        let f = &self.flows[slot as usize];
        f.last.saturating_add(self.timeout_us[f.class as usize])
    }

    /// Makes room: ends a flow that has already expired if a list head has (reason
    /// `timeout`: the same record a sweep would have written), else the flow idle the longest
    /// among those still in state `new` (half-open TCP, one-way UDP: what a SYN flood or a scan
    /// fills the table with), else the flow idle the longest (reason `evicted`). So whether an
    /// expired flow was swept yet never changes the records, and a flood of spoofed SYNs pushes
    /// out its own flows before any established one.
    fn evict_one<S: RecordSink>(&mut self, now: Micros, sink: &mut S) {
        let mut best = [NIL; 2];
        let mut best_last = [Micros::MAX; 2];
        for c in 0..CLASSES {
            let h = self.head[c];
            if h == NIL {
                continue;
            }
            let exp = self.expires_at(h);
            if exp <= now {
                self.end_flow(h, EndReason::Timeout, exp, sink);
                return;
            }
            // Classes are protocol × state, state New first (see `class_of`).
            let k = (c % 3 != FlowState::New as usize) as usize;
            if self.flows[h as usize].relinked < best_last[k] {
                best[k] = h;
                best_last[k] = self.flows[h as usize].relinked;
            }
        }
        let victim = if best[0] != NIL { best[0] } else { best[1] };
        if victim != NIL {
            self.end_flow(victim, EndReason::Evicted, now, sink);
        }
    }

    /// Accounts one decoded IP packet (not a fragment) of `wire_len` bytes seen at `now`.
    pub fn update<S: RecordSink>(&mut self, d: &Decoded, wire_len: u32, now: Micros, sink: &mut S) {
        self.update_with_payload(d, &[], wire_len, now, sink);
    }

    /// [`FlowTable::update`] with the packet's L4 payload as captured (for the app layer).
    pub fn update_with_payload<S: RecordSink>(
        &mut self,
        d: &Decoded,
        payload: &[u8],
        wire_len: u32,
        now: Micros,
        sink: &mut S,
    ) {
        let (key, src_is_lo) = FlowKey::from_decoded(d);
        let hash = key_hash(&key);
        self.update_keyed(&key, src_is_lo, hash, d, payload, wire_len, now, sink);
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

    /// [`FlowTable::update`] with the key and hash already computed.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn update_keyed<S: RecordSink>(
        &mut self,
        key: &FlowKey,
        src_is_lo: bool,
        hash: u64,
        d: &Decoded,
        payload: &[u8],
        wire_len: u32,
        now: Micros,
        sink: &mut S,
    ) {
        debug_assert_eq!(d.kind, Kind::Ip);
        let key = *key;
        let mut slot = self.find(&key, hash);
        if let Some(s) = slot {
            let exp = self.expires_at(s);
            if now >= exp {
                self.end_flow(s, EndReason::Timeout, exp, sink);
                slot = None;
            } else if d.proto == 6 && d.tcp_flags & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN {
                // Port reuse: a new SYN starts a new flow (the old one ends now) when the old
                // one has no session or its session is closing, as Suricata decides it
                // (TcpSessionReuseDoneEnoughSyn); a retransmitted SYN does not.
                let f = &self.flows[s as usize];
                let st = f.tcp.state;
                let retransmit = st == TcpState::SynSent && d.tcp_seq.wrapping_add(1) == f.tcp.next_seq[0];
                let closing =
                    matches!(st, TcpState::LastAck | TcpState::CloseWait | TcpState::Closing | TcpState::Closed);
                if !retransmit && (st == TcpState::None || closing) {
                    self.counters.tcp_reuse += 1;
                    self.end_flow(s, EndReason::Timeout, now, sink);
                    slot = None;
                }
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if self.free.is_empty() {
                    self.evict_one(now, sink);
                }
                let Some(s) = self.free.pop() else { return };
                let f = &mut self.flows[s as usize];
                *f = Flow::EMPTY;
                f.key = key;
                f.hash = hash as u32;
                f.init_is_lo = src_is_lo;
                f.flow_start = now;
                f.start = now;
                f.last = now;
                f.relinked = now;
                if d.tunnel.kind != TunnelKind::None {
                    f.tunneled = true;
                    if self.tunnels.is_empty() {
                        // Once per table, at its first tunnelled flow.
                        self.tunnels = vec![None; self.flows.len()];
                    }
                    self.tunnels[s as usize] = TunnelRec::of(d);
                }
                self.index_insert(hash, s);
                self.push_tail(s, Self::class_of(key.proto, FlowState::New));
                self.counters.created += 1;
                self.counters.active += 1;
                s
            }
        };
        // Interim record before this packet is counted, when the interval is long enough.
        if self.cfg.active_timeout != 0 {
            let f = &self.flows[slot as usize];
            if now.saturating_sub(f.start) >= secs(self.cfg.active_timeout) && f.pkts != [0, 0] {
                let rec = self.record(slot, EndReason::Active, now);
                sink.emit(&rec);
                self.counters.interim += 1;
                let f = &mut self.flows[slot as usize];
                f.pkts = [0; 2];
                f.bytes = [0; 2];
                f.first_seen = [0; 2];
                f.last_seen = [0; 2];
                f.start = now;
            }
        }
        let f = &mut self.flows[slot as usize];
        let dir = f.count(src_is_lo, wire_len, now);
        let pre_next = f.tcp.next_seq;
        let before = f.state;
        let new_state = match d.proto {
            6 => {
                f.flags[dir] |= d.tcp_flags;
                tcp_update(f, dir, d);
                f.tcp.state.flow_state()
            }
            _ => {
                if f.pkts[dir] == 1 {
                    f.aux[2 * dir] = d.icmp_type;
                    f.aux[2 * dir + 1] = d.icmp_code;
                }
                // Sticky: an interim record resets the counters, not the state.
                if f.state == FlowState::Established || (f.pkts[0] > 0 && f.pkts[1] > 0) {
                    FlowState::Established
                } else {
                    FlowState::New
                }
            }
        };
        f.state = new_state;
        let class = Self::class_of(d.proto, new_state);
        if class != f.class || now >= f.relinked + RELINK_US {
            f.relinked = now;
            self.unlink(slot);
            self.push_tail(slot, class);
        }
        if self.app.enabled() {
            self.app_update(slot, dir, d, payload, pre_next, now, sink);
        }
        if self.rules.is_some() {
            // As Suricata: a TCP packet is on an established flow when the flow was established
            // before it (the ACK completing the handshake is not; the packet after it is); any
            // other flow is established from its first packet in the second direction.
            let established = if d.proto == 6 { before } else { new_state } != FlowState::New;
            self.detect_packet(slot, dir, d, payload, established, now, sink);
        }
    }

    /// The packet rules on one packet (after the app layer saw it: its protocol is known).
    #[allow(clippy::too_many_arguments)]
    fn detect_packet<S: RecordSink>(
        &mut self,
        slot: u32,
        dir: usize,
        d: &Decoded,
        payload: &[u8],
        established: bool,
        now: Micros,
        sink: &mut S,
    ) {
        let tunnel = self.tunnel_of(slot);
        let Some(set) = &self.rules else { return };
        let f = &self.flows[slot as usize];
        let v6 = d.ip_version == 6;
        let h = Hdr {
            src: crate::rules::addr::from_raw(d.src, v6),
            dst: crate::rules::addr::from_raw(d.dst, v6),
            sport: d.src_port,
            dport: d.dst_port,
            proto: d.proto,
            to_server: dir == 0,
            // (A TCP flow stays established through its close, as in Suricata.)
            established,
            app: f.app_proto,
            tcp_flags: d.tcp_flags,
            ttl: d.ttl,
            icmp_type: d.icmp_type,
            icmp_code: d.icmp_code,
            icmp_id: d.icmp_id,
            is_icmp: matches!(d.proto, 1 | 58),
        };
        let first = f.pkts[0] + f.pkts[1] == 1;
        if let Some(sp) = set.behave.spanning().filter(|_| first) {
            // A new flow goes into the window's behaviour evidence; a finished window goes to
            // the aggregator.
            let syn = d.tcp_flags & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN;
            roll_sketch(&mut self.matcher, sp, now, sink).new_flow(h.src, h.dst, h.dport, h.proto, syn, now);
        }
        let mut alerted = 0;
        let seq = self.seq;
        let mut out = |hit: crate::rules::Hit| {
            alerted |= hit_bit(&hit);
            let meta = oriented_meta(f.event_meta(now, tunnel), hit.to_server);
            sink.emit_alert(&meta, &AlertInfo::of(set, &hit, f.app_proto, seq));
        };
        if first {
            // A new flow: its addresses against the indicators, once.
            self.matcher.on_flow_start(set, &h, &mut out);
        }
        let mut no_addr = f.app_bits & NO_ADDR_RULES != 0;
        self.matcher.on_packet(set, &h, payload, slot, &mut no_addr, &mut out);
        if no_addr {
            self.flows[slot as usize].app_bits |= NO_ADDR_RULES;
        }
        self.flows[slot as usize].app_bits |= alerted;
    }

    /// Takes a reloaded rule set, if there is one (called once per burst: one atomic load).
    /// Flows keep their state; flowbits and threshold counts start over (the new set's
    /// names and rules are not the old ones).
    #[inline]
    pub fn refresh_rules(&mut self) {
        let Some(slot) = &self.rules_slot else { return };
        if slot.generation() == self.rules_generation {
            return;
        }
        let (g, set) = slot.current();
        self.rules_generation = g;
        self.rules = Some(set).filter(|r| !r.is_empty());
        self.matcher.reset_state();
        // What a flow learnt of the old rules' address index does not hold for the new ones.
        for f in &mut self.flows {
            f.app_bits &= !NO_ADDR_RULES;
        }
        self.rule_reloads += 1;
    }

    /// The behaviours decided at a flow's end (exfiltration).
    fn detect_flow_end<S: RecordSink>(&mut self, slot: u32, sink: &mut S) {
        let Some(set) = &self.rules else { return };
        if !set.behave.enabled {
            return;
        }
        let f = &self.flows[slot as usize];
        // (Counts are per direction from the initiator: 0 to the server.)
        let (out_bytes, in_bytes) = (f.bytes[0], f.bytes[1]);
        let (src, _, dst, _) = f.oriented();
        let v6 = f.key.ip_version() == 6;
        let addr = |b: [u8; 16]| crate::rules::addr::from_raw(u128::from_ne_bytes(b), v6);
        let leaves = set.home.matches(addr(src)) && !set.home.matches(addr(dst));
        if crate::rules::behave::exfiltration(&set.behave, out_bytes, in_bytes, leaves) {
            let meta = f.event_meta(f.last, self.tunnel_of(slot));
            let rule = set.behaviour_rule(crate::rules::behave::Behaviour::Exfiltration);
            sink.emit_alert(
                &meta,
                &AlertInfo { set, rule, app_proto: f.app_proto, to_server: true, ioc: None, tracked: None },
            );
            self.matcher.counters.alerts += 1;
            self.matcher.counters.behaviour += 1;
            self.flows[slot as usize].app_bits |= ALERTED;
        }
    }

    /// Rules in the set this table inspects with.
    pub fn rules_len(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.len())
    }

    /// Hands a packet's payload (and a TCP packet's ACK) to the app layer.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn app_update<S: RecordSink>(
        &mut self,
        slot: u32,
        dir: usize,
        d: &Decoded,
        payload: &[u8],
        pre_next: [u32; 2],
        now: Micros,
        sink: &mut S,
    ) {
        let f = &self.flows[slot as usize];
        let (mut sid, mut proto) = (f.app, f.app_proto);
        if sid != NO_SESSION && !wants_packets(sid) {
            // Finished or refused: nothing to do for this flow's packets.
            return;
        }
        let ports = (f.key.lo_port, f.key.hi_port);
        let mut fast = None;
        let mut alerted = 0;
        let seq = self.seq;
        // `dir` is 0 from the initiator; the tracker's next_seq is indexed the same way.
        match d.proto {
            6 => {
                let tracked = !matches!(f.tcp.state, TcpState::None | TcpState::SynSent | TcpState::SynRecv);
                // A FIN without payload still matters to a session (the ACK of a FIN is not a
                // gap); without a session, only payload opens one.
                if !tracked || (sid == NO_SESSION && d.payload_len == 0) {
                    return;
                }
                let fin = d.tcp_flags & TcpFlags::FIN != 0;
                if d.payload_len == 0 && !fin && f.app_bits & APP_OOO == 0 {
                    // A pure ACK with nothing buffered: no hole it could declare lost, except
                    // one at the very end of a stream (a tail the capture lost), which the
                    // parser then sees as the end of the flow.
                    return;
                }
                if let Some(sd) = f.skip_dir() {
                    let end = d.tcp_seq.wrapping_add(d.payload_len as u32);
                    if sd == dir
                        && d.payload_len > 0
                        && d.tcp_flags & (TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST) == 0
                        && d.tcp_seq == pre_next[dir]
                        && seq_lt(end, f.skip_end())
                    {
                        // Inside the skipped body, in order, not its last segment (that one
                        // goes to the session, which then reports the body's end as before).
                        self.app.count_fast_segment();
                        return;
                    }
                    // Anything else: the session first learns how far the skipped body went
                    // (every segment passed over was exactly in order, so up to `pre_next`).
                    let tunnel = self.tunnel_of(slot);
                    let (rules, matcher) = (&self.rules, &mut self.matcher);
                    self.app.fast_sync(sid, &mut proto, ports, sd, pre_next[sd], &mut |ev| {
                        event_out(sink, rules, matcher, f, slot, now, tunnel, seq, &mut alerted, ev)
                    });
                }
                let mut isn_next = f.tcp.next_seq;
                isn_next[dir] = pre_next[dir];
                let seg = TcpSeg {
                    seq: d.tcp_seq,
                    ack: (d.tcp_flags & TcpFlags::ACK != 0).then_some(d.tcp_ack),
                    fin,
                    payload,
                    claimed: d.payload_len as u32,
                    isn_next,
                };
                let tunnel = self.tunnel_of(slot);
                let (rules, matcher) = (&self.rules, &mut self.matcher);
                fast = self.app.tcp(&mut sid, &mut proto, dir, ports, &seg, &mut |ev| {
                    event_out(sink, rules, matcher, f, slot, now, tunnel, seq, &mut alerted, ev)
                });
            }
            17 => {
                if payload.is_empty() || proto == AppProto::Failed {
                    return;
                }
                let tunnel = self.tunnel_of(slot);
                let (rules, matcher) = (&self.rules, &mut self.matcher);
                self.app.udp(&mut sid, &mut proto, dir, ports, payload, &mut |ev| {
                    event_out(sink, rules, matcher, f, slot, now, tunnel, seq, &mut alerted, ev)
                });
            }
            _ => return,
        }
        let ooo = wants_packets(sid) && self.app.has_ooo(sid);
        let f = &mut self.flows[slot as usize];
        f.app = sid;
        f.app_proto = proto;
        f.app_bits = (f.app_bits & (ALERTED | TRACKED | NO_ADDR_RULES)) | if ooo { APP_OOO } else { 0 } | alerted;
        if let Some((next, end)) = fast {
            // The stream must be where the tracker is: the fast path counts from there.
            if !ooo && wants_packets(sid) && next == f.tcp.next_seq[dir] {
                f.app_bits |= APP_SKIP | if dir == 1 { APP_SKIP_DIR1 } else { 0 };
                f.aux = end.to_ne_bytes();
            }
        }
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

    /// Ends at most `expire_budget` flows that have timed out by `now`, oldest first.
    pub fn expire<S: RecordSink>(&mut self, now: Micros, sink: &mut S) -> usize {
        let mut done = 0;
        let mut idle_classes = 0;
        while done < self.cfg.expire_budget && idle_classes < CLASSES {
            let c = self.next_class;
            let h = self.head[c];
            if h != NIL && self.expires_at(h) <= now {
                let exp = self.expires_at(h);
                self.end_flow(h, EndReason::Timeout, exp, sink);
                done += 1;
                idle_classes = 0;
            } else {
                idle_classes += 1;
                self.next_class = (c + 1) % CLASSES;
            }
        }
        done
    }

    /// Once a burst: a behaviour window this worker's clock has left goes to the aggregator,
    /// even when no new flow came to close it.
    #[inline]
    pub fn roll_behaviour<S: RecordSink>(&mut self, now: Micros, sink: &mut S) {
        if let Some(sp) = self.rules.as_ref().and_then(|s| s.behave.spanning()) {
            roll_sketch(&mut self.matcher, sp, now, sink);
        }
    }

    /// Ends every live flow: `timeout` for those expired by `end`, `shutdown` for the rest.
    pub fn flush_all<S: RecordSink>(&mut self, end: Micros, sink: &mut S) {
        // The last of this worker's behaviour evidence, marked so: the aggregator stops
        // waiting for it.
        if let Some(&sp) = self.rules.as_ref().and_then(|s| s.behave.spanning()) {
            let mut sk = self.matcher.take_sketch().unwrap_or(WindowSketch { cfg: sp, ..WindowSketch::default() });
            sk.last = true;
            sink.emit_sketch(sk);
        }
        for c in 0..CLASSES {
            while self.head[c] != NIL {
                let h = self.head[c];
                let exp = self.expires_at(h);
                if exp <= end {
                    self.end_flow(h, EndReason::Timeout, exp, sink);
                } else {
                    self.end_flow(h, EndReason::Shutdown, end, sink);
                }
            }
        }
    }
}

/// Suricata-like TCP session tracking from the handshake and the FIN/RST exchange. `dir` 0 is
/// to-server. Only a flow that opens with a SYN gets a session (midstream pick-up is off).
#[inline]
fn tcp_update(f: &mut Flow, dir: usize, d: &Decoded) {
    let fl = TcpFlags(d.tcp_flags);
    let seq = d.tcp_seq;
    let ack = d.tcp_ack;
    let syn = fl.has(TcpFlags::SYN);
    let fin = fl.has(TcpFlags::FIN);
    let has_ack = fl.has(TcpFlags::ACK);
    let t = &mut f.tcp;
    if t.state == TcpState::None {
        if dir == 0 && syn && !has_ack && f.pkts == [1, 0] {
            t.state = TcpState::SynSent;
            t.next_seq[0] = seq.wrapping_add(1);
            t.window[0] = d.tcp_window;
        }
        return;
    }
    let other = 1 - dir;
    if fl.has(TcpFlags::RST) {
        let valid = if t.state == TcpState::SynSent {
            dir == 1 && has_ack && ack == t.next_seq[0]
        } else {
            // The window scale is in the SYN options, which we do not parse: allow the largest
            // (14), so a valid RST on a scaled window is never refused.
            let win = (t.window[other].max(1) as u32) << 14;
            let off = seq.wrapping_sub(t.next_seq[dir]);
            off < win
        };
        if valid {
            t.state = TcpState::Closed;
        }
        return;
    }
    let advance = d.payload_len as u32 + syn as u32 + fin as u32;
    let acks_other_fin = has_ack && ack == t.next_seq[other];
    match t.state {
        TcpState::SynSent => {
            if dir == 1 && syn && has_ack && ack == t.next_seq[0] {
                t.state = TcpState::SynRecv;
                t.next_seq[1] = seq.wrapping_add(1);
                t.window[1] = d.tcp_window;
            }
            return;
        }
        TcpState::SynRecv => {
            if dir == 0 && has_ack && !syn && ack == t.next_seq[1] {
                t.state = TcpState::Established;
            } else {
                return;
            }
        }
        _ => {}
    }
    let end = seq.wrapping_add(advance);
    if seq_lt(t.next_seq[dir], end) {
        t.next_seq[dir] = end;
    }
    t.window[dir] = d.tcp_window;
    // Suricata's naming: a FIN from the client moves ESTABLISHED to CLOSE_WAIT, a FIN from the
    // server to FIN_WAIT1; both paths end in CLOSED once the last FIN is acknowledged.
    t.state = match (t.state, dir, fin) {
        (TcpState::Established, 0, true) => TcpState::CloseWait,
        (TcpState::Established, 1, true) => TcpState::FinWait1,
        (TcpState::CloseWait, 1, true) => TcpState::LastAck,
        (TcpState::LastAck, 0, false) if acks_other_fin => TcpState::Closed,
        (TcpState::FinWait1, 0, true) if acks_other_fin => TcpState::TimeWait,
        (TcpState::FinWait1, 0, true) => TcpState::Closing,
        (TcpState::FinWait1, 0, false) if acks_other_fin => TcpState::FinWait2,
        (TcpState::FinWait2, 0, true) => TcpState::TimeWait,
        (TcpState::Closing, _, false) if acks_other_fin => TcpState::TimeWait,
        (TcpState::TimeWait, 1, false) if acks_other_fin => TcpState::Closed,
        (s, _, _) => s,
    };
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Kind;

    fn udp(src: u8, sport: u16, dst: u8, dport: u16) -> Decoded {
        let mut d = Decoded {
            kind: Kind::Ip,
            ip_version: 4,
            proto: 17,
            src_port: sport,
            dst_port: dport,
            ..Default::default()
        };
        d.set_v4([10, 0, 0, src], [10, 0, 0, dst]);
        d
    }

    fn tcp(c2s: bool, fl: u8, seq: u32, ack: u32, len: u16) -> Decoded {
        let mut d = if c2s { udp(1, 1000, 2, 80) } else { udp(2, 80, 1, 1000) };
        d.proto = 6;
        d.tcp_flags = fl;
        d.tcp_seq = seq;
        d.tcp_ack = ack;
        d.tcp_window = 1000;
        d.payload_len = len;
        d
    }

    const SEC: u64 = 1_000_000;

    /// Counts alerts by sid.
    #[derive(Default)]
    struct Alerts(Vec<u32>);

    impl RecordSink for Alerts {
        fn emit(&mut self, _: &FlowRecord) {}
        fn emit_event(&mut self, _: &EventMeta, _: &AppEvent<'_>) {}
        fn emit_alert(&mut self, _: &EventMeta, a: &AlertInfo<'_>) {
            self.0.push(a.set.rules[a.rule as usize].sid);
        }
    }

    #[test]
    fn what_a_flow_learnt_of_the_address_index_is_forgotten_at_a_reload() {
        // Rules on public address lists are found through the address index; a flow whose
        // addresses index none skips the lookups from its second packet, until the rules change.
        let rules =
            SharedRules::new(crate::rules::test_set("alert ip any any -> 198.51.100.77 any (msg:\"other\"; sid:1;)"));
        let slot = rules.0.clone().unwrap();
        let mut t = FlowTable::new(FlowConfig { rules, ..FlowConfig::default() });
        t.refresh_rules();
        let mut d = udp(1, 5000, 2, 53);
        d.set_v4([10, 0, 0, 1], [203, 0, 113, 9]);
        let mut a = Alerts::default();
        t.update(&d, 60, SEC, &mut a);
        t.update(&d, 60, 2 * SEC, &mut a);
        assert!(a.0.is_empty());
        slot.replace(std::sync::Arc::new(crate::rules::test_set(
            "alert ip any any -> 203.0.113.9 any (msg:\"it\"; sid:2;)",
        )));
        t.refresh_rules();
        t.update(&d, 60, 3 * SEC, &mut a);
        t.update(&d, 60, 4 * SEC, &mut a);
        assert_eq!(a.0, [2, 2], "the new rule matches the flow's next packets");
    }

    #[test]
    fn test_index_survives_churn() {
        // Many inserts and expiries through a small table: every live flow stays findable.
        let cfg = FlowConfig { capacity: 64, expire_budget: 1000, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        let mut now = 1000 * SEC;
        for round in 0..200u32 {
            for i in 0..40u16 {
                let port = (round as u16).wrapping_mul(37).wrapping_add(i * 101);
                t.update(&udp(1, port, 2, 53), 60, now, &mut out);
            }
            now += 31 * SEC;
            t.expire(now, &mut out);
            assert!(t.is_empty(), "round {round}: {} flows left", t.len());
        }
        assert_eq!(t.counters.created, out.len() as u64);
        assert_eq!(t.counters.evicted, 0);
        // and a full table of distinct keys, each found again on its second packet
        let mut t = FlowTable::new(FlowConfig { capacity: 500, ..FlowConfig::default() });
        let mut out = Vec::new();
        for i in 0..500u16 {
            t.update(&udp(1, i, 2, 53), 60, SEC, &mut out);
        }
        for i in 0..500u16 {
            t.update(&udp(2, 53, 1, i), 60, 2 * SEC, &mut out);
        }
        assert_eq!((t.len(), t.counters.created, out.len()), (500, 500, 0));
        t.flush_all(3 * SEC, &mut out);
        assert!(out.iter().all(|r| r.pkts_toserver == 1 && r.pkts_toclient == 1 && r.state == FlowState::Established));
    }

    fn run(pkts: &[Decoded]) -> FlowRecord {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut out = Vec::new();
        for (i, d) in pkts.iter().enumerate() {
            t.update(d, 60, SEC + i as u64, &mut out);
        }
        t.flush_all(2 * SEC, &mut out);
        assert_eq!(out.len(), 1);
        out[0]
    }

    const S: u8 = TcpFlags::SYN;
    const A: u8 = TcpFlags::ACK;
    const F: u8 = TcpFlags::FIN;
    const R: u8 = TcpFlags::RST;

    #[test]
    fn test_tcp_states() {
        let hs = [tcp(true, S, 100, 0, 0), tcp(false, S | A, 500, 101, 0), tcp(true, A, 101, 501, 0)];
        let r = run(&hs);
        assert_eq!((r.state, r.tcp.unwrap().state), (FlowState::Established, Some(TcpState::Established)));
        // client closes first
        let mut p = hs.to_vec();
        p.extend([tcp(true, F | A, 101, 501, 0), tcp(false, A, 501, 102, 0), tcp(false, F | A, 501, 102, 0)]);
        assert_eq!(run(&p).tcp.unwrap().state, Some(TcpState::LastAck));
        p.push(tcp(true, A, 102, 502, 0));
        let r = run(&p);
        assert_eq!((r.state, r.tcp.unwrap().state), (FlowState::Closed, Some(TcpState::Closed)));
        // server closes first
        let mut p = hs.to_vec();
        p.extend([tcp(false, F | A, 501, 101, 0), tcp(true, A, 101, 502, 0)]);
        assert_eq!(run(&p).tcp.unwrap().state, Some(TcpState::FinWait2));
        p.extend([tcp(true, F | A, 101, 502, 0), tcp(false, A, 502, 102, 0)]);
        assert_eq!(run(&p).tcp.unwrap().state, Some(TcpState::Closed));
        // a RST outside the window is ignored, one at the expected sequence closes
        let mut p = hs.to_vec();
        p.push(tcp(false, R, 400, 0, 0));
        assert_eq!(run(&p).tcp.unwrap().state, Some(TcpState::Established));
        p.push(tcp(false, R, 501, 0, 0));
        assert_eq!(run(&p).tcp.unwrap().state, Some(TcpState::Closed));
        // RST-ACK to a SYN must acknowledge it
        assert_eq!(
            run(&[tcp(true, S, 100, 0, 0), tcp(false, R | A, 0, 77, 0)]).tcp.unwrap().state,
            Some(TcpState::SynSent)
        );
        assert_eq!(
            run(&[tcp(true, S, 100, 0, 0), tcp(false, R | A, 0, 101, 0)]).tcp.unwrap().state,
            Some(TcpState::Closed)
        );
        // data advances the expected sequence
        let mut p = hs.to_vec();
        p.push(tcp(true, A, 101, 501, 1000));
        p.push(tcp(true, R, 1101, 0, 0));
        assert_eq!(run(&p).tcp.unwrap().state, Some(TcpState::Closed));
        // no SYN first: no session
        let r = run(&[tcp(true, A, 5, 5, 10), tcp(false, A, 5, 15, 0)]);
        assert_eq!((r.state, r.tcp.unwrap().state), (FlowState::New, None));
    }

    #[test]
    fn test_full_table_ends_expired_flows_before_evicting() {
        let mut t = FlowTable::new(FlowConfig { capacity: 2, ..FlowConfig::default() });
        let mut out = Vec::new();
        // A long-lived TCP flow first, then a UDP flow that expires at 35 s.
        for (i, d) in
            [tcp(true, S, 100, 0, 0), tcp(false, S | A, 500, 101, 0), tcp(true, A, 101, 501, 0)].iter().enumerate()
        {
            t.update(d, 60, i as u64, &mut out);
        }
        t.update(&udp(7, 7, 8, 8), 60, 5 * SEC, &mut out);
        // At 40 s a third flow needs a slot: the expired UDP flow goes, as a timeout.
        t.update(&udp(9, 9, 8, 8), 60, 40 * SEC, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].meta.src_port, out[0].reason, out[0].meta.timestamp), (7, EndReason::Timeout, 35 * SEC));
        assert_eq!(t.counters.evicted, 0);
        // Another one: nothing has expired, so a flow still in state new goes (the one-way UDP
        // flow), although the established TCP flow has been idle longer.
        t.update(&udp(10, 10, 8, 8), 60, 41 * SEC, &mut out);
        assert_eq!((out[1].meta.src_port, out[1].reason), (9, EndReason::Evicted));
        // Only established flows left (the UDP flow answered): the one idle the longest, the
        // TCP flow, goes.
        t.update(&udp(8, 8, 10, 10), 60, 42 * SEC, &mut out);
        t.update(&udp(11, 11, 8, 8), 60, 43 * SEC, &mut out);
        assert_eq!((out[2].meta.proto, out[2].reason), (6, EndReason::Evicted));
    }

    #[test]
    fn test_interim_record_keeps_the_flow_established() {
        let mut t = FlowTable::new(FlowConfig { active_timeout: 10, ..FlowConfig::default() });
        let mut out = Vec::new();
        t.update(&udp(1, 1, 2, 2), 60, SEC, &mut out);
        t.update(&udp(2, 2, 1, 1), 60, 2 * SEC, &mut out);
        // 12 s later, one-way: an interim record, and the flow stays established (300 s timeout,
        // not the 30 s of a new flow).
        t.update(&udp(1, 1, 2, 2), 60, 14 * SEC, &mut out);
        assert_eq!(
            (out.len(), out[0].reason, out[0].pkts_toserver, out[0].pkts_toclient),
            (1, EndReason::Active, 1, 1)
        );
        t.expire(60 * SEC, &mut out);
        assert_eq!(out.len(), 1, "still live after 46 s idle: established");
        t.flush_all(100 * SEC, &mut out);
        assert_eq!((out[1].state, out[1].pkts_toserver, out[1].pkts_toclient), (FlowState::Established, 1, 0));
    }

    #[test]
    fn test_expire_is_bounded_and_oldest_first() {
        let cfg = FlowConfig { expire_budget: 3, ..FlowConfig::default() };
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        for i in 0..10u16 {
            t.update(&udp(1, i, 2, 53), 60, SEC + i as u64, &mut out);
        }
        assert_eq!(t.expire(100 * SEC, &mut out), 3);
        assert_eq!(out.iter().map(|r| r.meta.src_port).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert!(out
            .iter()
            .all(|r| r.reason == EndReason::Timeout && r.meta.timestamp == 31 * SEC + r.meta.src_port as u64));
        assert_eq!(t.len(), 7);
    }
}
