//! MPLS label stack entries (RFC 3032): 4 bytes each, label (20 bits), traffic class, bottom of
//! stack flag, TTL.

use super::{be32, view};
use crate::decode::{DecodeError, Layer};

pub const ENTRY_LEN: usize = 4;

view! {
    /// A read-only view of one label stack entry and what follows.
    Entry
}

impl<T: AsRef<[u8]>> Entry<T> {
    pub fn check_len(&self) -> Result<(), DecodeError> {
        let len = self.buffer.as_ref().len();
        if len < ENTRY_LEN {
            return Err(DecodeError::Truncated { layer: Layer::Mpls, required: ENTRY_LEN, len });
        }
        Ok(())
    }

    #[inline]
    pub fn label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) >> 12
    }

    #[inline]
    pub fn bottom(&self) -> bool {
        self.buffer.as_ref()[2] & 1 != 0
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ENTRY_LEN..]
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_deconstruct() {
        // label 16, bottom of stack, TTL 64
        let b = [0x00, 0x01, 0x01, 0x40, 0x45];
        let e = Entry::new_checked(&b[..]).unwrap();
        assert_eq!((e.label(), e.bottom(), e.payload()), (16, true, &[0x45][..]));
        assert!(Entry::new_checked(&b[..3]).is_err());
    }
}
