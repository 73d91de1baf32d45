//! IEEE 802.1Q / 802.1ad VLAN tag (the 4 bytes after a TPID: TCI and the next EtherType).

use super::{be16, ethernet::EtherType, view, Field};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

pub const HEADER_LEN: usize = field::PAYLOAD;

view! {
    /// A read-only view of one VLAN tag, starting right after its TPID.
    Tag
}

impl<T: AsRef<[u8]>> Tag<T> {
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Vlan, required: HEADER_LEN, len });
        }
        Ok(())
    }

    /// The 12-bit VLAN identifier.
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TCI.start) & 0x0fff
    }

    /// Priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.buffer.as_ref()[field::TCI.start] >> 5) & 0x7
    }

    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), field::ETHERTYPE.start))
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let b = [0xa0, 0x64, 0x86, 0xdd, 0x60];
        let t = Tag::new_checked(&b[..]).unwrap();
        assert_eq!(t.vlan_id(), 100);
        assert_eq!(t.pcp(), 5);
        assert_eq!(t.ethertype(), EtherType::IPV6);
        assert_eq!(t.payload(), &[0x60]);
    }

    #[test]
    fn test_impossible_len() {
        let b = [0u8; 4];
        for n in 0..4 {
            assert!(matches!(
                Tag::new_checked(&b[..n]),
                Err(DecodeError::Truncated { layer: Layer::Vlan, required: 4, .. })
            ));
        }
    }
}
