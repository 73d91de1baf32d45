//! TCP header (RFC 9293); options are skipped, not parsed.

use super::{be16, be32, view, Field};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
}

pub const MIN_HEADER_LEN: usize = 20;

/// The TCP flag bits of byte 13 (CWR..FIN), as Suricata prints them in `tcp_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    #[inline]
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

view! {
    /// A read-only view of a TCP segment.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates 20 ≤ data offset × 4 ≤ buffer.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Tcp, required: MIN_HEADER_LEN, len });
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(DecodeError::BadHeaderLen { layer: Layer::Tcp, header_len: hl });
        }
        if hl > len {
            return Err(DecodeError::Truncated { layer: Layer::Tcp, required: hl, len });
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

    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ.start)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK.start)
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize) * 4
    }

    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW.start)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static SEG: [u8; 26] = [
        0xbf, 0x00, 0x00, 0x50, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x60, 0x12, 0x01, 0x23, 0x00, 0x00,
        0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0xaa, 0xbb,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&SEG[..]).unwrap();
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x01234567);
        assert_eq!(p.ack_number(), 0x89abcdef);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
        assert_eq!(p.window_len(), 0x0123);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn test_impossible_len() {
        for n in 0..24 {
            assert!(matches!(Packet::new_checked(&SEG[..n]), Err(DecodeError::Truncated { layer: Layer::Tcp, .. })));
        }
        let mut b = SEG;
        b[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            DecodeError::BadHeaderLen { layer: Layer::Tcp, header_len: 16 }
        );
    }
}
