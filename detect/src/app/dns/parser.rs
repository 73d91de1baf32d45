//! DNS messages (RFC 1035), zero-copy: [`Message::parse`] validates the header, every question
//! and every resource record once (names included), so the iterators and [`read_name`] it hands
//! out afterwards cannot fail on that buffer.
//!
//! Limits (after Suricata's `dns_parse_name`): a name is at most [`MAX_NAME`] bytes of text and
//! [`MAX_LABELS`] labels; compression pointers must point backwards (RFC 1035 §4.1.4 has them
//! point to a prior occurrence), which also makes loops impossible, and at most [`MAX_JUMPS`] are
//! followed; at most [`MAX_RECORDS`] records per section are walked, the rest are counted as
//! skipped.

/// Longest name text we produce (the wire limit is 255 bytes; escapes and dots fit in this).
pub const MAX_NAME: usize = 1024;
pub const MAX_LABELS: usize = 255;
pub const MAX_JUMPS: usize = 64;
pub const MAX_RECORDS: usize = 64;
pub const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than the header, or a record runs past the end.
    Truncated,
    /// A compression pointer that points forward or to itself, or too many of them.
    BadPointer,
    /// A label type other than 00 and 11 (RFC 6891 reserves 01 and 10).
    BadLabel,
    /// More than [`MAX_LABELS`] labels or [`MAX_NAME`] bytes.
    NameTooLong,
}

/// A name decoded to text: labels joined by '.', the root as `<root>` (as Suricata writes it).
#[derive(Clone)]
pub struct Name {
    buf: [u8; MAX_NAME],
    len: usize,
}

impl Default for Name {
    fn default() -> Self {
        Name { buf: [0; MAX_NAME], len: 0 }
    }
}

impl Name {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Reads the name at `off` into `out` (when given); returns the offset just after it at its
/// original position.
pub fn read_name(msg: &[u8], off: usize, mut out: Option<&mut Name>) -> Result<usize, DnsError> {
    if let Some(o) = out.as_deref_mut() {
        o.len = 0;
    }
    let mut pos = off;
    let mut after = None;
    let mut jumps = 0;
    let mut labels = 0;
    let mut text = 0usize;
    // Pointers must go strictly backwards from the lowest position visited.
    let mut floor = off;
    loop {
        let &b = msg.get(pos).ok_or(DnsError::Truncated)?;
        match b >> 6 {
            0 => {
                let len = b as usize;
                if len == 0 {
                    let end = after.unwrap_or(pos + 1);
                    if labels == 0 {
                        if let Some(o) = out.as_deref_mut() {
                            o.buf[..6].copy_from_slice(b"<root>");
                            o.len = 6;
                        }
                    }
                    return Ok(end);
                }
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(DnsError::Truncated)?;
                labels += 1;
                text += len + (labels > 1) as usize;
                if labels > MAX_LABELS || text > MAX_NAME {
                    return Err(DnsError::NameTooLong);
                }
                if let Some(o) = out.as_deref_mut() {
                    if labels > 1 {
                        o.buf[o.len] = b'.';
                        o.len += 1;
                    }
                    o.buf[o.len..o.len + len].copy_from_slice(label);
                    o.len += len;
                }
                pos += 1 + len;
            }
            3 => {
                let &lo = msg.get(pos + 1).ok_or(DnsError::Truncated)?;
                let target = ((b as usize & 0x3f) << 8) | lo as usize;
                jumps += 1;
                if target >= floor || jumps > MAX_JUMPS {
                    return Err(DnsError::BadPointer);
                }
                if after.is_none() {
                    after = Some(pos + 2);
                }
                floor = target;
                pos = target;
            }
            _ => return Err(DnsError::BadLabel),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    /// Offset of the name in the message (for [`read_name`]).
    pub name: usize,
    pub rrtype: u16,
    pub rrclass: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub name: usize,
    pub rrtype: u16,
    pub rrclass: u16,
    pub ttl: u32,
    /// Offset of the rdata in the message (names inside it are read from there).
    pub rdata_off: usize,
    pub rdata: &'a [u8],
}

/// A validated DNS message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub buf: &'a [u8],
    pub id: u16,
    pub flags: u16,
    /// Questions, answers, authorities walked (at most [`MAX_RECORDS`] each).
    pub counts: [u16; 3],
    /// Offsets where the answer and authority sections start.
    sections: [usize; 3],
    /// Records the header announced beyond what was walked.
    pub skipped: u32,
}

impl<'a> Message<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, DnsError> {
        if buf.len() < HEADER_LEN {
            return Err(DnsError::Truncated);
        }
        let be = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let id = be(0);
        let flags = be(2);
        let announced = [be(4), be(6), be(8)];
        let mut counts = [0u16; 3];
        let mut sections = [HEADER_LEN; 3];
        let mut skipped = 0u32;
        let mut pos = HEADER_LEN;
        for (sec, &n) in announced.iter().enumerate() {
            sections[sec] = pos;
            let walk = (n as usize).min(MAX_RECORDS);
            skipped += (n as usize - walk) as u32;
            for _ in 0..walk {
                pos = read_name(buf, pos, None)?;
                let fixed = if sec == 0 { 4 } else { 10 };
                let f = buf.get(pos..pos + fixed).ok_or(DnsError::Truncated)?;
                pos += fixed;
                if sec > 0 {
                    let rdlen = u16::from_be_bytes([f[8], f[9]]) as usize;
                    let rtype = u16::from_be_bytes([f[0], f[1]]);
                    let rdata = buf.get(pos..pos + rdlen).ok_or(DnsError::Truncated)?;
                    check_rdata(buf, rtype, pos, rdata)?;
                    pos += rdlen;
                }
                counts[sec] += 1;
            }
            if walk < n as usize {
                // Later sections start after records we did not walk: stop there.
                for s in sec + 1..3 {
                    sections[s] = pos;
                    skipped += announced[s] as u32;
                }
                break;
            }
        }
        Ok(Message { buf, id, flags, counts, sections, skipped })
    }

    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }

    /// Calls `f` with each question and its decoded name; a question whose name does not decode
    /// is passed over.
    pub fn for_each_question_name(&self, mut f: impl FnMut(&Question, &[u8])) {
        let mut name = Name::default();
        for q in self.questions() {
            if read_name(self.buf, q.name, Some(&mut name)).is_ok() {
                f(&q, name.as_bytes());
            }
        }
    }

    pub fn questions(&self) -> impl Iterator<Item = Question> + 'a {
        let buf = self.buf;
        let mut pos = self.sections[0];
        (0..self.counts[0]).map(move |_| {
            let name = pos;
            // Validated by parse.
            pos = read_name(buf, pos, None).unwrap_or(buf.len());
            let f = &buf[pos.min(buf.len())..];
            let q = Question {
                name,
                rrtype: f.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]])),
                rrclass: f.get(2..4).map_or(0, |b| u16::from_be_bytes([b[0], b[1]])),
            };
            pos += 4;
            q
        })
    }

    fn records(&self, sec: usize) -> impl Iterator<Item = Record<'a>> + 'a {
        let buf = self.buf;
        let mut pos = self.sections[sec];
        (0..self.counts[sec]).map_while(move |_| {
            let name = pos;
            pos = read_name(buf, pos, None).ok()?;
            let f = buf.get(pos..pos + 10)?;
            let rdlen = u16::from_be_bytes([f[8], f[9]]) as usize;
            let rec = Record {
                name,
                rrtype: u16::from_be_bytes([f[0], f[1]]),
                rrclass: u16::from_be_bytes([f[2], f[3]]),
                ttl: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                rdata_off: pos + 10,
                rdata: buf.get(pos + 10..pos + 10 + rdlen)?,
            };
            pos += 10 + rdlen;
            Some(rec)
        })
    }

    pub fn answers(&self) -> impl Iterator<Item = Record<'a>> + 'a {
        self.records(1)
    }

    pub fn authorities(&self) -> impl Iterator<Item = Record<'a>> + 'a {
        self.records(2)
    }
}

