//! One worker's packet engine: decode → flow update, on packet time, with counters.
//!
//! The capture layer feeds it frames (from an mbuf or a pcap record) and calls
//! [`Engine::end_burst`] once per burst; records go to a [`RecordSink`] the caller owns.

use crate::app::AppCounters;
use crate::decode::{decode_into, decode_partial, DecodeError, DecodeErrorKind, Decoded, Kind, Layer};
use crate::defrag::{Defrag, DefragCounters};
use crate::flow::{FlowConfig, FlowCounters, FlowKey, FlowTable, Pipeline};
use crate::hash::key_hash;
use crate::time::Micros;

pub use crate::flow::RecordSink;

/// What one engine has seen. Plain integers: the worker publishes them once per burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// Frames handed to the engine.
    pub packets: u64,
    /// Their bytes (whole frames).
    pub bytes: u64,
    /// IP packets accounted to a flow.
    pub flow_packets: u64,
    /// Frames that are not IP (ARP, LLDP...).
    pub non_ip: u64,
    /// IPv4/IPv6 fragments (each is a packet here; the datagrams they complete are handed to
    /// the flow table as one packet each, counted in `defrag.reassembled`).
    pub fragments: u64,
    /// IP packets dropped because the flow table had no slot (capacity 0 only).
    pub no_flow: u64,
    /// Frames that failed to decode, by kind and layer.
    pub decode_errors: [[u64; Layer::COUNT]; DecodeErrorKind::COUNT],
    pub flows: FlowCounters,
    /// The app layer's (filled in by [`Engine::counters`], not per burst).
    pub app: AppCounters,
    pub defrag: DefragCounters,
    /// The rule matcher's (filled in by [`Engine::counters`]).
    pub detect: crate::rules::MatchCounters,
    /// Rules in the worker's set.
    pub rules: u64,
    /// Reloaded rule sets the worker took.
    pub rule_reloads: u64,
    /// Datagrams handed to (or taken from) the worker that owns their flow.
    pub shard: crate::shard::ShardCounters,
}

impl EngineCounters {
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().flatten().sum()
    }

    /// packets == flow_packets + non_ip + fragments + no_flow + decode errors.
    pub fn balanced(&self) -> bool {
        self.packets == self.flow_packets + self.non_ip + self.fragments + self.no_flow + self.decode_errors_total()
    }

    /// Adds another engine's counters (for totals across workers).
    pub fn add(&mut self, o: &EngineCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.flow_packets += o.flow_packets;
        self.non_ip += o.non_ip;
        self.fragments += o.fragments;
        self.no_flow += o.no_flow;
        for (a, b) in self.decode_errors.iter_mut().zip(o.decode_errors.iter()) {
            for (x, y) in a.iter_mut().zip(b.iter()) {
                *x += y;
            }
        }
        self.flows.add(&o.flows);
        self.app.add(&o.app);
        self.defrag.add(&o.defrag);
        self.detect.add(&o.detect);
        self.rules = self.rules.max(o.rules);
        self.rule_reloads = self.rule_reloads.max(o.rule_reloads);
        self.shard.add(&o.shard);
    }
}

/// Frames decoded ahead of their flow updates in [`Engine::process_burst`].
pub const CHUNK: usize = 16;

/// A decoded frame waiting for its flow update.
#[derive(Debug, Clone, Copy)]
struct Pending {
    d: Decoded,
    result: Result<(), DecodeError>,
    key: FlowKey,
    hash: u64,
    src_is_lo: bool,
    is_ip: bool,
    wire_len: u32,
    ts: Micros,
    /// The packet's position in the input (0: not numbered).
    seq: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            d: Decoded::default(),
            result: Err(DecodeError::TooManyVlans),
            key: FlowKey::ZERO,
            hash: 0,
            src_is_lo: false,
            is_ip: false,
            wire_len: 0,
            ts: 0,
            seq: 0,
        }
    }
}

/// Decode + flow tracking for one worker.
pub struct Engine {
    pipe: Pipeline,
    defrag: Defrag,
    counters: EngineCounters,
    chunk: [Pending; CHUNK],
    /// The packet clock: the latest timestamp seen.
    now: Micros,
    /// The rings to the other workers (None: one worker, or hand-offs off).
    shard: Option<crate::shard::Shard>,
}

impl Engine {
    pub fn new(cfg: FlowConfig) -> Self {
        Engine {
            defrag: Defrag::new(cfg.defrag),
            pipe: Pipeline::new(cfg),
            counters: EngineCounters::default(),
            chunk: [Pending::default(); CHUNK],
            now: 0,
            shard: None,
        }
    }

    /// Joins the worker mesh: reassembled datagrams whose flow another worker owns go there,
    /// and theirs come here.
    pub fn set_shard(&mut self, shard: crate::shard::Shard) {
        self.shard = (shard.n > 1).then_some(shard);
    }

