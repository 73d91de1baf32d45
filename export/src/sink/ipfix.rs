//! IPFIX (RFC 7011) flow export over UDP and TCP, biflows with RFC 5103 reverse elements.
//!
//! Two templates: 256 for IPv4 and 257 for IPv6 flows. Fields, in order:
//! sourceIPv4Address (8) / sourceIPv6Address (27), destinationIPv4Address (12) /
//! destinationIPv6Address (28), sourceTransportPort (7), destinationTransportPort (11),
//! protocolIdentifier (4), flowStartMilliseconds (152), flowEndMilliseconds (153),
//! octetDeltaCount (1) and packetDeltaCount (2) from the initiator, the same two as reverse
//! elements (enterprise 29305) from the responder, flowEndReason (136), tcpControlBits (6) and
//! its reverse, vlanId (58). A flow's record is written once, when it ends (an active timeout
//! ends the record and starts a new one), so delta counts are the flow's counts.
//!
//! The export thread encodes each flow as `template id | data record` ([`encode`]); the
//! transport packs them into messages (at most 1400 bytes over UDP, 32 KiB over TCP) with the
//! header's export time, the sequence number (data records sent before the message, per
//! observation domain) and the domain. Templates go first on every connection, and over UDP
//! again every 30 s so a collector that restarted learns them.

use super::net::{connect_udp, Conn};
use super::url::{Endpoint, Format, Location, Query, Scheme, Target};
use super::{Chunk, Transport};
use detect::flow::{EndReason, FlowRecord, FlowState};
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

pub const TEMPLATE_V4: u16 = 256;
pub const TEMPLATE_V6: u16 = 257;
/// RFC 5103's enterprise number for reverse elements.
pub const REVERSE_PEN: u32 = 29305;
const UDP_MESSAGE: usize = 1400;
const TCP_MESSAGE: usize = 32 << 10;
const TEMPLATE_REFRESH: Duration = Duration::from_secs(30);

/// (element id, length, reverse) after the two addresses.
const COMMON: [(u16, u16, bool); 13] = [
    (7, 2, false),
    (11, 2, false),
    (4, 1, false),
    (152, 8, false),
    (153, 8, false),
    (1, 8, false),
    (2, 8, false),
    (1, 8, true),
    (2, 8, true),
    (136, 1, false),
    (6, 2, false),
    (6, 2, true),
    (58, 2, false),
];

/// The data record length of a template.
pub fn record_len(v6: bool) -> usize {
    let a = if v6 { 32 } else { 8 };
    a + COMMON.iter().map(|f| f.1 as usize).sum::<usize>()
}

/// The template set (id 2) with both templates.
pub fn template_set() -> Vec<u8> {
    let mut s = vec![0, 2, 0, 0];
    for (id, addrs) in [(TEMPLATE_V4, [(8u16, 4u16), (12, 4)]), (TEMPLATE_V6, [(27, 16), (28, 16)])] {
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&(2 + COMMON.len() as u16).to_be_bytes());
        for (e, l) in addrs {
            s.extend_from_slice(&e.to_be_bytes());
            s.extend_from_slice(&l.to_be_bytes());
        }
        for (e, l, rev) in COMMON {
            let e = if rev { e | 0x8000 } else { e };
            s.extend_from_slice(&e.to_be_bytes());
            s.extend_from_slice(&l.to_be_bytes());
            if rev {
                s.extend_from_slice(&REVERSE_PEN.to_be_bytes());
            }
        }
    }
    let n = s.len() as u16;
    s[2..4].copy_from_slice(&n.to_be_bytes());
    s
}

/// flowEndReason (RFC 7012): 1 idle timeout, 2 active timeout, 3 end of flow detected,
/// 4 forced end, 5 lack of resources.
pub fn end_reason(r: &FlowRecord) -> u8 {
    match r.reason {
        EndReason::Timeout if r.state == FlowState::Closed => 3,
        EndReason::Timeout => 1,
        EndReason::Active => 2,
        EndReason::Shutdown => 4,
        EndReason::Evicted => 5,
    }
}

