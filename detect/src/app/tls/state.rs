//! Per-flow TLS state: records reassembled per direction (bounded), handshake messages across
//! records (bounded), the fields Suricata logs (SNI, versions, JA3/JA3S, JA4, ALPN, certificate)
//! kept until the handshake ends or the flow does.

use super::parser::{self as p, content, ext, handshake, is_grease, u16s, Reader};
use super::x509;
use crate::app::stream::Chunk;
use crate::app::{hex_lower, AppEvent, Emit, HEX_LOWER};
use md5::{Digest, Md5};
use std::io::Write;

/// Handshake bytes buffered per direction (certificate chains included).
pub const MAX_HANDSHAKE: usize = 64 << 10;
/// Certificate chain bytes kept for detection.
pub const MAX_CHAIN: usize = 32 << 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    pub client_hellos: u64,
    pub server_hellos: u64,
    pub certificates: u64,
    /// Records or handshake messages that did not parse, or went past the bounds.
    pub malformed: u64,
    /// Directions that stopped parsing at a gap.
    pub gaps: u64,
}

use crate::app::Span;

/// What one TLS session showed in the clear.
#[derive(Debug, Default)]
pub struct TlsInfo {
    store: Vec<u8>,
    /// The server's certificate chain as sent (DER, at most [`MAX_CHAIN`] bytes) and each
    /// certificate's place in it: for detection (`tls.certs`), not copied to the exporter.
    chain: Vec<u8>,
    certs: Vec<(u32, u32)>,
    /// The negotiated version (ServerHello, its supported_versions extension first), else 0.
    pub version: u16,
    /// The ClientHello's legacy version.
    pub client_version: u16,
    pub has_client_hello: bool,
    pub has_server_hello: bool,
    /// TLS ≤ 1.2: the server echoed the client's non-empty session id (an abbreviated
    /// handshake), as Suricata's `session_resumed`.
    pub session_resumed: bool,
    client_session: [u8; 32],
    client_session_len: u8,
    sni: Span,
    ja3: Span,
    ja3s: Span,
    ja4: Span,
    alpns: [Span; 8],
    alpn_count: u8,
    server_alpn: Span,
    subject: Span,
    issuer: Span,
    serial: Span,
    fingerprint: Span,
    not_before: Span,
    not_after: Span,
}

/// JA4's length, and its part before the first hash (`t13d1516h2`).
pub const JA4_LEN: usize = 36;
const JA4_PREFIX: usize = 10;

/// Appends `v` in decimal (JA3 strings are built per handshake; `write!` costs several times
/// this).
fn dec(out: &mut Vec<u8>, v: u16) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn hex(out: &mut Vec<u8>, bytes: &[u8], sep: Option<u8>, upper: bool) {
    const U: &[u8; 16] = b"0123456789ABCDEF";
    let t = if upper { U } else { HEX_LOWER };
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            if let Some(s) = sep {
                out.push(s);
            }
        }
        out.push(t[(b >> 4) as usize]);
        out.push(t[(b & 15) as usize]);
    }
}

/// The MD5 of `s` in lower-case hex.
fn md5_hex(s: &[u8]) -> [u8; 32] {
    let mut o = [0u8; 32];
    hex_lower(&mut o, &Md5::digest(s));
    o
}

impl TlsInfo {
    fn get(&self, s: Span) -> Option<&[u8]> {
        s.get(&self.store)
    }

