//! Frame decoding: Ethernet II → up to [`MAX_VLANS`] 802.1Q/802.1ad tags → MPLS labels or a
//! PPPoE session header → IPv4 /
//! IPv6 (with its extension-header chain, at most [`MAX_IPV6_EXT`] headers) → TCP / UDP / ICMP /
//! ICMPv6; and through tunnels, at most [`MAX_TUNNELS`] deep: VXLAN (UDP 4789), GENEVE (UDP
//! 6081), GRE (with Ethernet, IP, ERSPAN type I, II and III inside), IPv4-in-IP and IPv6-in-IP.
//! The summary describes the innermost packet; [`Tunnel`] keeps the outermost IP tuple, the
//! innermost tunnel's kind and id, and the depth.
//!
//! [`decode`] never panics and never allocates: it returns a [`Decoded`] summary (addresses,
//! ports, flags, where the L4 payload is) or a small `Copy` [`DecodeError`] that the engine
//! counts by [`DecodeErrorKind`] and [`Layer`].

use crate::wire::{
    erspan, ethernet, geneve, gre, icmp, ipv4, ipv6, mpls, pppoe, tcp, udp, vlan, vxlan, EtherType, IpProtocol,
    Ipv6ExtHeader,
};

/// The most VLAN tags we decode (Suricata 7 keeps three layers too); a deeper stack is an error.
pub const MAX_VLANS: usize = 3;
/// The most IPv6 extension headers we walk before giving up on a packet.
pub const MAX_IPV6_EXT: usize = 8;
/// The most tunnel layers decapsulated (Suricata's `decoder.max-layers` is 16; real networks
/// nest two at most).
pub const MAX_TUNNELS: usize = 4;
/// The most MPLS label stack entries walked.
pub const MAX_MPLS_LABELS: usize = 8;

/// The protocol layer an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet = 0,
    Vlan,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Mpls,
    Vxlan,
    Geneve,
    Gre,
    Erspan,
    /// The tunnel nesting as a whole.
    Tunnel,
    Pppoe,
}

impl Layer {
    pub const COUNT: usize = 16;
    pub const ALL: [Layer; Self::COUNT] = [
        Layer::Ethernet,
        Layer::Vlan,
        Layer::Ipv4,
        Layer::Ipv6,
        Layer::Ipv6Ext,
        Layer::Tcp,
        Layer::Udp,
        Layer::Icmp,
        Layer::Icmpv6,
        Layer::Mpls,
        Layer::Vxlan,
        Layer::Geneve,
        Layer::Gre,
        Layer::Erspan,
        Layer::Tunnel,
        Layer::Pppoe,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6_ext",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
            Layer::Mpls => "mpls",
            Layer::Vxlan => "vxlan",
            Layer::Geneve => "geneve",
            Layer::Gre => "gre",
            Layer::Erspan => "erspan",
            Layer::Tunnel => "tunnel",
            Layer::Pppoe => "pppoe",
        }
    }
}

/// Why a frame could not be decoded. Small and `Copy`: it maps onto counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ends before the header does.
    Truncated { layer: Layer, required: usize, len: usize },
    /// The IP version nibble does not match the EtherType.
    BadVersion { layer: Layer, version: u8 },
    /// A header-length field is below the protocol's minimum.
    BadHeaderLen { layer: Layer, header_len: usize },
    /// A total-length field disagrees with the header or the buffer.
    BadTotalLen { layer: Layer, total_len: usize, available: usize },
    /// More than [`MAX_VLANS`] VLAN tags.
    TooManyVlans,
    /// More than [`MAX_IPV6_EXT`] IPv6 extension headers.
    Ipv6ExtChainTooLong,
    /// More than [`MAX_TUNNELS`] tunnel layers.
    TooManyTunnels,
    /// More than [`MAX_MPLS_LABELS`] MPLS labels.
    TooManyLabels,
}

/// The counter bucket of a [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    Truncated = 0,
    BadVersion,
    BadHeaderLen,
    BadTotalLen,
    TooManyVlans,
    Ipv6ExtChainTooLong,
    TooManyTunnels,
    TooManyLabels,
}

impl DecodeErrorKind {
    pub const COUNT: usize = 8;
    pub const ALL: [DecodeErrorKind; Self::COUNT] = [
        DecodeErrorKind::Truncated,
        DecodeErrorKind::BadVersion,
        DecodeErrorKind::BadHeaderLen,
        DecodeErrorKind::BadTotalLen,
        DecodeErrorKind::TooManyVlans,
        DecodeErrorKind::Ipv6ExtChainTooLong,
        DecodeErrorKind::TooManyTunnels,
        DecodeErrorKind::TooManyLabels,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DecodeErrorKind::Truncated => "truncated",
            DecodeErrorKind::BadVersion => "bad_version",
            DecodeErrorKind::BadHeaderLen => "bad_header_len",
            DecodeErrorKind::BadTotalLen => "bad_total_len",
            DecodeErrorKind::TooManyVlans => "too_many_vlans",
            DecodeErrorKind::Ipv6ExtChainTooLong => "ipv6_ext_chain_too_long",
            DecodeErrorKind::TooManyTunnels => "too_many_tunnels",
            DecodeErrorKind::TooManyLabels => "too_many_labels",
        }
    }
}

