//! Deterministic traffic for tests, benchmarks and the demo: a frame builder (Ethernet, VLAN
//! and QinQ tags, IPv4/IPv6, TCP/UDP/ICMP/ICMPv6 with correct checksums), TCP sessions that
//! keep their sequence numbers, a seeded PRNG, and the scenarios the tests and the README use.
//!
//! Output is a list of `(timestamp µs, frame)`; writing it to a file is the caller's business
//! (`capture::pcap::PcapWriter`).
#![forbid(unsafe_code)]

use std::net::IpAddr;

/// A captured frame: timestamp in microseconds since the epoch, and its bytes.
pub type Packet = (u64, Vec<u8>);

/// xorshift64*: small, fast, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e3779b97f4a7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545f4914f6cdd1d)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Link-layer framing of a flow: MAC addresses and VLAN tags `(tpid, vid)`, outermost first.
#[derive(Debug, Clone)]
pub struct L2 {
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    pub vlans: Vec<(u16, u16)>,
}

impl Default for L2 {
    fn default() -> Self {
        L2 { client_mac: [0, 0, 0, 0, 0, 1], server_mac: [0, 0, 0, 0, 0, 2], vlans: Vec::new() }
    }
}

impl L2 {
    pub fn vlan(id: u16) -> Self {
        L2 { vlans: vec![(0x8100, id)], ..Default::default() }
    }
    pub fn qinq(outer: u16, inner: u16) -> Self {
        L2 { vlans: vec![(0x88a8, outer), (0x8100, inner)], ..Default::default() }
    }
}