    /// Processes one frame: `data` is what was captured, `wire_len` the frame's length (bytes
    /// counted on flows), `ts` its time.
    #[inline]
    pub fn process<S: RecordSink>(&mut self, data: &[u8], wire_len: u32, ts: Micros, sink: &mut S) {
        self.process_burst(std::iter::once((data, wire_len, ts)), sink);
    }

    /// Processes a burst of frames `(data, wire_len, ts)`, in chunks of [`CHUNK`]: every frame
    /// of a chunk is decoded and hashed first; then tight loops load the index entries, then
    /// the flows, of the whole chunk (independent loads, so their cache misses overlap); then
    /// the flows are updated in order. The records are the same as frame-by-frame
    /// [`Engine::process`].
    #[inline]
    pub fn process_burst<'a, S, I>(&mut self, frames: I, sink: &mut S)
    where
        S: RecordSink,
        I: IntoIterator<Item = (&'a [u8], u32, Micros)>,
    {
        self.process_numbered(frames.into_iter().map(|(d, l, t)| (d, l, t, 0)), sink)
    }

    /// [`Engine::process_burst`] for frames `(data, wire_len, ts, seq)` that carry their position
    /// in the input (1-based, increasing over the whole input and every worker): hand-offs from
    /// other workers then take their exact place in this worker's packet order.
    #[inline]
    pub fn process_numbered<'a, S, I>(&mut self, frames: I, sink: &mut S)
    where
        S: RecordSink,
        I: IntoIterator<Item = (&'a [u8], u32, Micros, u64)>,
    {
        self.pipe.refresh_rules();
        if let Some(sh) = self.shard.as_mut() {
            sh.poll();
        }
        let tap = sink.wants_packets();
        let mut it = frames.into_iter();
        let mut datas: [&[u8]; CHUNK] = [&[]; CHUNK];
        loop {
            let mut n = 0;
            while n < CHUNK {
                let Some((data, wire_len, ts, seq)) = it.next() else { break };
                datas[n] = data;
                let slot = &mut self.chunk[n];
                slot.wire_len = wire_len;
                slot.ts = ts;
                slot.seq = seq;
                slot.result = decode_into(data, wire_len as usize, &mut slot.d);
                slot.is_ip = false;
                if slot.result.is_ok() {
                    let d = &slot.d;
                    if d.kind == Kind::Ip {
                        let (key, lo) = FlowKey::from_decoded(d);
                        slot.key = key;
                        slot.src_is_lo = lo;
                        slot.hash = key_hash(&key);
                        slot.is_ip = true;
                    }
                }
                n += 1;
            }
            let mut touched = 0u64;
            for s in &self.chunk[..n] {
                if s.is_ip {
                    touched ^= self.pipe.table.touch_index(s.hash);
                }
            }
            // (The app-layer sessions are not loaded ahead too: since body segments skip them,
            // few packets reach one, and the loads cost more than they saved, measured.)
            for s in &self.chunk[..n] {
                if s.is_ip {
                    touched ^= self.pipe.table.touch_flow(s.hash);
                }
            }
            std::hint::black_box(touched);
            for (s, data) in self.chunk[..n].iter().zip(&datas[..n]) {
                if let Some(sh) = self.shard.as_mut() {
                    sh.sync(s.ts);
                    if sh.holding() {
                        apply_due(&mut self.pipe, sh, &mut self.now, Some((s.seq, s.ts)), sink);
                    }
                    sh.mark(s.seq, s.ts);
                }
                account(
                    &mut self.pipe,
                    &mut self.defrag,
                    self.shard.as_mut(),
                    &mut self.counters,
                    &mut self.now,
                    s,
                    data,
                    sink,
                );
                if tap {
                    let on_flow = s.is_ip && s.result.is_ok();
                    let alerted = on_flow && self.pipe.table.alerted(&s.key, s.hash);
                    sink.packet(data, s.wire_len, s.ts, if on_flow { s.hash } else { 0 }, alerted);
                }
            }
            if n < CHUNK {
                break;
            }
        }
    }

    /// Decodes a burst and counts what it is, without touching the flow table: the `decode`
    /// stage of `spinewatch bench`.
    #[inline]
    pub fn decode_only<'a, I: IntoIterator<Item = (&'a [u8], u32, Micros)>>(&mut self, frames: I) {
        let c = &mut self.counters;
        for (data, wire_len, ts) in frames {
            if ts > self.now {
                self.now = ts;
            }
            c.packets += 1;
            c.bytes += wire_len as u64;
            match decode_partial(data, wire_len as usize) {
                Ok(d) => match d.kind {
                    // Counted as "on flows" so the accounting still balances.
                    Kind::Ip => c.flow_packets += 1,
                    Kind::Fragment => c.fragments += 1,
                    Kind::NonIp => c.non_ip += 1,
                },
                Err(e) => c.decode_errors[e.kind() as usize][e.layer() as usize] += 1,
            }
        }
    }

    /// Once per burst: advances the clock to `now` if later (a live sensor passes its clock
    /// here so idle flows still expire) and expires a bounded number of flows.
    #[inline]
    pub fn end_burst<S: RecordSink>(&mut self, now: Option<Micros>, sink: &mut S) {
        if let Some(n) = now {
            if n > self.now {
                self.now = n;
            }
            // A live clock: what the other workers handed over up to now is due.
            if let Some(sh) = self.shard.as_mut() {
                sh.poll();
                if sh.holding() {
                    apply_due(&mut self.pipe, sh, &mut self.now, Some((0, n)), sink);
                }
            }
        }
        if let Some(sh) = &self.shard {
            sh.publish(self.now);
        }
        self.pipe.expire(self.now, sink);
        self.pipe.roll_behaviour(self.now, sink);
        sink.mark(self.now);
        if self.defrag.enabled() {
            self.defrag.expire(self.now);
        }
    }

    /// Ends every live flow at `end` (the end of input, or the stop time).
    pub fn flush<S: RecordSink>(&mut self, end: Micros, sink: &mut S) {
        // Every worker has stopped: what they handed over goes to its flows first, in order.
        if let Some(sh) = self.shard.as_mut() {
            sh.poll();
            apply_due(&mut self.pipe, sh, &mut self.now, None, sink);
        }
        let end = end.max(self.now);
        self.pipe.flush_all(end, sink);
    }

    /// The latest packet time seen.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// The engine's counters and the flow table's, borrowed (no copy, for per-burst publishing).
    #[inline]
    pub fn counters_ref(&self) -> (&EngineCounters, &FlowCounters) {
        (&self.counters, &self.pipe.table.counters)
    }

    /// What the live counters need beyond [`Engine::counters_ref`]: app sessions opened and
    /// refused, out-of-order bytes buffered, fragment bytes held.
    pub fn gauges(&self) -> [u64; 4] {
        let (s, ns, ooo) = self.pipe.app.gauges();
        [s, ns, ooo, self.defrag.counters.pending_bytes]
    }

    pub fn counters(&self) -> EngineCounters {
        let mut c = self.counters;
        c.flows = self.pipe.table.counters;
        c.app = self.pipe.app.counters();
        c.defrag = self.defrag.counters;
        c.detect = self.pipe.matcher.counters;
        c.rules = self.pipe.rules_len() as u64;
        c.rule_reloads = self.pipe.rule_reloads;
        if let Some(sh) = &self.shard {
            c.shard = sh.counters;
        }
        c
    }

    /// This worker's input is done: the others need not wait for it (see
    /// [`crate::shard::Gate`]).
    pub fn input_done(&self) {
        if let Some(sh) = &self.shard {
            sh.publish(u64::MAX);
        }
    }

    /// The hand-offs' counters (zero without a mesh).
    #[inline]
    pub fn shard_counters(&self) -> crate::shard::ShardCounters {
        self.shard.as_ref().map(|s| s.counters).unwrap_or_default()
    }

    pub fn flow_table(&self) -> &FlowTable {
        &self.pipe.table
    }
}

/// The L4 payload of `packet` as `d` decoded it (cut to what was captured).
#[inline]
fn payload_of<'a>(d: &Decoded, packet: &'a [u8]) -> &'a [u8] {
    let off = (d.payload_offset as usize).min(packet.len());
    &packet[off..(off + d.payload_len as usize).min(packet.len())]
}

