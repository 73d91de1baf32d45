//! PPPoE session stage (RFC 2516): a 6-byte header, then a PPP frame whose 2-byte protocol field
//! names what follows (0x0021 IPv4, 0x0057 IPv6).

use super::{be16, view};
use crate::decode::{DecodeError, Layer};

/// PPPoE header plus the PPP protocol field.
pub const HEADER_LEN: usize = 8;
pub const PPP_IPV4: u16 = 0x0021;
pub const PPP_IPV6: u16 = 0x0057;

view! {
    /// A read-only view of a PPPoE session header and its PPP protocol field.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Pppoe, required: HEADER_LEN, len });
        }
        Ok(())
    }

    #[inline]
    pub fn session_id(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    #[inline]
    pub fn ppp_protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct() {
        let b = [0x11, 0, 0x55, 0x6a, 0, 0x40, 0, 0x21, 0x45];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.session_id(), p.ppp_protocol()), (0x556a, PPP_IPV4));
        assert!(Packet::new_checked(&b[..7]).is_err());
    }
}
