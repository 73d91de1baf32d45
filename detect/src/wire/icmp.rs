//! ICMP (RFC 792) and ICMPv6 (RFC 4443) share the first 8 bytes: type, code, checksum and a
//! 4-byte rest-of-header (identifier and sequence for echo messages).

use super::{be16, Field};
use crate::decode::{DecodeError, Layer};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
}

pub const HEADER_LEN: usize = 8;

/// A read-only view of an ICMP or ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// `layer` says which of ICMP or ICMPv6 an error names.
    pub fn new_checked(buffer: T, layer: Layer) -> Result<Self, DecodeError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DecodeError::Truncated { layer, required: HEADER_LEN, len });
        }
        Ok(Self::new_unchecked(buffer))
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQ.start)
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
    fn test_deconstruct() {
        let b = [8u8, 0, 0, 0, 0, 7, 0, 1, 0xaa];
        let p = Packet::new_checked(&b[..], Layer::Icmp).unwrap();
        assert_eq!((p.msg_type(), p.msg_code(), p.echo_ident(), p.echo_seq_no()), (8, 0, 7, 1));
        assert_eq!(p.payload(), &[0xaa]);
    }

    #[test]
    fn test_impossible_len() {
        let b = [8u8; 8];
        for n in 0..8 {
            assert_eq!(
                Packet::new_checked(&b[..n], Layer::Icmpv6).unwrap_err(),
                DecodeError::Truncated { layer: Layer::Icmpv6, required: 8, len: n }
            );
        }
    }
}
