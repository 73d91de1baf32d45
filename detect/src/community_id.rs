//! Community ID v1 (corelight/community-id-spec): the flow hash Zeek, Suricata, Arkime,
//! Wireshark and Elastic share, so an analyst can pivot from one tool's record to another's
//! with a string comparison. `1:` + base64(SHA1(seed . addr . addr . proto . 0 . port . port)),
//! endpoints ordered so both directions of a flow hash alike.

use crate::flow::EventMeta;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The length of a v1 id: `1:` and 28 base64 characters.
pub const LEN: usize = 30;

/// The ICMP type answering `t` (Zeek's `ICMP4_counterpart` / `ICMP6_counterpart`), for the
/// request/reply pairs; `None` for one-way messages (errors, redirects...).
fn counterpart(v6: bool, t: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        // Echo, router and neighbour discovery, MLD, node information, home agent discovery.
        &[(128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145)]
    } else {
        // Echo, timestamp, information, address mask; a router solicitation maps to an
        // advertisement, not back (as Zeek maps them).
        &[(8, 0), (13, 14), (15, 16), (17, 18)]
    };
    for &(a, b) in pairs {
        if t == a {
            return Some(b);
        }
        if t == b {
            return Some(a);
        }
    }
    (!v6 && t == 10).then_some(9)
}

/// The Community ID of the flow an event belongs to, as `meta` faces it (both facings give the
/// same id).
pub fn of(seed: u16, m: &EventMeta) -> [u8; LEN] {
    let v6 = m.ip_version == 6;
    let alen = if v6 { 16 } else { 4 };
    let (mut a, mut b) = (&m.src_ip[..alen], &m.dest_ip[..alen]);
    let icmp = matches!(m.proto, 1 | 58);
    let ports = icmp || crate::eve::has_ports(m.proto);
    let (mut pa, mut pb, one_way) = if icmp {
        let [t, code] = m.icmp[0];
        match counterpart(v6, t) {
            Some(c) => (t as u16, c as u16, false),
            None => (t as u16, code as u16, true),
        }
    } else if ports {
        (m.src_port, m.dest_port, false)
    } else {
        (0, 0, false)
    };
    if !one_way && (b, pb) < (a, pa) {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut pa, &mut pb);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([m.proto, 0]);
    if ports {
        h.update(pa.to_be_bytes());
        h.update(pb.to_be_bytes());
    }
    let digest = h.finalize();
    let mut out = [0u8; LEN];
    out[..2].copy_from_slice(b"1:");
    let n =
        base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out[2..]).expect("20 bytes encode to 28");
    debug_assert_eq!(n, LEN - 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(proto: u8, src: &str, dst: &str, sp: u16, dp: u16) -> EventMeta {
        let addr = |s: &str| -> (u8, [u8; 16]) {
            match s.parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(a) => {
                    let mut o = [0; 16];
                    o[..4].copy_from_slice(&a.octets());
                    (4, o)
                }
                std::net::IpAddr::V6(a) => (6, a.octets()),
            }
        };
        let (v, src_ip) = addr(src);
        let (_, dest_ip) = addr(dst);
        let icmp = matches!(proto, 1 | 58);
        EventMeta {
            ip_version: v,
            src_ip,
            dest_ip,
            src_port: if icmp { 0 } else { sp },
            dest_port: if icmp { 0 } else { dp },
            proto,
            icmp: if icmp { [[sp as u8, dp as u8], [0, 0]] } else { [[0; 2]; 2] },
            ..EventMeta::default()
        }
    }

    /// The spec's baseline (baseline/baseline_deflt.json and baseline_seed1.json). For ICMP its
    /// `sport`/`dport` are the port equivalents: here type and code (code 0 for the mapped
    /// request/reply types).
    #[test]
    fn spec_baseline() {
        #[rustfmt::skip]
        let cases: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
            (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
            (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
            (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
            (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
            (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
            (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
            (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", 129, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
            (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 0, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
            (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
            (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
            (1, "192.168.0.1", "192.168.0.89", 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
            (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
            (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
            (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
            (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
            (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
            (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
            (6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
            (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
            (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
            (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
            (46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        ];
        for &(proto, src, dst, sp, dp, want0, want1) in cases {
            let m = meta(proto, src, dst, sp, dp);
            assert_eq!(std::str::from_utf8(&of(0, &m)).unwrap(), want0, "{proto} {src} {dst} {sp} {dp}");
            assert_eq!(std::str::from_utf8(&of(1, &m)).unwrap(), want1, "seed 1: {proto} {src} {dst} {sp} {dp}");
        }
    }
}
