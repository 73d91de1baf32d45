//! The traffic generator: deterministic captures from a seed, with a ground truth.
//!
//! Flows arrive as a Poisson process; each flow picks an application (plain TCP, HTTP, TLS,
//! DNS over UDP or TCP, SSH, other UDP, ICMP), an address family and an encapsulation (none,
//! 802.1Q, QinQ, VXLAN, GRE), a heavy-tailed (Pareto) size and a heavy-tailed pace, and is
//! written packet by packet with real handshakes, sequence numbers and payloads (HTTP requests
//! and responses, TLS ClientHello with SNI and ALPN, DNS queries and answers, SSH banners).
//! Attack scenarios (port scan, SYN flood, DNS tunnelling, beaconing, exfiltration, brute
//! force, cleartext credentials) are laid over the background.
//!
//! Packets leave in time order through a callback as soon as no later flow can precede them, so
//! millions of flows need only the memory of the flows live at once. The [`Truth`] lists every
//! flow (5-tuple, VLANs, encapsulation, packets and bytes per direction, first and last packet
//! time, application, scenario) and every scenario. Gaps inside a flow stay under 20 s, below
//! every default timeout, and no flow key repeats (each ICMP flow, keyed by addresses alone, has
//! a client address of its own), so each unencapsulated truth flow is one flow record. A tracker
//! that does not decapsulate sees VXLAN and GRE flows as outer flows that aggregate them: one
//! outer UDP flow per direction and source port for VXLAN, one per endpoint pair for GRE; bytes
//! are whole outer frames.

use crate::{flags, icmp_echo, ip_frame, tcp_segment, udp_datagram, Rng, TcpSession, L2};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Frame-size distribution of data-carrying packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// 64-byte frames (60 captured, no FCS).
    Small,
    /// Simple IMIX: 7 × 64, 4 × 594, 1 × 1518 (less the FCS).
    Imix,
    /// 1514-byte frames.
    Large,
    /// 9000-byte jumbo frames.
    Jumbo,
}

impl Sizes {
    pub fn parse(s: &str) -> Option<Sizes> {
        Some(match s {
            "64" | "small" => Sizes::Small,
            "imix" => Sizes::Imix,
            "1500" | "large" => Sizes::Large,
            "jumbo" | "9000" => Sizes::Jumbo,
            _ => return None,
        })
    }

    /// A frame length drawn from the mix.
    pub fn frame_len(self, rng: &mut Rng) -> usize {
        match self {
            Sizes::Small => 60,
            Sizes::Large => 1514,
            Sizes::Jumbo => 9000,
            Sizes::Imix => match rng.below(12) {
                0..=6 => 60,
                7..=10 => 590,
                _ => 1514,
            },
        }
    }
}

/// Weights of the applications of background flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoMix {
    pub tcp: u32,
    pub http: u32,
    pub tls: u32,
    pub dns_udp: u32,
    pub dns_tcp: u32,
    pub ssh: u32,
    pub udp: u32,
    pub icmp: u32,
    /// DHCP (IPv4: a request and its ack between a client on 68 and a server on 67).
    pub dhcp: u32,
}

const APPS: [&str; 9] = ["tcp", "http", "tls", "dns", "dns-tcp", "ssh", "udp", "icmp", "dhcp"];

impl ProtoMix {
    /// Every weight 0: `ProtoMix { http: 5, ..ProtoMix::NONE }`.
    pub const NONE: ProtoMix =
        ProtoMix { tcp: 0, http: 0, tls: 0, dns_udp: 0, dns_tcp: 0, ssh: 0, udp: 0, icmp: 0, dhcp: 0 };

    pub fn weights(&self) -> [u32; 9] {
        [self.tcp, self.http, self.tls, self.dns_udp, self.dns_tcp, self.ssh, self.udp, self.icmp, self.dhcp]
    }

    /// `http=30,tls=30,dns=10,...` (names: tcp http tls dns dns-tcp ssh udp icmp dhcp); unnamed = 0.
    pub fn parse(s: &str) -> Result<ProtoMix, String> {
        let [tcp, http, tls, dns_udp, dns_tcp, ssh, udp, icmp, dhcp] = parse_weights(s, &APPS, "protocol")?;
        Ok(ProtoMix { tcp, http, tls, dns_udp, dns_tcp, ssh, udp, icmp, dhcp })
    }
}

/// Parses `name=weight,...` over `names`; unnamed weights are 0, all 0 is an error.
fn parse_weights<const N: usize>(s: &str, names: &[&str; N], what: &str) -> Result<[u32; N], String> {
    let mut w = [0u32; N];
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("{part:?}: expected name=weight"))?;
        let v: u32 = v.parse().map_err(|_| format!("{part:?}: weight is not a number"))?;
        let i = names
            .iter()
            .position(|n| *n == k)
            .ok_or_else(|| format!("{k:?}: unknown {what} (one of {})", names.join(" ")))?;
        w[i] = v;
    }
    if w.iter().all(|&x| x == 0) {
        return Err("every weight is 0".into());
    }
    Ok(w)
}

impl Default for ProtoMix {
    /// A datacenter-ish mix.
    fn default() -> Self {
        ProtoMix { tcp: 15, http: 20, tls: 30, dns_udp: 15, dns_tcp: 2, ssh: 3, udp: 10, icmp: 5, dhcp: 0 }
    }
}

/// Weights of the encapsulations of background flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncapMix {
    pub none: u32,
    pub vlan: u32,
    pub qinq: u32,
    pub vxlan: u32,
    pub gre: u32,
}

const ENCAPS: [&str; 5] = ["none", "vlan", "qinq", "vxlan", "gre"];

impl EncapMix {
    fn weights(&self) -> [u32; 5] {
        [self.none, self.vlan, self.qinq, self.vxlan, self.gre]
    }

    /// `none=80,vlan=10,qinq=5,vxlan=3,gre=2`; unnamed = 0.
    pub fn parse(s: &str) -> Result<EncapMix, String> {
        let [none, vlan, qinq, vxlan, gre] = parse_weights(s, &ENCAPS, "encapsulation")?;
        Ok(EncapMix { none, vlan, qinq, vxlan, gre })
    }
}

impl Default for EncapMix {
    fn default() -> Self {
        EncapMix { none: 1, vlan: 0, qinq: 0, vxlan: 0, gre: 0 }
    }
}

/// Attack scenarios laid over the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    PortScan,
    SynFlood,
    DnsTunnel,
    Beacon,
    Exfil,
    BruteForce,
    CleartextCreds,
}

