//! ArcSight Common Event Format (CEF 0) primitives: the header, escaped extensions and the
//! tuple every event carries. The exporter's CEF writer (`export/src/sink/cef.rs`) documents the
//! keys; the protocols under [`crate::app`] write their transactions with these.

use crate::app::AppProto;
use crate::flow::EventMeta;
use std::io::Write;

/// The product version in the CEF header (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Appends `b` escaped for a CEF header field (`\` and `|`).
pub fn header_field(out: &mut Vec<u8>, b: &[u8]) {
    for ch in String::from_utf8_lossy(b).chars() {
        match ch {
            '\\' => out.extend_from_slice(b"\\\\"),
            '|' => out.extend_from_slice(b"\\|"),
            '\r' | '\n' => out.push(b' '),
            c => {
                let mut t = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut t).as_bytes());
            }
        }
    }
}

/// Appends ` key=value` with the value escaped for an extension (`\`, `=`, line breaks);
/// [`finish_line`] takes the space off the first one.
pub fn ext(out: &mut Vec<u8>, key: &str, v: &[u8]) {
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    for ch in String::from_utf8_lossy(v).chars() {
        match ch {
            '\\' => out.extend_from_slice(b"\\\\"),
            '=' => out.extend_from_slice(b"\\="),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            c => {
                let mut t = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut t).as_bytes());
            }
        }
    }
}

pub fn ext_num(out: &mut Vec<u8>, key: &str, v: u64) {
    out.push(b' ');
    let _ = write!(out, "{key}={v}");
}

/// Ends the CEF line that starts at `start`: the extensions begin right after the header's
/// seventh `|` (escaped ones, `\|`, not counted), without the space [`ext`] put before each.
pub fn finish_line(out: &mut Vec<u8>, start: usize) {
    let (mut pipes, mut i) = (0, start);
    while i < out.len() && pipes < 7 {
        match out[i] {
            b'\\' => i += 1,
            b'|' => pipes += 1,
            _ => {}
        }
        i += 1;
    }
    if pipes == 7 && out.get(i) == Some(&b' ') {
        out.remove(i);
    }
}

pub fn labelled(out: &mut Vec<u8>, key: &str, label: &str, v: &[u8]) {
    ext(out, &format!("{key}Label"), label.as_bytes());
    ext(out, key, v);
}

pub fn head(out: &mut Vec<u8>, class: &str, name: &[u8], severity: u8) {
    let _ = write!(out, "CEF:0|spinewatch|spinewatch|{VERSION}|");
    header_field(out, class.as_bytes());
    out.push(b'|');
    header_field(out, name);
    let _ = write!(out, "|{severity}|");
}

pub fn addr(version: u8, a: &[u8; 16]) -> String {
    if version == 4 {
        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
    } else {
        std::net::Ipv6Addr::from(*a).to_string()
    }
}

/// The tuple, the time and the flow id.
pub fn context(out: &mut Vec<u8>, m: &EventMeta, app: AppProto) {
    ext_num(out, "rt", m.timestamp / 1000);
    let (s, d) = if m.ip_version == 4 { ("src", "dst") } else { ("c6a2", "c6a3") };
    ext(out, s, addr(m.ip_version, &m.src_ip).as_bytes());
    if m.proto == 6 || m.proto == 17 || m.proto == 132 {
        ext_num(out, "spt", m.src_port as u64);
    }
    ext(out, d, addr(m.ip_version, &m.dest_ip).as_bytes());
    if m.proto == 6 || m.proto == 17 || m.proto == 132 {
        ext_num(out, "dpt", m.dest_port as u64);
    }
    ext(out, "proto", crate::wire::EveProto(m.proto).to_string().as_bytes());
    if let Some(a) = app.name() {
        ext(out, "app", a.as_bytes());
    }
    ext_num(out, "externalId", m.flow_id);
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn escapes_as_the_spec_says() {
        let mut o = Vec::new();
        head(&mut o, "1:2:3", b"a|b\\c", 5);
        ext(&mut o, "cs1", b"x=y\\z\nw");
        finish_line(&mut o, 0);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            format!("CEF:0|spinewatch|spinewatch|{VERSION}|1:2:3|a\\|b\\\\c|5|cs1=x\\=y\\\\z\\nw")
        );
        // A value ending in '|' does not swallow the next key's space.
        let mut o = Vec::new();
        head(&mut o, "http", b"x", 1);
        ext(&mut o, "request", b"/a|");
        ext(&mut o, "requestMethod", b"GET");
        finish_line(&mut o, 0);
        assert!(String::from_utf8(o).unwrap().ends_with("|1|request=/a| requestMethod=GET"));
    }
}
