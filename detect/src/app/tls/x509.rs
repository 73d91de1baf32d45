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

/// The name of an attribute type as x509-parser (Suricata's parser) writes it: its own
/// abbreviations, then the short names of its OID registry for the attribute types names carry;
/// any other type is written `OID(dotted)`, as it does.
fn oid_name(oid: &[u8]) -> Option<&'static str> {
    if let [0x55, 0x04, n] = oid {
        return Some(match n {
            3 => "CN",
            6 => "C",
            7 => "L",
            8 => "ST",
            10 => "O",
            11 => "OU",
            0 => "objectClass",
            1 => "aliasedEntryName",
            2 => "knowledgeInformation",
            4 => "surname",
            5 => "serialNumber",
            9 => "streetAddress",
            12 => "title",
            13 => "description",
            14 => "searchGuide",
            15 => "businessCategory",
            16 => "postalAddress",
            17 => "postalCode",
            41 => "name",
            42 => "givenName",
            43 => "initials",
            44 => "generationQualifier",
            45 => "uniqueIdentifier",
            46 => "dnQualifier",
            _ => return None,
        });
    }
    Some(match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "Email",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "uid",
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x01] => "msJurisdictionLocality",
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x02] => "msJurisdictionStateOrProvince",
        [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c, 0x02, 0x01, 0x03] => "msJurisdictionCountry",
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

/// What x509-parser writes for a Name it cannot print (a string attribute that is not UTF-8).
const INVALID_NAME: &[u8] = b"<X509Error: Invalid X.509 name>";

/// Writes a Name as Suricata does (x509-parser's `Display`): `C=US, O=Example, CN=host`,
/// attributes in certificate order, multi-valued RDNs joined by " + "; string values as they
/// are (they must be UTF-8, BMPString decoded from UTF-16), other values in upper-case hex;
/// a name with a string that is not UTF-8 is written as x509-parser writes it.
pub fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    let start = out.len();
    if !try_write_name(out, name) {
        out.truncate(start);
        out.extend_from_slice(INVALID_NAME);
    }
}

