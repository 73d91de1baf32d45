//! The certificate fields Suricata logs (subject, issuer, serial, validity), read with
//! x509-parser: the parser Suricata itself uses, so a certificate Suricata cannot decode logs no
//! fields here either, and names are written with its rules (attribute abbreviations, `, ` between
//! RDNs, ` + ` inside one, hex for values that are not strings, an invalid name as Suricata prints
//! it).

use std::io::Write;

pub use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

/// The server's certificate, or `None` where Suricata's decoder refuses it.
pub fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der).ok().map(|(_, c)| c)
}

/// A Name as Suricata writes it (x509-parser's `Display`): `C=US, O=Example, CN=host`.
pub fn write_name(out: &mut Vec<u8>, name: &X509Name<'_>) {
    let _ = write!(out, "{name}");
}

/// A validity time as "YYYY-MM-DDTHH:MM:SS" in UTC, Suricata's `notbefore` / `notafter`: taken
/// from the time's seconds since the epoch, and not written when those are 0 (as Suricata).
pub fn write_time(out: &mut Vec<u8>, t: &ASN1Time) -> bool {
    if t.timestamp() == 0 {
        return false;
    }
    let d = t.to_datetime();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    );
    true
}

#[cfg(test)]
mod test {
    use super::*;

    /// A self-signed certificate built by hand: v3, serial 0x00ff01, issuer and subject
    /// `C=US, CN=a.b` (subject with a second, multi-valued RDN `O=x + OU=y`), UTCTime validity.
    fn cert() -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 0x80 {
                v.push(body.len() as u8);
            } else {
                v.extend_from_slice(&[0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            v.extend_from_slice(body);
            v
        }
        let atv = |oid: &[u8], tag: u8, val: &[u8]| tlv(0x30, &[tlv(0x06, oid), tlv(tag, val)].concat());
        let c = atv(&[0x55, 4, 6], 0x13, b"US");
        let cn = atv(&[0x55, 4, 3], 0x0c, b"a.b");
        let issuer = tlv(0x30, &[tlv(0x31, &c), tlv(0x31, &cn)].concat());
        let multi = tlv(0x31, &[atv(&[0x55, 4, 10], 0x0c, b"x"), atv(&[0x55, 4, 11], 0x0c, b"y")].concat());
        let subject = tlv(0x30, &[tlv(0x31, &c), tlv(0x31, &cn), multi].concat());
        let alg = tlv(0x30, &[tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 11]), vec![5, 0]].concat());
        let validity = tlv(0x30, &[tlv(0x17, b"240131235959Z"), tlv(0x18, b"20500101000000Z")].concat());
        let spki = tlv(
            0x30,
            &[tlv(0x30, &[tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 2, 1])].concat()), tlv(0x03, &[0, 4, 1, 2])]
                .concat(),
        );
        let tbs = tlv(
            0x30,
            &[tlv(0xa0, &tlv(0x02, &[2])), tlv(0x02, &[0x00, 0xff, 0x01]), alg.clone(), issuer, validity, subject, spki]
                .concat(),
        );
        tlv(0x30, &[tbs, alg, tlv(0x03, &[0, 1, 2, 3])].concat())
    }

    #[test]
    fn test_fields_as_suricata_writes_them() {
        let der = cert();
        let c = parse(&der).expect("the hand-built certificate parses");
        let mut out = Vec::new();
        write_name(&mut out, &c.tbs_certificate.subject);
        assert_eq!(String::from_utf8_lossy(&out), "C=US, CN=a.b, O=x + OU=y");
        out.clear();
        write_name(&mut out, &c.tbs_certificate.issuer);
        assert_eq!(out, b"C=US, CN=a.b");
        assert_eq!(c.tbs_certificate.raw_serial(), &[0x00, 0xff, 0x01]);
        out.clear();
        assert!(write_time(&mut out, &c.tbs_certificate.validity.not_before));
        assert_eq!(out, b"2024-01-31T23:59:59");
        out.clear();
        assert!(write_time(&mut out, &c.tbs_certificate.validity.not_after));
        assert_eq!(out, b"2050-01-01T00:00:00");
        // Cut anywhere, the certificate is refused, never half read.
        for n in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert!(parse(&der[..n]).is_none(), "cut at {n}");
        }
    }
}