impl DecodeError {
    pub fn kind(&self) -> DecodeErrorKind {
        match self {
            DecodeError::Truncated { .. } => DecodeErrorKind::Truncated,
            DecodeError::BadVersion { .. } => DecodeErrorKind::BadVersion,
            DecodeError::BadHeaderLen { .. } => DecodeErrorKind::BadHeaderLen,
            DecodeError::BadTotalLen { .. } => DecodeErrorKind::BadTotalLen,
            DecodeError::TooManyVlans => DecodeErrorKind::TooManyVlans,
            DecodeError::Ipv6ExtChainTooLong => DecodeErrorKind::Ipv6ExtChainTooLong,
            DecodeError::TooManyTunnels => DecodeErrorKind::TooManyTunnels,
            DecodeError::TooManyLabels => DecodeErrorKind::TooManyLabels,
        }
    }

    pub fn layer(&self) -> Layer {
        match *self {
            DecodeError::Truncated { layer, .. }
            | DecodeError::BadVersion { layer, .. }
            | DecodeError::BadHeaderLen { layer, .. }
            | DecodeError::BadTotalLen { layer, .. } => layer,
            DecodeError::TooManyVlans => Layer::Vlan,
            DecodeError::Ipv6ExtChainTooLong => Layer::Ipv6Ext,
            DecodeError::TooManyTunnels => Layer::Tunnel,
            DecodeError::TooManyLabels => Layer::Mpls,
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated { layer, required, len } => {
                write!(f, "{}: truncated, {required} bytes needed, {len} present", layer.name())
            }
            DecodeError::BadVersion { layer, version } => {
                write!(f, "{}: bad version {version}", layer.name())
            }
            DecodeError::BadHeaderLen { layer, header_len } => {
                write!(f, "{}: bad header length {header_len}", layer.name())
            }
            DecodeError::BadTotalLen { layer, total_len, available } => {
                write!(f, "{}: total length {total_len} but {available} bytes", layer.name())
            }
            DecodeError::TooManyVlans => write!(f, "vlan: more than {MAX_VLANS} tags"),
            DecodeError::Ipv6ExtChainTooLong => {
                write!(f, "ipv6: more than {MAX_IPV6_EXT} extension headers")
            }
            DecodeError::TooManyTunnels => write!(f, "tunnel: more than {MAX_TUNNELS} layers"),
            DecodeError::TooManyLabels => write!(f, "mpls: more than {MAX_MPLS_LABELS} labels"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What a decoded frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// Not IP (ARP, LLDP...): counted, not tracked.
    #[default]
    NonIp,
    /// An IP packet with its L4 header decoded (or an IP protocol we do not decode further).
    Ip,
    /// An IPv4 or IPv6 fragment. Counted, not tracked until defragmentation lands.
    Fragment,
}

/// The kind of tunnel a packet came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum TunnelKind {
    #[default]
    None = 0,
    Vxlan,
    Geneve,
    Gre,
    /// ERSPAN type I or II (GRE protocol 0x88BE).
    Erspan2,
    /// ERSPAN type III (GRE protocol 0x22EB).
    Erspan3,
    /// IPv4 in IP (protocol 4).
    Ipip,
    /// IPv6 in IP (protocol 41).
    Ip6ip,
}

impl TunnelKind {
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::None => "none",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan2 => "erspan2",
            TunnelKind::Erspan3 => "erspan3",
            TunnelKind::Ipip => "ipip",
            TunnelKind::Ip6ip => "ip6ip",
        }
    }

    /// Whether the id names a network the inner addresses belong to (a VXLAN or GENEVE VNI), so
    /// inner flows are keyed by it. GRE keys may differ per direction (and name a flow within
    /// the tunnel, RFC 2890), ERSPAN session ids name a mirror session (the two directions of a
    /// flow can be mirrored in two): their inner flows are not keyed apart, as in Suricata.
    pub fn keys_flows(self) -> bool {
        matches!(self, TunnelKind::Vxlan | TunnelKind::Geneve)
    }
}