    /// Appends what `f` writes to the store as one field.
    fn field(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> Span {
        let off = self.store.len();
        f(&mut self.store);
        Span { off: off as u32, len: (self.store.len() - off) as u32, set: true }
    }

    pub fn sni(&self) -> Option<&[u8]> {
        self.get(self.sni)
    }
    pub fn ja3(&self) -> Option<&[u8]> {
        self.get(self.ja3)
    }
    /// JA3's MD5, computed when asked (by the exporter, or by detection): a flow whose
    /// hash nobody reads does not pay for it on the worker.
    pub fn ja3_hash(&self) -> Option<[u8; 32]> {
        self.ja3().map(md5_hex)
    }
    pub fn ja3s(&self) -> Option<&[u8]> {
        self.get(self.ja3s)
    }
    /// JA3S's MD5, computed when asked (see [`TlsInfo::ja3_hash`]).
    pub fn ja3s_hash(&self) -> Option<[u8; 32]> {
        self.ja3s().map(md5_hex)
    }
    /// JA4, computed when asked from the inputs the ClientHello left (see
    /// [`TlsInfo::client_hello`]).
    pub fn ja4(&self) -> Option<[u8; JA4_LEN]> {
        let b = self.get(self.ja4)?;
        let mut out = [0u8; JA4_LEN];
        let (head, mut rest) = b.split_at_checked(JA4_PREFIX)?;
        out[..JA4_PREFIX].copy_from_slice(head);
        let mut list = || -> Option<&[u8]> {
            let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let (l, r) = rest.get(4..)?.split_at_checked(2 * n)?;
            rest = r;
            Some(l)
        };
        let (ciphers, exts, sigalgs) = (list()?, list()?, list()?);
        // The first 12 hex digits of the SHA-256 of the comma-joined hex list(s), the non-empty
        // ones joined by '_', or zeros when the first list is empty.
        let hash = |lists: &[&[u8]], out: &mut [u8]| {
            if lists[0].is_empty() {
                out.fill(b'0');
                return;
            }
            let mut h = sha2::Sha256::new();
            for (k, l) in lists.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
                if k > 0 {
                    h.update(b"_");
                }
                for (i, x) in l.chunks_exact(2).enumerate() {
                    let mut t = [b',', 0, 0, 0, 0];
                    hex_lower(&mut t[1..], x);
                    h.update(if i == 0 { &t[1..] } else { &t[..] });
                }
            }
            hex_lower(out, &h.finalize()[..6]);
        };
        out[JA4_PREFIX] = b'_';
        hash(&[ciphers], &mut out[JA4_PREFIX + 1..JA4_PREFIX + 13]);
        out[JA4_PREFIX + 13] = b'_';
        hash(&[exts, sigalgs], &mut out[JA4_PREFIX + 14..]);
        Some(out)
    }
    pub fn client_alpns(&self) -> impl Iterator<Item = &[u8]> {
        self.alpns[..self.alpn_count as usize].iter().filter_map(|s| self.get(*s))
    }
    pub fn server_alpn(&self) -> Option<&[u8]> {
        self.get(self.server_alpn)
    }
    pub fn subject(&self) -> Option<&[u8]> {
        self.get(self.subject)
    }
    pub fn issuer(&self) -> Option<&[u8]> {
        self.get(self.issuer)
    }
    pub fn serial(&self) -> Option<&[u8]> {
        self.get(self.serial)
    }
    /// The server certificate's SHA-1 as Suricata writes it (`aa:bb:...`), computed when asked
    /// (by the exporter): the parser only keeps the certificate.
    pub fn fingerprint(&self) -> Option<[u8; 59]> {
        let der = self.get(self.fingerprint)?;
        let mut o = Vec::with_capacity(59);
        hex(&mut o, &sha1::Sha1::digest(der), Some(b':'), false);
        o.try_into().ok()
    }
    pub fn not_before(&self) -> Option<&[u8]> {
        self.get(self.not_before)
    }
    pub fn not_after(&self) -> Option<&[u8]> {
        self.get(self.not_after)
    }

    fn reset(&mut self) {
        let mut store = std::mem::take(&mut self.store);
        let mut chain = std::mem::take(&mut self.chain);
        let mut certs = std::mem::take(&mut self.certs);
        store.clear();
        chain.clear();
        certs.clear();
        *self = TlsInfo { store, chain, certs, ..TlsInfo::default() };
    }

