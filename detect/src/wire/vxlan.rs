//! VXLAN (RFC 7348): 8 bytes after the UDP header, then an Ethernet frame.

use super::{be32, view};
use crate::decode::{DecodeError, Layer};

pub const HEADER_LEN: usize = 8;
/// The IANA port.
pub const PORT: u16 = 4789;
/// The I flag: the VNI is valid.
pub const FLAG_I: u8 = 0x08;

view! {
    /// A read-only view of a VXLAN header and what follows.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Vxlan, required: HEADER_LEN, len });
        }
        Ok(())
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// The 24-bit VXLAN network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        be32(self.buffer.as_ref(), 4) >> 8
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct_and_impossible_len() {
        let b = [0x08, 0, 0, 0, 0x00, 0x13, 0x8b, 0x00, 0xaa];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.flags(), p.vni(), p.payload()), (0x08, 5003, &[0xaa][..]));
        for n in 0..HEADER_LEN {
            assert!(Packet::new_checked(&b[..n]).is_err());
        }
    }
}
