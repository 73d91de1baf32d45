//! One worker's packet engine: decode → flow update, on packet time, with counters.
//!
//! The capture layer feeds it frames (from an mbuf or a pcap record) and calls
//! [`Engine::end_burst`] once per burst; records go to a [`RecordSink`] the caller owns.

use crate::decode::{decode, DecodeErrorKind, Kind, Layer};
use crate::flow::{FlowConfig, FlowCounters, FlowTable};
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
    /// IPv4/IPv6 fragments (counted, not tracked until defragmentation lands).
    pub fragments: u64,
    /// IP packets dropped because the flow table had no slot (capacity 0 only).
    pub no_flow: u64,
    /// Frames that failed to decode, by kind and layer.
    pub decode_errors: [[u64; Layer::COUNT]; DecodeErrorKind::COUNT],
    pub flows: FlowCounters,
}

impl EngineCounters {
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().flatten().sum()
    }

    /// packets == flow_packets + non_ip + fragments + no_flow + decode errors.
    pub fn balanced(&self) -> bool {
        self.packets
            == self.flow_packets + self.non_ip + self.fragments + self.no_flow + self.decode_errors_total()
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
        let (f, g) = (&mut self.flows, &o.flows);
        f.created += g.created;
        f.timed_out += g.timed_out;
        f.evicted += g.evicted;
        f.shutdown += g.shutdown;
        f.interim += g.interim;
        f.active += g.active;
    }
}

/// Decode + flow tracking for one worker.
pub struct Engine {
    table: FlowTable,
    counters: EngineCounters,
    /// The packet clock: the latest timestamp seen.
    now: Micros,
}

impl Engine {
    pub fn new(cfg: FlowConfig) -> Self {
        Engine { table: FlowTable::new(cfg), counters: EngineCounters::default(), now: 0 }
    }

    /// Processes one frame: `data` is what was captured, `wire_len` the frame's length (bytes
    /// counted on flows), `ts` its time.
    #[inline]
    pub fn process<S: RecordSink>(&mut self, data: &[u8], wire_len: u32, ts: Micros, sink: &mut S) {
        if ts > self.now {
            self.now = ts;
        }
        let c = &mut self.counters;
        c.packets += 1;
        c.bytes += wire_len as u64;
        match decode(data) {
            Ok(d) => match d.kind {
                Kind::Ip => {
                    let before = self.table.len();
                    self.table.update(&d, wire_len, self.now, sink);
                    if before == 0 && self.table.is_empty() {
                        self.counters.no_flow += 1;
                    } else {
                        self.counters.flow_packets += 1;
                    }
                }
                Kind::Fragment => c.fragments += 1,
                Kind::NonIp => c.non_ip += 1,
            },
            Err(e) => c.decode_errors[e.kind() as usize][e.layer() as usize] += 1,
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
        }
        self.table.expire(self.now, sink);
    }

    /// Ends every live flow at `end` (the end of input, or the stop time).
    pub fn flush<S: RecordSink>(&mut self, end: Micros, sink: &mut S) {
        let end = end.max(self.now);
        self.table.flush_all(end, sink);
    }

    /// The latest packet time seen.
    pub fn now(&self) -> Micros {
        self.now
    }

    pub fn counters(&self) -> EngineCounters {
        let mut c = self.counters;
        c.flows = self.table.counters;
        c
    }

    pub fn flow_table(&self) -> &FlowTable {
        &self.table
    }
}