/// Appends a flow as `template id | data record`, one message of the chunk.
pub fn encode(c: &mut Chunk, r: &FlowRecord) {
    let m = &r.meta;
    let v6 = m.ip_version == 6;
    let o = &mut c.data;
    o.extend_from_slice(&(if v6 { TEMPLATE_V6 } else { TEMPLATE_V4 }).to_be_bytes());
    if v6 {
        o.extend_from_slice(&m.src_ip);
        o.extend_from_slice(&m.dest_ip);
    } else {
        o.extend_from_slice(&m.src_ip[..4]);
        o.extend_from_slice(&m.dest_ip[..4]);
    }
    o.extend_from_slice(&m.src_port.to_be_bytes());
    o.extend_from_slice(&m.dest_port.to_be_bytes());
    o.push(m.proto);
    o.extend_from_slice(&(r.start / 1000).to_be_bytes());
    o.extend_from_slice(&(r.end / 1000).to_be_bytes());
    for v in [r.bytes_toserver, r.pkts_toserver, r.bytes_toclient, r.pkts_toclient] {
        o.extend_from_slice(&v.to_be_bytes());
    }
    o.push(end_reason(r));
    let (ts, tc) = r.tcp.map_or((0, 0), |t| (t.flags_ts as u16, t.flags_tc as u16));
    o.extend_from_slice(&ts.to_be_bytes());
    o.extend_from_slice(&tc.to_be_bytes());
    let vlan = if m.vlan_count > 0 { m.vlan[0] } else { 0 };
    o.extend_from_slice(&vlan.to_be_bytes());
    c.end_message();
}

/// IPFIX over UDP and TCP (`domain=N`, the observation domain).
pub const SCHEMES: &[Scheme] = &[
    Scheme { name: "ipfix+udp", aliases: &["ipfix"], options: &["domain"], parse, userinfo: false },
    Scheme { name: "ipfix+tcp", aliases: &[], options: &["domain"], parse, userinfo: false },
];

/// An IPFIX sink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpfixTarget {
    pub addr: String,
    pub tcp: bool,
    pub domain: u32,
}

fn parse(scheme: &str, loc: &Location, q: &mut Query) -> Result<(Target, Format), String> {
    let addr = loc.addr(4739)?;
    let domain = q.num("domain")?.unwrap_or(1);
    let domain = u32::try_from(domain).map_err(|_| format!("domain: {domain} is over 2^32"))?;
    Ok((Target(std::sync::Arc::new(IpfixTarget { addr, tcp: scheme == "ipfix+tcp", domain })), Format::Ipfix))
}