/// Updates the outer UDP flow of a VXLAN or GENEVE frame (whatever it carries: IP, a fragment,
/// ARP...). Returns whether there was one.
#[inline(always)]
fn outer_flow<S: RecordSink>(pipe: &mut Pipeline, s: &Pending, data: &[u8], now: Micros, sink: &mut S) -> bool {
    let t = &s.d.tunnel;
    if t.outer_udp_payload == 0 {
        return false;
    }
    let off = (t.outer_udp_offset as usize).min(data.len());
    let payload = &data[off..(off + t.outer_udp_payload as usize).min(data.len())];
    pipe.update_with_payload(&t.outer_udp(), payload, s.wire_len, now, sink);
    true
}

#[inline]
#[allow(clippy::too_many_arguments)]
fn account<S: RecordSink>(
    pipe: &mut Pipeline,
    defrag: &mut Defrag,
    shard: Option<&mut crate::shard::Shard>,
    c: &mut EngineCounters,
    now: &mut Micros,
    s: &Pending,
    data: &[u8],
    sink: &mut S,
) {
    if s.ts > *now {
        *now = s.ts;
    }
    pipe.seq = s.seq;
    c.packets += 1;
    c.bytes += s.wire_len as u64;
    match &s.result {
        Ok(()) => match s.d.kind {
            Kind::Ip if s.d.quoted.valid && quoted_flow(pipe, s, *now) => c.flow_packets += 1,
            Kind::Ip => {
                let before = pipe.len();
                let payload = payload_of(&s.d, data);
                let t = &s.d.tunnel;
                // An inner flow counts its inner IP packets' bytes, as Suricata does.
                let bytes = if t.depth > 0 { t.inner_len + t.inner_link as u32 } else { s.wire_len };
                pipe.update_keyed(&s.key, s.src_is_lo, s.hash, &s.d, payload, bytes, *now, sink);
                // A UDP tunnel (VXLAN, GENEVE) is a UDP flow of its own too.
                outer_flow(pipe, s, data, *now, sink);
                if before == 0 && pipe.is_empty() {
                    c.no_flow += 1;
                } else {
                    c.flow_packets += 1;
                }
            }
            Kind::Fragment => {
                c.fragments += 1;
                outer_flow(pipe, s, data, *now, sink);
                if defrag.enabled() {
                    reassemble(pipe, defrag, shard, s, data, *now, sink);
                }
            }
            // ARP and the like inside a UDP tunnel: on the tunnel's flow.
            Kind::NonIp if outer_flow(pipe, s, data, *now, sink) => c.flow_packets += 1,
            Kind::NonIp => c.non_ip += 1,
        },
        Err(e) => c.decode_errors[e.kind() as usize][e.layer() as usize] += 1,
    }
}