impl Attack {
    pub const ALL: [Attack; 7] = [
        Attack::PortScan,
        Attack::SynFlood,
        Attack::DnsTunnel,
        Attack::Beacon,
        Attack::Exfil,
        Attack::BruteForce,
        Attack::CleartextCreds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::PortScan => "port_scan",
            Attack::SynFlood => "syn_flood",
            Attack::DnsTunnel => "dns_tunnel",
            Attack::Beacon => "beacon",
            Attack::Exfil => "exfil",
            Attack::BruteForce => "brute_force",
            Attack::CleartextCreds => "cleartext_creds",
        }
    }

    pub fn parse(s: &str) -> Option<Attack> {
        Attack::ALL.iter().copied().find(|a| a.name() == s || a.name().replace('_', "-") == s)
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub seed: u64,
    /// Background flows.
    pub flows: u64,
    pub sizes: Sizes,
    pub mix: ProtoMix,
    pub encap: EncapMix,
    /// Percent of background flows over IPv6.
    pub ipv6_percent: u32,
    /// New background flows per second (Poisson arrivals).
    pub flows_per_sec: f64,
    /// Pareto shape of flow sizes (exchanges per flow); smaller is heavier-tailed.
    pub size_alpha: f64,
    /// The most data packets of one background flow.
    pub max_packets: u32,
    pub attacks: Vec<Attack>,
    /// Time of the first packet, µs since the epoch.
    pub start_us: u64,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        TrafficConfig {
            seed: 1,
            flows: 1000,
            sizes: Sizes::Imix,
            mix: ProtoMix::default(),
            encap: EncapMix::default(),
            ipv6_percent: 10,
            flows_per_sec: 500.0,
            size_alpha: 1.3,
            max_packets: 2000,
            attacks: Vec::new(),
            start_us: crate::T0,
        }
    }
}

/// One flow as the generator wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthFlow {
    /// `tcp`, `http`, `tls`, `dns`, `dns-tcp`, `ssh`, `ftp`, `udp`, `icmp`.
    pub app: &'static str,
    pub encap: &'static str,
    pub vlan: Vec<u16>,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub proto: u8,
    /// Packets and captured bytes (whole frames, encapsulation included), to server / to client.
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub first_us: u64,
    pub last_us: u64,
    /// For VXLAN/GRE: the outer tuple (src, sport, dst, dport, proto) of the to-server packets.
    pub outer: Option<(IpAddr, u16, IpAddr, u16, u8)>,
    /// VXLAN VNI or GRE key.
    pub tunnel_id: Option<u32>,
    pub scenario: Option<&'static str>,
    /// Application details (the HTTP host, TLS SNI, DNS name, SSH software...).
    pub detail: String,
}

/// One attack scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthScenario {
    pub name: &'static str,
    pub attacker: IpAddr,
    pub target: String,
    pub start_us: u64,
    pub end_us: u64,
    pub flows: u64,
    pub packets: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub flows: Vec<TruthFlow>,
    pub scenarios: Vec<TruthScenario>,
    pub packets: u64,
    pub bytes: u64,
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Truth {
    /// The ground truth as one JSON object: `{"flows": [...], "scenarios": [...], "packets",
    /// "bytes"}`, one flow per line (what [`TruthWriter`] writes as it goes).
    pub fn to_json(&self) -> String {
        let mut w = TruthWriter::new(Vec::new()).expect("writing to memory");
        for f in &self.flows {
            w.flow(f).expect("writing to memory");
        }
        let v = w.finish(self).expect("writing to memory");
        String::from_utf8(v).expect("JSON is UTF-8")
    }
}

impl TruthFlow {
    /// Appends this flow as one JSON object.
    pub fn write_json(&self, o: &mut String) {
        let f = self;
        o.push_str("{\"app\":");
        json_str(o, f.app);
        o.push_str(",\"encap\":");
        json_str(o, f.encap);
        let vl: Vec<String> = f.vlan.iter().map(|v| v.to_string()).collect();
        let _ = write!(
            o,
            ",\"vlan\":[{}],\"src_ip\":\"{}\",\"src_port\":{},\"dest_ip\":\"{}\",\"dest_port\":{},\"proto\":{},\"pkts_toserver\":{},\"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},\"first_us\":{},\"last_us\":{}",
            vl.join(","),
            f.src,
            f.sport,
            f.dst,
            f.dport,
            f.proto,
            f.pkts[0],
            f.pkts[1],
            f.bytes[0],
            f.bytes[1],
            f.first_us,
            f.last_us
        );
        if let Some((s, sp, d, dp, p)) = f.outer {
            let _ = write!(o, ",\"outer\":{{\"src_ip\":\"{s}\",\"src_port\":{sp},\"dest_ip\":\"{d}\",\"dest_port\":{dp},\"proto\":{p}}}");
        }
        if let Some(t) = f.tunnel_id {
            let _ = write!(o, ",\"tunnel_id\":{t}");
        }
        if let Some(s) = f.scenario {
            o.push_str(",\"scenario\":");
            json_str(o, s);
        }
        o.push_str(",\"detail\":");
        json_str(o, &f.detail);
        o.push('}');
    }
}

/// Writes the ground truth as flows are generated, so millions of flows need no memory:
/// `{"flows":[` one flow per line `],"scenarios":[...],"packets":N,"bytes":M}`.
pub struct TruthWriter<W: std::io::Write> {
    w: W,
    n: u64,
    line: String,
}

impl<W: std::io::Write> TruthWriter<W> {
    pub fn new(mut w: W) -> std::io::Result<Self> {
        w.write_all(b"{\"flows\":[\n")?;
        Ok(TruthWriter { w, n: 0, line: String::with_capacity(512) })
    }

    pub fn flow(&mut self, f: &TruthFlow) -> std::io::Result<()> {
        self.line.clear();
        if self.n > 0 {
            self.line.push_str(",\n");
        }
        f.write_json(&mut self.line);
        self.n += 1;
        self.w.write_all(self.line.as_bytes())
    }

