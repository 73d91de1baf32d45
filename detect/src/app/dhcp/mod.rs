//! DHCP (RFC 2131) over UDP 67/68: every message a record (Suricata's extended `dhcp` log:
//! who asked, which MAC and host name, which address was given, for how long). The message
//! (`parser.rs`), its EVE and CEF records (`eve.rs`, `cef.rs`); no rule buffers (Suricata 7
//! has none for DHCP), `alert dhcp` rules run on each message.

pub mod cef;
pub mod eve;
pub mod parser;

pub use parser::Message;

use crate::app::stream::Chunk;
use crate::app::protocol::Info;
use crate::app::{Input, Inspect, Protocol};
use crate::flow::EventMeta;

/// A message and the direction it went (0 from the flow's initiator). The records face the
/// packet's direction, as Suricata's DHCP records do (its other protocols' face the flow's).
#[derive(Debug, Clone, Copy)]
pub struct DhcpEvent<'a> {
    pub msg: Message<'a>,
    pub dir: u8,
}

impl DhcpEvent<'_> {
    /// The flow's event head turned to face the message's direction.
    pub fn facing(&self, m: &EventMeta) -> EventMeta {
        if self.dir == 1 {
            m.reversed()
        } else {
            *m
        }
    }
}

/// A batch's copy: the direction and the message's bytes (parsed again by the exporter).
#[derive(Debug, Default)]
pub struct DhcpOwned {
    pub dir: u8,
    pub buf: Vec<u8>,
}

/// DHCP, identified on UDP port 67 or 68 by a BOOTP header with the DHCP magic cookie.
#[derive(Debug)]
pub struct Dhcp;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhcpCounters {
    pub requests: u64,
    pub replies: u64,
    /// Datagrams of a DHCP flow that are not DHCP messages.
    pub malformed: u64,
}

impl Protocol for Dhcp {
    const INFO: Info = Info::new("dhcp", &["dhcp"], &[17]);
    /// Each message stands alone: no per-flow state.
    type State = ();
    type Counters = DhcpCounters;
    type Event<'a> = DhcpEvent<'a>;
    type Owned = DhcpOwned;

    fn probe_udp(_dir: usize, payload: &[u8], ports: (u16, u16)) -> bool {
        [67, 68].iter().any(|p| ports.0 == *p || ports.1 == *p) && Message::parse(payload).is_ok()
    }

    fn udp_input(_s: &mut (), i: Input<'_, '_, DhcpCounters>) {
        let Chunk::Data(payload) = i.chunk else { return };
        let c = i.counters;
        match Message::parse(payload) {
            Ok(m) => {
                if m.is_reply() {
                    c.replies += 1;
                } else {
                    c.requests += 1;
                }
                (i.emit)(&crate::app::AppEvent::Dhcp(DhcpEvent { msg: m, dir: i.dir as u8 }));
            }
            Err(_) => c.malformed += 1,
        }
    }

    fn add(a: &mut DhcpCounters, b: &DhcpCounters) {
        a.requests += b.requests;
        a.replies += b.replies;
        a.malformed += b.malformed;
    }

    fn anomalies(c: &DhcpCounters, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "dhcp malformed {}", c.malformed);
    }

    fn copy(ev: &DhcpEvent<'_>, into: &mut DhcpOwned) {
        into.dir = ev.dir;
        into.buf.clear();
        into.buf.extend_from_slice(ev.msg.buf);
    }

    fn view(o: &DhcpOwned) -> Option<DhcpEvent<'_>> {
        Message::parse(&o.buf).ok().map(|msg| DhcpEvent { msg, dir: o.dir })
    }

    fn write_eve(out: &mut Vec<u8>, m: &EventMeta, ev: &DhcpEvent<'_>) -> usize {
        eve::write_dhcp(out, &ev.facing(m), &ev.msg)
    }

    fn write_cef(out: &mut Vec<u8>, m: &EventMeta, ev: &DhcpEvent<'_>) {
        cef::write_dhcp(out, &ev.facing(m), &ev.msg)
    }

    /// One inspection per message, facing its direction.
    fn inspect<I: Inspect>(ev: &DhcpEvent<'_>, i: &mut I) {
        i.begin();
        i.run(ev.dir == 1);
    }
}
