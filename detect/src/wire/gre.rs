//! GRE (RFC 2784, keys and sequence numbers RFC 2890): flags and version, the protocol type,
//! then the optional checksum, key and sequence words. Version 1 is PPTP's enhanced GRE (RFC
//! 2637): a key word holding the payload length and call id, an optional sequence number and an
//! optional acknowledgement (the A flag), then a PPP frame.

use super::{be16, be32, ethernet::EtherType, view};
use crate::decode::{DecodeError, Layer};

pub const FLAG_C: u16 = 0x8000;
pub const FLAG_R: u16 = 0x4000;
pub const FLAG_K: u16 = 0x2000;
pub const FLAG_S: u16 = 0x1000;
/// Version 1's acknowledgement-present flag.
pub const FLAG_A: u16 = 0x0080;
/// PPP, in enhanced GRE.
pub const PROTO_PPP: EtherType = EtherType(0x880b);
pub const MIN_LEN: usize = 4;

/// Protocol types carried by GRE beyond the usual EtherTypes.
pub const PROTO_TEB: EtherType = EtherType(0x6558);
pub const PROTO_ERSPAN_II: EtherType = EtherType(0x88be);
pub const PROTO_ERSPAN_III: EtherType = EtherType(0x22eb);

view! {
    /// A read-only view of a GRE header and what follows.
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < MIN_LEN || len < self.header_len() {
            let required = if len < MIN_LEN { MIN_LEN } else { self.header_len() };
            return Err(DecodeError::Truncated { layer: Layer::Gre, required, len });
        }
        Ok(())
    }

    #[inline]
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags() & 0x7) as u8
    }

    #[inline]
    pub fn protocol(&self) -> EtherType {
        EtherType(be16(self.buffer.as_ref(), 2))
    }

    /// The header's length with its optional words.
    #[inline]
    pub fn header_len(&self) -> usize {
        let f = self.flags();
        MIN_LEN
            + if f & (FLAG_C | FLAG_R) != 0 { 4 } else { 0 }
            + if f & FLAG_K != 0 { 4 } else { 0 }
            + if f & FLAG_S != 0 { 4 } else { 0 }
            + if f & 7 == 1 && f & FLAG_A != 0 { 4 } else { 0 }
    }

    /// The key, when the K flag is set.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let f = self.flags();
        (f & FLAG_K != 0).then(|| be32(self.buffer.as_ref(), MIN_LEN + if f & (FLAG_C | FLAG_R) != 0 { 4 } else { 0 }))
    }

    #[inline]
    pub fn has_seq(&self) -> bool {
        self.flags() & FLAG_S != 0
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
    fn test_deconstruct_key_checksum_seq() {
        // C, K and S: checksum word, key 7, sequence 1
        let b = [0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0x45];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.header_len(), p.key(), p.has_seq(), p.protocol(), p.payload()),
            (16, Some(7), true, EtherType::IPV4, &[0x45][..])
        );
        for n in 0..16 {
            assert!(Packet::new_checked(&b[..n]).is_err(), "{n}");
        }
        let p = Packet::new_checked(&[0u8, 0, 0x86, 0xdd][..]).unwrap();
        assert_eq!((p.header_len(), p.key()), (4, None));
    }
}