pub mod rrtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
}

/// The rdata of the types we decode, parsed (names as offsets for [`read_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rdata<'a> {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// CNAME, NS, PTR, and MX's exchange (Suricata logs MX as the name alone).
    Name(usize),
    /// The first character-string (Suricata 7 logs the first).
    Txt(&'a [u8]),
    Soa {
        mname: usize,
        rname: usize,
        serial: u32,
        refresh: u32,
        retry: u32,
        expire: u32,
        minimum: u32,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: usize,
    },
    Other,
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

/// Decodes `rdata` (at `off` in `msg`) of type `rtype`.
pub fn rdata<'a>(msg: &'a [u8], rtype: u16, off: usize, rd: &'a [u8]) -> Result<Rdata<'a>, DnsError> {
    let t = DnsError::Truncated;
    Ok(match rtype {
        rrtype::A => Rdata::A(rd.try_into().map_err(|_| t)?),
        rrtype::AAAA => Rdata::Aaaa(rd.try_into().map_err(|_| t)?),
        rrtype::CNAME | rrtype::NS | rrtype::PTR => {
            read_name(msg, off, None)?;
            Rdata::Name(off)
        }
        rrtype::MX => {
            if rd.len() < 3 {
                return Err(t);
            }
            read_name(msg, off + 2, None)?;
            Rdata::Name(off + 2)
        }
        rrtype::TXT => {
            let n = *rd.first().ok_or(t)? as usize;
            Rdata::Txt(rd.get(1..1 + n).ok_or(t)?)
        }
        rrtype::SOA => {
            let r = read_name(msg, off, None)?;
            let e = read_name(msg, r, None)?;
            let x = msg.get(e..e + 20).ok_or(t)?;
            Rdata::Soa {
                mname: off,
                rname: r,
                serial: u32_at(x, 0).ok_or(t)?,
                refresh: u32_at(x, 4).ok_or(t)?,
                retry: u32_at(x, 8).ok_or(t)?,
                expire: u32_at(x, 12).ok_or(t)?,
                minimum: u32_at(x, 16).ok_or(t)?,
            }
        }
        rrtype::SRV => {
            let (p, w, port) = (u16_at(rd, 0).ok_or(t)?, u16_at(rd, 2).ok_or(t)?, u16_at(rd, 4).ok_or(t)?);
            read_name(msg, off + 6, None)?;
            Rdata::Srv { priority: p, weight: w, port, target: off + 6 }
        }
        _ => Rdata::Other,
    })
}

fn check_rdata(msg: &[u8], rtype: u16, off: usize, rd: &[u8]) -> Result<(), DnsError> {
    rdata(msg, rtype, off, rd).map(|_| ())
}

/// Suricata's names for record types.
pub fn rrtype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return None,
    })
}