/// How a packet was tunnelled (`kind` None: it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tunnel {
    /// The innermost tunnel.
    pub kind: TunnelKind,
    /// Its id: VNI, GRE key, ERSPAN session id; 0 when it has none.
    pub id: u32,
    /// Tunnel layers decapsulated.
    pub depth: u8,
    /// The outermost IP header's tuple (the one on the wire).
    pub outer_version: u8,
    pub outer_proto: u8,
    pub outer_src: u128,
    pub outer_dst: u128,
    pub outer_sport: u16,
    pub outer_dport: u16,
    /// VLAN tags before the outermost IP header. An inner packet's [`Decoded::vlan`] holds only
    /// the tags inside the tunnel (an inner Ethernet frame's): the outer tags belong to the
    /// underlay, and Suricata keys inner flows without them too.
    pub outer_vlan: [u16; MAX_VLANS],
    pub outer_vlan_count: u8,
    /// Length of the outermost UDP payload when the outermost tunnel runs over UDP (VXLAN,
    /// GENEVE): that UDP flow is tracked too, as Suricata does. 0 otherwise.
    pub outer_udp_payload: u16,
    /// Where that UDP payload starts in the frame.
    pub outer_udp_offset: u16,
    /// The innermost IP packet's length: what an inner flow counts as bytes (as Suricata), plus
    /// `inner_link`.
    pub inner_len: u32,
    /// Bytes of link header Suricata counts with the inner packet (PPTP's PPP header).
    pub inner_link: u8,
}

impl Tunnel {
    /// The outermost UDP packet of a VXLAN or GENEVE frame, as a plain UDP packet.
    pub fn outer_udp(&self) -> Decoded {
        Decoded {
            kind: Kind::Ip,
            ip_version: self.outer_version,
            src: self.outer_src,
            dst: self.outer_dst,
            proto: 17,
            src_port: self.outer_sport,
            dst_port: self.outer_dport,
            vlan: self.outer_vlan,
            vlan_count: self.outer_vlan_count,
            payload_len: self.outer_udp_payload,
            ..Decoded::default()
        }
    }
}

/// Where a fragment's pieces are (`Kind::Fragment` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frag {
    /// IPv4 identification or IPv6 fragment-header identification.
    pub id: u32,
    /// Fragment offset in bytes, and whether more fragments follow.
    pub offset: u16,
    pub more: bool,
    /// The IP header: where it starts in the frame and its length (IPv6: the fixed 40 bytes;
    /// extension headers before the fragment header are not kept in the reassembled packet).
    pub ip_start: u16,
    pub ip_hdr_len: u16,
    /// The fragment's data: where it starts in the frame and its length.
    pub data_start: u16,
    pub data_len: u16,
}

/// The packet an ICMP error quotes (RFC 792, RFC 4443 §3): its addresses, protocol and ports,
/// so the error can be accounted to that packet's flow, as Suricata does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quoted {
    pub valid: bool,
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

impl Quoted {
    /// Reads the quoted header after an ICMP error's 8-byte header; `version` is the outer IP
    /// version (an ICMPv4 error quotes IPv4, an ICMPv6 error IPv6).
    fn parse(version: u8, b: &[u8]) -> Quoted {
        let ports = |l4: &[u8], proto: u8| -> (u16, u16) {
            if matches!(proto, 6 | 17 | 132) && l4.len() >= 4 {
                (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
            } else {
                (0, 0)
            }
        };
        match (version, b.first().map(|x| x >> 4)) {
            (4, Some(4)) => {
                let hl = (b[0] & 0xf) as usize * 4;
                if hl < 20 || b.len() < hl {
                    return Quoted::default();
                }
                let mut a = [0u8; 4];
                a.copy_from_slice(&b[12..16]);
                let mut z = [0u8; 4];
                z.copy_from_slice(&b[16..20]);
                let (sp, dp) = ports(&b[hl..], b[9]);
                Quoted { valid: true, src: v4_addr(a), dst: v4_addr(z), proto: b[9], src_port: sp, dst_port: dp }
            }
            (6, Some(6)) if b.len() >= ipv6::HEADER_LEN => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[8..24]);
                let mut z = [0u8; 16];
                z.copy_from_slice(&b[24..40]);
                let (sp, dp) = ports(&b[40..], b[6]);
                Quoted {
                    valid: true,
                    src: u128::from_ne_bytes(a),
                    dst: u128::from_ne_bytes(z),
                    proto: b[6],
                    src_port: sp,
                    dst_port: dp,
                }
            }
            _ => Quoted::default(),
        }
    }
}

/// The summary of one decoded frame: everything the flow table needs, as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    pub kind: Kind,
    /// VLAN ids, outermost first; `vlan_count` of them are valid.
    pub vlan: [u16; MAX_VLANS],
    pub vlan_count: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address as `u128::from_ne_bytes` of its 16 bytes; an IPv4 address sits in the
    /// first 4 bytes, the rest zero ([`Decoded::src_bytes`] gives the bytes back). A `u128`
    /// rather than an array so the flow key reads it with the store's own width.
    pub src: u128,
    pub dst: u128,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    pub tcp_window: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// ICMP echo request/reply (and ICMPv6 echo): the identifier; else 0.
    pub icmp_id: u16,
    /// IPv4 TTL or IPv6 hop limit (of the innermost IP header).
    pub ttl: u8,
    /// Offset of the L4 header in the frame.
    pub l4_offset: u16,
    /// Offset and length of the L4 payload in the frame.
    pub payload_offset: u16,
    pub payload_len: u16,
    /// Tunnel layers above the packet.
    pub tunnel: Tunnel,
    /// MPLS labels walked (not part of the flow key: labels differ per hop and direction).
    pub mpls_labels: u8,
    pub frag: Frag,
    /// For an ICMP error: the packet it quotes.
    pub quoted: Quoted,
}

