//! The application layer of one worker: protocol identification by content, TCP reassembly,
//! the DNS / HTTP / TLS / SSH parsers, and the events they produce.
//!
//! A flow gets an app-layer session at its first payload (a TCP flow only once its handshake was
//! seen, as Suricata without midstream pick-up). Sessions come from a per-worker pool of at most
//! [`AppConfig::max_sessions`]; their buffers are kept when a session is reused, so the packet
//! path allocates only while the pool warms up. Every buffer is bounded (see [`stream`] and each
//! parser's limits); what goes past a bound is counted.
//!
//! Identification looks at the first bytes of each direction (at most [`PROBE_BYTES`]): an HTTP
//! request line or status line, a TLS handshake record, an SSH banner, on any port; DNS by its
//! header on port 53 only, since twelve bytes of header say too little to claim DNS anywhere
//! else (so mDNS and LLMNR are not DNS here, as in Suricata). A TCP flow whose two directions both fail is `failed`, as in
//! Suricata (payload one way only leaves it unknown); a UDP flow whose first datagram is not DNS
//! is `failed` at once.

#[macro_use]
mod registry;
pub mod protocol;

pub mod stream;

pub use protocol::{Input, Inspect, Protocol, Registered, Reuse, Wanted};
use stream::{Budget, Chunk, Stream, StreamCounters, StreamLimits};

// The protocols, one line each: `Variant => directory::Type` (the line declares the module). Their
// order is `AppProto`'s numbers, identification's and the summary's columns'. A protocol is its
// directory and its line here.
registry! {
    Http => http::Http,
    Tls => tls::Tls,
    Dns => dns::Dns,
    Ssh => ssh::Ssh,
    Dhcp => dhcp::Dhcp,
}

/// Capacity a pooled session's buffer may keep between flows; larger ones are shrunk to it.
pub const KEEP_BUFFER: usize = 4096;

/// Shrinks `v`'s storage to `keep` bytes when it is larger (emptying it: this is between
/// flows). Shrinking rather than freeing spares the next flow the climb back from nothing
/// (a TLS certificate flight would otherwise reallocate half a dozen times per flow).
#[inline]
pub(crate) fn trim_vec<T>(v: &mut Vec<T>, keep: usize) {
    let size = std::mem::size_of::<T>().max(1);
    if v.capacity() * size > keep {
        v.clear();
        v.shrink_to(keep / size);
    }
}

/// Bytes per direction looked at to identify the protocol.
pub const PROBE_BYTES: usize = 16;

/// A field kept in a parser's byte store: offset, length, whether it was set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub off: u32,
    pub len: u32,
    pub set: bool,
}

impl Span {
    #[inline]
    pub fn get(self, store: &[u8]) -> Option<&[u8]> {
        self.set.then(|| &store[self.off as usize..(self.off + self.len) as usize])
    }
}

/// Lower-case hex digits, for the fingerprints (JA3/JA4, HASSH) the parsers log.
pub(crate) const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lower-case hex into the first `2 * bytes.len()` bytes of `out`.
pub(crate) fn hex_lower(out: &mut [u8], bytes: &[u8]) {
    for (o, &b) in out.chunks_exact_mut(2).zip(bytes) {
        o[0] = HEX_LOWER[(b >> 4) as usize];
        o[1] = HEX_LOWER[(b & 15) as usize];
    }
}

/// Whether `data` starts with `prefix` (`Some(true)`), cannot (`Some(false)`), or is too short
/// to tell (`None`): protocol identification on a stream's first bytes.
pub fn probe_prefix(data: &[u8], prefix: &[u8]) -> Option<bool> {
    let n = prefix.len().min(data.len());
    if data[..n] != prefix[..n] {
        Some(false)
    } else if n == prefix.len() {
        Some(true)
    } else {
        None
    }
}

/// Where parsers hand their events.
pub type Emit<'a> = dyn FnMut(&AppEvent<'_>) + 'a;

/// App-layer settings (the `[app]` table of the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppConfig {
    /// Parse application protocols at all (off: flows only).
    pub enabled: bool,
    /// App-layer sessions per worker.
    pub max_sessions: usize,
    pub stream: StreamLimits,
    pub http: http::HttpLimits,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            enabled: true,
            max_sessions: 65536,
            stream: StreamLimits::default(),
            http: http::HttpLimits::default(),
        }
    }
}

