//! GENEVE (RFC 8926): an 8-byte header plus options, then the protocol its type names
//! (Ethernet for 0x6558, or IP).

use super::{be16, be32, ethernet::EtherType, view};
use crate::decode::{DecodeError, Layer};

pub const HEADER_LEN: usize = 8;
pub const PORT: u16 = 6081;

view! {
    /// A read-only view of a GENEVE header and what follows.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the fixed header, the version (0) and that the options fit.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Geneve, required: HEADER_LEN, len: b.len() });
        }
        if b[0] >> 6 != 0 {
            return Err(DecodeError::BadVersion { layer: Layer::Geneve, version: b[0] >> 6 });
        }
        if b.len() < self.header_len() {
            return Err(DecodeError::Truncated { layer: Layer::Geneve, required: self.header_len(), len: b.len() });
        }
        Ok(())
    }

    /// Fixed header plus options.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + (self.buffer.as_ref()[0] & 0x3f) as usize * 4
    }

    #[inline]
    pub fn protocol(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), 2))
    }

    #[inline]
    pub fn vni(&self) -> u32 {
        be32(self.buffer.as_ref(), 4) >> 8
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct_options_and_version() {
        // one 4-byte option word
        let b = [0x01, 0, 0x65, 0x58, 0, 0, 7, 0, 1, 2, 3, 4, 0xee];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.header_len(), p.protocol(), p.vni(), p.payload()), (12, EtherType(0x6558), 7, &[0xee][..]));
        assert!(Packet::new_checked(&b[..11]).is_err());
        let mut v = b;
        v[0] = 0x40;
        assert!(matches!(Packet::new_checked(&v[..]), Err(DecodeError::BadVersion { .. })));
    }
}
