//! A minimal DER walker for the certificate fields Suricata logs: subject, issuer, serial,
//! validity. Definite lengths only (DER), nesting read on demand, every length checked.

/// One DER element: tag, contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub body: &'a [u8],
}

/// Reads one element from the front of `b`; returns it and what follows.
pub fn tlv(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (l0 as usize, rest)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &x| a << 8 | x as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((Tlv { tag, body: &rest[..len] }, &rest[len..]))
}

fn elements(mut b: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    std::iter::from_fn(move || {
        let (t, r) = tlv(b)?;
        b = r;
        Some(t)
    })
}

/// The fields we log from one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cert<'a> {
    pub serial: &'a [u8],
    /// The Name SEQUENCE contents (see [`write_name`]).
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    /// UTCTime or GeneralizedTime elements.
    pub not_before: Tlv<'a>,
    pub not_after: Tlv<'a>,
}

pub fn parse(der: &[u8]) -> Option<Cert<'_>> {
    let (cert, _) = tlv(der)?;
    let (tbs, _) = tlv(cert.body)?;
    let mut it = elements(tbs.body);
    let mut e = it.next()?;
    if e.tag == 0xa0 {
        e = it.next()?; // explicit version
    }
    if e.tag != 0x02 {
        return None;
    }
    let serial = e.body;
    let _sig = it.next()?;
    let issuer = it.next()?;
    let validity = it.next()?;
    let subject = it.next()?;
    let mut v = elements(validity.body);
    let not_before = v.next()?;
    let not_after = v.next()?;
    if issuer.tag != 0x30 || subject.tag != 0x30 {
        return None;
    }
    Some(Cert { serial, issuer: issuer.body, subject: subject.body, not_before, not_after })
}

fn oid_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "street",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x04] => "SN",
        [0x55, 0x04, 0x2a] => "GN",
        [0x55, 0x04, 0x0c] => "title",
        [0x55, 0x04, 0x11] => "postalCode",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "Email",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

/// Dotted form of an OID.
fn write_oid(out: &mut Vec<u8>, oid: &[u8]) {
    let mut first = true;
    let mut v: u64 = 0;
    for &b in oid {
        v = v << 7 | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if first {
                let (a, b2) = if v < 80 { (v / 40, v % 40) } else { (2, v - 80) };
                out.extend_from_slice(format!("{a}.{b2}").as_bytes());
                first = false;
            } else {
                out.extend_from_slice(format!(".{v}").as_bytes());
            }
            v = 0;
        }
    }
}

/// Writes a Name as Suricata does (x509-parser's `to_string`): `C=US, O=Example, CN=host`,
/// attributes in certificate order, multi-valued RDNs joined by " + ".
pub fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    let mut first = true;
    for rdn in elements(name) {
        let mut first_attr = true;
        for atv in elements(rdn.body) {
            let mut f = elements(atv.body);
            let (Some(oid), Some(val)) = (f.next(), f.next()) else { continue };
            if first_attr {
                if !first {
                    out.extend_from_slice(b", ");
                }
            } else {
                out.extend_from_slice(b" + ");
            }
            first = false;
            first_attr = false;
            match oid_name(oid.body) {
                Some(n) => out.extend_from_slice(n.as_bytes()),
                None => write_oid(out, oid.body),
            }
            out.push(b'=');
            if val.tag == 0x1e {
                // BMPString: UTF-16BE
                let s: String = char::decode_utf16(val.body.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])))
                    .map(|c| c.unwrap_or('\u{fffd}'))
                    .collect();
                out.extend_from_slice(s.as_bytes());
            } else {
                out.extend_from_slice(val.body);
            }
        }
    }
}

/// Writes a UTCTime / GeneralizedTime as "YYYY-MM-DDTHH:MM:SS" (Suricata's `notbefore`).
pub fn write_time(out: &mut Vec<u8>, t: &Tlv<'_>) -> bool {
    let b = t.body;
    let (year, rest): (Vec<u8>, &[u8]) = match t.tag {
        0x17 if b.len() >= 12 => {
            let yy = &b[..2];
            let century: &[u8] = if yy < &b"50"[..] { b"20" } else { b"19" };
            ([century, yy].concat(), &b[2..])
        }
        0x18 if b.len() >= 14 => (b[..4].to_vec(), &b[4..]),
        _ => return false,
    };
    if !year.iter().chain(&rest[..10]).all(u8::is_ascii_digit) {
        return false;
    }
    out.extend_from_slice(&year);
    for (i, sep) in [b'-', b'-', b'T', b':', b':'].iter().enumerate() {
        out.push(*sep);
        out.extend_from_slice(&rest[i * 2..i * 2 + 2]);
    }
    true
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_tlv_lengths() {
        assert_eq!(tlv(&[0x30, 0x03, 1, 2, 3, 9]).map(|(t, r)| (t.body.len(), r.len())), Some((3, 1)));
        assert_eq!(tlv(&[0x30, 0x81, 0x02, 1, 2]).map(|(t, _)| t.body.len()), Some(2));
        assert!(tlv(&[0x30, 0x04, 1]).is_none());
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(tlv(&[0x30]).is_none());
    }

    #[test]
    fn test_name_and_time() {
        // SEQUENCE { SET { SEQ { OID 2.5.4.6, PrintableString "US" } }, SET { SEQ { OID CN, UTF8 "a.b" } } }
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'U', b'S', 0x31, 0x0c, 0x30, 0x0a, 0x06,
            0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'a', b'.', b'b',
        ];
        let mut out = Vec::new();
        write_name(&mut out, &name);
        assert_eq!(out, b"C=US, CN=a.b");
        let mut out = Vec::new();
        assert!(write_time(&mut out, &Tlv { tag: 0x17, body: b"240131235959Z" }));
        assert_eq!(out, b"2024-01-31T23:59:59");
        let mut out = Vec::new();
        assert!(write_time(&mut out, &Tlv { tag: 0x18, body: b"20500101000000Z" }));
        assert_eq!(out, b"2050-01-01T00:00:00");
        let mut out = Vec::new();
        write_oid(&mut out, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]);
        assert_eq!(out, b"1.2.840.113549");
    }
}