/// App-layer counters (per worker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Sessions opened.
    pub sessions: u64,
    /// Flows that wanted a session when the pool was empty (not parsed; counted here).
    pub no_session: u64,
    /// Flows identified, by [`AppProto`] (`Failed` included).
    pub identified: [u64; AppProto::COUNT],
    /// Events emitted, by [`AppProto`].
    pub events: [u64; AppProto::COUNT],
    pub stream: StreamCounters,
    /// Each protocol's own.
    pub proto: ProtoCounters,
}

impl AppCounters {
    pub fn add(&mut self, o: &AppCounters) {
        self.sessions += o.sessions;
        self.no_session += o.no_session;
        for i in 0..AppProto::COUNT {
            self.identified[i] += o.identified[i];
            self.events[i] += o.events[i];
        }
        self.stream.add(&o.stream);
        self.proto.add(&o.proto);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Probe {
    #[default]
    Undecided,
    NoMatch,
}

/// One flow's app-layer state. All parsers' states are kept (empty when unused) so a reused
/// session keeps every buffer it grew.
/// `repr(C)`: the streams first, then the parsers' per-direction state, so a packet's first
/// touches are the session's first cache lines (see [`AppLayer::touch`]).
#[derive(Debug, Default)]
#[repr(C, align(64))]
struct Session {
    streams: [Stream; 2],
    p: Parsers,
}

/// A session's identification state and parsers (apart from its streams, so a stream can
/// deliver into them while borrowed).
#[derive(Debug, Default)]
#[repr(C)]
struct Parsers {
    probe: [([u8; PROBE_BYTES], u8, Probe); 2],
    /// Whether a direction saw payload.
    seen: [bool; 2],
    states: States,
}

/// A TCP segment as the app layer needs it.
#[derive(Debug, Clone, Copy)]
pub struct TcpSeg<'a> {
    pub seq: u32,
    pub ack: Option<u32>,
    /// The segment carries a FIN.
    pub fin: bool,
    pub payload: &'a [u8],
    /// The payload length the headers give (more than `payload.len()` when the capture cut it).
    pub claimed: u32,
    /// Where each direction's stream starts (the sequence number after its SYN), for a new
    /// session.
    pub isn_next: [u32; 2],
}

pub const NO_SESSION: u32 = u32::MAX;
/// A flow that asked for a session when the pool was empty: never asks again.
pub const REFUSED: u32 = u32::MAX - 1;
/// A flow whose parser has nothing more to read (a TLS or SSH handshake logged, a protocol not
/// recognised): its session went back to the pool, its packets skip the app layer.
pub const FINISHED: u32 = u32::MAX - 2;

/// Whether a flow's packets still go to the app layer.
#[inline]
pub fn wants_packets(sid: u32) -> bool {
    sid < FINISHED
}

/// The per-worker app layer.
pub struct AppLayer {
    cfg: AppConfig,
    sessions: Vec<Session>,
    free: Vec<u32>,
    budget: Budget,
    pub counters: AppCounters,
}

impl AppLayer {
    pub fn new(cfg: AppConfig) -> Self {
        AppLayer {
            cfg,
            sessions: Vec::new(),
            free: Vec::new(),
            budget: Budget::new(cfg.stream),
            counters: AppCounters::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Whether session `sid` has out-of-order bytes buffered in either direction.
    #[inline]
    pub fn has_ooo(&self, sid: u32) -> bool {
        self.sessions.get(sid as usize).is_some_and(|s| s.streams[0].has_ooo() || s.streams[1].has_ooo())
    }

    fn open(&mut self, sid: &mut u32) -> Option<usize> {
        if *sid == REFUSED || *sid == FINISHED {
            return None;
        }
        if *sid != NO_SESSION {
            return Some(*sid as usize);
        }
        let id = match self.free.pop() {
            Some(i) => i,
            None if self.sessions.len() < self.cfg.max_sessions => {
                self.sessions.push(Session::default());
                (self.sessions.len() - 1) as u32
            }
            None => {
                self.counters.no_session += 1;
                *sid = REFUSED;
                return None;
            }
        };
        self.counters.sessions += 1;
        *sid = id;
        Some(id as usize)
    }

    /// A UDP datagram's payload, `dir` 0 from the flow's initiator.
    #[allow(clippy::too_many_arguments)]
    pub fn udp(
        &mut self,
        sid: &mut u32,
        proto: &mut AppProto,
        dir: usize,
        ports: (u16, u16),
        payload: &[u8],
        emit: &mut Emit<'_>,
    ) {
        if payload.is_empty() || *proto == AppProto::Failed || !self.cfg.enabled {
            return;
        }
        if *proto == AppProto::Unknown {
            // No session for what no protocol claims.
            match registry_probe_udp(dir, payload, ports) {
                Some(p) => {
                    *proto = p;
                    self.counters.identified[p as usize] += 1;
                }
                None => {
                    *proto = AppProto::Failed;
                    self.counters.identified[AppProto::Failed as usize] += 1;
                    return;
                }
            }
        }
        let Some(i) = self.open(sid) else { return };
        let c = &mut self.counters;
        let s = &mut self.sessions[i].p;
        let events = &mut c.events;
        let emit = &mut |e: &AppEvent<'_>| {
            events[e.proto() as usize] += 1;
            emit(e)
        };
        let cfg = &self.cfg;
        s.states.udp_input(*proto, Input { dir, chunk: Chunk::Data(payload), cfg, counters: &mut c.proto, emit });
    }

    /// A TCP segment of a flow whose handshake was seen, `dir` 0 from the initiator.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        sid: &mut u32,
        proto: &mut AppProto,
        dir: usize,
        ports: (u16, u16),
        seg: &TcpSeg<'_>,
        emit: &mut Emit<'_>,
    ) -> Option<(u32, u32)> {
        if !self.cfg.enabled || *proto == AppProto::Failed {
            return None;
        }
        if *sid == NO_SESSION && seg.claimed == 0 {
            return None;
        }
        let i = self.open(sid)?;
        let AppLayer { sessions, budget, counters, cfg, .. } = self;
        let Session { streams, p } = &mut sessions[i];
        if !streams[0].is_started() {
            streams[0].start(seg.isn_next[0]);
            streams[1].start(seg.isn_next[1]);
        }
        if seg.fin {
            streams[dir].fin(seg.seq.wrapping_add(seg.claimed));
        }
        // The ACK first: it is about bytes the other side sent before this segment, so a hole
        // it declares lost comes before what this segment says (a response to a request after
        // a lost segment pairs with that request).
        if let Some(ack) = seg.ack {
            let o = 1 - dir;
            streams[o].acked(ack, budget, &mut |ch| feed(o, ch, p, proto, ports, cfg, counters, emit));
        }
        streams[dir].segment(seg.seq, seg.payload, seg.claimed, budget, &mut |ch| {
            feed(dir, ch, p, proto, ports, cfg, counters, emit)
        });
        if p.states.is_done(*proto) {
            // Nothing more to read: the session goes back to the pool now.
            self.close(sid, proto, ports, emit);
            *sid = FINISHED;
            return None;
        }
        let st = &streams[dir];
        st.fast_skip(budget.limits.depth).map(|end| (st.next(), end))
    }