#[inline]
fn v4_addr(a: [u8; 4]) -> u128 {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&a);
    u128::from_ne_bytes(b)
}

impl Decoded {
    pub fn src_bytes(&self) -> [u8; 16] {
        self.src.to_ne_bytes()
    }

    pub fn dst_bytes(&self) -> [u8; 16] {
        self.dst.to_ne_bytes()
    }

    /// Sets IPv4 addresses (for tests and tools).
    pub fn set_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.ip_version = 4;
        self.src = v4_addr(src);
        self.dst = v4_addr(dst);
    }

    #[inline]
    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..self.vlan_count as usize]
    }
}

#[inline]
fn offset_of(frame: &[u8], inner: &[u8]) -> usize {
    // `inner` is always a sub-slice of `frame`.
    inner.as_ptr() as usize - frame.as_ptr() as usize
}

/// Decodes an Ethernet II frame.
pub fn decode(frame: &[u8]) -> Result<Decoded, DecodeError> {
    decode_partial(frame, frame.len())
}

/// Decodes a frame of `frame_len` bytes of which `frame` holds the first ones (the first
/// segment of a multi-segment mbuf). Every header must be in `frame`; lengths are checked
/// against `frame_len`. `payload_len` is then the payload's whole length, which may run past
/// `frame`. With `frame_len == frame.len()` this is [`decode`].
pub fn decode_partial(frame: &[u8], frame_len: usize) -> Result<Decoded, DecodeError> {
    let mut d = Decoded::default();
    decode_into(frame, frame_len, &mut d).map(|()| d)
}