    /// The certificates of the server's chain (DER), as kept.
    pub fn certificates(&self) -> impl Iterator<Item = &[u8]> {
        self.certs.iter().map(|&(o, l)| &self.chain[o as usize..(o + l) as usize])
    }

    fn keep_chain(&mut self, body: &[u8]) {
        for der in p::certificates(body) {
            if self.chain.len() + der.len() > MAX_CHAIN {
                break;
            }
            self.certs.push((self.chain.len() as u32, der.len() as u32));
            self.chain.extend_from_slice(der);
        }
    }

    /// Makes this a copy of `o`, reusing this one's buffer (for the exporter).
    pub fn copy_from(&mut self, o: &TlsInfo) {
        let mut store = std::mem::take(&mut self.store);
        store.clear();
        store.extend_from_slice(&o.store);
        let (mut chain, mut certs) = (std::mem::take(&mut self.chain), std::mem::take(&mut self.certs));
        chain.clear();
        certs.clear();
        *self = TlsInfo { store, chain, certs, ..*o };
    }

    fn client_hello(&mut self, h: &p::ClientHello<'_>, scratch: &mut Scratch) {
        self.has_client_hello = true;
        self.client_version = h.version;
        let n = h.session_id.len().min(32);
        self.client_session[..n].copy_from_slice(&h.session_id[..n]);
        self.client_session_len = n as u8;
        let mut groups: &[u8] = &[];
        let mut formats: &[u8] = &[];
        let mut sigalgs: &[u8] = &[];
        let mut max_version = 0u16;
        for (t, d) in p::extensions(h.extensions) {
            match t {
                ext::SERVER_NAME => {
                    if let Some(n) = p::sni(d) {
                        self.sni = self.field(|o| o.extend_from_slice(n));
                    }
                }
                ext::ALPN => {
                    for a in p::alpn(d) {
                        if (self.alpn_count as usize) < self.alpns.len() {
                            let s = self.field(|o| o.extend_from_slice(a));
                            self.alpns[self.alpn_count as usize] = s;
                            self.alpn_count += 1;
                        }
                    }
                }
                ext::SUPPORTED_GROUPS => groups = Reader::new(d).vec16().unwrap_or(&[]),
                ext::EC_POINT_FORMATS => formats = Reader::new(d).vec8().unwrap_or(&[]),
                ext::SIGNATURE_ALGORITHMS => sigalgs = Reader::new(d).vec16().unwrap_or(&[]),
                ext::SUPPORTED_VERSIONS => {
                    for v in u16s(Reader::new(d).vec8().unwrap_or(&[])) {
                        if !is_grease(v) {
                            max_version = max_version.max(v);
                        }
                    }
                }
                _ => {}
            }
        }
        let join = |o: &mut Vec<u8>, it: &mut dyn Iterator<Item = u16>| {
            for (i, v) in it.enumerate() {
                if i > 0 {
                    o.push(b'-');
                }
                dec(o, v);
            }
        };
        let ext_types = || p::extensions(h.extensions).map(|(t, _)| t).filter(|t| !is_grease(*t));
        self.ja3 = self.field(|o| {
            dec(o, h.version);
            o.push(b',');
            join(o, &mut u16s(h.ciphers).filter(|c| !is_grease(*c)));
            o.push(b',');
            join(o, &mut ext_types());
            o.push(b',');
            join(o, &mut u16s(groups).filter(|c| !is_grease(*c)));
            o.push(b',');
            join(o, &mut formats.iter().map(|&f| f as u16));
        });
        // JA4 (FoxIO): t<version><d|i><ciphers><extensions><alpn>_<sha256 ciphers>_<sha256 exts_sigalgs>.
        // Its inputs are kept here (the prefix, then the sorted cipher and extension lists and
        // the signature algorithms, each as a count and big-endian u16s); the hashes are taken
        // when it is read ([`TlsInfo::ja4`]: by the exporter, or by detection with a JA4
        // indicator), not on the packet path.
        let version = if max_version != 0 { max_version } else { h.version };
        let vs = match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        };
        // The lists are sorted in the session's scratch buffer (kept between flows): no
        // allocation per handshake.
        let Scratch { list, .. } = scratch;
        let alpn: [u8; 2] = match self.client_alpns().next() {
            None | Some([]) => *b"00",
            Some(a) => {
                let (f, l) = (a[0], a[a.len() - 1]);
                if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                    [f, l]
                } else {
                    [HEX_LOWER[(f >> 4) as usize], HEX_LOWER[(l & 15) as usize]]
                }
            }
        };
        // 'd' for a domain name, 'i' for none or an IP address (FoxIO's JA4 spec).
        let has_sni =
            self.sni().is_some_and(|n| std::str::from_utf8(n).map_or(true, |n| n.parse::<std::net::IpAddr>().is_err()));
        let n_ciphers = u16s(h.ciphers).filter(|c| !is_grease(*c)).count();
        let n_exts = ext_types().count();
        self.ja4 = self.field(|o| {
            let _ = write!(o, "t{vs}{}{:02}{:02}", if has_sni { 'd' } else { 'i' }, n_ciphers.min(99), n_exts.min(99));
            o.extend_from_slice(&alpn);
            let put = |o: &mut Vec<u8>, list: &[u16]| {
                o.extend_from_slice(&(list.len() as u32).to_be_bytes());
                for x in list {
                    o.extend_from_slice(&x.to_be_bytes());
                }
            };
            list.clear();
            list.extend(u16s(h.ciphers).filter(|c| !is_grease(*c)));
            list.sort_unstable();
            put(o, list);
            list.clear();
            list.extend(ext_types().filter(|&e| e != ext::SERVER_NAME && e != ext::ALPN));
            list.sort_unstable();
            put(o, list);
            list.clear();
            list.extend(u16s(sigalgs));
            put(o, list);
        });
    }

    fn server_hello(&mut self, h: &p::ServerHello<'_>) {
        self.has_server_hello = true;
        self.version = h.version;
        let sid = &self.client_session[..self.client_session_len as usize];
        let resumed = !sid.is_empty() && h.session_id == sid;
        for (t, d) in p::extensions(h.extensions) {
            if t == ext::SUPPORTED_VERSIONS && d.len() == 2 {
                self.version = u16::from_be_bytes([d[0], d[1]]);
            }
            if t == ext::ALPN {
                if let Some(a) = p::alpn(d).next() {
                    self.server_alpn = self.field(|o| o.extend_from_slice(a));
                }
            }
        }
        self.session_resumed = resumed && self.version < 0x0304;
        self.ja3s = self.field(|o| {
            dec(o, h.version);
            o.push(b',');
            dec(o, h.cipher);
            o.push(b',');
            for (i, (t, _)) in p::extensions(h.extensions).filter(|(t, _)| !is_grease(*t)).enumerate() {
                if i > 0 {
                    o.push(b'-');
                }
                dec(o, t);
            }
        });
    }

    fn certificate(&mut self, der: &[u8]) -> bool {
        let Some(c) = x509::parse(der) else { return false };
        self.subject = self.field(|o| x509::write_name(o, c.subject));
        self.issuer = self.field(|o| x509::write_name(o, c.issuer));
        self.serial = self.field(|o| hex(o, c.serial, Some(b':'), true));
        // The certificate itself: its SHA-1 is taken when the fingerprint is read.
        self.fingerprint = self.field(|o| o.extend_from_slice(der));
        let mut t = Vec::new();
        if x509::write_time(&mut t, &c.not_before) {
            self.not_before = self.field(|o| o.extend_from_slice(&t));
        }
        t.clear();
        if x509::write_time(&mut t, &c.not_after) {
            self.not_after = self.field(|o| o.extend_from_slice(&t));
        }
        true
    }
}