pub fn rcode_name(r: u8) -> Option<&'static str> {
    Some(match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return None,
    })
}

/// Whether `buf` looks like a DNS message (for protocol identification): a plausible header and
/// a question section that parses.
pub fn probe(buf: &[u8]) -> bool {
    let Ok(m) = Message::parse(buf) else { return false };
    let qd = u16::from_be_bytes([buf[4], buf[5]]);
    m.opcode() <= 6 && (1..=16).contains(&qd) && m.skipped == 0
}

#[cfg(test)]
mod test {
    use super::*;

    /// A response for www.example.com A with a CNAME, an A, and an MX using compression.
    pub(crate) fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        // CNAME www.example.com -> cdn.example.com (pointer to "example.com" at 16)
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 6]);
        m.extend_from_slice(b"\x03cdn\xc0\x10");
        // A cdn.example.com (pointer to the CNAME's rdata at 45)
        m.extend_from_slice(&[0xc0, 45, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        // MX example.com 10 mail.example.com
        m.extend_from_slice(&[0xc0, 16, 0, 15, 0, 1, 0, 0, 0, 60, 0, 9, 0, 10]);
        m.extend_from_slice(b"\x04mail\xc0\x10");
        m
    }

    #[test]
    fn test_parse_response_with_compression() {
        let buf = response();
        let m = Message::parse(&buf).unwrap();
        assert_eq!((m.id, m.flags, m.counts, m.is_response(), m.rcode()), (0x1234, 0x8180, [1, 3, 0], true, 0));
        let mut n = Name::default();
        let q: Vec<_> = m.questions().collect();
        read_name(&buf, q[0].name, Some(&mut n)).unwrap();
        assert_eq!((n.as_bytes(), q[0].rrtype), (&b"www.example.com"[..], 1));
        let mut got = Vec::new();
        for r in m.answers() {
            read_name(&buf, r.name, Some(&mut n)).unwrap();
            let name = String::from_utf8_lossy(n.as_bytes()).to_string();
            let data = match rdata(&buf, r.rrtype, r.rdata_off, r.rdata).unwrap() {
                Rdata::A(a) => format!("{a:?}"),
                Rdata::Name(o) => {
                    read_name(&buf, o, Some(&mut n)).unwrap();
                    String::from_utf8_lossy(n.as_bytes()).to_string()
                }
                x => format!("{x:?}"),
            };
            got.push(format!("{name} {} {} {data}", rrtype_name(r.rrtype).unwrap(), r.ttl));
        }
        assert_eq!(
            got,
            [
                "www.example.com CNAME 3600 cdn.example.com",
                "cdn.example.com A 60 [192, 0, 2, 1]",
                "example.com MX 60 mail.example.com"
            ]
        );
    }

    #[test]
    fn test_pointer_loops_and_forward_pointers_are_refused() {
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // points to itself
        assert_eq!(Message::parse(&m).unwrap_err(), DnsError::BadPointer);
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]); // label then back to itself
        assert_eq!(Message::parse(&m).unwrap_err(), DnsError::BadPointer);
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1, 0, 0]); // forward
        assert_eq!(Message::parse(&m).unwrap_err(), DnsError::BadPointer);
    }

    #[test]
    fn test_every_truncation_is_an_error_and_root_name() {
        let buf = response();
        for n in 0..buf.len() {
            assert!(Message::parse(&buf[..n]).is_err(), "cut at {n}");
        }
        let m = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1];
        let msg = Message::parse(&m).unwrap();
        let mut n = Name::default();
        read_name(&m, msg.questions().next().unwrap().name, Some(&mut n)).unwrap();
        assert_eq!(n.as_bytes(), b"<root>");
        assert!(probe(&m));
        assert!(!probe(b"GET / HTTP/1.1\r\n\r\n"));
    }

    #[test]
    fn test_long_names_are_bounded() {
        let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..300 {
            m.extend_from_slice(&[1, b'a']);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&m).unwrap_err(), DnsError::NameTooLong);
    }
}