/// An ICMP error goes to the flow of the packet it quotes when that flow exists, from the
/// quoted packet's destination side (as Suricata accounts it); returns whether it did.
#[cold]
fn quoted_flow(pipe: &mut Pipeline, s: &Pending, now: Micros) -> bool {
    let q = &s.d.quoted;
    let mut d = s.d;
    d.src = q.src;
    d.dst = q.dst;
    d.proto = q.proto;
    d.src_port = q.src_port;
    d.dst_port = q.dst_port;
    let (key, quoted_src_is_lo) = FlowKey::from_decoded(&d);
    let bytes = if s.d.tunnel.depth > 0 { s.d.tunnel.inner_len + s.d.tunnel.inner_link as u32 } else { s.wire_len };
    pipe.table.account_existing(&key, key_hash(&key), !quoted_src_is_lo, bytes, now)
}

/// A fragment: when it completes its datagram, the datagram goes to its flow as one packet of
/// its link header plus its IP length (inner IP length in a tunnel), as Suricata counts it.
#[cold]
fn reassemble<S: RecordSink>(
    pipe: &mut Pipeline,
    defrag: &mut Defrag,
    shard: Option<&mut crate::shard::Shard>,
    s: &Pending,
    data: &[u8],
    now: Micros,
    sink: &mut S,
) {
    let link = s.d.frag.ip_start as u32;
    let Some(Ok(r)) = defrag.add(data, &s.d, now) else { return };
    let d = &r.d;
    if d.kind != Kind::Ip {
        return;
    }
    let payload = payload_of(d, r.packet);
    let ip_len = r.packet.len() as u32;
    let bytes = if d.tunnel.depth > 0 { ip_len } else { link + ip_len };
    let (key, lo) = FlowKey::from_decoded(d);
    let hash = key_hash(&key);
    if let Some(sh) = shard {
        // In a UDP tunnel, every inner flow lives where the tunnel's outer flow does: here
        // (see [`crate::hash::dispatch_hash`]).
        let to = if s.d.tunnel.outer_udp_payload != 0 { sh.me } else { sh.owner(hash) };
        if to != sh.me {
            // Its flow lives on another worker (a full ring is counted there).
            sh.send(to, d, r.packet, bytes, now, s.seq);
            return;
        }
    }
    pipe.update_keyed(&key, lo, hash, d, payload, bytes, now, sink);
}

/// Applies the hand-offs due before an own packet at `at` = (seq, ts) (`None`: all of them, the
/// end of the input), each on its own time.
#[cold]
fn apply_due<S: RecordSink>(
    pipe: &mut Pipeline,
    sh: &mut crate::shard::Shard,
    now: &mut Micros,
    at: Option<(u64, Micros)>,
    sink: &mut S,
) {
    loop {
        let h = match at {
            Some((seq, ts)) => sh.next_due(seq, ts),
            None => sh.next_any(),
        };
        let Some(h) = h else { break };
        let d = &h.d;
        if h.ts > *now {
            *now = h.ts;
        }
        let payload = payload_of(d, &h.packet);
        let (key, lo) = FlowKey::from_decoded(d);
        pipe.seq = h.seq;
        pipe.update_keyed(&key, lo, key_hash(&key), d, payload, h.bytes, h.ts, sink);
        sh.recycle(h);
    }
}