#[derive(Debug, Default)]
struct Dir {
    rec: Vec<u8>,
    hs: Vec<u8>,
    encrypted: bool,
    done: bool,
    cert_seen: bool,
}

/// Buffers for building JA4's sorted lists, kept with the session.
#[derive(Debug, Default)]
struct Scratch {
    list: Vec<u16>,
}

/// Per-flow TLS state.
#[derive(Debug, Default)]
pub struct TlsState {
    dirs: [Dir; 2],
    pub info: TlsInfo,
    logged: bool,
    scratch: Scratch,
}

impl TlsState {
    /// Whether both directions are past their cleartext handshake (nothing more to read).
    pub fn is_done(&self) -> bool {
        self.logged || (self.dirs[0].done && self.dirs[1].done)
    }

    fn log(&mut self, emit: &mut Emit<'_>) {
        if !self.logged && (self.info.has_client_hello || self.info.has_server_hello) {
            self.logged = true;
            emit(&AppEvent::Tls(&self.info));
        }
        self.logged = true;
        for d in &mut self.dirs {
            // Buffers are kept (cleared) for the session's next flow.
            d.done = true;
            d.rec.clear();
            d.hs.clear();
        }
    }

    pub fn finish(&mut self, emit: &mut Emit<'_>) {
        if !self.logged {
            self.log(emit);
        }
    }

