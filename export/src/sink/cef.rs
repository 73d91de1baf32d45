//! ArcSight Common Event Format (CEF 0) for flows, alerts and app-layer transactions:
//! `CEF:0|spinewatch|spinewatch|VERSION|CLASS|NAME|SEVERITY|key=value ...`.
//!
//! Keys (ArcSight's dictionary): `rt` (the event's time, ms), `start`/`end` (ms), `src`/`dst`
//! (IPv4) or `c6a2`/`c6a3` (IPv6), `spt`, `dpt`, `proto`, `app` (the app protocol), `in` (bytes
//! from source to destination) and `out` (back), `externalId` (the EVE `flow_id`, to join with
//! EVE), `act`, `cat` (the rule's category), `reason`. Custom strings and numbers with their
//! labels: `cs1` signature, `cs2` JA3, `cs3` SNI, `cs4` JA4, `cs5` HASSH, `cs6` SSH software,
//! `cn1`/`cn2` packets to server/client, `cn3` signature id. HTTP uses `dhost`, `request`,
//! `requestMethod`, `requestClientApplication`; DNS `destinationDnsDomain`.
//!
//! Severity (0-10): flows and transactions 1; alerts by Suricata priority 1→10, 2→7, 3→5,
//! otherwise 3; the behaviours judged over every worker 7.