/// Where decoding resumes after a tunnel header.
#[derive(Clone, Copy)]
enum Start<'a> {
    Ether(&'a [u8]),
    Ip(EtherType, &'a [u8]),
}

/// What one IP layer turned out to be.
enum Step<'a> {
    Done,
    Tunnel(TunnelKind, u32, Start<'a>),
    /// PPTP: the PPP header before the inner IP packet counts in the inner flow's bytes, as
    /// Suricata counts it.
    Ppp(u32, Start<'a>, u8),
}

/// [`decode_partial`] into a caller's [`Decoded`] (reset first): the engine decodes straight
/// into its burst slots, with no copy of the result.
#[inline(always)]
pub fn decode_into(frame: &[u8], frame_len: usize, d: &mut Decoded) -> Result<(), DecodeError> {
    *d = Decoded::default();
    let missing = frame_len.saturating_sub(frame.len());
    decode_from(frame, Start::Ether(frame), missing, d)
}

/// Decodes a bare IP packet (a reassembled datagram) into `d`, keeping its VLAN tags and
/// tunnel (those of the fragments).
pub fn decode_ip_into(packet: &[u8], d: &mut Decoded) -> Result<(), DecodeError> {
    let et = match packet.first().map(|b| b >> 4) {
        Some(4) => EtherType::IPV4,
        Some(6) => EtherType::IPV6,
        Some(v) => return Err(DecodeError::BadVersion { layer: Layer::Ipv4, version: v }),
        None => return Err(DecodeError::Truncated { layer: Layer::Ipv4, required: 20, len: 0 }),
    };
    let (vlan, vlan_count, tunnel, labels) = (d.vlan, d.vlan_count, d.tunnel, d.mpls_labels);
    *d = Decoded { vlan, vlan_count, tunnel, mpls_labels: labels, ..Decoded::default() };
    decode_from(packet, Start::Ip(et, packet), 0, d)
}

#[inline(always)]
fn decode_from<'a>(frame: &'a [u8], mut start: Start<'a>, missing: usize, d: &mut Decoded) -> Result<(), DecodeError> {
    // Where an inner Ethernet frame starts that Suricata counts in the inner packet's length
    // (GENEVE, GRE bridging, ERSPAN; its VXLAN decoder skips the inner Ethernet header).
    let mut counted_ether: Option<usize> = None;
    loop {
        let (ethertype, rest) = match start {
            Start::Ether(b) => match l2(b, d)? {
                Some(x) => x,
                None => return Ok(()),
            },
            Start::Ip(et, b) => (et, b),
        };
        if let Some(es) = counted_ether.take() {
            d.tunnel.inner_link = (offset_of(frame, rest) - es).min(u8::MAX as usize) as u8;
        }
        let (kind, id, next, link) = match l3(frame, ethertype, rest, missing, d)? {
            Step::Done => return Ok(()),
            Step::Tunnel(k, i, n) => (k, i, n, 0),
            Step::Ppp(i, n, l) => (TunnelKind::Gre, i, n, l),
        };
        let t = &mut d.tunnel;
        if t.depth as usize == MAX_TUNNELS {
            return Err(DecodeError::TooManyTunnels);
        }
        if t.depth == 0 {
            t.outer_version = d.ip_version;
            t.outer_proto = d.proto;
            t.outer_src = d.src;
            t.outer_dst = d.dst;
            t.outer_sport = d.src_port;
            t.outer_dport = d.dst_port;
            t.outer_vlan = d.vlan;
            t.outer_vlan_count = d.vlan_count;
            if matches!(kind, TunnelKind::Vxlan | TunnelKind::Geneve) {
                t.outer_udp_payload = d.payload_len;
                t.outer_udp_offset = d.payload_offset;
            }
        }
        t.depth += 1;
        t.kind = kind;
        t.id = id;
        if let Start::Ether(b) = next {
            if kind != TunnelKind::Vxlan {
                counted_ether = Some(offset_of(frame, b));
            }
        }
        // The inner packet starts afresh, keeping the tunnel.
        t.inner_link = link;
        let (tunnel, labels) = (d.tunnel, d.mpls_labels);
        *d = Decoded { tunnel, mpls_labels: labels, ..Decoded::default() };
        start = next;
    }
}

/// An Ethernet header, its VLAN tags and MPLS labels: the EtherType of what follows and where
/// it starts, or `None` for a protocol we do not decode (ARP, LLDP...).
#[inline(always)]
fn l2<'a>(b: &'a [u8], d: &mut Decoded) -> Result<Option<(EtherType, &'a [u8])>, DecodeError> {
    // Views borrow themselves; slices are cut from `b` so they keep its lifetime.
    let mut ethertype = ethernet::Frame::new_checked(b)?.ethertype();
    let mut rest = &b[ethernet::HEADER_LEN..];
    let mut pseudowires = 0;
    loop {
        while ethertype.is_vlan() {
            if d.vlan_count as usize == MAX_VLANS {
                return Err(DecodeError::TooManyVlans);
            }
            let tag = vlan::Tag::new_checked(rest)?;
            d.vlan[d.vlan_count as usize] = tag.vlan_id();
            d.vlan_count += 1;
            ethertype = tag.ethertype();
            rest = &rest[vlan::HEADER_LEN..];
        }
        if ethertype == EtherType::PPPOE_SESSION {
            let p = pppoe::Packet::new_checked(rest)?;
            let inner = &rest[pppoe::HEADER_LEN..];
            return Ok(match p.ppp_protocol() {
                pppoe::PPP_IPV4 => Some((EtherType::IPV4, inner)),
                pppoe::PPP_IPV6 => Some((EtherType::IPV6, inner)),
                _ => None,
            });
        }
        if ethertype != EtherType::MPLS && ethertype != EtherType::MPLS_MC {
            return Ok(matches!(ethertype, EtherType::IPV4 | EtherType::IPV6).then_some((ethertype, rest)));
        }
        loop {
            if d.mpls_labels as usize == MAX_MPLS_LABELS {
                return Err(DecodeError::TooManyLabels);
            }
            let bottom = mpls::Entry::new_checked(rest)?.bottom();
            d.mpls_labels += 1;
            rest = &rest[mpls::ENTRY_LEN..];
            if bottom {
                break;
            }
        }
        // After the stack: IP by its version nibble, or a pseudowire control word (first
        // nibble 0) and an Ethernet frame, as Suricata guesses.
        match rest.first().map(|b| b >> 4) {
            Some(4) => return Ok(Some((EtherType::IPV4, rest))),
            Some(6) => return Ok(Some((EtherType::IPV6, rest))),
            Some(0) if pseudowires == 0 => {
                pseudowires += 1;
                mpls::Entry::new_checked(rest)?;
                let inner = &rest[mpls::ENTRY_LEN..];
                ethertype = ethernet::Frame::new_checked(inner)?.ethertype();
                rest = &inner[ethernet::HEADER_LEN..];
            }
            Some(_) => return Ok(None),
            None => return Err(DecodeError::Truncated { layer: Layer::Mpls, required: 1, len: 0 }),
        }
    }
}

