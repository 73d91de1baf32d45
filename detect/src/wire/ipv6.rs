//! IPv6 fixed header (RFC 8200) and the extension headers we walk: hop-by-hop, routing,
//! destination options, fragment and AH.

use super::{be16, be32, view, Field, IpProtocol};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

pub const HEADER_LEN: usize = 40;

view! {
    /// A read-only view of an IPv6 packet.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates version 6 and 40 + payload length ≤ buffer. A payload length of zero (a
    /// jumbogram, RFC 2675) takes the rest of the buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        self.check_len_in(self.buffer.as_ref().len())
    }

    /// [`Packet::check_len`] for a buffer holding the first bytes of a packet of `len` bytes:
    /// the fixed header must be in the buffer, the payload length within `len`.
    pub fn check_len_in(&self, len: usize) -> Result<(), DecodeError> {
        let buf = self.buffer.as_ref().len();
        let len = len.max(buf);
        if buf < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Ipv6, required: HEADER_LEN, len: buf });
        }
        if self.version() != 6 {
            return Err(DecodeError::BadVersion { layer: Layer::Ipv6, version: self.version() });
        }
        let total = HEADER_LEN + self.payload_len() as usize;
        if total > len {
            return Err(DecodeError::BadTotalLen { layer: Layer::Ipv6, total_len: total, available: len });
        }
        Ok(())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN.start)
    }

    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        a
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        a
    }

    /// Everything after the fixed header, up to the payload length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        match self.payload_len() {
            0 => &b[HEADER_LEN..],
            n => &b[HEADER_LEN..(HEADER_LEN + n as usize).min(b.len())],
        }
    }
}

/// True for the next-header values that are extension headers we walk.
#[inline]
pub fn is_extension(p: IpProtocol) -> bool {
    matches!(p.0, 0 | 43 | 44 | 51 | 60)
}

/// One extension header: its next header, its length and, for a fragment header, its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader {
    pub kind: IpProtocol,
    pub next_header: IpProtocol,
    /// Length of this header in bytes.
    pub len: usize,
    /// For a fragment header: (offset in bytes, more fragments, identification).
    pub fragment: Option<(u16, bool, u32)>,
}

impl ExtHeader {
    /// Parses the extension header of type `kind` at the start of `b`.
    pub fn parse(kind: IpProtocol, b: &[u8]) -> Result<ExtHeader, DecodeError> {
        if b.len() < 8 {
            return Err(DecodeError::Truncated { layer: Layer::Ipv6Ext, required: 8, len: b.len() });
        }
        let next_header = IpProtocol(b[0]);
        let (len, fragment) = match kind {
            IpProtocol::IPV6_FRAG => {
                let off_flags = be16(b, 2);
                (8, Some((off_flags & 0xfff8, off_flags & 1 != 0, be32(b, 4))))
            }
            IpProtocol::AH => ((b[1] as usize + 2) * 4, None),
            _ => ((b[1] as usize + 1) * 8, None),
        };
        if len > b.len() {
            return Err(DecodeError::Truncated { layer: Layer::Ipv6Ext, required: len, len: b.len() });
        }
        Ok(ExtHeader { kind, next_header, len, fragment })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn pkt(payload: &[u8], next: u8) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn test_deconstruct() {
        let b = pkt(&[1, 2, 3], 17);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 3);
        assert_eq!(p.next_header(), IpProtocol::UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr()[15], 1);
        assert_eq!(p.dst_addr()[15], 2);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn test_impossible_len() {
        let b = pkt(&[1, 2, 3], 17);
        for n in 0..b.len() {
            assert!(Packet::new_checked(&b[..n]).is_err());
        }
        let mut b = b;
        b[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            DecodeError::BadVersion { layer: Layer::Ipv6, version: 4 }
        );
    }

    #[test]
    fn test_ext_headers() {
        // hop-by-hop, 8 bytes, next = fragment
        let hbh = [44u8, 0, 1, 4, 0, 0, 0, 0];
        let h = ExtHeader::parse(IpProtocol::HOPOPT, &hbh).unwrap();
        assert_eq!((h.next_header, h.len, h.fragment), (IpProtocol::IPV6_FRAG, 8, None));
        // fragment: offset 1480, M=1, id 0xdeadbeef
        let frag = [17u8, 0, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef];
        let h = ExtHeader::parse(IpProtocol::IPV6_FRAG, &frag).unwrap();
        assert_eq!(h.fragment, Some((1480, true, 0xdeadbeef)));
        // routing header claiming 24 bytes in an 8-byte buffer
        let rt = [6u8, 2, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            ExtHeader::parse(IpProtocol::IPV6_ROUTE, &rt),
            Err(DecodeError::Truncated { required: 24, .. })
        ));
        assert!(ExtHeader::parse(IpProtocol::IPV6_OPTS, &rt[..7]).is_err());
    }
}
