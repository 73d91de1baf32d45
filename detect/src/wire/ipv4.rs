//! IPv4 header (RFC 791), options skipped, fragment fields exposed.

use super::{be16, view, Field, IpProtocol};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

view! {
    /// A read-only view of an IPv4 packet.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates version 4, IHL ≥ 5, header ≤ total length ≤ buffer. Bytes past the total
    /// length (Ethernet padding) are allowed and ignored by [`Packet::payload`].
    pub fn check_len(&self) -> Result<(), DecodeError> {
        self.check_len_in(self.buffer.as_ref().len())
    }

    /// [`Packet::check_len`] for a buffer that holds only the first bytes of a packet of
    /// `len` bytes (the first segment of a multi-segment mbuf): the header must be in the
    /// buffer, the total length within `len`. Getters stay panic-free; the payload is clipped
    /// to the buffer.
    pub fn check_len_in(&self, len: usize) -> Result<(), DecodeError> {
        let buf = self.buffer.as_ref().len();
        let len = len.max(buf);
        if buf < MIN_HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Ipv4, required: MIN_HEADER_LEN, len: buf });
        }
        if len < MIN_HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Ipv4, required: MIN_HEADER_LEN, len });
        }
        if self.version() != 4 {
            return Err(DecodeError::BadVersion { layer: Layer::Ipv4, version: self.version() });
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(DecodeError::BadHeaderLen { layer: Layer::Ipv4, header_len: hl });
        }
        if hl > buf {
            return Err(DecodeError::Truncated { layer: Layer::Ipv4, required: hl, len: buf });
        }
        let total = self.total_len() as usize;
        if total < hl {
            return Err(DecodeError::BadTotalLen { layer: Layer::Ipv4, total_len: total, available: len });
        }
        if total > len {
            return Err(DecodeError::BadTotalLen { layer: Layer::Ipv4, total_len: total, available: len });
        }
        Ok(())
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN.start)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x4000 != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x2000 != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x1fff) << 3
    }

    /// True when this is a fragment of a larger datagram (MF set or non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x3fff != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::SRC];
        [b[0], b[1], b[2], b[3]]
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::DST];
        [b[0], b[1], b[2], b[3]]
    }

    /// Options bytes (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// The payload up to the total length (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len()..(self.total_len() as usize).min(b.len())]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // 20-byte header + 4 bytes of options (IHL 6) + 4 payload bytes + 2 bytes of padding.
    static PKT: [u8; 30] = [
        0x46, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x20, 0x01, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0, 0, 2, 0x01, 0x01,
        0x01, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PKT[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.more_frags());
        assert!(!p.dont_frag());
        assert_eq!(p.frag_offset(), 8);
        assert!(p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 0, 0, 2]);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn test_impossible_len() {
        for n in 0..PKT.len() {
            let r = Packet::new_checked(&PKT[..n]);
            if n < 28 {
                assert!(r.is_err(), "len {n} accepted");
            } else {
                assert!(r.is_ok());
            }
        }
    }

    #[test]
    fn test_bad_fields() {
        let mut b = PKT;
        b[0] = 0x66;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            DecodeError::BadVersion { layer: Layer::Ipv4, version: 6 }
        );
        b[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            DecodeError::BadHeaderLen { layer: Layer::Ipv4, header_len: 16 }
        );
        b[0] = 0x4f;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            DecodeError::Truncated { layer: Layer::Ipv4, required: 60, len: 30 }
        );
        let mut b = PKT;
        b[3] = 0x10; // total 16 < header 24
        assert!(matches!(Packet::new_checked(&b[..]), Err(DecodeError::BadTotalLen { .. })));
        b[3] = 0x40; // total 64 > buffer 30
        assert!(matches!(Packet::new_checked(&b[..]), Err(DecodeError::BadTotalLen { total_len: 64, .. })));
    }
}