    /// The flow table passed over direction `dir`'s segments up to `upto`, all exactly in
    /// order and inside the body its parser skips (announced by [`AppLayer::tcp`]'s answer):
    /// they are accounted as delivered and skipped.
    pub fn fast_sync(
        &mut self,
        sid: u32,
        proto: &mut AppProto,
        ports: (u16, u16),
        dir: usize,
        upto: u32,
        emit: &mut Emit<'_>,
    ) {
        if !wants_packets(sid) {
            return;
        }
        let AppLayer { sessions, counters, cfg, .. } = self;
        let Some(Session { streams, p }) = sessions.get_mut(sid as usize) else { return };
        streams[dir].fast_consumed(upto, &mut |ch| feed(dir, ch, p, proto, ports, cfg, counters, emit));
    }

    /// A segment the flow table passed over (see [`AppLayer::fast_sync`]): in order.
    #[inline]
    pub fn count_fast_segment(&mut self) {
        self.budget.counters.in_order += 1;
        self.budget.counters.fast_skipped += 1;
    }

    /// The flow ended: buffered segments are delivered after their gaps, pending transactions
    /// logged, the session returned to the pool.
    pub fn close(&mut self, sid: &mut u32, proto: &mut AppProto, ports: (u16, u16), emit: &mut Emit<'_>) {
        let id = *sid;
        *sid = NO_SESSION;
        if !wants_packets(id) {
            return;
        }
        let AppLayer { sessions, budget, counters, cfg, free, .. } = self;
        let Session { streams, p: s } = &mut sessions[id as usize];
        for (d, st) in streams.iter_mut().enumerate() {
            st.finish(budget, &mut |ch| feed(d, ch, s, proto, ports, cfg, counters, emit));
            st.reset(budget);
        }
        // As Suricata: a flow is `failed` only when both directions carried payload that no parser
        // recognised; with payload one way only it stays unknown (no `app_proto`).
        if *proto == AppProto::Unknown && s.seen[0] && s.seen[1] {
            *proto = AppProto::Failed;
            counters.identified[AppProto::Failed as usize] += 1;
        }
        let events = &mut counters.events;
        let mut em = |e: &AppEvent<'_>| {
            events[e.proto() as usize] += 1;
            emit(e)
        };
        s.states.finish(*proto, &mut counters.proto, &mut em);
        // A pooled session keeps its buffers for the next flow, but not big ones: what a
        // hostile flow grew (a 64 KiB handshake) is given back rather than kept by every
        // session of the pool.
        s.states.reset(*proto, KEEP_BUFFER);
        s.probe = Default::default();
        s.seen = [false; 2];
        free.push(id);
    }