    pub fn input(&mut self, dir: usize, chunk: Chunk<'_>, c: &mut TlsCounters, emit: &mut Emit<'_>) {
        if self.dirs[dir].done {
            return;
        }
        let mut data = match chunk {
            Chunk::Data(d) => d,
            // (Skipped bytes are never asked for by this parser: a gap if they came.)
            Chunk::Gap(_) | Chunk::Skipped(_) => {
                c.gaps += 1;
                self.dirs[dir].done = true;
                return;
            }
        };
        while !data.is_empty() && !self.dirs[dir].done {
            let d = &mut self.dirs[dir];
            if d.rec.is_empty() && data.len() >= p::RECORD_HEADER {
                let len = u16::from_be_bytes([data[3], data[4]]) as usize;
                if data.len() >= p::RECORD_HEADER + len {
                    let (rec, rest) = data.split_at(p::RECORD_HEADER + len);
                    self.record(dir, rec, c, emit);
                    data = rest;
                    continue;
                }
            }
            // Accumulate a record that spans chunks.
            let d = &mut self.dirs[dir];
            let need = if d.rec.len() < p::RECORD_HEADER {
                p::RECORD_HEADER - d.rec.len()
            } else {
                p::RECORD_HEADER + u16::from_be_bytes([d.rec[3], d.rec[4]]) as usize - d.rec.len()
            };
            let take = need.min(data.len());
            d.rec.extend_from_slice(&data[..take]);
            data = &data[take..];
            if d.rec.len() >= p::RECORD_HEADER {
                let len = u16::from_be_bytes([d.rec[3], d.rec[4]]) as usize;
                if len > p::MAX_RECORD {
                    c.malformed += 1;
                    d.done = true;
                    return;
                }
                if d.rec.len() == p::RECORD_HEADER + len {
                    let rec = std::mem::take(&mut d.rec);
                    self.record(dir, &rec, c, emit);
                    let mut rec = rec;
                    rec.clear();
                    self.dirs[dir].rec = rec;
                }
            }
        }
    }