/// One IP packet and its L4 header; a tunnel's inner start when it is one.
#[inline(always)]
fn l3<'a>(
    frame: &'a [u8],
    ethertype: EtherType,
    rest: &'a [u8],
    missing: usize,
    d: &mut Decoded,
) -> Result<Step<'a>, DecodeError> {
    // `l4` is what the buffer holds of the L4 part, `l4_len` its whole length.
    let (proto, l4, l4_len) = match ethertype {
        EtherType::IPV4 => {
            let ip = ipv4::Packet::new_unchecked(rest);
            ip.check_len_in(rest.len() + missing)?;
            d.ip_version = 4;
            d.ttl = ip.ttl();
            d.src = v4_addr(ip.src_addr());
            d.dst = v4_addr(ip.dst_addr());
            d.proto = ip.protocol().0;
            d.tunnel.inner_len = ip.total_len() as u32;
            let hl = ip.header_len();
            let total = ip.total_len() as usize;
            if ip.is_fragment() {
                d.kind = Kind::Fragment;
                let ip_start = offset_of(frame, rest);
                d.frag = Frag {
                    id: ip.ident() as u32,
                    offset: ip.frag_offset(),
                    more: ip.more_frags(),
                    ip_start: ip_start as u16,
                    ip_hdr_len: hl as u16,
                    data_start: (ip_start + hl) as u16,
                    data_len: (total - hl) as u16,
                };
                return Ok(Step::Done);
            }
            (ip.protocol(), &rest[hl..total.min(rest.len())], total - hl)
        }
        EtherType::IPV6 => {
            let ip = ipv6::Packet::new_unchecked(rest);
            ip.check_len_in(rest.len() + missing)?;
            d.ip_version = 6;
            d.ttl = ip.hop_limit();
            d.src = u128::from_ne_bytes(ip.src_addr());
            d.dst = u128::from_ne_bytes(ip.dst_addr());
            let mut next = ip.next_header();
            let mut l4_len = match ip.payload_len() {
                0 => rest.len() + missing - ipv6::HEADER_LEN,
                n => n as usize,
            };
            d.tunnel.inner_len = (ipv6::HEADER_LEN + l4_len) as u32;
            let mut l4 = &rest[ipv6::HEADER_LEN..(ipv6::HEADER_LEN + l4_len).min(rest.len())];
            let mut n = 0;
            while ipv6::is_extension(next) {
                if n == MAX_IPV6_EXT {
                    return Err(DecodeError::Ipv6ExtChainTooLong);
                }
                let h = Ipv6ExtHeader::parse(next, l4)?;
                n += 1;
                l4 = &l4[h.len..];
                l4_len -= h.len;
                next = h.next_header;
                if let Some((off, more, id)) = h.fragment {
                    if off != 0 || more {
                        d.proto = next.0;
                        d.kind = Kind::Fragment;
                        let ip_start = offset_of(frame, rest);
                        d.frag = Frag {
                            id,
                            offset: off,
                            more,
                            ip_start: ip_start as u16,
                            ip_hdr_len: ipv6::HEADER_LEN as u16,
                            data_start: offset_of(frame, l4) as u16,
                            data_len: l4_len as u16,
                        };
                        return Ok(Step::Done);
                    }
                }
            }
            d.proto = next.0;
            (next, l4, l4_len)
        }
        _ => return Ok(Step::Done),
    };
    d.kind = Kind::Ip;
    d.l4_offset = offset_of(frame, l4) as u16;
    let (hdr, payload_len) = match proto {
        IpProtocol::TCP => {
            let t = tcp::Packet::new_checked(l4)?;
            d.src_port = t.src_port();
            d.dst_port = t.dst_port();
            d.tcp_flags = t.flags().0;
            d.tcp_seq = t.seq_number();
            d.tcp_ack = t.ack_number();
            d.tcp_window = t.window_len();
            (t.header_len(), l4_len - t.header_len())
        }
        IpProtocol::UDP => {
            let u = udp::Packet::new_unchecked(l4);
            u.check_len_in(l4_len)?;
            d.src_port = u.src_port();
            d.dst_port = u.dst_port();
            (udp::HEADER_LEN, u.len() as usize - udp::HEADER_LEN)
        }
        IpProtocol::ICMP | IpProtocol::ICMPV6 => {
            let layer = if proto == IpProtocol::ICMP { Layer::Icmp } else { Layer::Icmpv6 };
            let i = icmp::Packet::new_checked(l4, layer)?;
            d.icmp_type = i.msg_type();
            d.icmp_code = i.msg_code();
            let echo =
                if proto == IpProtocol::ICMP { matches!(d.icmp_type, 0 | 8) } else { matches!(d.icmp_type, 128 | 129) };
            if echo && l4.len() >= 8 {
                d.icmp_id = i.echo_ident();
            }
            let error = if proto == IpProtocol::ICMP {
                matches!(d.icmp_type, 3 | 4 | 5 | 11 | 12)
            } else {
                matches!(d.icmp_type, 1..=4)
            };
            if error {
                d.quoted = Quoted::parse(d.ip_version, &l4[icmp::HEADER_LEN..]);
            }
            (icmp::HEADER_LEN, l4_len - icmp::HEADER_LEN)
        }
        // SCTP's common header (RFC 9260): the ports, then a verification tag and checksum.
        IpProtocol::SCTP if l4.len() >= 12 => {
            d.src_port = u16::from_be_bytes([l4[0], l4[1]]);
            d.dst_port = u16::from_be_bytes([l4[2], l4[3]]);
            (12, l4_len - 12)
        }
        IpProtocol::IPIP => return Ok(Step::Tunnel(TunnelKind::Ipip, 0, Start::Ip(EtherType::IPV4, l4))),
        IpProtocol::IPV6 => return Ok(Step::Tunnel(TunnelKind::Ip6ip, 0, Start::Ip(EtherType::IPV6, l4))),
        IpProtocol::GRE => {
            if let Some(step) = gre_inner(l4)? {
                return Ok(step);
            }
            (0, l4_len)
        }
        _ => (0, l4_len),
    };
    d.payload_offset = (d.l4_offset as usize + hdr) as u16;
    d.payload_len = payload_len.min(u16::MAX as usize) as u16;
    if proto == IpProtocol::UDP {
        let payload = &l4[hdr.min(l4.len())..(hdr + payload_len).min(l4.len())];
        if d.dst_port == vxlan::PORT && payload.first().is_some_and(|f| f & vxlan::FLAG_I != 0) {
            let vni = vxlan::Packet::new_checked(payload)?.vni();
            return Ok(Step::Tunnel(TunnelKind::Vxlan, vni, Start::Ether(&payload[vxlan::HEADER_LEN..])));
        }
        if d.dst_port == geneve::PORT {
            let g = geneve::Packet::new_checked(payload)?;
            let inner = &payload[g.header_len()..];
            return Ok(match g.protocol() {
                gre::PROTO_TEB => Step::Tunnel(TunnelKind::Geneve, g.vni(), Start::Ether(inner)),
                et @ (EtherType::IPV4 | EtherType::IPV6) => {
                    Step::Tunnel(TunnelKind::Geneve, g.vni(), Start::Ip(et, inner))
                }
                _ => Step::Done,
            });
        }
    }
    Ok(Step::Done)
}