impl Endpoint for IpfixTarget {
    fn open(&self, _sink: &str) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(IpfixTransport::new(&self.addr, self.tcp, self.domain)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

pub struct IpfixTransport {
    addr: String,
    tcp: bool,
    domain: u32,
    udp: Option<UdpSocket>,
    conn: Option<Conn>,
    /// Data records sent in this domain (the next message's sequence number).
    seq: u32,
    templates_sent: Instant,
    buf: Vec<u8>,
    msgs: Vec<(usize, usize)>,
}

impl IpfixTransport {
    pub fn new(addr: &str, tcp: bool, domain: u32) -> IpfixTransport {
        IpfixTransport {
            addr: addr.to_string(),
            tcp,
            domain,
            udp: None,
            conn: None,
            seq: 0,
            templates_sent: Instant::now(),
            buf: Vec::with_capacity(1 << 20),
            msgs: Vec::new(),
        }
    }

    fn header(&self, out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        out.extend_from_slice(&10u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(now.as_secs() as u32).to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.domain.to_be_bytes());
    }

    fn send_templates(&mut self) -> io::Result<()> {
        let mut m = Vec::new();
        self.header(&mut m);
        m.extend_from_slice(&template_set());
        let n = m.len() as u16;
        m[2..4].copy_from_slice(&n.to_be_bytes());
        self.write_messages(&m, &[(0, m.len())])?;
        self.templates_sent = Instant::now();
        Ok(())
    }

    fn write_messages(&mut self, buf: &[u8], msgs: &[(usize, usize)]) -> io::Result<()> {
        if let Some(u) = &self.udp {
            for &(a, b) in msgs {
                u.send(&buf[a..b])?;
            }
            return Ok(());
        }
        let c = self.conn.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        c.send_all(buf)
    }
}

impl Transport for IpfixTransport {
    fn connect(&mut self) -> io::Result<()> {
        if self.tcp {
            self.conn = Some(Conn::tcp(&self.addr)?);
        } else {
            self.udp = Some(connect_udp(&self.addr)?);
        }
        self.send_templates()
    }

    fn send(&mut self, c: &Chunk) -> io::Result<()> {
        let max = if self.tcp { TCP_MESSAGE } else { UDP_MESSAGE };
        let mut buf = std::mem::take(&mut self.buf);
        let mut msgs = std::mem::take(&mut self.msgs);
        buf.clear();
        msgs.clear();
        let seq0 = self.seq;
        let mut msg_start = usize::MAX;
        let mut set_start = usize::MAX;
        let mut set_tid = 0u16;
        let mut in_msg = 0u32;
        let close_set = |buf: &mut Vec<u8>, set_start: usize| {
            if set_start != usize::MAX {
                let n = (buf.len() - set_start) as u16;
                buf[set_start + 2..set_start + 4].copy_from_slice(&n.to_be_bytes());
            }
        };
        for m in c.messages() {
            if m.len() < 2 {
                continue;
            }
            let tid = u16::from_be_bytes([m[0], m[1]]);
            let rec = &m[2..];
            let fits = msg_start != usize::MAX
                && buf.len() - msg_start + rec.len() + if tid == set_tid { 0 } else { 4 } <= max;
            if !fits {
                if msg_start != usize::MAX {
                    close_set(&mut buf, set_start);
                    let n = (buf.len() - msg_start) as u16;
                    buf[msg_start + 2..msg_start + 4].copy_from_slice(&n.to_be_bytes());
                    msgs.push((msg_start, buf.len()));
                    self.seq = self.seq.wrapping_add(in_msg);
                }
                msg_start = buf.len();
                self.header(&mut buf);
                set_start = usize::MAX;
                set_tid = 0;
                in_msg = 0;
            }
            if tid != set_tid || set_start == usize::MAX {
                close_set(&mut buf, set_start);
                set_start = buf.len();
                buf.extend_from_slice(&tid.to_be_bytes());
                buf.extend_from_slice(&[0, 0]);
                set_tid = tid;
            }
            buf.extend_from_slice(rec);
            in_msg += 1;
        }
        if msg_start != usize::MAX {
            close_set(&mut buf, set_start);
            let n = (buf.len() - msg_start) as u16;
            buf[msg_start + 2..msg_start + 4].copy_from_slice(&n.to_be_bytes());
            msgs.push((msg_start, buf.len()));
            self.seq = self.seq.wrapping_add(in_msg);
        }
        let r = self.write_messages(&buf, &msgs);
        if r.is_err() {
            // Sent again after the reconnect: the same sequence numbers.
            self.seq = seq0;
        }
        self.buf = buf;
        self.msgs = msgs;
        r
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.udp.is_some() && self.templates_sent.elapsed() >= TEMPLATE_REFRESH {
            self.send_templates()?;
        }
        Ok(())
    }

    fn disconnect(&mut self) {
        if let Some(mut c) = self.conn.take() {
            c.shutdown();
        }
        self.udp = None;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn template_lengths_match_records() {
        let t = template_set();
        assert_eq!(u16::from_be_bytes([t[2], t[3]]) as usize, t.len());
        // 2 templates: header 4 + field count... each: 4 + 15 fields * 4 + 3 reverse * 4.
        assert_eq!(t.len(), 4 + 2 * (4 + 15 * 4 + 3 * 4));
        assert_eq!(record_len(false), 68);
        assert_eq!(record_len(true), 92);
    }
}