use detect::app::AppProto;
use detect::flow::{EventMeta, FlowRecord};
use std::io::Write;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Appends `b` escaped for a CEF header field (`\` and `|`).
fn header_field(out: &mut Vec<u8>, b: &[u8]) {
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
fn ext(out: &mut Vec<u8>, key: &str, v: &[u8]) {
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

fn ext_num(out: &mut Vec<u8>, key: &str, v: u64) {
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

fn labelled(out: &mut Vec<u8>, key: &str, label: &str, v: &[u8]) {
    ext(out, &format!("{key}Label"), label.as_bytes());
    ext(out, key, v);
}

fn head(out: &mut Vec<u8>, class: &str, name: &[u8], severity: u8) {
    let _ = write!(out, "CEF:0|spinewatch|spinewatch|{VERSION}|");
    header_field(out, class.as_bytes());
    out.push(b'|');
    header_field(out, name);
    let _ = write!(out, "|{severity}|");
}

fn addr(version: u8, a: &[u8; 16]) -> String {
    if version == 4 {
        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
    } else {
        std::net::Ipv6Addr::from(*a).to_string()
    }
}

/// The tuple, the time and the flow id.
fn context(out: &mut Vec<u8>, m: &EventMeta, app: AppProto) {
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
    ext(out, "proto", detect::wire::EveProto(m.proto).to_string().as_bytes());
    if let Some(a) = app.name() {
        ext(out, "app", a.as_bytes());
    }
    ext_num(out, "externalId", m.flow_id);
}

/// A flow record.
pub fn write_flow(out: &mut Vec<u8>, r: &FlowRecord) {
    head(out, "flow", format!("Flow end ({})", r.reason.name()).as_bytes(), 1);
    context(out, &r.meta, r.app_proto);
    ext_num(out, "start", r.start / 1000);
    ext_num(out, "end", r.end / 1000);
    ext_num(out, "in", r.bytes_toserver);
    ext_num(out, "out", r.bytes_toclient);
    labelled(out, "cn1", "pkts_toserver", r.pkts_toserver.to_string().as_bytes());
    labelled(out, "cn2", "pkts_toclient", r.pkts_toclient.to_string().as_bytes());
    ext(out, "reason", r.reason.name().as_bytes());
    if r.alerted {
        ext(out, "cs1Label", b"alerted");
        ext(out, "cs1", b"true");
    }
}

fn alert_severity(priority: u8) -> u8 {
    match priority {
        1 => 10,
        2 => 7,
        3 => 5,
        _ => 3,
    }
}

/// A rule's (or an indicator's) alert.
pub fn write_alert(
    out: &mut Vec<u8>,
    m: &EventMeta,
    r: &detect::rules::Rule,
    app: AppProto,
    ioc: Option<&detect::rules::ioc::Ioc>,
) {
    head(out, &format!("{}:{}:{}", r.gid, r.sid, r.rev), r.msg.as_bytes(), alert_severity(r.priority));
    context(out, m, app);
    ext(out, "act", b"allowed");
    ext(out, "cat", r.category.as_bytes());
    labelled(out, "cs1", "signature", r.msg.as_bytes());
    labelled(out, "cn3", "signature_id", r.sid.to_string().as_bytes());
    if let Some(i) = ioc {
        labelled(out, "cs6", "ioc", format!("{}:{} ({})", i.kind.name(), i.value, i.source).as_bytes());
    }
}

/// A behaviour judged on every worker's merged evidence.
pub fn write_finding(out: &mut Vec<u8>, f: &detect::rules::sketch::Finding, ts: u64) {
    let k = f.kind;
    head(out, &format!("1:{}:1", k.sid()), k.msg().as_bytes(), 7);
    ext_num(out, "rt", ts / 1000);
    let ip = |a: u128| {
        if a >> 32 == 0xffff {
            (true, std::net::Ipv4Addr::from(a as u32).to_string())
        } else {
            (false, std::net::Ipv6Addr::from(a).to_string())
        }
    };
    if let Some(s) = f.src {
        let (v4, s) = ip(s);
        ext(out, if v4 { "src" } else { "c6a2" }, s.as_bytes());
    }
    if let Some(d) = f.dst {
        let (v4, d) = ip(d);
        ext(out, if v4 { "dst" } else { "c6a3" }, d.as_bytes());
    }
    if let Some(p) = f.port {
        ext_num(out, "dpt", p as u64);
    }
    ext(out, "act", b"allowed");
    ext(out, "cat", k.category().as_bytes());
    labelled(out, "cs1", "signature", k.msg().as_bytes());
    let (tid, _) = k.mitre();
    labelled(out, "cs2", "mitre_technique_id", tid.as_bytes());
    ext_num(out, "cnt", f.count);
    if let Some(d) = &f.domain {
        ext(out, "destinationDnsDomain", d.as_bytes());
    }
}

/// An HTTP transaction.
pub fn write_http(out: &mut Vec<u8>, m: &EventMeta, t: &detect::app::http::Tx) {
    head(out, "http", b"HTTP transaction", 1);
    context(out, m, AppProto::Http);
    if let Some(h) = t.hostname() {
        ext(out, "dhost", h);
    }
    if let Some(u) = t.uri() {
        ext(out, "request", u);
    }
    if let Some(v) = t.method() {
        ext(out, "requestMethod", v);
    }
    if let Some(v) = t.user_agent() {
        ext(out, "requestClientApplication", v);
    }
    if t.has_response && t.status != 0 {
        labelled(out, "cn3", "status", t.status.to_string().as_bytes());
    }
}

/// A TLS handshake.
pub fn write_tls(out: &mut Vec<u8>, m: &EventMeta, t: &detect::app::tls::TlsInfo) {
    head(out, "tls", b"TLS handshake", 1);
    context(out, m, AppProto::Tls);
    if let Some(h) = t.ja3_hash() {
        labelled(out, "cs2", "ja3", &h);
    }
    if let Some(s) = t.sni() {
        labelled(out, "cs3", "sni", s);
    }
    if let Some(j) = t.ja4() {
        labelled(out, "cs4", "ja4", &j);
    }
    if let Some(s) = t.subject() {
        labelled(out, "cs5", "subject", s);
    }
}

/// An SSH banner exchange.
pub fn write_ssh(out: &mut Vec<u8>, m: &EventMeta, s: &detect::app::ssh::SshState) {
    head(out, "ssh", b"SSH session", 1);
    context(out, m, AppProto::Ssh);
    if let Some(c) = s.side(0) {
        labelled(out, "cs6", "client_software", c.software_version);
        if let Some(h) = c.hassh_hash() {
            labelled(out, "cs5", "hassh", &h);
        }
    }
    if let Some(sv) = s.side(1) {
        labelled(out, "cs4", "server_software", sv.software_version);
    }
}

/// A DNS message: one event per question name.
pub fn write_dns(out: &mut Vec<u8>, m: &EventMeta, msg: &detect::app::dns::Message<'_>) {
    head(out, "dns", if msg.is_response() { b"DNS answer" } else { b"DNS query" }, 1);
    context(out, m, AppProto::Dns);
    let mut first = None;
    msg.for_each_question_name(|_, n: &[u8]| {
        if first.is_none() {
            first = Some(n.to_vec());
        }
    });
    if let Some(n) = first {
        ext(out, "destinationDnsDomain", &n);
    }
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
