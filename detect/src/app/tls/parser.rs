//! TLS records and the cleartext handshake messages we read (RFC 8446, RFC 5246): ClientHello,
//! ServerHello and Certificate, zero-copy over one complete handshake message. X.509 fields are
//! read by a minimal DER walker (`x509.rs`). Every length is checked before use; nothing here
//! panics on any input.

pub const RECORD_HEADER: usize = 5;
/// Largest record body we accept (2^14 plus the expansion RFC 5246 allows).
pub const MAX_RECORD: usize = (1 << 14) + 2048;

pub mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
}

pub mod handshake {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const CERTIFICATE: u8 = 11;
}

pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const ALPN: u16 = 16;
    pub const SUPPORTED_VERSIONS: u16 = 43;
}

/// GREASE values (RFC 8701): 0x?a?a with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Whether `data` starts like a TLS handshake (a handshake record of version 3.x holding a
/// ClientHello or ServerHello): `None` while fewer than 6 bytes are known.
pub fn probe(data: &[u8]) -> Option<bool> {
    let want = [content::HANDSHAKE, 3];
    let n = data.len().min(2);
    if data[..n] != want[..n] {
        return Some(false);
    }
    if data.len() < 6 {
        return None;
    }
    Some(data[2] <= 4 && matches!(data[5], handshake::CLIENT_HELLO | handshake::SERVER_HELLO))
}

/// A bounds-checked reader.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u24(&mut self) -> Option<usize> {
        self.take(3).map(|b| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A vector with a 1-byte length.
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    pub fn vec24(&mut self) -> Option<&'a [u8]> {
        let n = self.u24()?;
        self.take(n)
    }
}

/// A list of big-endian u16 values.
pub fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// The extensions block: (type, data) pairs.
pub fn extensions(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> + '_ {
    let mut r = Reader::new(b);
    std::iter::from_fn(move || {
        let t = r.u16()?;
        let d = r.vec16()?;
        Some((t, d))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello<'a> {
    pub version: u16,
    pub session_id: &'a [u8],
    pub ciphers: &'a [u8],
    /// The raw extensions block (see [`extensions`]); empty when absent.
    pub extensions: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello<'a> {
    pub version: u16,
    pub session_id: &'a [u8],
    pub cipher: u16,
    pub extensions: &'a [u8],
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn client_hello(body: &[u8]) -> Option<ClientHello<'_>> {
    let mut r = Reader::new(body);
    let version = r.u16()?;
    r.take(32)?; // random
    let session_id = r.vec8()?;
    let ciphers = r.vec16()?;
    if ciphers.len() % 2 != 0 {
        return None;
    }
    r.vec8()?; // compression methods
    let extensions = if r.is_empty() { &[][..] } else { r.vec16()? };
    Some(ClientHello { version, session_id, ciphers, extensions })
}

/// Parses a ServerHello body.
pub fn server_hello(body: &[u8]) -> Option<ServerHello<'_>> {
    let mut r = Reader::new(body);
    let version = r.u16()?;
    r.take(32)?;
    let session_id = r.vec8()?;
    let cipher = r.u16()?;
    r.u8()?; // compression
    let extensions = if r.is_empty() { &[][..] } else { r.vec16()? };
    Some(ServerHello { version, session_id, cipher, extensions })
}

/// The first certificate of a (TLS ≤ 1.2) Certificate message body.
pub fn first_certificate(body: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(body);
    let list = r.vec24()?;
    Reader::new(list).vec24()
}

/// Every certificate of a Certificate message (TLS <= 1.2), in order.
pub fn certificates(body: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut r = Reader::new(Reader::new(body).vec24().unwrap_or(&[]));
    std::iter::from_fn(move || r.vec24())
}

/// The host name in a server_name extension.
pub fn sni(data: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(Reader::new(data).vec16()?);
    while !r.is_empty() {
        let kind = r.u8()?;
        let name = r.vec16()?;
        if kind == 0 {
            return Some(name);
        }
    }
    None
}

/// The protocol names of an ALPN extension.
pub fn alpn(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let list = Reader::new(data).vec16().unwrap_or(&[]);
    let mut r = Reader::new(list);
    std::iter::from_fn(move || r.vec8())
}

/// Suricata's names for protocol versions (TLS 1.3 drafts as `TLS 1.3 draft-NN`).
pub fn version_name(v: u16) -> std::borrow::Cow<'static, str> {
    if v >> 8 == 0x7f {
        return format!("TLS 1.3 draft-{}", v & 0xff).into();
    }
    std::borrow::Cow::Borrowed(match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        0xfeff => "DTLS 1.0",
        0xfefd => "DTLS 1.2",
        _ => "UNDETERMINED",
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_grease_and_probe() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && !is_grease(0x0a1a) && !is_grease(0x1301));
        assert_eq!(probe(&[22, 3]), None);
        assert_eq!(probe(&[22, 3, 1, 0, 200, 1]), Some(true));
        assert_eq!(probe(&[23, 3, 3, 0, 200, 1]), Some(false));
        assert_eq!(probe(b"GET /"), Some(false));
    }

    #[test]
    fn test_truncations_are_none() {
        let mut ch = vec![3, 3];
        ch.extend_from_slice(&[7; 32]);
        ch.extend_from_slice(&[0, 0, 4, 0x13, 1, 0x13, 2, 1, 0]);
        ch.extend_from_slice(&[0, 10, 0, 0, 0, 6, 0, 4, 0, 0, 1, b'a']);
        let h = client_hello(&ch).unwrap();
        assert_eq!((h.version, h.ciphers, extensions(h.extensions).count()), (0x0303, &[0x13, 1, 0x13, 2][..], 1));
        let (t, d) = extensions(h.extensions).next().unwrap();
        assert_eq!((t, sni(d)), (0, Some(&b"a"[..])));
        for n in 0..ch.len() - 12 {
            assert!(client_hello(&ch[..n]).is_none(), "cut at {n}");
        }
    }
}