    /// Ends the flow list with the scenarios and totals of `t` (whose `flows` may be empty).
    pub fn finish(mut self, t: &Truth) -> std::io::Result<W> {
        let mut o = String::from("\n],\"scenarios\":[\n");
        for (i, s) in t.scenarios.iter().enumerate() {
            let _ = write!(o, "{{\"name\":\"{}\",\"attacker\":\"{}\",\"target\":", s.name, s.attacker);
            json_str(&mut o, &s.target);
            let _ = writeln!(
                o,
                ",\"start_us\":{},\"end_us\":{},\"flows\":{},\"packets\":{}}}{}",
                s.start_us,
                s.end_us,
                s.flows,
                s.packets,
                if i + 1 < t.scenarios.len() { "," } else { "" }
            );
        }
        let _ = writeln!(o, "],\"packets\":{},\"bytes\":{}}}", t.packets, t.bytes);
        self.w.write_all(o.as_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encap {
    None,
    Vlan(u16),
    QinQ(u16, u16),
    Vxlan { vni: u32, a: [u8; 4], b: [u8; 4], sport: u16 },
    Gre { key: u32, a: [u8; 4], b: [u8; 4] },
}

impl Encap {
    fn name(&self) -> &'static str {
        match self {
            Encap::None => "none",
            Encap::Vlan(_) => "vlan",
            Encap::QinQ(..) => "qinq",
            Encap::Vxlan { .. } => "vxlan",
            Encap::Gre { .. } => "gre",
        }
    }

    fn l2(&self) -> L2 {
        match *self {
            Encap::Vlan(v) => L2::vlan(v),
            Encap::QinQ(o, i) => L2::qinq(o, i),
            _ => L2::default(),
        }
    }

    fn vlans(&self) -> Vec<u16> {
        match *self {
            Encap::Vlan(v) => vec![v],
            Encap::QinQ(o, i) => vec![o, i],
            _ => Vec::new(),
        }
    }

    /// Wraps an inner Ethernet frame for the wire.
    fn wrap(&self, inner: Vec<u8>, c2s: bool) -> Vec<u8> {
        match *self {
            Encap::None | Encap::Vlan(_) | Encap::QinQ(..) => inner,
            Encap::Vxlan { vni, a, b, sport } => {
                let (s, d) = if c2s { (a, b) } else { (b, a) };
                let mut p = vec![0x08, 0, 0, 0];
                p.extend_from_slice(&(vni << 8).to_be_bytes());
                p.extend_from_slice(&inner);
                let udp = udp_datagram(sport, 4789, &p);
                ip_frame(&L2::default(), c2s, IpAddr::from(s), IpAddr::from(d), 17, udp, Some(6))
            }
            Encap::Gre { key, a, b } => {
                let (s, d) = if c2s { (a, b) } else { (b, a) };
                // GRE with a key (RFC 2890), carrying the inner IP packet.
                let ethertype = u16::from_be_bytes([inner[12], inner[13]]);
                let mut g = vec![0x20, 0x00];
                g.extend_from_slice(&ethertype.to_be_bytes());
                g.extend_from_slice(&key.to_be_bytes());
                g.extend_from_slice(&inner[14..]);
                ip_frame(&L2::default(), c2s, IpAddr::from(s), IpAddr::from(d), 47, g, None)
            }
        }
    }

    fn outer(&self) -> Option<(IpAddr, u16, IpAddr, u16, u8)> {
        match *self {
            Encap::Vxlan { a, b, sport, .. } => Some((IpAddr::from(a), sport, IpAddr::from(b), 4789, 17)),
            Encap::Gre { a, b, .. } => Some((IpAddr::from(a), 0, IpAddr::from(b), 0, 47)),
            _ => None,
        }
    }

    fn id(&self) -> Option<u32> {
        match *self {
            Encap::Vxlan { vni, .. } => Some(vni),
            Encap::Gre { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// A flow being written: endpoints, encapsulation, sequence numbers, its packets so far.
struct FlowGen {
    /// Endpoints and sequence numbers (its `l2` carries the VLAN tags of the encapsulation).
    s: TcpSession,
    encap: Encap,
    t: u64,
    pkts: Vec<(u64, Vec<u8>)>,
    truth: TruthFlow,
}

impl FlowGen {
    #[allow(clippy::too_many_arguments)]
    fn new(
        app: &'static str,
        client: IpAddr,
        cport: u16,
        server: IpAddr,
        sport: u16,
        proto: u8,
        encap: Encap,
        t: u64,
    ) -> FlowGen {
        let s = TcpSession { cseq: 1000, sseq: 50_000, window: 64240, ..TcpSession::new(client, cport, server, sport) }
            .with_l2(encap.l2());
        FlowGen {
            s,
            encap,
            t,
            pkts: Vec::new(),
            truth: TruthFlow {
                app,
                encap: encap.name(),
                vlan: encap.vlans(),
                src: client,
                sport: cport,
                dst: server,
                dport: sport,
                proto,
                pkts: [0; 2],
                bytes: [0; 2],
                first_us: t,
                last_us: t,
                outer: encap.outer(),
                tunnel_id: encap.id(),
                scenario: None,
                detail: String::new(),
            },
        }
    }

    fn push(&mut self, c2s: bool, inner: Vec<u8>) {
        let frame = self.encap.wrap(inner, c2s);
        let d = !c2s as usize;
        self.truth.pkts[d] += 1;
        self.truth.bytes[d] += frame.len() as u64;
        if self.pkts.is_empty() {
            self.truth.first_us = self.t;
        }
        self.truth.last_us = self.t;
        self.pkts.push((self.t, frame));
    }

    fn tcp(&mut self, c2s: bool, fl: u8, payload: &[u8]) {
        let f = self.s.seg(c2s, fl, payload);
        self.push(c2s, f);
    }

    fn udp(&mut self, c2s: bool, payload: &[u8]) {
        let (src, dst, sp, dp) = if c2s {
            (self.s.client, self.s.server, self.s.cport, self.s.sport)
        } else {
            (self.s.server, self.s.client, self.s.sport, self.s.cport)
        };
        let f = ip_frame(&self.encap.l2(), c2s, src, dst, 17, udp_datagram(sp, dp, payload), Some(6));
        self.push(c2s, f);
    }

    fn handshake(&mut self, gap: &mut impl FnMut() -> u64) {
        self.tcp(true, flags::SYN, &[]);
        self.t += gap();
        self.tcp(false, flags::SYN | flags::ACK, &[]);
        self.t += gap();
        self.tcp(true, flags::ACK, &[]);
    }

    fn close(&mut self, gap: &mut impl FnMut() -> u64) {
        self.t += gap();
        self.tcp(true, flags::FIN | flags::ACK, &[]);
        self.t += gap();
        self.tcp(false, flags::FIN | flags::ACK, &[]);
        self.t += gap();
        self.tcp(true, flags::ACK, &[]);
    }

    /// Sends `data` in segments of at most `mss` bytes.
    fn send(&mut self, c2s: bool, data: &[u8], mss: usize, gap: &mut impl FnMut() -> u64) {
        for (i, chunk) in data.chunks(mss.max(1)).enumerate() {
            if i > 0 {
                self.t += gap();
            }
            self.tcp(c2s, flags::PSH | flags::ACK, chunk);
        }
    }

    /// Header bytes in front of a TCP payload in this flow's frames (before encapsulation).
    fn tcp_overhead(&self) -> usize {
        14 + 4 * self.encap.vlans().len() + if self.s.client.is_ipv6() { 40 } else { 20 } + 20
    }
}

/// A TLS ClientHello record with SNI and ALPN (TLS 1.2 record, offering 1.3).
pub fn tls_client_hello(rng: &mut Rng, sni: &str, alpn: &[&str]) -> Vec<u8> {
    tls_client_hello_with(rng, sni, alpn, false)
}

/// The certificate the generator's TLS 1.2 servers present (a self-signed P-256 certificate,
/// `CN=www.example.com`, made once with openssl and kept in `pcapgen/data`).
pub const CERT_DER: &[u8] = include_bytes!("../data/cert.der");

/// [`tls_client_hello`], with GREASE values (RFC 8701) first in the cipher suites, the
/// extensions and the groups when `grease`, as browsers send them.
pub fn tls_client_hello_with(rng: &mut Rng, sni: &str, alpn: &[&str], grease: bool) -> Vec<u8> {
    let mut hs = vec![0x03, 0x03];
    hs.extend(rng.bytes(32));
    hs.push(32);
    hs.extend(rng.bytes(32));
    let mut suites: Vec<u16> = vec![0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0x009e];
    if grease {
        suites.insert(0, 0x2a2a);
    }
    hs.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hs.extend_from_slice(&s.to_be_bytes());
    }
    hs.extend_from_slice(&[1, 0]); // compression: null
    let mut ext = Vec::new();
    if grease {
        push_ext(&mut ext, 0x9a9a, &[]);
    }
    // server_name
    let name = sni.as_bytes();
    let mut sn = Vec::new();
    sn.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sn.extend_from_slice(name);
    push_ext(&mut ext, 0, &sn);
    if grease {
        push_ext(&mut ext, 0x0a, &[0, 8, 0xfa, 0xfa, 0, 0x1d, 0, 0x17, 0, 0x18]);
    // supported_groups
    } else {
        push_ext(&mut ext, 0x0a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    }
    push_ext(&mut ext, 0x0b, &[1, 0]); // ec_point_formats
    push_ext(&mut ext, 0x0d, &[0, 8, 4, 3, 8, 4, 4, 1, 5, 1]); // signature_algorithms
    let mut al = Vec::new();
    for p in alpn {
        al.push(p.len() as u8);
        al.extend_from_slice(p.as_bytes());
    }
    let mut alv = (al.len() as u16).to_be_bytes().to_vec();
    alv.extend_from_slice(&al);
    push_ext(&mut ext, 0x10, &alv); // ALPN
    push_ext(&mut ext, 0x2b, &[4, 3, 4, 3, 3]); // supported_versions: 1.3, 1.2
    let mut ks = vec![0, 36, 0, 0x1d, 0, 32];
    ks.extend(rng.bytes(32));
    push_ext(&mut ext, 0x33, &ks); // key_share
    hs.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hs.extend_from_slice(&ext);
    tls_record(0x16, &handshake_msg(1, &hs))
}

/// A TLS ServerHello (selecting TLS 1.3 and TLS_AES_128_GCM_SHA256) + ChangeCipherSpec.
pub fn tls_server_hello(rng: &mut Rng) -> Vec<u8> {
    let mut hs = vec![0x03, 0x03];
    hs.extend(rng.bytes(32));
    hs.push(32);
    hs.extend(rng.bytes(32));
    hs.extend_from_slice(&[0x13, 0x01, 0]);
    let mut ext = Vec::new();
    push_ext(&mut ext, 0x2b, &[3, 4]);
    let mut ks = vec![0, 0x1d, 0, 32];
    ks.extend(rng.bytes(32));
    push_ext(&mut ext, 0x33, &ks);
    hs.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hs.extend_from_slice(&ext);
    let mut r = tls_record(0x16, &handshake_msg(2, &hs));
    r.extend_from_slice(&tls_record(0x14, &[1]));
    r
}

/// A TLS 1.2 server's first flight in two segments: ServerHello (ECDHE-RSA-AES128-GCM-SHA256,
/// renegotiation_info, ec_point_formats, the ALPN it picked) in one record, then Certificate
/// ([`CERT_DER`]) and ServerHelloDone in another.
pub fn tls12_server_flight(rng: &mut Rng, alpn: &str) -> (Vec<u8>, Vec<u8>) {
    let mut hs = vec![0x03, 0x03];
    hs.extend(rng.bytes(32));
    hs.push(32);
    hs.extend(rng.bytes(32));
    hs.extend_from_slice(&[0xc0, 0x2f, 0]);
    let mut ext = Vec::new();
    push_ext(&mut ext, 0xff01, &[0]);
    push_ext(&mut ext, 0x0b, &[1, 0]);
    let mut al = vec![0, (alpn.len() + 1) as u8, alpn.len() as u8];
    al.extend_from_slice(alpn.as_bytes());
    push_ext(&mut ext, 0x10, &al);
    hs.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hs.extend_from_slice(&ext);
    let hello = tls_record(0x16, &handshake_msg(2, &hs));
    let mut list = (CERT_DER.len() as u32).to_be_bytes()[1..].to_vec();
    list.extend_from_slice(CERT_DER);
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    let mut msgs = handshake_msg(11, &body);
    msgs.extend_from_slice(&handshake_msg(14, &[]));
    (hello, tls_record(0x16, &msgs))
}

/// An SSH binary packet holding a KEXINIT with OpenSSH-like algorithm lists (the server's in
/// another order), for HASSH.
pub fn ssh_kexinit(rng: &mut Rng, server: bool) -> Vec<u8> {
    let lists: [&str; 10] = if server {
        [
            "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group16-sha512",
            "rsa-sha2-512,rsa-sha2-256,ssh-ed25519",
            "chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com",
            "chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com",
            "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
            "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
            "none,zlib@openssh.com",
            "none,zlib@openssh.com",
            "",
            "",
        ]
    } else {
        [
            "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha256,ext-info-c",
            "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512",
            "aes128-ctr,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
            "aes128-ctr,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
            "hmac-sha2-256-etm@openssh.com,umac-64-etm@openssh.com",
            "hmac-sha2-256-etm@openssh.com,umac-64-etm@openssh.com",
            "none,zlib@openssh.com,zlib",
            "none,zlib@openssh.com,zlib",
            "",
            "",
        ]
    };
    let mut p = vec![20];
    p.extend(rng.bytes(16));
    for l in lists {
        p.extend_from_slice(&(l.len() as u32).to_be_bytes());
        p.extend_from_slice(l.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 0, 0, 0]); // first_kex_packet_follows, reserved
                                           // Pad to a multiple of 8 with at least 4 bytes (RFC 4253 §6).
    let mut pad = 8 - (p.len() + 5) % 8;
    if pad < 4 {
        pad += 8;
    }
    let mut pkt = ((p.len() + 1 + pad) as u32).to_be_bytes().to_vec();
    pkt.push(pad as u8);
    pkt.extend_from_slice(&p);
    pkt.extend(rng.bytes(pad));
    pkt
}

fn push_ext(out: &mut Vec<u8>, t: u16, body: &[u8]) {
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn handshake_msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![t];
    m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

fn tls_record(ct: u8, body: &[u8]) -> Vec<u8> {
    // ClientHello records say TLS 1.0 for compatibility; everything else TLS 1.2.
    let client_hello = ct == 0x16 && body.first() == Some(&1);
    let mut r = vec![ct, 0x03, if client_hello { 0x01 } else { 0x03 }];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A DNS query (RD set) for `name` of type `qtype`.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    push_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// The answer to [`dns_query`]: rcode 0 with one record pointing at the question name
/// (A, AAAA or TXT), or NXDOMAIN with none.
pub fn dns_response(id: u16, name: &str, qtype: u16, nxdomain: bool, rng: &mut Rng) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x81, if nxdomain { 0x83 } else { 0x80 }, 0, 1, 0, if nxdomain { 0 } else { 1 }, 0, 0, 0, 0]);
    push_name(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if !nxdomain {
        m.extend_from_slice(&[0xc0, 12]);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        let rdata: Vec<u8> = match qtype {
            28 => (0..16).map(|i| if i < 2 { [0x20, 0x01][i] } else { rng.next_u64() as u8 }).collect(),
            16 => {
                let txt: Vec<u8> =
                    (0..40).map(|_| b"abcdefghijklmnopqrstuvwxyz234567"[rng.below(32) as usize]).collect();
                let mut v = vec![txt.len() as u8];
                v.extend_from_slice(&txt);
                v
            }
            _ => vec![198, 51, 100, (rng.below(250) + 1) as u8],
        };
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

fn push_name(m: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        m.push(l.len() as u8);
        m.extend_from_slice(l);
    }
    m.push(0);
}

const WORDS: [&str; 16] = [
    "api", "cdn", "mail", "login", "static", "img", "auth", "shop", "news", "video", "docs", "git", "metrics",
    "search", "pay", "status",
];
const DOMAINS: [&str; 8] = [
    "example.com",
    "example.net",
    "example.org",
    "corp.example",
    "svc.cluster.local",
    "cloud.example",
    "partner.test",
    "media.example",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "curl/7.88.1",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
];
const SSH_SOFT: [&str; 3] = ["OpenSSH_9.2p1 Debian-2+deb12u3", "OpenSSH_8.9p1 Ubuntu-3ubuntu0.6", "dropbear_2022.83"];

fn hostname(rng: &mut Rng) -> String {
    format!("{}.{}", WORDS[rng.below(16) as usize], DOMAINS[rng.below(8) as usize])
}

/// Pareto-distributed integer ≥ `min`, capped at `max`.
fn pareto(rng: &mut Rng, min: f64, alpha: f64, max: f64) -> f64 {
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    (min / u.powf(1.0 / alpha)).min(max)
}

fn exp(rng: &mut Rng, mean: f64) -> f64 {
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    -mean * u.ln()
}

fn pick(rng: &mut Rng, weights: &[u32]) -> usize {
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    let mut x = rng.below(total.max(1));
    for (i, &w) in weights.iter().enumerate() {
        if x < w as u64 {
            return i;
        }
        x -= w as u64;
    }
    weights.len() - 1
}

/// Addresses: clients in 10.0.0.0/8, servers in 172.16.0.0/12 (inside) and 198.51.100.0/24,
/// 203.0.113.0/24 (outside); IPv6 in 2001:db8::/32. Each background flow gets its own client
/// port from a per-client counter, so no 5-tuple repeats.
struct Addrs {
    next_port: Vec<u16>,
    /// ICMP flows are keyed by addresses alone: each gets a client address of its own.
    next_icmp: u32,
}

impl Addrs {
    fn client(&mut self, rng: &mut Rng, v6: bool) -> (IpAddr, u16) {
        let i = rng.below(self.next_port.len() as u64) as usize;
        let p = self.next_port[i];
        self.next_port[i] = if p >= 65000 { 1024 } else { p + 1 };
        let a = if v6 {
            IpAddr::from([0x2001, 0xdb8, 0x10, 0, 0, 0, (i >> 8) as u16, i as u16])
        } else {
            IpAddr::from([10, 1 + (i >> 16) as u8, (i >> 8) as u8, i as u8])
        };
        (a, p)
    }

    /// A client address no other ICMP flow uses (10.128.0.0/9, 2001:db8:30::/64).
    fn icmp_client(&mut self, v6: bool) -> IpAddr {
        let n = self.next_icmp;
        self.next_icmp = self.next_icmp.wrapping_add(1) & 0x7f_ffff;
        if v6 {
            IpAddr::from([0x2001, 0xdb8, 0x30, 0, 0, 0, (n >> 16) as u16, n as u16])
        } else {
            IpAddr::from([10, 128 | (n >> 16) as u8, (n >> 8) as u8, n as u8])
        }
    }

    fn server(rng: &mut Rng, v6: bool) -> IpAddr {
        let n = rng.below(200) as u8;
        if v6 {
            IpAddr::from([0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 1 + n as u16])
        } else if n < 120 {
            IpAddr::from([172, 16, n / 50, 1 + n % 50])
        } else {
            IpAddr::from([198, 51, 100, n])
        }
    }
}

/// Generates the capture: `emit(ts, frame)` receives every packet in time order. Returns the
/// ground truth.
pub fn generate(cfg: &TrafficConfig, emit: impl FnMut(u64, &[u8])) -> Truth {
    let mut flows = Vec::new();
    let mut t = generate_with(cfg, emit, |f| flows.push(f));
    t.flows = flows;
    t
}

/// [`generate`], handing each flow's truth to `on_flow` as soon as the flow is planned instead
/// of keeping it: the returned [`Truth`] has the scenarios and totals, no flows.
pub fn generate_with(
    cfg: &TrafficConfig,
    mut emit: impl FnMut(u64, &[u8]),
    mut on_flow: impl FnMut(TruthFlow),
) -> Truth {
    let mut rng = Rng::new(cfg.seed);
    let mut truth = Truth::default();
    // Heap of pending packets: (time, sequence) → frame.
    let mut heap: BinaryHeap<Reverse<(u64, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut queue = |heap: &mut BinaryHeap<Reverse<(u64, u64, Vec<u8>)>>, g: FlowGen| {
        for (t, f) in g.pkts {
            heap.push(Reverse((t, seq, f)));
            seq += 1;
        }
        on_flow(g.truth);
    };
    let span_us = ((cfg.flows as f64 / cfg.flows_per_sec.max(1e-3)) * 1e6) as u64;
    let mut addrs = Addrs { next_port: vec![20000; 4096], next_icmp: 0 };
    // Attacks first: their packets wait in the heap until their time comes.
    let mut arng = Rng::new(cfg.seed ^ 0xa77a_c4ed);
    for (k, a) in cfg.attacks.iter().enumerate() {
        let at = cfg.start_us + span_us / 5 + (k as u64 * span_us / 2) / cfg.attacks.len().max(1) as u64;
        let (flows, scen) = attack(*a, at, span_us, &mut arng);
        truth.scenarios.push(scen);
        for mut g in flows {
            g.truth.scenario = Some(a.name());
            queue(&mut heap, g);
        }
    }
    let mut t = cfg.start_us;
    let weights = cfg.mix.weights();
    let ew = cfg.encap.weights();
    for _ in 0..cfg.flows {
        t += exp(&mut rng, 1e6 / cfg.flows_per_sec.max(1e-3)) as u64;
        // Everything before the new flow's start is final.
        while let Some(Reverse((pt, _, _))) = heap.peek() {
            if *pt >= t {
                break;
            }
            let Reverse((pt, _, f)) = heap.pop().expect("peeked");
            truth.packets += 1;
            truth.bytes += f.len() as u64;
            emit(pt, &f);
        }
        let app = APPS[pick(&mut rng, &weights)];
        let v6 = rng.below(100) < cfg.ipv6_percent as u64;
        let encap = match ENCAPS[pick(&mut rng, &ew)] {
            "vlan" => Encap::Vlan(100 + rng.below(50) as u16),
            "qinq" => Encap::QinQ(200 + rng.below(10) as u16, 300 + rng.below(50) as u16),
            "vxlan" => Encap::Vxlan {
                vni: 5000 + rng.below(16) as u32,
                a: [192, 0, 2, 1 + rng.below(8) as u8],
                b: [192, 0, 2, 101 + rng.below(8) as u8],
                sport: 49152 + rng.below(16000) as u16,
            },
            "gre" => Encap::Gre {
                key: 1 + rng.below(4) as u32,
                a: [192, 0, 2, 201],
                b: [192, 0, 2, 202 + rng.below(4) as u8],
            },
            _ => Encap::None,
        };
        let g = background(app, v6, encap, t, cfg, &mut rng, &mut addrs);
        queue(&mut heap, g);
    }
    while let Some(Reverse((pt, _, f))) = heap.pop() {
        truth.packets += 1;
        truth.bytes += f.len() as u64;
        emit(pt, &f);
    }
    truth
}

fn background(
    app: &'static str,
    v6: bool,
    encap: Encap,
    t: u64,
    cfg: &TrafficConfig,
    rng: &mut Rng,
    addrs: &mut Addrs,
) -> FlowGen {
    // DHCP is IPv4's, between fixed ports: each flow gets a client address of its own.
    let v6 = v6 && app != "dhcp";
    let (client, cport) = match app {
        "icmp" => (addrs.icmp_client(v6), 0),
        "dhcp" => (addrs.icmp_client(false), 68),
        _ => addrs.client(rng, v6),
    };
    let server = Addrs::server(rng, v6);
    let exchanges = pareto(rng, 1.0, cfg.size_alpha, cfg.max_packets as f64) as usize;
    // Pace: a heavy-tailed mean gap between packets, from 100 µs up to 2 s.
    let mean_gap = pareto(rng, 100.0, 1.1, 2e6);
    let mut grng = Rng::new(rng.next_u64());
    let mut gap = move || (exp(&mut grng, mean_gap) as u64).clamp(1, 19_000_000);
    let sizes = cfg.sizes;
    let (proto, sport) = match app {
        "dns" => (17, 53),
        "dhcp" => (17, 67),
        "udp" => (17, [5001, 9000, 7777, 12345][rng.below(4) as usize]),
        "icmp" => (if v6 { 58 } else { 1 }, 0),
        "http" => (6, [80, 8080, 8000][rng.below(3) as usize]),
        "tls" => (6, [443, 8443][(rng.below(10) == 0) as usize]),
        "ssh" => (6, 22),
        "dns-tcp" => (6, 53),
        _ => (6, [5432, 3306, 6379, 9092, 2049][rng.below(5) as usize]),
    };
    let mut g = FlowGen::new(app, client, cport, server, sport, proto, encap, t);
    let ov = g.tcp_overhead();
    let seg = |rng: &mut Rng| sizes.frame_len(rng).saturating_sub(ov).max(1);
    match app {
        "dns" => {
            let name = hostname(rng);
            let qtype = if v6 { 28 } else { 1 };
            let id = rng.next_u64() as u16;
            g.udp(true, &dns_query(id, &name, qtype));
            g.t += gap().min(50_000);
            g.udp(false, &dns_response(id, &name, qtype, rng.below(20) == 0, rng));
            g.truth.detail = name;
        }
        "dhcp" => {
            let (IpAddr::V4(c), IpAddr::V4(s)) = (client, server) else { unreachable!("DHCP flows are IPv4") };
            let host = WORDS[rng.below(16) as usize];
            let xid = rng.next_u64() as u32;
            let b = rng.bytes(5);
            let mac = [0x02, b[0], b[1], b[2], b[3], b[4]];
            g.udp(true, &crate::dhcp::request(xid, mac, c, host));
            g.t += gap().min(50_000);
            g.udp(false, &crate::dhcp::ack(xid, mac, c, s, 3600 * (1 + rng.below(24) as u32), host));
            g.truth.detail = host.into();
        }
        "dns-tcp" => {
            let name = hostname(rng);
            let id = rng.next_u64() as u16;
            g.handshake(&mut gap);
            let q = dns_query(id, &name, 16);
            let mut m = (q.len() as u16).to_be_bytes().to_vec();
            m.extend_from_slice(&q);
            g.t += gap();
            g.tcp(true, flags::PSH | flags::ACK, &m);
            let r = dns_response(id, &name, 16, false, rng);
            let mut m = (r.len() as u16).to_be_bytes().to_vec();
            m.extend_from_slice(&r);
            g.t += gap();
            g.tcp(false, flags::PSH | flags::ACK, &m);
            g.close(&mut gap);
            g.truth.detail = name;
        }
        "udp" => {
            let two_way = rng.below(2) == 0;
            for i in 0..exchanges.max(1) {
                if i > 0 {
                    g.t += gap();
                }
                // The UDP header is 12 bytes shorter than TCP's: the same frame sizes.
                let len = seg(rng) + 12;
                let p: Vec<u8> = rng.bytes(len);
                g.udp(!two_way || i % 2 == 0, &p);
            }
        }
        "icmp" => {
            let id = rng.next_u64() as u16;
            let l2 = encap.l2();
            for i in 0..exchanges.clamp(1, 20) {
                if i > 0 {
                    g.t += gap();
                }
                let f = icmp_echo(&l2, true, client, server, false, id, i as u16, &[0x61; 48]);
                g.push(true, f);
                g.t += gap().min(20_000);
                let f = icmp_echo(&l2, false, server, client, true, id, i as u16, &[0x61; 48]);
                g.push(false, f);
            }
        }
        "http" => {
            let host = hostname(rng);
            g.handshake(&mut gap);
            let txs = 1 + exchanges / 8;
            for i in 0..txs {
                let req = format!(
                    "GET /{}/{}?id={} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\nAccept: */*\r\n\r\n",
                    WORDS[rng.below(16) as usize],
                    i,
                    rng.below(100000),
                    AGENTS[rng.below(4) as usize]
                );
                g.t += gap();
                g.tcp(true, flags::PSH | flags::ACK, req.as_bytes());
                let body_len = seg(rng) * (1 + exchanges / txs);
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {body_len}\r\n\r\n"
                )
                .into_bytes();
                resp.extend((0..body_len).map(|k| b"<html>lorem ipsum</html>"[k % 24]));
                g.t += gap();
                let mss = seg(rng);
                g.send(false, &resp, mss, &mut gap);
            }
            g.close(&mut gap);
            g.truth.detail = host;
        }
        "tls" => {
            let sni = hostname(rng);
            let alpn: &[&str] = if rng.below(2) == 0 { &["h2", "http/1.1"] } else { &["http/1.1"] };
            g.handshake(&mut gap);
            g.t += gap();
            // Half the clients send GREASE (as browsers do); a third of the servers answer with
            // TLS 1.2 and a certificate in the clear.
            let grease = rng.below(2) == 0;
            let tls12 = rng.below(3) == 0;
            let ch = tls_client_hello_with(rng, &sni, alpn, grease);
            g.tcp(true, flags::PSH | flags::ACK, &ch);
            g.t += gap();
            if tls12 {
                let (hello, cert) = tls12_server_flight(rng, alpn[0]);
                g.tcp(false, flags::PSH | flags::ACK, &hello);
                g.t += gap();
                g.tcp(false, flags::PSH | flags::ACK, &cert);
            } else {
                let sh = tls_server_hello(rng);
                g.tcp(false, flags::PSH | flags::ACK, &sh);
            }
            g.t += gap();
            g.tcp(true, flags::PSH | flags::ACK, &tls_record(0x14, &[1]));
            for i in 0..exchanges {
                g.t += gap();
                let n = seg(rng).saturating_sub(5).max(1);
                let body: Vec<u8> = rng.bytes(n);
                g.tcp(i % 3 == 0, flags::PSH | flags::ACK, &tls_record(0x17, &body));
            }
            g.close(&mut gap);
            g.truth.detail = sni;
        }
        "ssh" => {
            let soft = SSH_SOFT[rng.below(3) as usize];
            g.handshake(&mut gap);
            g.t += gap();
            g.tcp(false, flags::PSH | flags::ACK, format!("SSH-2.0-{soft}\r\n").as_bytes());
            g.t += gap();
            g.tcp(true, flags::PSH | flags::ACK, b"SSH-2.0-OpenSSH_9.6\r\n");
            g.t += gap();
            g.tcp(true, flags::PSH | flags::ACK, &ssh_kexinit(rng, false));
            g.t += gap();
            g.tcp(false, flags::PSH | flags::ACK, &ssh_kexinit(rng, true));
            for i in 0..exchanges.max(2) {
                g.t += gap();
                let n = seg(rng);
                let body: Vec<u8> = rng.bytes(n);
                g.tcp(i % 2 == 0, flags::PSH | flags::ACK, &body);
            }
            g.close(&mut gap);
            g.truth.detail = soft.to_string();
        }
        _ => {
            g.handshake(&mut gap);
            for i in 0..exchanges {
                g.t += gap();
                let n = seg(rng);
                let body: Vec<u8> = rng.bytes(n);
                g.tcp(i % 10 < 7, flags::PSH | flags::ACK, &body);
            }
            if rng.below(10) == 0 {
                g.t += gap();
                g.tcp(true, flags::RST | flags::ACK, &[]);
            } else {
                g.close(&mut gap);
            }
        }
    }
    g
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// The flows of one attack starting at `at`, and its truth.
fn attack(a: Attack, at: u64, span_us: u64, rng: &mut Rng) -> (Vec<FlowGen>, TruthScenario) {
    let mut flows = Vec::new();
    let fixed = |v: u64| move || v;
    let (attacker, target) = match a {
        Attack::PortScan => {
            let (att, tgt) = (v4([10, 66, 0, 1]), v4([172, 16, 9, 9]));
            for (i, port) in (1..=1024u16).enumerate() {
                let mut g = FlowGen::new("tcp", att, 40000, tgt, port, 6, Encap::None, at + i as u64 * 200);
                g.tcp(true, flags::SYN, &[]);
                g.t += 100;
                if [22, 80, 443].contains(&port) {
                    g.tcp(false, flags::SYN | flags::ACK, &[]);
                    g.t += 50;
                    g.tcp(true, flags::RST, &[]);
                } else {
                    let seg = tcp_segment(port, 40000, 0, g.s.cseq, flags::RST | flags::ACK, 0, &[]);
                    let f = ip_frame(&L2::default(), false, tgt, att, 6, seg, Some(16));
                    g.push(false, f);
                }
                flows.push(g);
            }
            (att, format!("{tgt} tcp/1-1024"))
        }
        Attack::SynFlood => {
            let tgt = v4([172, 16, 9, 10]);
            for i in 0..5000u64 {
                let src = v4([203, 0, 113, rng.below(254) as u8 + 1]);
                let mut g =
                    FlowGen::new("tcp", src, 1024 + rng.below(60000) as u16, tgt, 80, 6, Encap::None, at + i * 20);
                g.s.cseq = rng.next_u64() as u32;
                g.tcp(true, flags::SYN, &[]);
                flows.push(g);
            }
            // Several spoofed sources may draw the same (address, port): merge duplicates.
            dedup_single_packet_flows(&mut flows);
            (v4([203, 0, 113, 0]), format!("{tgt}:80"))
        }
        Attack::DnsTunnel => {
            let (att, resolver) = (v4([10, 70, 0, 7]), v4([172, 16, 0, 53]));
            for i in 0..400u64 {
                let label: String =
                    (0..48).map(|_| b"abcdefghijklmnopqrstuvwxyz234567"[rng.below(32) as usize] as char).collect();
                let name = format!("{label}.{i}.t.exfil-example.com");
                let mut g = FlowGen::new("dns", att, 30000 + i as u16, resolver, 53, 17, Encap::None, at + i * 50_000);
                let id = rng.next_u64() as u16;
                g.udp(true, &dns_query(id, &name, 16));
                g.t += 2_000;
                g.udp(false, &dns_response(id, &name, 16, false, rng));
                g.truth.detail = name;
                flows.push(g);
            }
            (att, "t.exfil-example.com".into())
        }
        Attack::Beacon => {
            let (att, c2) = (v4([10, 77, 0, 5]), v4([198, 51, 100, 77]));
            let interval = (span_us / 30).max(1_000_000);
            for i in 0..24u64 {
                let jitter = (rng.below(interval / 50 + 1)) as i64 - (interval / 100) as i64;
                let t = (at as i64 + (i * interval) as i64 + jitter) as u64;
                let mut g = FlowGen::new("http", att, 45000 + i as u16, c2, 80, 6, Encap::None, t);
                let mut gap = fixed(800);
                g.handshake(&mut gap);
                g.t += 800;
                g.tcp(
                    true,
                    flags::PSH | flags::ACK,
                    b"GET /beacon?id=7f3a HTTP/1.1\r\nHost: c2.example-bad.net\r\nUser-Agent: Mozilla/4.0\r\n\r\n",
                );
                g.t += 30_000;
                g.tcp(false, flags::PSH | flags::ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                g.close(&mut gap);
                g.truth.detail = "c2.example-bad.net".into();
                flows.push(g);
            }
            (att, format!("{c2}:80"))
        }
        Attack::Exfil => {
            let (att, dst) = (v4([10, 88, 0, 8]), v4([203, 0, 113, 88]));
            // Port 443, but the bytes are not TLS: the truth says what they are.
            let mut g = FlowGen::new("tcp", att, 51000, dst, 443, 6, Encap::None, at);
            let mut gap = fixed(100);
            g.handshake(&mut gap);
            let chunk = vec![0x5a; 1448];
            for i in 0..7000u32 {
                g.t += 100;
                g.tcp(true, flags::PSH | flags::ACK, &chunk);
                if i % 16 == 15 {
                    g.t += 50;
                    g.tcp(false, flags::ACK, &[]);
                }
            }
            g.close(&mut gap);
            flows.push(g);
            (att, format!("{dst}:443"))
        }
        Attack::BruteForce => {
            let (att, tgt) = (v4([198, 51, 100, 66]), v4([172, 16, 9, 22]));
            for i in 0..200u64 {
                let mut g = FlowGen::new("ssh", att, 33000 + i as u16, tgt, 22, 6, Encap::None, at + i * 300_000);
                let mut gap = fixed(2_000);
                g.handshake(&mut gap);
                g.t += 2_000;
                g.tcp(false, flags::PSH | flags::ACK, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
                g.t += 2_000;
                g.tcp(true, flags::PSH | flags::ACK, b"SSH-2.0-libssh_0.10.4\r\n");
                for k in 0..4 {
                    g.t += 2_000;
                    g.tcp(k % 2 == 0, flags::PSH | flags::ACK, &[0x42; 96]);
                }
                g.close(&mut gap);
                g.truth.detail = "libssh_0.10.4".into();
                flows.push(g);
            }
            (att, format!("{tgt}:22"))
        }
        Attack::CleartextCreds => {
            let (att, web, ftp) = (v4([10, 99, 0, 9]), v4([172, 16, 9, 80]), v4([172, 16, 9, 21]));
            let mut g = FlowGen::new("http", att, 46000, web, 80, 6, Encap::None, at);
            let mut gap = fixed(1_000);
            g.handshake(&mut gap);
            g.t += 1_000;
            g.tcp(true, flags::PSH | flags::ACK, b"GET /admin HTTP/1.1\r\nHost: intranet.corp.example\r\nAuthorization: Basic YWRtaW46aHVudGVyMg==\r\n\r\n");
            g.t += 1_000;
            g.tcp(false, flags::PSH | flags::ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            g.close(&mut gap);
            g.truth.detail = "Basic admin:hunter2".into();
            flows.push(g);
            let mut g = FlowGen::new("ftp", att, 46001, ftp, 21, 6, Encap::None, at + 5_000_000);
            g.handshake(&mut gap);
            for (c2s, line) in [
                (false, &b"220 FTP ready\r\n"[..]),
                (true, b"USER backup\r\n"),
                (false, b"331 Password required\r\n"),
                (true, b"PASS s3cr3t!\r\n"),
                (false, b"230 Logged in\r\n"),
                (true, b"QUIT\r\n"),
            ] {
                g.t += 1_000;
                g.tcp(c2s, flags::PSH | flags::ACK, line);
            }
            g.close(&mut gap);
            g.truth.detail = "USER backup PASS s3cr3t!".into();
            flows.push(g);
            (att, format!("{web}:80 {ftp}:21"))
        }
    };
    let scen = TruthScenario {
        name: a.name(),
        attacker,
        target,
        start_us: flows.iter().map(|f| f.truth.first_us).min().unwrap_or(at),
        end_us: flows.iter().map(|f| f.truth.last_us).max().unwrap_or(at),
        flows: flows.len() as u64,
        packets: flows.iter().map(|f| f.pkts.len() as u64).sum(),
    };
    (flows, scen)
}

/// Merges single-packet flows that drew the same 5-tuple (their packets become one flow).
fn dedup_single_packet_flows(flows: &mut Vec<FlowGen>) {
    let mut seen: std::collections::HashMap<(IpAddr, u16), usize> = std::collections::HashMap::new();
    let mut out: Vec<FlowGen> = Vec::with_capacity(flows.len());
    for g in flows.drain(..) {
        match seen.get(&(g.s.client, g.s.cport)) {
            Some(&i) => {
                let o = &mut out[i];
                o.truth.pkts[0] += g.truth.pkts[0];
                o.truth.bytes[0] += g.truth.bytes[0];
                o.truth.last_us = o.truth.last_us.max(g.truth.last_us);
                o.pkts.extend(g.pkts);
            }
            None => {
                seen.insert((g.s.client, g.s.cport), out.len());
                out.push(g);
            }
        }
    }
    *flows = out;
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_generate_is_deterministic_and_ordered() {
        let cfg = TrafficConfig { flows: 300, attacks: Attack::ALL.to_vec(), ..TrafficConfig::default() };
        let mut a = Vec::new();
        let ta = generate(&cfg, |t, f| a.push((t, f.to_vec())));
        let mut b = Vec::new();
        let tb = generate(&cfg, |t, f| b.push((t, f.to_vec())));
        assert_eq!(a, b);
        assert_eq!(ta.to_json(), tb.to_json());
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        let sum: u64 = ta.flows.iter().map(|f| f.pkts[0] + f.pkts[1]).sum();
        assert_eq!(sum, a.len() as u64);
        assert_eq!(ta.packets, a.len() as u64);
        assert_eq!(ta.scenarios.len(), 7);
        for app in ["http", "tls", "dns", "ssh", "udp", "icmp", "tcp"] {
            assert!(ta.flows.iter().any(|f| f.app == app && f.scenario.is_none()), "no {app} flow");
        }
    }

    #[test]
    fn test_parse_mixes() {
        assert_eq!(ProtoMix::parse("tls=5,dns=1").unwrap().tls, 5);
        assert!(ProtoMix::parse("quic=1").is_err());
        assert!(EncapMix::parse("none=0").is_err());
        assert_eq!(Attack::parse("syn-flood"), Some(Attack::SynFlood));
        assert_eq!(Sizes::parse("imix"), Some(Sizes::Imix));
    }
}
