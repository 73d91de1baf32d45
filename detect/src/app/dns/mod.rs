//! DNS over UDP (one message per datagram) and TCP (RFC 1035 §4.2.2: each message after a
//! 2-byte length), with transactions pairing queries and responses by id.

pub mod cef;
pub mod eve;
pub mod parser;
pub mod rules;

pub use parser::{Message, Name};

use crate::app::stream::Chunk;
use crate::app::protocol::Info;
use crate::app::{AppEvent, Emit, Input, Inspect, Protocol, Wanted};
use crate::flow::EventMeta;
use crate::rules::ioc::IocKind;

/// DNS: on port 53 only, as Suricata identifies it (mDNS on 5353 and LLMNR on 5355 use the
/// format but are not DNS transactions; twelve bytes of header say too little to claim DNS
/// anywhere else).
#[derive(Debug)]
pub struct Dns;

/// A DNS query or response (by its QR bit), with its transaction id.
#[derive(Debug, Clone, Copy)]
pub struct DnsEvent<'a> {
    pub msg: Message<'a>,
    pub tx_id: u64,
}

/// A batch's copy: the message's bytes (parsed again by the exporter; they parsed once
/// already).
#[derive(Debug, Default)]
pub struct DnsOwned {
    pub tx_id: u64,
    pub msg: Vec<u8>,
}

fn on_dns_port(ports: (u16, u16)) -> bool {
    ports.0 == 53 || ports.1 == 53
}

impl Protocol for Dns {
    const INFO: Info = Info::new("dns", &["dns"], &[6, 17]).buffers(rules::BUFFERS);
    type State = DnsState;
    type Counters = DnsCounters;
    type Event<'a> = DnsEvent<'a>;
    type Owned = DnsOwned;

    fn probe_tcp(_dir: usize, data: &[u8], ports: (u16, u16)) -> Option<bool> {
        if on_dns_port(ports) {
            probe_tcp(data)
        } else {
            Some(false)
        }
    }

    /// A flow that starts with a response is not identified (as Suricata): the sensor missed
    /// its start, or it is not a real exchange.
    fn probe_udp(dir: usize, payload: &[u8], ports: (u16, u16)) -> bool {
        let query = payload.get(2).is_some_and(|f| f & 0x80 == 0);
        dir == 0 && query && on_dns_port(ports) && parser::probe(payload)
    }

    fn tcp_input(s: &mut DnsState, i: Input<'_, '_, DnsCounters>) -> u64 {
        s.tcp_input(i.dir, i.chunk, i.counters, i.emit);
        0
    }

    fn udp_input(s: &mut DnsState, i: Input<'_, '_, DnsCounters>) {
        if let Chunk::Data(d) = i.chunk {
            s.message(d, i.counters, i.emit);
        }
    }

    fn add(a: &mut DnsCounters, b: &DnsCounters) {
        a.queries += b.queries;
        a.responses += b.responses;
        a.unsolicited += b.unsolicited;
        for i in 0..4 {
            a.malformed[i] += b.malformed[i];
        }
    }

    fn anomalies(c: &DnsCounters, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "dns malformed {} unsolicited {}", c.malformed_total(), c.unsolicited);
    }

    fn copy(ev: &DnsEvent<'_>, into: &mut DnsOwned) {
        into.tx_id = ev.tx_id;
        into.msg.clear();
        into.msg.extend_from_slice(ev.msg.buf);
    }

    fn view(o: &DnsOwned) -> Option<DnsEvent<'_>> {
        Message::parse(&o.msg).ok().map(|msg| DnsEvent { msg, tx_id: o.tx_id })
    }

    fn write_eve(out: &mut Vec<u8>, m: &EventMeta, ev: &DnsEvent<'_>) -> usize {
        eve::write_dns(out, m, &ev.msg, ev.tx_id)
    }

    fn write_cef(out: &mut Vec<u8>, m: &EventMeta, ev: &DnsEvent<'_>) {
        cef::write_dns(out, m, &ev.msg)
    }

    fn inspect<I: Inspect>(ev: &DnsEvent<'_>, i: &mut I) {
        rules::inspect(&ev.msg, i)
    }

    fn indicators(ev: &DnsEvent<'_>, want: Wanted, f: &mut dyn FnMut(IocKind, &[u8])) {
        if want.domains && !ev.msg.is_response() {
            ev.msg.for_each_question_name(|_, name| f(IocKind::Domain, name));
        }
    }
}

/// Queries waiting for their response per flow; past it the oldest is forgotten.
pub const MAX_PENDING: usize = 32;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsCounters {
    pub queries: u64,
    pub responses: u64,
    /// Messages that did not parse (by reason: truncated, bad pointer, bad label, too long).
    pub malformed: [u64; 4],
    /// Responses with no pending query of their id.
    pub unsolicited: u64,
}

impl DnsCounters {
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }
}

