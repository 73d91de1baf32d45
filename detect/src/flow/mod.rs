//! The per-worker flow table and the pipeline around it.
//!
//! - this file: the types flows are described with (config, key, states, records, the
//!   [`RecordSink`] they go to);
//! - `table.rs`: [`FlowTable`], the table proper (slots, index, LRU lists, records);
//! - `tcp.rs`: TCP session tracking;
//! - `pipeline.rs`: [`Pipeline`], the per-packet work after decoding: the table update, the app
//!   layer, the rules and the behaviour evidence. The table owns none of those.
//!
//! One table per worker, never shared. Everything is allocated up front in [`Pipeline::new`]:
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
//! list is always the first to expire, and [`Pipeline::expire`] only looks at list heads, a
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

mod pipeline;
mod table;
mod tcp;

pub use pipeline::Pipeline;
pub use table::{FlowTable, RELINK_US};

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
    /// The most flows one [`Pipeline::expire`] call ends.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    /// ICMP and ICMPv6: the type and code `src` sent, then those `dest` sent (zero otherwise
    /// and before a side has sent): the Community ID's port equivalents.
    pub icmp: [[u8; 2]; 2],
    /// Write `community_id` with this seed: the formatter sets it from `export.community_id`
    /// (workers leave it `None`).
    pub community_seed: Option<u16>,
}

impl EventMeta {
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..self.vlan_count as usize]
    }

    /// The same head facing the other way (a reply's event, an alert to the client).
    pub fn reversed(mut self) -> EventMeta {
        std::mem::swap(&mut self.src_ip, &mut self.dest_ip);
        std::mem::swap(&mut self.src_port, &mut self.dest_port);
        self.icmp.swap(0, 1);
        self
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