fn try_write_name(out: &mut Vec<u8>, name: &[u8]) -> bool {
    let mut first = true;
    for rdn in elements(name) {
        let mut first_attr = true;
        for atv in elements(rdn.body) {
            let mut f = elements(atv.body);
            let (Some(oid), Some(val)) = (f.next(), f.next()) else { return false };
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
                None => {
                    out.extend_from_slice(b"OID(");
                    write_oid(out, oid.body);
                    out.push(b')');
                }
            }
            out.push(b'=');
            match val.tag {
                // NumericString, VisibleString, PrintableString, GeneralString, ObjectDescriptor,
                // GraphicString, T61String, VideotexString, UTF8String, IA5String
                0x12 | 0x1a | 0x13 | 0x1b | 0x07 | 0x19 | 0x14 | 0x15 | 0x0c | 0x16 => {
                    if std::str::from_utf8(val.body).is_err() {
                        return false;
                    }
                    out.extend_from_slice(val.body);
                }
                0x1e => {
                    // BMPString: UTF-16BE
                    if val.body.len() % 2 != 0 {
                        return false;
                    }
                    let units = val.body.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    let Ok(s) = char::decode_utf16(units).collect::<Result<String, _>>() else { return false };
                    out.extend_from_slice(s.as_bytes());
                }
                _ => {
                    for &b in val.body {
                        out.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
                    }
                }
            }
        }
    }
    true
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

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

    /// One attribute of a Name: its type's OID, the value's tag and bytes.
    type Atv<'a> = (&'a [u8], u8, &'a [u8]);

    /// DER element `tag` around `body`.
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if body.len() < 0x80 {
            v.push(body.len() as u8);
        } else {
            v.extend_from_slice(&[0x82, (body.len() >> 8) as u8, body.len() as u8]);
        }
        v.extend_from_slice(body);
        v
    }

    /// A certificate with `subject` (RDNs of (OID, value tag, value bytes)), issuer `C=US`, a
    /// serial and a UTCTime / GeneralizedTime validity.
    fn cert(subject: &[&[Atv<'_>]]) -> Vec<u8> {
        let rdn = |atvs: &[Atv<'_>]| {
            let body: Vec<u8> =
                atvs.iter().flat_map(|(o, t, v)| der(0x30, &[der(0x06, o), der(*t, v)].concat())).collect();
            der(0x31, &body)
        };
        let name = |rdns: &[&[Atv<'_>]]| der(0x30, &rdns.iter().flat_map(|r| rdn(r)).collect::<Vec<_>>());
        let alg = der(0x30, &[der(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 11]), vec![5, 0]].concat());
        let validity = der(0x30, &[der(0x17, b"240131235959Z"), der(0x18, b"20500101000000Z")].concat());
        let spki = der(0x30, &[der(0x30, &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 2, 1])), der(0x03, &[0, 4, 1, 2])].concat());
        let issuer = name(&[&[(&[0x55, 4, 6], 0x13, b"US")]]);
        let tbs = [
            der(0xa0, &der(0x02, &[2])),
            der(0x02, &[0x00, 0xff, 0x01]),
            alg.clone(),
            issuer,
            validity,
            name(subject),
            spki,
        ]
        .concat();
        der(0x30, &[der(0x30, &tbs), alg, der(0x03, &[0, 1, 2, 3])].concat())
    }

    /// Our fields against x509-parser's (the parser Suricata's TLS logger uses) on names with
    /// every kind of attribute and value: the same subject, issuer, serial and validity.
    #[test]
    fn fields_agree_with_x509_parser() {
        const CN: &[u8] = &[0x55, 4, 3];
        let bmp: Vec<u8> = "Ünï".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let cases: Vec<Vec<Vec<Atv<'_>>>> = vec![
            vec![vec![(&[0x55, 4, 6], 0x13, b"US")], vec![(CN, 0x0c, b"a.b")]],
            vec![vec![(&[0x55, 4, 10], 0x0c, b"x"), (&[0x55, 4, 11], 0x0c, b"y")], vec![(CN, 0x13, b"z")]],
            vec![
                vec![(&[0x55, 4, 4], 0x0c, b"Doe")],
                vec![(&[0x55, 4, 42], 0x0c, b"Jane")],
                vec![(&[0x55, 4, 5], 0x13, b"42")],
                vec![(&[0x55, 4, 9], 0x0c, b"1 Main St")],
                vec![(&[0x55, 4, 17], 0x0c, b"12345")],
                vec![(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01], 0x0c, b"jdoe")],
                vec![(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19], 0x16, b"corp")],
                vec![(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01], 0x16, b"j@corp.example")],
            ],
            // An attribute type the registry does not know, and a jurisdiction (long arcs).
            vec![vec![(&[0x55, 4, 97], 0x0c, b"VATDE-123")], vec![(&[0x2b, 6, 1, 4, 1, 0x82, 0x37, 0x3c, 2, 1, 3], 0x13, b"DE")]],
            vec![vec![(CN, 0x1e, &bmp)]],
            vec![vec![(CN, 0x14, "café".as_bytes())]],
            // A value that is not a string: hex.
            vec![vec![(CN, 0x02, &[0x01, 0xab])]],
            // A T61String in Latin-1: not UTF-8, the whole name invalid.
            vec![vec![(&[0x55, 4, 6], 0x13, b"FR")], vec![(CN, 0x14, b"caf\xe9")]],
            vec![],
        ];
        for (i, case) in cases.iter().enumerate() {
            let rdns: Vec<&[Atv<'_>]> = case.iter().map(|r| r.as_slice()).collect();
            let d = cert(&rdns);
            let ours = parse(&d).unwrap_or_else(|| panic!("case {i}: ours refused it"));
            let (_, theirs) = x509_parser::parse_x509_certificate(&d).unwrap_or_else(|e| panic!("case {i}: {e}"));
            let tbs = &theirs.tbs_certificate;
            let mut out = Vec::new();
            write_name(&mut out, ours.subject);
            assert_eq!(String::from_utf8_lossy(&out), tbs.subject.to_string(), "case {i}: subject");
            out.clear();
            write_name(&mut out, ours.issuer);
            assert_eq!(String::from_utf8_lossy(&out), tbs.issuer.to_string(), "case {i}: issuer");
            assert_eq!(ours.serial, tbs.raw_serial(), "case {i}: serial");
            for (t, x) in [(&ours.not_before, &tbs.validity.not_before), (&ours.not_after, &tbs.validity.not_after)] {
                out.clear();
                assert!(write_time(&mut out, t));
                let dt = x.to_datetime();
                let want = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    dt.year(),
                    u8::from(dt.month()),
                    dt.day(),
                    dt.hour(),
                    dt.minute(),
                    dt.second()
                );
                assert_eq!(String::from_utf8_lossy(&out), want, "case {i}: validity");
            }
        }
    }
}
