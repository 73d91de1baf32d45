//! The per-packet orchestration of one worker after decoding: the flow table update, the app
//! layer, the rules and the behaviour evidence, and what a flow's end sets off.

use super::table::*;
use super::tcp::*;
use super::*;
use crate::time::Micros;

/// `meta` (oriented from the initiator) turned to face the direction a rule matched in.
fn oriented_meta(meta: EventMeta, to_server: bool) -> EventMeta {
    if to_server {
        meta
    } else {
        meta.reversed()
    }
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
        let mut done = std::mem::take(sk);
        // The gate stays with the worker.
        sk.gate = std::mem::take(&mut done.gate);
        sink.emit_sketch(done);
        sk.start(w, *sp);
    }
    sk
}

/// The per-packet work of one worker: the flow table, and what its flows go through (the app
/// layer, the rule matcher and the behaviour evidence). Decoding is the engine's
/// ([`crate::engine::Engine`]); everything after is here.
pub struct Pipeline {
    pub table: FlowTable,
    pub app: AppLayer,
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

impl Pipeline {
    /// Allocates everything the pipeline will ever use. `cfg.capacity` must be ≥ 1.
    pub fn new(cfg: FlowConfig) -> Self {
        Pipeline {
            seq: 0,
            app: AppLayer::new(cfg.app),
            rules: cfg.rules.0.as_ref().map(|s| s.current().1).filter(|r| !r.is_empty()),
            rules_slot: cfg.rules.0.clone(),
            rules_generation: cfg.rules.0.as_ref().map_or(0, |s| s.generation()),
            rule_reloads: 0,
            matcher: Matcher::default(),
            table: FlowTable::new(cfg),
        }
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Writes the flow's record and frees its slot.
    fn end_flow<S: RecordSink>(&mut self, slot: u32, reason: EndReason, ts: Micros, sink: &mut S) {
        let f = &mut self.table.flows[slot as usize];
        if f.app != NO_SESSION {
            // Pending app-layer events first, with the flow's last packet time.
            let (mut sid, mut proto) = (f.app, f.app_proto);
            let ports = (f.key.lo_port, f.key.hi_port);
            let f = &self.table.flows[slot as usize];
            let last = f.last;
            let tunnel = self.table.tunnel_of(slot);
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
            let f = &mut self.table.flows[slot as usize];
            f.app = sid;
            f.app_proto = proto;
            f.app_bits |= alerted;
        }
        self.matcher.flow_ended(slot);
        self.detect_flow_end(slot, sink);
        let rec = self.table.record(slot, reason, ts);
        sink.emit(&rec);
        match reason {
            EndReason::Timeout => self.table.counters.timed_out += 1,
            EndReason::Evicted => self.table.counters.evicted += 1,
            EndReason::Shutdown => self.table.counters.shutdown += 1,
            EndReason::Active => {}
        }
        self.table.unlink(slot);
        let hash = self.table.flows[slot as usize].hash as u64;
        self.table.index_remove(hash, slot);
        self.table.free.push(slot);
        self.table.counters.active -= 1;
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
            let h = self.table.head[c];
            if h == NIL {
                continue;
            }
            let exp = self.table.expires_at(h);
            if exp <= now {
                self.end_flow(h, EndReason::Timeout, exp, sink);
                return;
            }
            // Classes are protocol × state, state New first (see `class_of`).
            let k = (c % 3 != FlowState::New as usize) as usize;
            if self.table.flows[h as usize].relinked < best_last[k] {
                best[k] = h;
                best_last[k] = self.table.flows[h as usize].relinked;
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

    /// [`Pipeline::update`] with the packet's L4 payload as captured (for the app layer).
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

    /// [`Pipeline::update`] with the key and hash already computed.
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
        let mut slot = self.table.find(&key, hash);
        if let Some(s) = slot {
            let exp = self.table.expires_at(s);
            if now >= exp {
                self.end_flow(s, EndReason::Timeout, exp, sink);
                slot = None;
            } else if d.proto == 6 && d.tcp_flags & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN {
                // Port reuse: a new SYN starts a new flow (the old one ends now) when the old
                // one has no session or its session is closing, as Suricata decides it
                // (TcpSessionReuseDoneEnoughSyn); a retransmitted SYN does not.
                let f = &self.table.flows[s as usize];
                let st = f.tcp.state;
                let retransmit = st == TcpState::SynSent && d.tcp_seq.wrapping_add(1) == f.tcp.next_seq[0];
                let closing =
                    matches!(st, TcpState::LastAck | TcpState::CloseWait | TcpState::Closing | TcpState::Closed);
                if !retransmit && (st == TcpState::None || closing) {
                    self.table.counters.tcp_reuse += 1;
                    self.end_flow(s, EndReason::Timeout, now, sink);
                    slot = None;
                }
            }
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if self.table.free.is_empty() {
                    self.evict_one(now, sink);
                }
                let Some(s) = self.table.free.pop() else { return };
                let f = &mut self.table.flows[s as usize];
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
                    if self.table.tunnels.is_empty() {
                        // Once per table, at its first tunnelled flow.
                        self.table.tunnels = vec![None; self.table.flows.len()];
                    }
                    self.table.tunnels[s as usize] = TunnelRec::of(d);
                }
                self.table.index_insert(hash, s);
                self.table.push_tail(s, FlowTable::class_of(key.proto, FlowState::New));
                self.table.counters.created += 1;
                self.table.counters.active += 1;
                s
            }
        };
        // Interim record before this packet is counted, when the interval is long enough.
        if self.table.cfg.active_timeout != 0 {
            let f = &self.table.flows[slot as usize];
            if now.saturating_sub(f.start) >= secs(self.table.cfg.active_timeout) && f.pkts != [0, 0] {
                let rec = self.table.record(slot, EndReason::Active, now);
                sink.emit(&rec);
                self.table.counters.interim += 1;
                let f = &mut self.table.flows[slot as usize];
                f.pkts = [0; 2];
                f.bytes = [0; 2];
                f.first_seen = [0; 2];
                f.last_seen = [0; 2];
                f.start = now;
            }
        }
        let f = &mut self.table.flows[slot as usize];
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
        let class = FlowTable::class_of(d.proto, new_state);
        if class != f.class || now >= f.relinked + RELINK_US {
            f.relinked = now;
            self.table.unlink(slot);
            self.table.push_tail(slot, class);
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
        let tunnel = self.table.tunnel_of(slot);
        let Some(set) = &self.rules else { return };
        let f = &self.table.flows[slot as usize];
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
            self.table.flows[slot as usize].app_bits |= NO_ADDR_RULES;
        }
        self.table.flows[slot as usize].app_bits |= alerted;
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
        for f in &mut self.table.flows {
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
        let f = &self.table.flows[slot as usize];
        // (Counts are per direction from the initiator: 0 to the server.)
        let (out_bytes, in_bytes) = (f.bytes[0], f.bytes[1]);
        let (src, _, dst, _) = f.oriented();
        let v6 = f.key.ip_version() == 6;
        let addr = |b: [u8; 16]| crate::rules::addr::from_raw(u128::from_ne_bytes(b), v6);
        let leaves = set.home.matches(addr(src)) && !set.home.matches(addr(dst));
        if crate::rules::behave::exfiltration(&set.behave, out_bytes, in_bytes, leaves) {
            let meta = f.event_meta(f.last, self.table.tunnel_of(slot));
            let rule = set.behaviour_rule(crate::rules::behave::Behaviour::Exfiltration);
            sink.emit_alert(
                &meta,
                &AlertInfo { set, rule, app_proto: f.app_proto, to_server: true, ioc: None, tracked: None },
            );
            self.matcher.counters.alerts += 1;
            self.matcher.counters.behaviour += 1;
            self.table.flows[slot as usize].app_bits |= ALERTED;
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
        let f = &self.table.flows[slot as usize];
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
                    let tunnel = self.table.tunnel_of(slot);
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
                let tunnel = self.table.tunnel_of(slot);
                let (rules, matcher) = (&self.rules, &mut self.matcher);
                fast = self.app.tcp(&mut sid, &mut proto, dir, ports, &seg, &mut |ev| {
                    event_out(sink, rules, matcher, f, slot, now, tunnel, seq, &mut alerted, ev)
                });
            }
            17 => {
                if payload.is_empty() || proto == AppProto::Failed {
                    return;
                }
                let tunnel = self.table.tunnel_of(slot);
                let (rules, matcher) = (&self.rules, &mut self.matcher);
                self.app.udp(&mut sid, &mut proto, dir, ports, payload, &mut |ev| {
                    event_out(sink, rules, matcher, f, slot, now, tunnel, seq, &mut alerted, ev)
                });
            }
            _ => return,
        }
        let ooo = wants_packets(sid) && self.app.has_ooo(sid);
        let f = &mut self.table.flows[slot as usize];
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

    /// Ends at most `expire_budget` flows that have timed out by `now`, oldest first.
    pub fn expire<S: RecordSink>(&mut self, now: Micros, sink: &mut S) -> usize {
        let mut done = 0;
        let mut idle_classes = 0;
        while done < self.table.cfg.expire_budget && idle_classes < CLASSES {
            let c = self.table.next_class;
            let h = self.table.head[c];
            if h != NIL && self.table.expires_at(h) <= now {
                let exp = self.table.expires_at(h);
                self.end_flow(h, EndReason::Timeout, exp, sink);
                done += 1;
                idle_classes = 0;
            } else {
                idle_classes += 1;
                self.table.next_class = (c + 1) % CLASSES;
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
            while self.table.head[c] != NIL {
                let h = self.table.head[c];
                let exp = self.table.expires_at(h);
                if exp <= end {
                    self.end_flow(h, EndReason::Timeout, exp, sink);
                } else {
                    self.end_flow(h, EndReason::Shutdown, end, sink);
                }
            }
        }
    }
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
        let mut t = Pipeline::new(FlowConfig { rules, ..FlowConfig::default() });
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
        let mut t = Pipeline::new(cfg);
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
        assert_eq!(t.table.counters.created, out.len() as u64);
        assert_eq!(t.table.counters.evicted, 0);
        // and a full table of distinct keys, each found again on its second packet
        let mut t = Pipeline::new(FlowConfig { capacity: 500, ..FlowConfig::default() });
        let mut out = Vec::new();
        for i in 0..500u16 {
            t.update(&udp(1, i, 2, 53), 60, SEC, &mut out);
        }
        for i in 0..500u16 {
            t.update(&udp(2, 53, 1, i), 60, 2 * SEC, &mut out);
        }
        assert_eq!((t.len(), t.table.counters.created, out.len()), (500, 500, 0));
        t.flush_all(3 * SEC, &mut out);
        assert!(out.iter().all(|r| r.pkts_toserver == 1 && r.pkts_toclient == 1 && r.state == FlowState::Established));
    }

    fn run(pkts: &[Decoded]) -> FlowRecord {
        let mut t = Pipeline::new(FlowConfig::default());
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
        let mut t = Pipeline::new(FlowConfig { capacity: 2, ..FlowConfig::default() });
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
        assert_eq!(t.table.counters.evicted, 0);
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
        let mut t = Pipeline::new(FlowConfig { active_timeout: 10, ..FlowConfig::default() });
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
        let mut t = Pipeline::new(cfg);
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