    /// Stream counters live in the budget; copy them out with the rest.
    pub fn counters(&self) -> AppCounters {
        let mut c = self.counters;
        c.stream = self.budget.counters;
        c
    }

    /// Sessions opened, flows refused a session, out-of-order bytes buffered now: the live
    /// figures, without copying every counter.
    pub fn gauges(&self) -> (u64, u64, u64) {
        (self.counters.sessions, self.counters.no_session, self.budget.counters.ooo_bytes)
    }
}

/// Identifies (while needed) and parses one chunk of direction `dir`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn feed(
    dir: usize,
    ch: Chunk<'_>,
    s: &mut Parsers,
    proto: &mut AppProto,
    ports: (u16, u16),
    cfg: &AppConfig,
    c: &mut AppCounters,
    emit: &mut Emit<'_>,
) -> u64 {
    let mut prior: ([u8; PROBE_BYTES], usize) = ([0; PROBE_BYTES], 0);
    if *proto == AppProto::Unknown {
        let data = match ch {
            Chunk::Data(d) => d,
            Chunk::Gap(_) | Chunk::Skipped(_) => {
                s.probe[dir].2 = Probe::NoMatch;
                s.seen[dir] = true;
                settle(s, proto, c);
                return 0;
            }
        };
        s.seen[dir] = true;
        let (buf, len, verdict) = &mut s.probe[dir];
        if *verdict == Probe::NoMatch {
            return 0;
        }
        let prev = *len as usize;
        let take = (PROBE_BYTES - prev).min(data.len());
        buf[prev..prev + take].copy_from_slice(&data[..take]);
        *len += take as u8;
        let b = &buf[..*len as usize];
        match registry_probe_tcp(dir, b, ports) {
            Ok(p) => {
                *proto = p;
                c.identified[p as usize] += 1;
                prior.0[..prev].copy_from_slice(&buf[..prev]);
                prior.1 = prev;
            }
            Err(undecided) => {
                if !undecided || *len as usize == PROBE_BYTES {
                    *verdict = Probe::NoMatch;
                    settle(s, proto, c);
                }
                return 0;
            }
        }
    } else if s.probe[dir].1 > 0 && s.probe[dir].2 == Probe::Undecided {
        // The other direction identified the flow while this one was still probing: its
        // first bytes are in the probe buffer.
        let (buf, len, _) = s.probe[dir];
        prior.0 = buf;
        prior.1 = len as usize;
    }
    s.probe[dir].2 = Probe::NoMatch;
    s.probe[dir].1 = 0;
    let events = &mut c.events;
    let mut em = |e: &AppEvent<'_>| {
        events[e.proto() as usize] += 1;
        emit(e)
    };
    let p = *proto;
    let mut parse =
        |chunk: Chunk<'_>| s.states.tcp_input(p, Input { dir, chunk, cfg, counters: &mut c.proto, emit: &mut em });
    if prior.1 > 0 {
        // Its skip request is for bytes after the prior ones, all in `ch`: what matters is the
        // answer to `ch`.
        parse(Chunk::Data(&prior.0[..prior.1]));
    }
    parse(ch)
}

/// After a direction failed to match: the flow fails when no direction can still match.
fn settle(s: &Parsers, proto: &mut AppProto, c: &mut AppCounters) {
    let open = (0..2).any(|d| s.probe[d].2 == Probe::Undecided && s.seen[d]);
    let unseen = (0..2).any(|d| !s.seen[d]);
    if !open && !unseen {
        *proto = AppProto::Failed;
        c.identified[AppProto::Failed as usize] += 1;
    }
}
