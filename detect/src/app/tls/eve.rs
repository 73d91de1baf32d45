//! TLS handshakes in Suricata 7's EVE format (`tls`, extended, with JA3/JA3S and JA4).

use super::TlsInfo;
use crate::eve::{key_str, write_header as header, write_str, Obj};
use crate::flow::EventMeta;
use std::io::Write;

/// One `tls` line.
pub fn write_tls(out: &mut Vec<u8>, m: &EventMeta, t: &TlsInfo) -> usize {
    header(out, m, "tls");
    out.extend_from_slice(b",\"tls\":{");
    let mut o = Obj::new(out);
    o.str("subject", t.subject());
    o.str("issuerdn", t.issuer());
    if t.session_resumed {
        o.key("session_resumed");
        o.out.extend_from_slice(b"true");
    }
    o.str("serial", t.serial());
    o.str("fingerprint", t.fingerprint().as_ref().map(|f| &f[..]));
    o.str("sni", t.sni());
    let version = if t.has_server_hello { super::parser::version_name(t.version) } else { "UNDETERMINED".into() };
    o.str("version", Some(version.as_bytes()));
    o.str("notbefore", t.not_before());
    o.str("notafter", t.not_after());
    for (k, h, s) in [("ja3", t.ja3_hash(), t.ja3()), ("ja3s", t.ja3s_hash(), t.ja3s())] {
        if let (Some(h), Some(s)) = (h, s) {
            let _ = write!(out, ",\"{k}\":{{\"hash\":");
            write_str(out, &h);
            key_str(out, "string", s);
            out.push(b'}');
        }
    }
    if let Some(j) = t.ja4() {
        key_str(out, "ja4", &j);
    }
    if t.client_alpns().next().is_some() {
        out.extend_from_slice(b",\"client_alpns\":[");
        for (i, a) in t.client_alpns().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, a);
        }
        out.push(b']');
    }
    if let Some(a) = t.server_alpn() {
        out.extend_from_slice(b",\"server_alpns\":[");
        write_str(out, a);
        out.push(b']');
    }
    out.extend_from_slice(b"}}\n");
    1
}