#[derive(Debug, Default)]
pub struct DnsState {
    next_tx: u64,
    pending: Vec<(u16, u64)>,
    /// TCP: a message spanning segments, per direction (length prefix included).
    tcp: [Vec<u8>; 2],
    tcp_stopped: [bool; 2],
}

impl DnsState {
    /// One DNS message.
    pub fn message(&mut self, buf: &[u8], c: &mut DnsCounters, emit: &mut Emit<'_>) {
        let msg = match Message::parse(buf) {
            Ok(m) => m,
            Err(e) => {
                c.malformed[e as usize] += 1;
                return;
            }
        };
        let tx_id = if !msg.is_response() {
            c.queries += 1;
            let tx = self.next_tx;
            self.next_tx += 1;
            if self.pending.len() == MAX_PENDING {
                self.pending.remove(0);
            }
            self.pending.push((msg.id, tx));
            tx
        } else {
            c.responses += 1;
            match self.pending.iter().position(|&(id, _)| id == msg.id) {
                Some(i) => self.pending.remove(i).1,
                None => {
                    c.unsolicited += 1;
                    let tx = self.next_tx;
                    self.next_tx += 1;
                    tx
                }
            }
        };
        emit(&AppEvent::Dns(DnsEvent { msg, tx_id }));
    }

    /// TCP stream bytes of direction `dir`.
    pub fn tcp_input(&mut self, dir: usize, chunk: Chunk<'_>, c: &mut DnsCounters, emit: &mut Emit<'_>) {
        if self.tcp_stopped[dir] {
            return;
        }
        let mut data = match chunk {
            Chunk::Data(d) => d,
            // (Skipped bytes are never asked for by this parser: a gap if they came.)
            Chunk::Gap(_) | Chunk::Skipped(_) => {
                // No way to find the next length prefix.
                self.tcp_stopped[dir] = true;
                self.tcp[dir] = Vec::new();
                return;
            }
        };
        while !data.is_empty() {
            if self.tcp[dir].is_empty() && data.len() >= 2 {
                let n = u16::from_be_bytes([data[0], data[1]]) as usize;
                if data.len() >= 2 + n {
                    self.message(&data[2..2 + n], c, emit);
                    data = &data[2 + n..];
                    continue;
                }
            }
            let mut buf = std::mem::take(&mut self.tcp[dir]);
            let need = if buf.len() < 2 {
                2 - buf.len()
            } else {
                2 + u16::from_be_bytes([buf[0], buf[1]]) as usize - buf.len()
            };
            let take = need.min(data.len());
            buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if buf.len() >= 2 && buf.len() == 2 + u16::from_be_bytes([buf[0], buf[1]]) as usize {
                self.message(&buf[2..], c, emit);
                buf.clear();
            }
            self.tcp[dir] = buf;
        }
    }
}

/// Whether a TCP stream starts like DNS (a length prefix and a message header that parses far
/// enough): `None` while too few bytes are known.
pub fn probe_tcp(data: &[u8]) -> Option<bool> {
    if data.len() < 2 + parser::HEADER_LEN {
        return None;
    }
    let n = u16::from_be_bytes([data[0], data[1]]) as usize;
    let h = &data[2..];
    let qd = u16::from_be_bytes([h[4], h[5]]);
    let opcode = (h[2] >> 3) & 0xf;
    Some(n >= parser::HEADER_LEN && (1..=16).contains(&qd) && opcode <= 6)
}

impl crate::app::Reuse for DnsState {
    fn reset(&mut self) {
        self.next_tx = 0;
        self.pending.clear();
        for b in &mut self.tcp {
            b.clear();
        }
        self.tcp_stopped = [false; 2];
    }
    /// Frees buffers larger than `keep` bytes (between flows).
    fn trim(&mut self, keep: usize) {
        for b in &mut self.tcp {
            crate::app::trim_vec(b, keep);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_tcp_framing_split_and_pairing() {
        let q = [0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1];
        let mut r = q;
        r[2] = 0x81;
        r[3] = 0x80;
        let mut stream = Vec::new();
        for m in [&q[..], &q[..]] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        let mut resp = (r.len() as u16).to_be_bytes().to_vec();
        resp.extend_from_slice(&r);
        for step in [1, 2, 5, 100] {
            let mut st = DnsState::default();
            let mut c = DnsCounters::default();
            let mut out = Vec::new();
            let mut emit = |e: &AppEvent<'_>| {
                if let AppEvent::Dns(DnsEvent { msg, tx_id }) = e {
                    out.push((msg.is_response(), *tx_id));
                }
            };
            for ch in stream.chunks(step) {
                st.tcp_input(0, Chunk::Data(ch), &mut c, &mut emit);
            }
            for ch in resp.chunks(step) {
                st.tcp_input(1, Chunk::Data(ch), &mut c, &mut emit);
            }
            assert_eq!(out, [(false, 0), (false, 1), (true, 0)], "step {step}");
        }
        assert_eq!(probe_tcp(&stream), Some(true));
        assert_eq!(probe_tcp(b"GET / HTTP/1.1\r\n\r\n"), Some(false));
    }
}