    fn record(&mut self, dir: usize, rec: &[u8], c: &mut TlsCounters, emit: &mut Emit<'_>) {
        let (kind, major, len) = (rec[0], rec[1], rec.len() - p::RECORD_HEADER);
        if major != 3 || len > p::MAX_RECORD || !(20..=24).contains(&kind) {
            c.malformed += 1;
            self.dirs[dir].done = true;
            return;
        }
        let body = &rec[p::RECORD_HEADER..];
        match kind {
            content::HANDSHAKE if !self.dirs[dir].encrypted => {
                let d = &mut self.dirs[dir];
                if d.hs.len() + body.len() > MAX_HANDSHAKE {
                    c.malformed += 1;
                    d.done = true;
                    return;
                }
                if d.hs.is_empty() {
                    // Whole messages are read in place; only a message the record cuts is kept.
                    if let Some(used) = self.messages(dir, body, c) {
                        self.dirs[dir].hs.extend_from_slice(&body[used..]);
                    }
                    return;
                }
                d.hs.extend_from_slice(body);
                let mut hs = std::mem::take(&mut d.hs);
                if let Some(used) = self.messages(dir, &hs, c) {
                    hs.drain(..used);
                    self.dirs[dir].hs = hs;
                }
            }
            content::CHANGE_CIPHER_SPEC => self.dirs[dir].encrypted = true,
            content::APPLICATION_DATA => {
                self.dirs[dir].encrypted = true;
                if self.info.has_server_hello || self.dirs[1 - dir].encrypted {
                    self.log(emit);
                }
            }
            _ => {}
        }
    }

    /// Reads the whole handshake messages at the start of `hs`; returns the bytes they took,
    /// or None when a message is longer than allowed (the direction stops).
    fn messages(&mut self, dir: usize, hs: &[u8], c: &mut TlsCounters) -> Option<usize> {
        let mut used = 0;
        while hs.len() - used >= 4 {
            let m = &hs[used..];
            let mlen = (m[1] as usize) << 16 | (m[2] as usize) << 8 | m[3] as usize;
            if mlen > MAX_HANDSHAKE {
                c.malformed += 1;
                self.dirs[dir].done = true;
                return None;
            }
            if m.len() < 4 + mlen {
                break;
            }
            self.message(dir, m[0], &m[4..4 + mlen], c);
            used += 4 + mlen;
        }
        Some(used)
    }

    fn message(&mut self, dir: usize, kind: u8, body: &[u8], c: &mut TlsCounters) {
        match (dir, kind) {
            (0, handshake::CLIENT_HELLO) if !self.info.has_client_hello => match p::client_hello(body) {
                Some(h) => {
                    c.client_hellos += 1;
                    self.info.client_hello(&h, &mut self.scratch);
                }
                None => c.malformed += 1,
            },
            (1, handshake::SERVER_HELLO) if !self.info.has_server_hello => match p::server_hello(body) {
                Some(h) => {
                    c.server_hellos += 1;
                    self.info.server_hello(&h);
                }
                None => c.malformed += 1,
            },
            (1, handshake::CERTIFICATE) if !self.dirs[1].cert_seen => {
                self.dirs[1].cert_seen = true;
                self.info.keep_chain(body);
                match p::first_certificate(body) {
                    Some(der) if self.info.certificate(der) => c.certificates += 1,
                    Some(_) | None => c.malformed += 1,
                }
            }
            _ => {}
        }
    }
}

impl crate::app::Reuse for TlsState {
    fn reset(&mut self) {
        for d in &mut self.dirs {
            d.rec.clear();
            d.hs.clear();
            d.encrypted = false;
            d.done = false;
            d.cert_seen = false;
        }
        self.info.reset();
        self.logged = false;
    }
    /// Frees buffers larger than `keep` bytes (between flows).
    fn trim(&mut self, keep: usize) {
        for d in &mut self.dirs {
            crate::app::trim_vec(&mut d.rec, keep);
            crate::app::trim_vec(&mut d.hs, keep);
        }
        crate::app::trim_vec(&mut self.info.store, keep);
        crate::app::trim_vec(&mut self.info.chain, keep);
        crate::app::trim_vec(&mut self.info.certs, keep);
        crate::app::trim_vec(&mut self.scratch.list, keep);
    }
}