/// What a GRE packet carries, when we decode it: `None` for a plain GRE flow (version 1, other
/// protocols).
#[inline]
fn gre_inner(l4: &[u8]) -> Result<Option<Step<'_>>, DecodeError> {
    let g = gre::Packet::new_checked(l4)?;
    let key = g.key().unwrap_or(0);
    let inner = &l4[g.header_len()..];
    if g.version() == 1 {
        // PPTP: PPP, its address and control bytes optional, its protocol 1 or 2 bytes.
        if g.protocol() != gre::PROTO_PPP {
            return Ok(None);
        }
        let ppp = inner.strip_prefix(&[0xff, 0x03][..]).unwrap_or(inner);
        let (proto, hl) = match ppp {
            [p, ..] if p & 1 == 1 => (*p as u16, 1),
            [a, b, ..] => (u16::from_be_bytes([*a, *b]), 2),
            _ => return Ok(None),
        };
        let call_id = key & 0xffff;
        return Ok(match proto {
            pppoe::PPP_IPV4 => {
                Some(Step::Ppp(call_id, Start::Ip(EtherType::IPV4, &ppp[hl..]), (inner.len() - ppp.len() + hl) as u8))
            }
            pppoe::PPP_IPV6 => {
                Some(Step::Ppp(call_id, Start::Ip(EtherType::IPV6, &ppp[hl..]), (inner.len() - ppp.len() + hl) as u8))
            }
            _ => None,
        });
    }
    if g.version() != 0 {
        return Ok(None);
    }
    Ok(Some(match g.protocol() {
        et @ (EtherType::IPV4 | EtherType::IPV6) => Step::Tunnel(TunnelKind::Gre, key, Start::Ip(et, inner)),
        gre::PROTO_TEB => Step::Tunnel(TunnelKind::Gre, key, Start::Ether(inner)),
        gre::PROTO_ERSPAN_II if !g.has_seq() => {
            // Type I: no ERSPAN header.
            Step::Tunnel(TunnelKind::Erspan2, 0, Start::Ether(inner))
        }
        gre::PROTO_ERSPAN_II => {
            let session = erspan::Packet::new_checked(inner)?.session_id() as u32;
            Step::Tunnel(TunnelKind::Erspan2, session, Start::Ether(&inner[erspan::TYPE2_LEN..]))
        }
        gre::PROTO_ERSPAN_III => {
            let e = erspan::Packet::new_unchecked(inner);
            e.check_type3()?;
            let (session, hl) = (e.session_id() as u32, e.type3_header_len());
            Step::Tunnel(TunnelKind::Erspan3, session, Start::Ether(&inner[hl..]))
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod test {
    use super::*;

    fn eth(ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut v = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        v[2..4].copy_from_slice(&total.to_be_bytes());
        v.extend_from_slice(l4);
        v
    }

    fn tcp(flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn test_parse_ipv4_tcp() {
        let f = eth(0x0800, &ipv4(6, &tcp(0x18, b"GET")));
        let d = decode(&f).unwrap();
        assert_eq!(d.kind, Kind::Ip);
        assert_eq!(d.ip_version, 4);
        assert_eq!(&d.src_bytes()[..4], &[10, 0, 0, 1]);
        assert_eq!((d.proto, d.src_port, d.dst_port, d.tcp_flags), (6, 40000, 80, 0x18));
        assert_eq!((d.l4_offset, d.payload_offset, d.payload_len), (34, 54, 3));
    }

    #[test]
    fn test_parse_qinq_udp_with_padding() {
        let udp = [0x30, 0x39, 0, 53, 0, 10, 0, 0, 1, 2];
        let mut inner = vec![0x01, 0x2c, 0x08, 0x00]; // vlan 300, IPv4
        inner.extend_from_slice(&ipv4(17, &udp));
        inner.extend_from_slice(&[0; 6]); // Ethernet padding
        let mut outer = vec![0x00, 0xc8, 0x81, 0x00]; // vlan 200, then 802.1Q
        outer.extend_from_slice(&inner);
        let f = eth(0x88a8, &outer);
        let d = decode(&f).unwrap();
        assert_eq!(d.vlans(), &[200, 300]);
        assert_eq!((d.proto, d.src_port, d.dst_port, d.payload_len), (17, 12345, 53, 2));
    }

    #[test]
    fn test_too_many_vlans() {
        let mut body = Vec::new();
        for _ in 0..4 {
            body.extend_from_slice(&[0, 1, 0x81, 0x00]);
        }
        body.extend_from_slice(&[0; 20]);
        assert_eq!(decode(&eth(0x8100, &body)).unwrap_err(), DecodeError::TooManyVlans);
    }

    #[test]
    fn test_ipv6_ext_chain() {
        // hop-by-hop → destination options → UDP
        let mut l4 = vec![60, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0];
        l4.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        let mut ip = vec![0x60, 0, 0, 0, 0, l4.len() as u8, 0, 64];
        ip.extend_from_slice(&[0xfe; 32]);
        ip.extend_from_slice(&l4);
        let d = decode(&eth(0x86dd, &ip)).unwrap();
        assert_eq!((d.kind, d.proto, d.src_port, d.dst_port), (Kind::Ip, 17, 1, 2));
        // a chain of 9 destination-options headers
        let mut l4 = Vec::new();
        for _ in 0..9 {
            l4.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        let mut ip = vec![0x60, 0, 0, 0, 0, l4.len() as u8, 60, 64];
        ip.extend_from_slice(&[0xfe; 32]);
        ip.extend_from_slice(&l4);
        assert_eq!(decode(&eth(0x86dd, &ip)).unwrap_err(), DecodeError::Ipv6ExtChainTooLong);
    }

    #[test]
    fn test_fragment_and_non_ip() {
        let mut ip = ipv4(17, &[0; 16]);
        ip[6] = 0x20; // MF
        assert_eq!(decode(&eth(0x0800, &ip)).unwrap().kind, Kind::Fragment);
        assert_eq!(decode(&eth(0x0806, &[0; 28])).unwrap().kind, Kind::NonIp);
    }

    #[test]
    fn test_every_truncation_is_an_error() {
        let f = eth(0x0800, &ipv4(6, &tcp(0x02, b"")));
        for n in 0..f.len() {
            assert!(decode(&f[..n]).is_err(), "truncated to {n} decoded");
        }
        // bad TCP data offset
        let mut f2 = f.clone();
        f2[14 + 20 + 12] = 0x10;
        assert_eq!(decode(&f2).unwrap_err().kind(), DecodeErrorKind::BadHeaderLen);
    }

    #[test]
    fn test_never_panics_on_noise() {
        // A deterministic xorshift stream of frames with plausible headers and random tails.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let templates = [
            eth(0x0800, &ipv4(6, &tcp(0x12, b"abc"))),
            eth(0x86dd, &[0x60, 0, 0, 0, 0, 8, 17, 1]),
            eth(0x8100, &[0, 5, 0x86, 0xdd]),
        ];
        for i in 0..20_000 {
            let mut f = templates[i % 3].clone();
            f.resize(14 + (next() % 120) as usize, 0);
            let flips = next() % 6;
            for _ in 0..flips {
                let r = next() as usize;
                let at = r % f.len();
                f[at] = (r >> 16) as u8;
            }
            let _ = decode(&f);
            let cut = (next() as usize) % (f.len() + 1);
            let _ = decode_partial(&f[..cut], f.len() + (next() % 3000) as usize);
        }
    }

    #[test]
    fn test_partial_first_segment() {
        // A 1514-byte TCP frame of which only the first 100 bytes are in the buffer.
        let f = eth(0x0800, &ipv4(6, &tcp(0x18, &[0x55; 1460])));
        assert_eq!(f.len(), 1514);
        assert!(decode(&f[..100]).is_err(), "strict decode refuses a cut frame");
        let d = decode_partial(&f[..100], 1514).unwrap();
        assert_eq!((d.kind, d.src_port, d.dst_port, d.payload_offset, d.payload_len), (Kind::Ip, 40000, 80, 54, 1460));
        assert_eq!(decode_partial(&f, f.len()).unwrap(), decode(&f).unwrap());
        // Headers must still be in the buffer, and lengths within the frame.
        assert!(decode_partial(&f[..40], 1514).is_err());
        assert!(matches!(decode_partial(&f[..100], 1000), Err(DecodeError::BadTotalLen { .. })));
    }
}
