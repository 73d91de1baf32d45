//! Ethernet II frame header (IEEE 802.3 with an EtherType).

use super::{be16, view, Field};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// EtherType, open: unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: Self = Self(0x0800);
    pub const ARP: Self = Self(0x0806);
    pub const VLAN: Self = Self(0x8100);
    pub const IPV6: Self = Self(0x86dd);
    pub const QINQ: Self = Self(0x88a8);
    pub const MPLS: Self = Self(0x8847);
    pub const PPPOE_SESSION: Self = Self(0x8864);
    pub const MPLS_MC: Self = Self(0x8848);
    /// Pre-standard QinQ outer tag some switches still send.
    pub const QINQ_9100: Self = Self(0x9100);

    /// True for the tag protocol identifiers that announce an 802.1Q/802.1ad tag.
    #[inline]
    pub fn is_vlan(self) -> bool {
        matches!(self.0, 0x8100 | 0x88a8 | 0x9100)
    }
}

view! {
    /// A read-only view of an Ethernet II frame.
    Frame
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Ensures the buffer holds a whole header.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Ethernet, required: HEADER_LEN, len });
        }
        Ok(())
    }

    #[inline]
    pub fn dst_addr(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::DST].try_into().unwrap_or([0; 6])
    }

    #[inline]
    pub fn src_addr(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::SRC].try_into().unwrap_or([0; 6])
    }

    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }

    /// Everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static FRAME: [u8; 18] =
        [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x08, 0x00, 0xaa, 0xbb, 0xcc, 0xdd];

    #[test]
    fn test_deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.src_addr(), [0x11, 0x12, 0x13, 0x14, 0x15, 0x16]);
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_impossible_len() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&FRAME[..n]).unwrap_err(),
                DecodeError::Truncated { layer: Layer::Ethernet, required: 14, len: n }
            );
        }
    }
}
