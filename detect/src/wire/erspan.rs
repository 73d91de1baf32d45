//! ERSPAN, Cisco's encapsulated remote SPAN, carried in GRE: type II (GRE protocol 0x88BE with
//! a sequence number, an 8-byte header) and type III (0x22EB, a 12-byte header plus an 8-byte
//! platform-specific sub-header when its O flag is set); then the mirrored Ethernet frame. Type
//! I (0x88BE without a sequence number) has no header at all.

use super::{be16, view};
use crate::decode::{DecodeError, Layer};

pub const TYPE2_LEN: usize = 8;
pub const TYPE3_LEN: usize = 12;
pub const TYPE3_PLATFORM_LEN: usize = 8;

view! {
    /// A read-only view of an ERSPAN type II or III header (the type is given by GRE).
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the type II header; [`Packet::check_type3`] for type III.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < TYPE2_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Erspan, required: TYPE2_LEN, len });
        }
        Ok(())
    }

    pub fn check_type3(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        let need = if len < TYPE3_LEN { TYPE3_LEN } else { self.type3_header_len() };
        if len < need {
            return Err(DecodeError::Truncated { layer: Layer::Erspan, required: need, len });
        }
        Ok(())
    }

    /// The version field (1 for type II, 2 for type III).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// The 10-bit session id.
    #[inline]
    pub fn session_id(&self) -> u16 {
        be16(self.buffer.as_ref(), 2) & 0x03ff
    }

    /// The VLAN of the mirrored traffic as the source saw it.
    #[inline]
    pub fn vlan(&self) -> u16 {
        be16(self.buffer.as_ref(), 0) & 0x0fff
    }

    /// Type III header length (the O flag adds the platform sub-header). Needs 12 bytes.
    #[inline]
    pub fn type3_header_len(&self) -> usize {
        TYPE3_LEN + if self.buffer.as_ref()[11] & 1 != 0 { TYPE3_PLATFORM_LEN } else { 0 }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct_type2_and_type3() {
        let b = [0x10, 0x64, 0x00, 0x2a, 0, 0, 0, 0];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.vlan(), p.session_id()), (1, 100, 42));
        let mut t3 = [0u8; 20];
        t3[0] = 0x20;
        t3[3] = 9;
        t3[11] = 1; // O flag: platform sub-header follows
        let p = Packet::new_unchecked(&t3[..]);
        assert!(p.check_type3().is_ok());
        assert_eq!((p.version(), p.session_id(), p.type3_header_len()), (2, 9, 20));
        assert!(Packet::new_unchecked(&t3[..19]).check_type3().is_err());
        assert!(Packet::new_unchecked(&t3[..11]).check_type3().is_err());
    }
}
