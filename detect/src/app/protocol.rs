//! What an application protocol is to the rest of the sensor: the [`Protocol`] trait.
//!
//! A protocol is one directory under `detect/src/app/` (parser, per-flow state, event, EVE and
//! CEF writers, rule buffers, counters) with one `impl Protocol` and one line in
//! [`super::registry`]. Everything that goes over protocols (identification, parsing, gaps,
//! finishing, pooled-state reuse, counters and the summary, the batch copy, the EVE and CEF
//! records, rule buffers, indicators) goes through this trait, dispatched statically: the
//! registry generates the enums ([`super::AppProto`], [`super::AppEvent`],
//! [`super::OwnedEvent`]) and exhaustive matches over them, so the compiler flags what a new
//! protocol leaves out.

use super::stream::Chunk;
use super::{AppConfig, Emit};
use crate::flow::EventMeta;
use crate::rules::ioc::IocKind;
use crate::rules::{Buf, BufSpec};
use std::fmt::Debug;

/// One application protocol. Implemented by a unit struct in the protocol's directory.
pub trait Protocol: 'static {
    /// Its names, transports and rule buffers.
    const INFO: Info;

    /// A flow's parser state. Kept in a pooled session between flows ([`Reuse`]).
    type State: Default + Debug + Reuse;
    /// Per-worker counters, summed over workers with [`Protocol::add`].
    type Counters: Default + Copy + Debug + PartialEq + Eq;
    /// An event as the parser shows it (borrowed from its state).
    type Event<'a>: Copy + Debug;
    /// An event as a batch carries it to the exporter (a copy; its buffers are reused).
    type Owned: Default + Debug + Send;

    /// Identification on the first bytes of a TCP direction (`dir` 0 from the client), at most
    /// [`super::PROBE_BYTES`]: `Some(true)` it is this protocol, `Some(false)` it cannot be,
    /// `None` too short to tell.
    fn probe_tcp(_dir: usize, _data: &[u8], _ports: (u16, u16)) -> Option<bool> {
        Some(false)
    }
    /// Identification on a UDP flow's first datagram.
    fn probe_udp(_dir: usize, _payload: &[u8], _ports: (u16, u16)) -> bool {
        false
    }

    /// A chunk of a TCP direction's reassembled stream (data, a gap, or bytes the stream
    /// skipped). Returns how many following bytes the parser does not need (a body it passes
    /// over), 0 when it needs them all.
    fn tcp_input(_s: &mut Self::State, _i: Input<'_, '_, Self::Counters>) -> u64 {
        0
    }
    /// A UDP datagram of an identified flow (`i.chunk` is its payload).
    fn udp_input(_s: &mut Self::State, _i: Input<'_, '_, Self::Counters>) {}
    /// Whether the parser has nothing more to read (the flow's session goes back to the pool).
    fn is_done(_s: &Self::State) -> bool {
        false
    }
    /// The flow ended: what is pending is emitted.
    fn finish(_s: &mut Self::State, _c: &mut Self::Counters, _emit: &mut Emit<'_>) {}
    fn add(a: &mut Self::Counters, b: &Self::Counters);
    /// The protocol's part of the summary's "parser anomalies" line (`tls malformed 0 gaps 0`).
    fn anomalies(c: &Self::Counters, out: &mut String);

    /// Copies an event for the batch.
    fn copy(ev: &Self::Event<'_>, into: &mut Self::Owned);
    /// The event a copy holds (`None`: it cannot be shown again, nothing is written).
    fn view(o: &Self::Owned) -> Option<Self::Event<'_>>;
    /// Appends the event's EVE lines; returns how many.
    fn write_eve(out: &mut Vec<u8>, m: &EventMeta, ev: &Self::Event<'_>) -> usize;
    /// Appends the event's CEF body (after the header the exporter wrote).
    fn write_cef(out: &mut Vec<u8>, m: &EventMeta, ev: &Self::Event<'_>);

    /// Puts the event's rule buffers and runs the transaction rules on them.
    fn inspect<I: Inspect>(_ev: &Self::Event<'_>, _i: &mut I) {}
    /// The domain and fingerprint indicators the event carries (`want` says which kinds are
    /// loaded).
    fn indicators(_ev: &Self::Event<'_>, _want: Wanted, _f: &mut dyn FnMut(IocKind, &[u8])) {}
}

/// What a parser is handed with each chunk or datagram.
pub struct Input<'a, 'e, C> {
    /// 0 from the flow's initiator.
    pub dir: usize,
    pub chunk: Chunk<'a>,
    pub cfg: &'a AppConfig,
    pub counters: &'a mut C,
    pub emit: &'a mut Emit<'e>,
}

impl<'a, 'e, C> Input<'a, 'e, C> {
    /// The same input with one protocol's counters out of the set.
    pub fn narrow<D>(self, f: impl FnOnce(&'a mut C) -> &'a mut D) -> Input<'a, 'e, D> {
        Input { dir: self.dir, chunk: self.chunk, cfg: self.cfg, counters: f(self.counters), emit: self.emit }
    }
}

/// A pooled session's parser state between flows.
pub trait Reuse {
    /// Empties the state for the next flow.
    fn reset(&mut self);
    /// Gives back buffers larger than `keep` bytes (what a hostile flow grew).
    fn trim(&mut self, _keep: usize) {}
}

/// Stateless protocols (a message per datagram).
impl Reuse for () {
    fn reset(&mut self) {}
}

/// What a protocol is called and where it runs.
#[derive(Debug, Clone, Copy)]
pub struct Info {
    /// The EVE name: `app_proto` and the record's `event_type`.
    pub name: &'static str,
    /// The rule-header keywords naming it (`alert http ...`).
    pub rule_names: &'static [&'static str],
    /// The IP protocols a rule header naming it matches.
    pub ip_protos: &'static [u8],
    /// Its rule buffers (sticky buffers and content modifiers), declared with
    /// [`crate::rule_buffers!`].
    pub buffers: &'static [BufSpec],
}

impl Info {
    pub const fn new(name: &'static str, rule_names: &'static [&'static str], ip_protos: &'static [u8]) -> Info {
        Info { name, rule_names, ip_protos, buffers: &[] }
    }

    pub const fn buffers(self, buffers: &'static [BufSpec]) -> Info {
        Info { buffers, ..self }
    }
}

/// Which kinds of indicators are loaded.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub domains: bool,
    pub hashes: bool,
}

/// The rule engine as a protocol sees it when it inspects an event: views of buffers, each
/// view a run of the transaction rules.
pub trait Inspect {
    /// Starts a view (forgets the buffers of the last one).
    fn begin(&mut self);
    /// Puts buffer `b`, the same whichever side a rule reads, into the view.
    fn put(&mut self, b: Buf, v: &[u8]);
    /// Puts buffer `b` of one side (0 the request's, 1 the response's) into the view.
    fn put_side(&mut self, b: Buf, side: usize, v: &[u8]);
    /// Whether any rule inspects `b` (a protocol skips building what no rule reads).
    fn wants(&self, b: Buf) -> bool;
    /// Runs the transaction rules on the view; `reversed`: the view is the server's side (the
    /// header faces from the server).
    fn run(&mut self, reversed: bool);
    /// One view per item of a multi-valued buffer (`tls.certs`): only rules on it run.
    fn run_each<'a>(&mut self, b: Buf, items: impl Iterator<Item = &'a [u8]>);
    /// [`Inspect::put`] of a value the event may lack.
    fn put_opt(&mut self, b: Buf, v: Option<&[u8]>) {
        if let Some(v) = v {
            self.put(b, v);
        }
    }
}

/// What the registry gives each protocol: its [`super::AppProto`] and where its rule buffers
/// start among all buffers.
pub trait Registered {
    const ID: super::AppProto;
    const BUF_BASE: u8;
}

/// `copy` and `view` for a protocol whose event is a reference to what the batch copies
/// (`Event<'a> = &'a T`, `Owned = T`, with `T::copy_from`), inside its `impl Protocol`.
#[macro_export]
macro_rules! event_by_copy {
    ($T:ty) => {
        fn copy(ev: &&$T, into: &mut $T) {
            into.copy_from(ev)
        }

        fn view(o: &$T) -> Option<&$T> {
            Some(o)
        }
    };
}

/// `write_eve`, `write_cef` and `inspect` for a protocol whose writers and rule inspection take
/// its event as they are (`eve::write_x(out, meta, ev)`, `rules::inspect(ev, i)`).
#[macro_export]
macro_rules! records_by {
    ($eve:path, $cef:path, $rules:path) => {
        fn write_eve(out: &mut Vec<u8>, m: &$crate::flow::EventMeta, ev: &Self::Event<'_>) -> usize {
            $eve(out, m, ev)
        }

        fn write_cef(out: &mut Vec<u8>, m: &$crate::flow::EventMeta, ev: &Self::Event<'_>) {
            $cef(out, m, ev)
        }

        fn inspect<I: $crate::app::Inspect>(ev: &Self::Event<'_>, i: &mut I) {
            $rules(ev, i)
        }
    };
}