fn checksum_add(mut sum: u32, b: &[u8]) -> u32 {
    let mut i = 0;
    while i + 1 < b.len() {
        sum += u16::from_be_bytes([b[i], b[i + 1]]) as u32;
        i += 2;
    }
    if i < b.len() {
        sum += (b[i] as u32) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds one frame: `l4` is the whole L4 header + payload with a zero checksum field at
/// `csum_at` (None for no checksum), for protocol `proto` from `src` to `dst`.
pub fn ip_frame(
    l2: &L2,
    c2s: bool,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    mut l4: Vec<u8>,
    csum_at: Option<usize>,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(64 + l4.len());
    let (dmac, smac) = if c2s { (l2.server_mac, l2.client_mac) } else { (l2.client_mac, l2.server_mac) };
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    for &(tpid, vid) in &l2.vlans {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = proto;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = checksum_fold(checksum_add(0, &ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            if let Some(at) = csum_at {
                if proto != 1 {
                    let mut sum = checksum_add(0, &s.octets());
                    sum = checksum_add(sum, &d.octets());
                    sum += proto as u32 + l4.len() as u32;
                    let c = checksum_fold(checksum_add(sum, &l4));
                    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
                } else {
                    let c = checksum_fold(checksum_add(0, &l4));
                    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
                }
            }
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
            ip[6] = proto;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            if let Some(at) = csum_at {
                let mut sum = checksum_add(0, &s.octets());
                sum = checksum_add(sum, &d.octets());
                sum += l4.len() as u32 + proto as u32;
                let c = checksum_fold(checksum_add(sum, &l4));
                l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
            f.extend_from_slice(&ip);
        }
        _ => panic!("mixed address families"),
    }
    f.extend_from_slice(&l4);
    f
}

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

pub fn tcp_segment(sport: u16, dport: u16, seq: u32, ack: u32, fl: u8, win: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = fl;
    t[14..16].copy_from_slice(&win.to_be_bytes());
    t.extend_from_slice(payload);
    t
}

pub fn udp_datagram(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(payload);
    u
}

/// A TCP connection that keeps sequence numbers, so every segment is one a stream tracker
/// accepts.
#[derive(Debug, Clone)]
pub struct TcpSession {
    pub l2: L2,
    pub client: IpAddr,
    pub server: IpAddr,
    pub cport: u16,
    pub sport: u16,
    pub cseq: u32,
    pub sseq: u32,
    /// The window every segment advertises.
    pub window: u16,
}

impl TcpSession {
    pub fn new(client: IpAddr, cport: u16, server: IpAddr, sport: u16) -> Self {
        TcpSession { l2: L2::default(), client, server, cport, sport, cseq: 1000, sseq: 5000, window: 65535 }
    }

    pub fn with_l2(mut self, l2: L2) -> Self {
        self.l2 = l2;
        self
    }

    /// One segment; `ack` is filled in when the ACK flag is set.
    pub fn seg(&mut self, c2s: bool, fl: u8, payload: &[u8]) -> Vec<u8> {
        let adv = payload.len() as u32 + (fl & (flags::SYN | flags::FIN) != 0) as u32;
        let (src, dst, sp, dp, seq, ack) = if c2s {
            (self.client, self.server, self.cport, self.sport, self.cseq, self.sseq)
        } else {
            (self.server, self.client, self.sport, self.cport, self.sseq, self.cseq)
        };
        let ack = if fl & flags::ACK != 0 { ack } else { 0 };
        let seg = tcp_segment(sp, dp, seq, ack, fl, self.window, payload);
        let proto_frame = ip_frame(&self.l2, c2s, src, dst, 6, seg, Some(16));
        if c2s {
            self.cseq = self.cseq.wrapping_add(adv);
        } else {
            self.sseq = self.sseq.wrapping_add(adv);
        }
        proto_frame
    }

    /// A RST answering a SYN, as Linux sends it: seq 0, ACK of the SYN.
    pub fn rst_to_syn(&mut self) -> Vec<u8> {
        let seg = tcp_segment(self.sport, self.cport, 0, self.cseq, flags::RST | flags::ACK, 0, &[]);
        ip_frame(&self.l2, false, self.server, self.client, 6, seg, Some(16))
    }

    pub fn handshake(&mut self) -> Vec<(bool, Vec<u8>)> {
        vec![
            (true, self.seg(true, flags::SYN, &[])),
            (false, self.seg(false, flags::SYN | flags::ACK, &[])),
            (true, self.seg(true, flags::ACK, &[])),
        ]
    }

    /// FIN from the client, ACK, FIN from the server, ACK.
    pub fn close(&mut self) -> Vec<(bool, Vec<u8>)> {
        vec![
            (true, self.seg(true, flags::FIN | flags::ACK, &[])),
            (false, self.seg(false, flags::ACK, &[])),
            (false, self.seg(false, flags::FIN | flags::ACK, &[])),
            (true, self.seg(true, flags::ACK, &[])),
        ]
    }
}

pub fn udp_frame(l2: &L2, c2s: bool, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    ip_frame(l2, c2s, src, dst, 17, udp_datagram(sport, dport, payload), Some(6))
}

/// ICMP (v4) or ICMPv6 echo: type 8/0 or 128/129.
#[allow(clippy::too_many_arguments)]
pub fn icmp_echo(
    l2: &L2,
    c2s: bool,
    src: IpAddr,
    dst: IpAddr,
    reply: bool,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let t = match (v6, reply) {
        (false, false) => 8,
        (false, true) => 0,
        (true, false) => 128,
        (true, true) => 129,
    };
    let mut m = vec![t, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    ip_frame(l2, c2s, src, dst, if v6 { 58 } else { 1 }, m, Some(2))
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

/// Epoch of every scenario: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000_000;
const MS: u64 = 1000;
const SEC: u64 = 1_000_000;

/// The mixed capture the pipeline tests and the Suricata comparison use: every case the flow
/// table must get right, each on its own addresses. Returns packets in time order.
pub fn mixed() -> Vec<Packet> {
    let mut out: Vec<Packet> = Vec::new();
    let push_all = |out: &mut Vec<Packet>, t: u64, step: u64, frames: Vec<(bool, Vec<u8>)>| {
        for (i, (_, f)) in frames.into_iter().enumerate() {
            out.push((t + i as u64 * step, f));
        }
    };
    // (a) full TCP session: handshake, two requests/responses, FIN/ACK both ways.
    let mut a = TcpSession::new(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80);
    let mut fr = a.handshake();
    fr.push((true, a.seg(true, flags::PSH | flags::ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    fr.push((false, a.seg(false, flags::PSH | flags::ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")));
    fr.push((true, a.seg(true, flags::PSH | flags::ACK, b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")));
    fr.push((false, a.seg(false, flags::PSH | flags::ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")));
    fr.extend(a.close());
    push_all(&mut out, T0, MS, fr);
    // (b) SYN answered by RST-ACK.
    let mut b = TcpSession::new(ip("10.0.0.1"), 40001, ip("10.0.0.2"), 81);
    let syn = b.seg(true, flags::SYN, &[]);
    push_all(&mut out, T0 + SEC, MS, vec![(true, syn), (false, b.rst_to_syn())]);
    // (c) half-open: a lone SYN.
    let mut c = TcpSession::new(ip("10.0.0.1"), 40002, ip("10.0.0.2"), 443);
    push_all(&mut out, T0 + 2 * SEC, MS, vec![(true, c.seg(true, flags::SYN, &[]))]);
    // (d) DNS-like UDP query and answer, and a one-way UDP packet.
    let l2 = L2::default();
    out.push((T0 + 3 * SEC, udp_frame(&l2, true, ip("10.0.0.1"), 33333, ip("10.0.0.3"), 53, &[0xab; 29])));
    out.push((T0 + 3 * SEC + MS, udp_frame(&l2, false, ip("10.0.0.3"), 53, ip("10.0.0.1"), 33333, &[0xcd; 56])));
    out.push((T0 + 3 * SEC + 500 * MS, udp_frame(&l2, true, ip("10.0.0.1"), 44444, ip("10.0.0.4"), 9999, &[1; 6])));
    // (e) two ICMP echo exchanges with different ids between the same hosts: one flow.
    for (i, id) in [7u16, 8].iter().enumerate() {
        let t = T0 + 4 * SEC + i as u64 * 100 * MS;
        out.push((t, icmp_echo(&l2, true, ip("10.0.0.1"), ip("10.0.0.5"), false, *id, 1, &[0x61; 32])));
        out.push((t + MS, icmp_echo(&l2, false, ip("10.0.0.5"), ip("10.0.0.1"), true, *id, 1, &[0x61; 32])));
    }
    // (f) IPv6 TCP: handshake and data, no close.
    let mut f6 = TcpSession::new(ip("2001:db8::1"), 40000, ip("2001:db8::2"), 80);
    let mut fr = f6.handshake();
    fr.push((true, f6.seg(true, flags::PSH | flags::ACK, b"GET /v6 HTTP/1.1\r\nHost: v6\r\n\r\n")));
    fr.push((false, f6.seg(false, flags::ACK, &[])));
    push_all(&mut out, T0 + 5 * SEC, MS, fr);
    // (g) the 5-tuple of (a) again, inside VLAN 100: a different flow. Server closes first.
    let mut g = TcpSession::new(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80).with_l2(L2::vlan(100));
    let mut fr = g.handshake();
    fr.push((true, g.seg(true, flags::PSH | flags::ACK, b"GET /vlan HTTP/1.1\r\n\r\n")));
    fr.push((false, g.seg(false, flags::PSH | flags::ACK, b"HTTP/1.1 204 No Content\r\n\r\n")));
    fr.push((false, g.seg(false, flags::FIN | flags::ACK, &[])));
    fr.push((true, g.seg(true, flags::ACK, &[])));
    fr.push((true, g.seg(true, flags::FIN | flags::ACK, &[])));
    fr.push((false, g.seg(false, flags::ACK, &[])));
    push_all(&mut out, T0 + 6 * SEC, MS, fr);
    // (h) QinQ UDP.
    out.push((
        T0 + 7 * SEC,
        udp_frame(&L2::qinq(200, 300), true, ip("10.0.0.1"), 5000, ip("10.0.0.6"), 6000, &[7; 12]),
    ));
    // (i) ICMPv6 echo.
    out.push((T0 + 8 * SEC, icmp_echo(&l2, true, ip("2001:db8::1"), ip("2001:db8::2"), false, 9, 1, &[0x62; 10])));
    out.push((T0 + 8 * SEC + MS, icmp_echo(&l2, false, ip("2001:db8::2"), ip("2001:db8::1"), true, 9, 1, &[0x62; 10])));
    // (j) established TCP idle 200 s (under the 600 s timeout): one flow.
    let mut j = TcpSession::new(ip("10.0.0.1"), 40010, ip("10.0.0.7"), 8080);
    let mut fr = j.handshake();
    fr.push((true, j.seg(true, flags::PSH | flags::ACK, b"ping")));
    push_all(&mut out, T0 + 10 * SEC, MS, fr);
    out.push((T0 + 210 * SEC, j.seg(true, flags::PSH | flags::ACK, b"ping again")));
    // (k) one-way UDP with a 100 s gap (past the 30 s new timeout): two flows.
    out.push((T0 + 11 * SEC, udp_frame(&l2, true, ip("10.0.0.1"), 7000, ip("10.0.0.8"), 7001, &[2; 9])));
    out.push((T0 + 111 * SEC, udp_frame(&l2, true, ip("10.0.0.1"), 7000, ip("10.0.0.8"), 7001, &[2; 9])));
    // (l) two-way UDP with a 100 s gap (under the 300 s established timeout): one flow.
    out.push((T0 + 12 * SEC, udp_frame(&l2, true, ip("10.0.0.1"), 7100, ip("10.0.0.8"), 7101, &[3; 9])));
    out.push((T0 + 12 * SEC + MS, udp_frame(&l2, false, ip("10.0.0.8"), 7101, ip("10.0.0.1"), 7100, &[3; 9])));
    out.push((T0 + 112 * SEC, udp_frame(&l2, true, ip("10.0.0.1"), 7100, ip("10.0.0.8"), 7101, &[3; 9])));
    // (m) a TCP flow picked up mid-stream (no SYN): tracked, no session state.
    let mut m = TcpSession::new(ip("10.0.0.1"), 40020, ip("10.0.0.9"), 22);
    out.push((T0 + 13 * SEC, m.seg(true, flags::PSH | flags::ACK, b"SSH-2.0-x\r\n")));
    out.push((T0 + 13 * SEC + MS, m.seg(false, flags::ACK, &[])));
    // (n) an ARP frame: not IP, counted and not tracked.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 0, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    arp.resize(60, 0);
    out.push((T0 + 14 * SEC, arp));
    // (o) malformed frames: truncated IPv4 header, bad TCP data offset, IPv6 with bad version.
    let good = udp_frame(&l2, true, ip("10.0.0.1"), 1, ip("10.0.0.10"), 2, &[0; 4]);
    out.push((T0 + 15 * SEC, good[..30].to_vec()));
    let mut bad_tcp = TcpSession::new(ip("10.0.0.1"), 40030, ip("10.0.0.11"), 80).seg(true, flags::SYN, &[]);
    bad_tcp[14 + 20 + 12] = 0x30;
    out.push((T0 + 15 * SEC + MS, bad_tcp));
    let mut bad_v6 = icmp_echo(&l2, true, ip("2001:db8::1"), ip("2001:db8::3"), false, 1, 1, &[]);
    bad_v6[14] = 0x70;
    out.push((T0 + 15 * SEC + 2 * MS, bad_v6));
    out.sort_by_key(|p| p.0);
    out
}

/// Packet-size mixes for [`many_flows`]: the generator's.
pub use traffic::Sizes as SizeMix;

/// `flows` TCP and UDP flows of `pkts_per_flow` packets each, IPv4, interleaved, starting at
/// [`T0`] with 1 µs between packets. For benchmarks and multi-worker tests.
pub fn many_flows(seed: u64, flows: u32, pkts_per_flow: u32, mix: SizeMix) -> Vec<Packet> {
    let mut rng = Rng::new(seed);
    let l2 = L2::default();
    let mut out = Vec::with_capacity((flows * pkts_per_flow) as usize);
    let mut sessions: Vec<(IpAddr, u16, IpAddr, u16, bool, u32)> = (0..flows)
        .map(|i| {
            let c = IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
            let s = IpAddr::from([172, 16, (rng.below(4)) as u8, (rng.below(250) + 1) as u8]);
            let udp = rng.below(3) == 0;
            // No well-known UDP ports: these payloads are filler, and a peer that probes them
            // as DNS (Suricata) would turn the flow around.
            let port = if udp { [5001, 9000, 7777, 12345] } else { [80, 443, 8080, 8443] }[rng.below(4) as usize];
            (c, 1024 + (rng.below(60000) as u16), s, port, udp, 0)
        })
        .collect();
    let mut t = T0;
    let mut live: Vec<usize> = (0..flows as usize).collect();
    while !live.is_empty() {
        let k = rng.below(live.len() as u64) as usize;
        let idx = live[k];
        let (c, cp, s, sp, udp, n) = sessions[idx];
        let c2s = n % 2 == 0;
        let size = mix.frame_len(&mut rng);
        let frame = if udp {
            let pl = vec![0u8; size.saturating_sub(42).max(1)];
            if c2s {
                udp_frame(&l2, true, c, cp, s, sp, &pl)
            } else {
                udp_frame(&l2, false, s, sp, c, cp, &pl)
            }
        } else {
            let pl = vec![0u8; size.saturating_sub(54)];
            let fl = if n == 0 { flags::SYN } else { flags::ACK | if pl.is_empty() { 0 } else { flags::PSH } };
            let seg = if c2s {
                tcp_segment(cp, sp, 1000 + n, 1, fl, 65535, &pl)
            } else {
                tcp_segment(sp, cp, 5000 + n, 1, fl, 65535, &pl)
            };
            if c2s {
                ip_frame(&l2, true, c, s, 6, seg, Some(16))
            } else {
                ip_frame(&l2, false, s, c, 6, seg, Some(16))
            }
        };
        out.push((t, frame));
        t += 1;
        sessions[idx].5 += 1;
        if sessions[idx].5 == pkts_per_flow {
            live.swap_remove(k);
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_checksums() {
        let f = udp_frame(&L2::default(), true, ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, b"abc");
        // IPv4 header checksum verifies to zero
        assert_eq!(checksum_fold(checksum_add(0, &f[14..34])), 0);
        // UDP checksum over pseudo-header verifies to zero
        let mut sum = checksum_add(0, &f[26..34]);
        sum += 17 + 11;
        assert_eq!(checksum_fold(checksum_add(sum, &f[34..])), 0);
    }

    #[test]
    fn test_deterministic() {
        assert_eq!(many_flows(7, 50, 4, SizeMix::Imix), many_flows(7, 50, 4, SizeMix::Imix));
        assert_eq!(mixed(), mixed());
    }
}

pub mod dhcp;
pub mod frag;
pub mod traffic;

/// Tunnel encapsulations of an inner Ethernet frame (as [`ip_frame`] and [`TcpSession`] build
/// them), for tests and fuzz seeds. The outer frame is plain Ethernet + IP from `src` to `dst`.
pub mod tunnel {
    use super::{ip_frame, udp_datagram, L2};
    use std::net::IpAddr;

    fn ethertype(inner: &[u8]) -> u16 {
        u16::from_be_bytes([inner[12], inner[13]])
    }

    /// VXLAN (UDP 4789).
    pub fn vxlan(inner: &[u8], vni: u32, src: IpAddr, dst: IpAddr, sport: u16) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(inner);
        ip_frame(&L2::default(), true, src, dst, 17, udp_datagram(sport, 4789, &p), Some(6))
    }

    /// GENEVE (UDP 6081) carrying Ethernet, with one 4-byte option.
    pub fn geneve(inner: &[u8], vni: u32, src: IpAddr, dst: IpAddr, sport: u16) -> Vec<u8> {
        let mut p = vec![0x01, 0, 0x65, 0x58];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(&[0x01, 0x02, 0x00, 0x00]);
        p.extend_from_slice(inner);
        ip_frame(&L2::default(), true, src, dst, 17, udp_datagram(sport, 6081, &p), Some(6))
    }

    /// GRE carrying the inner IP packet (the inner Ethernet header dropped), with a key when
    /// given.
    pub fn gre(inner: &[u8], key: Option<u32>, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut g = vec![if key.is_some() { 0x20 } else { 0 }, 0];
        g.extend_from_slice(&ethertype(inner).to_be_bytes());
        if let Some(k) = key {
            g.extend_from_slice(&k.to_be_bytes());
        }
        g.extend_from_slice(&inner[14..]);
        ip_frame(&L2::default(), true, src, dst, 47, g, None)
    }

    /// ERSPAN type II (GRE 0x88BE with a sequence number and the 8-byte header).
    pub fn erspan2(inner: &[u8], session: u16, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut g = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
        g.extend_from_slice(&[0x10, 0x00]);
        g.extend_from_slice(&(session & 0x3ff).to_be_bytes());
        g.extend_from_slice(&[0, 0, 0, 0]);
        g.extend_from_slice(inner);
        ip_frame(&L2::default(), true, src, dst, 47, g, None)
    }

    /// ERSPAN type III (GRE 0x22EB), with the platform sub-header when `platform`.
    pub fn erspan3(inner: &[u8], session: u16, src: IpAddr, dst: IpAddr, platform: bool) -> Vec<u8> {
        let mut g = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
        g.extend_from_slice(&[0x20, 0x00]);
        g.extend_from_slice(&(session & 0x3ff).to_be_bytes());
        g.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, platform as u8]);
        if platform {
            g.extend_from_slice(&[0; 8]);
        }
        g.extend_from_slice(inner);
        ip_frame(&L2::default(), true, src, dst, 47, g, None)
    }

    /// IPv4-in-IP or IPv6-in-IP (protocol 4 or 41, by the inner packet's version).
    pub fn ipip(inner: &[u8], src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let proto = if ethertype(inner) == 0x86dd { 41 } else { 4 };
        ip_frame(&L2::default(), true, src, dst, proto, inner[14..].to_vec(), None)
    }

    /// The inner IP packet behind an MPLS label stack (outermost label first).
    pub fn mpls(inner: &[u8], labels: &[u32]) -> Vec<u8> {
        let mut f = inner[..12].to_vec();
        f.extend_from_slice(&0x8847u16.to_be_bytes());
        for (i, l) in labels.iter().enumerate() {
            let bottom = (i + 1 == labels.len()) as u32;
            f.extend_from_slice(&(l << 12 | bottom << 8 | 64).to_be_bytes());
        }
        f.extend_from_slice(&inner[14..]);
        f
    }
}
