//! Zero-copy views over wire headers, one header per file (after smoltcp's `wire`).
//!
//! Each view is `Packet<T: AsRef<[u8]>>` with `new_unchecked`, `check_len` and `new_checked`.
//! Contract: once `new_checked` (or `check_len`) returned `Ok`, no getter of that view panics:
//! `check_len` validates every length and offset the getters rely on.
//!
//! Errors are small `Copy` values ([`crate::DecodeError`]) that map onto counters.

pub mod erspan;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod pppoe;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use ethernet::{EtherType, Frame as EthernetFrame};
pub use icmp::Packet as IcmpPacket;
pub use ipv4::Packet as Ipv4Packet;
pub use ipv6::{ExtHeader as Ipv6ExtHeader, Packet as Ipv6Packet};
pub use tcp::{Packet as TcpPacket, TcpFlags};
pub use udp::Packet as UdpPacket;
pub use vlan::Tag as VlanTag;

/// Declares a zero-copy view `$name<T: AsRef<[u8]>>` with `new_unchecked` and `new_checked`;
/// the view's own `impl` supplies `check_len`, which `new_checked` calls.
macro_rules! view {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a buffer without checking it: getters may panic unless `check_len` passed.
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps a buffer after `check_len`: no getter panics afterwards.
            pub fn new_checked(buffer: T) -> Result<Self, crate::DecodeError> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }
        }
    };
}
pub(crate) use view;

/// A byte range of a header field.
pub(crate) type Field = core::ops::Range<usize>;

/// IP protocol numbers (IANA), as an open newtype so odd values still flow through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    pub const HOPOPT: Self = Self(0);
    pub const ICMP: Self = Self(1);
    pub const IPIP: Self = Self(4);
    pub const TCP: Self = Self(6);
    pub const UDP: Self = Self(17);
    pub const IPV6: Self = Self(41);
    pub const IPV6_ROUTE: Self = Self(43);
    pub const IPV6_FRAG: Self = Self(44);
    pub const GRE: Self = Self(47);
    pub const ESP: Self = Self(50);
    pub const AH: Self = Self(51);
    pub const ICMPV6: Self = Self(58);
    pub const IPV6_NONXT: Self = Self(59);
    pub const IPV6_OPTS: Self = Self(60);
    pub const SCTP: Self = Self(132);

    /// The name Suricata's EVE writes in `proto`.
    pub fn eve_name(self) -> EveProto {
        EveProto(self.0)
    }
}

/// Display adapter giving Suricata's protocol names ("TCP", "UDP", "ICMP", "IPv6-ICMP", ...),
/// or the number for others, as Suricata does.
#[derive(Debug, Clone, Copy)]
pub struct EveProto(pub u8);

impl core::fmt::Display for EveProto {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            1 => f.write_str("ICMP"),
            6 => f.write_str("TCP"),
            17 => f.write_str("UDP"),
            47 => f.write_str("GRE"),
            50 => f.write_str("ESP"),
            51 => f.write_str("AH"),
            58 => f.write_str("IPv6-ICMP"),
            132 => f.write_str("SCTP"),
            n => write!(f, "{n}"),
        }
    }
}

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
