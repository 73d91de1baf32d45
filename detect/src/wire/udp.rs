//! UDP header (RFC 768).

use super::{be16, view, Field};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
}

pub const HEADER_LEN: usize = 8;

view! {
    /// A read-only view of a UDP datagram.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates 8 ≤ length field ≤ buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        self.check_len_in(self.buffer.as_ref().len())
    }

    /// [`Packet::check_len`] for a buffer holding the first bytes of a datagram of `len` bytes.
    pub fn check_len_in(&self, len: usize) -> Result<(), DecodeError> {
        let buf = self.buffer.as_ref().len();
        let len = len.max(buf);
        if buf < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Udp, required: HEADER_LEN, len: buf });
        }
        let l = self.len() as usize;
        if l < HEADER_LEN {
            return Err(DecodeError::BadHeaderLen { layer: Layer::Udp, header_len: l });
        }
        if l > len {
            return Err(DecodeError::BadTotalLen { layer: Layer::Udp, total_len: l, available: len });
        }
        Ok(())
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// The length field: header plus payload.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN..(self.len() as usize).min(b.len())]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static DGRAM: [u8; 12] = [0xbf, 0x00, 0x00, 0x35, 0x00, 0x0b, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0x00];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&DGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 11);
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc]);
    }

    #[test]
    fn test_impossible_len() {
        for n in 0..11 {
            assert!(Packet::new_checked(&DGRAM[..n]).is_err());
        }
        let mut b = DGRAM;
        b[5] = 4;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            DecodeError::BadHeaderLen { layer: Layer::Udp, header_len: 4 }
        );
    }
}
