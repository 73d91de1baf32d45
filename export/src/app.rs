//! Suricata EVE JSON for application-layer events: `dns` (version 2, detailed and grouped
//! answers), `http` (extended), `tls` (extended, with JA3/JA3S/JA4) and `ssh` (with HASSH),
//! the field names and order of Suricata 7's eve.json. Suricata's `pcap_cnt` and `pkt_src` are
//! not written (they describe Suricata's input, not the traffic).

use crate::eve::{write_header as header, write_ip};
use detect::app::dns::parser::{self as dp, Rdata};
use detect::app::dns::{Message, Name};
use detect::app::ssh::SshSide;
use detect::app::AppEvent;
use detect::flow::EventMeta;
use std::io::Write;

/// Appends a JSON string (with quotes) as Suricata's `set_string_from_bytes` writes it: UTF-8 as
/// is (escaped for JSON), otherwise bytes ≥ 0x80 as `\xNN` text.
pub fn write_str(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
    let utf8 = std::str::from_utf8(v).is_ok();
    for &b in v {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\u{:04x}", b);
            }
            0x80.. if !utf8 => {
                let _ = write!(out, "\\\\x{b:02x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Writes the members of a JSON object, commas between them.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        let _ = write!(self.out, "\"{k}\":");
    }

    /// A string member, skipped when `None`.
    fn str(&mut self, k: &str, v: Option<&[u8]>) {
        if let Some(v) = v {
            self.key(k);
            write_str(self.out, v);
        }
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }
}

fn key_str(out: &mut Vec<u8>, key: &str, v: &[u8]) {
    let _ = write!(out, ",\"{key}\":");
    write_str(out, v);
}

/// Appends the EVE lines of one event (a DNS query with several questions gives one line per
/// question, as Suricata logs them). Returns the number of lines.
pub fn write_event(out: &mut Vec<u8>, m: &EventMeta, ev: &AppEvent<'_>) -> usize {
    match ev {
        AppEvent::Dns { msg, tx_id } => write_dns(out, m, msg, *tx_id),
        AppEvent::Http(t) => {
            header(out, m, "http");
            let _ = write!(out, ",\"tx_id\":{},\"http\":{{", t.tx_id);
            let mut o = Obj::new(out);
            o.str("hostname", t.hostname());
            if let Some(p) = t.port {
                o.num("http_port", p as u64);
            }
            o.str("url", t.uri());
            o.str("http_user_agent", t.user_agent());
            o.str("http_content_type", t.content_type());
            if let Some(raw) = t.content_range() {
                o.key("content_range");
                o.out.extend_from_slice(b"{\"raw\":");
                write_str(o.out, raw);
                if let Some((start, end, size)) = t.range {
                    let _ = write!(o.out, ",\"start\":{start},\"end\":{end}");
                    if let Some(z) = size {
                        let _ = write!(o.out, ",\"size\":{z}");
                    }
                }
                o.out.push(b'}');
            }
            o.str("http_refer", t.referer());
            o.str("http_method", t.method());
            o.str("protocol", t.protocol());
            if t.has_response && t.status != 0 {
                o.num("status", t.status as u64);
            }
            o.str("redirect", t.redirect());
            o.num("length", t.response_body_len);
            o.num("request_body_len", t.request_body_len);
            out.extend_from_slice(b"}}\n");
            1
        }
        AppEvent::Tls(t) => {
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
            let version = if t.has_server_hello {
                detect::app::tls::parser::version_name(t.version)
            } else {
                "UNDETERMINED".into()
            };
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
        AppEvent::Ssh(s) => {
            header(out, m, "ssh");
            out.extend_from_slice(b",\"tx_id\":0,\"ssh\":{");
            let mut first = true;
            for (name, side) in [("client", s.side(0)), ("server", s.side(1))] {
                let Some(side @ SshSide { proto_version, software_version, hassh }) = side else { continue };
                let _ = write!(out, "{}\"{name}\":{{\"proto_version\":", if first { "" } else { "," });
                first = false;
                write_str(out, proto_version);
                key_str(out, "software_version", software_version);
                if let (Some(string), Some(hash)) = (hassh, side.hassh_hash()) {
                    out.extend_from_slice(b",\"hassh\":{\"hash\":");
                    write_str(out, &hash);
                    key_str(out, "string", string);
                    out.push(b'}');
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"}}\n");
            1
        }
    }
}

fn rrtype(out: &mut Vec<u8>, t: u16) {
    match dp::rrtype_name(t) {
        Some(n) => {
            let _ = write!(out, "\"{n}\"");
        }
        None => {
            let _ = write!(out, "\"{t}\"");
        }
    }
}

fn name(out: &mut Vec<u8>, msg: &[u8], off: usize, n: &mut Name) {
    match dp::read_name(msg, off, Some(n)) {
        Ok(_) => write_str(out, n.as_bytes()),
        Err(_) => write_str(out, b""),
    }
}

/// The rdata of one record as Suricata writes it in `answers` (`"rdata":..` or an object) and
/// in `grouped` (the bare value). `grouped` false: the detailed form.
fn rdata(out: &mut Vec<u8>, msg: &[u8], r: &dp::Record<'_>, grouped: bool, n: &mut Name) -> bool {
    let Ok(rd) = dp::rdata(msg, r.rrtype, r.rdata_off, r.rdata) else { return false };
    let key = |out: &mut Vec<u8>, k: &str| {
        if !grouped {
            let _ = write!(out, ",\"{k}\":");
        }
    };
    match rd {
        Rdata::A(a) => {
            key(out, "rdata");
            let _ = write!(out, "\"{}.{}.{}.{}\"", a[0], a[1], a[2], a[3]);
        }
        Rdata::Aaaa(a) => {
            key(out, "rdata");
            out.push(b'"');
            write_ip(out, 6, &a);
            out.push(b'"');
        }
        Rdata::Name(o) => {
            key(out, "rdata");
            name(out, msg, o, n);
        }
        Rdata::Txt(t) => {
            key(out, "rdata");
            write_str(out, t);
        }
        Rdata::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
            key(out, "soa");
            out.extend_from_slice(b"{\"mname\":");
            name(out, msg, mname, n);
            out.extend_from_slice(b",\"rname\":");
            name(out, msg, rname, n);
            let _ = write!(
                out,
                ",\"serial\":{serial},\"refresh\":{refresh},\"retry\":{retry},\"expire\":{expire},\"minimum\":{minimum}}}"
            );
        }
        Rdata::Srv { priority, weight, port, target } => {
            key(out, "srv");
            let _ = write!(out, "{{\"priority\":{priority},\"weight\":{weight},\"port\":{port},\"name\":");
            name(out, msg, target, n);
            out.push(b'}');
        }
        Rdata::Other => return false,
    }
    true
}

fn write_records(
    out: &mut Vec<u8>,
    key: &str,
    msg: &Message<'_>,
    recs: &mut dyn Iterator<Item = dp::Record<'_>>,
    n: &mut Name,
) {
    let _ = write!(out, ",\"{key}\":[");
    for (i, r) in recs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"rrname\":");
        name(out, msg.buf, r.name, n);
        out.extend_from_slice(b",\"rrtype\":");
        rrtype(out, r.rrtype);
        let _ = write!(out, ",\"ttl\":{}", r.ttl);
        rdata(out, msg.buf, &r, false, n);
        out.push(b'}');
    }
    out.push(b']');
}

fn write_dns(out: &mut Vec<u8>, m: &EventMeta, msg: &Message<'_>, tx_id: u64) -> usize {
    let mut n = Name::default();
    if !msg.is_response() {
        let mut lines = 0;
        for q in msg.questions() {
            header(out, m, "dns");
            let _ = write!(out, ",\"dns\":{{\"version\":2,\"type\":\"query\",\"id\":{},\"rrname\":", msg.id);
            name(out, msg.buf, q.name, &mut n);
            out.extend_from_slice(b",\"rrtype\":");
            rrtype(out, q.rrtype);
            let _ = writeln!(out, ",\"tx_id\":{tx_id},\"opcode\":{}}}}}", msg.opcode());
            lines += 1;
        }
        return lines;
    }
    header(out, m, "dns");
    let f = msg.flags;
    let _ =
        write!(out, ",\"dns\":{{\"version\":2,\"type\":\"answer\",\"id\":{},\"flags\":\"{:x}\",\"qr\":true", msg.id, f);
    for (bit, k) in [(0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"), (0x0080, "ra"), (0x0040, "z")] {
        if f & bit != 0 {
            let _ = write!(out, ",\"{k}\":true");
        }
    }
    let _ = write!(out, ",\"opcode\":{}", msg.opcode());
    if let Some(q) = msg.questions().next() {
        out.extend_from_slice(b",\"rrname\":");
        name(out, msg.buf, q.name, &mut n);
        out.extend_from_slice(b",\"rrtype\":");
        rrtype(out, q.rrtype);
    }
    match dp::rcode_name(msg.rcode()) {
        Some(r) => {
            let _ = write!(out, ",\"rcode\":\"{r}\"");
        }
        None => {
            let _ = write!(out, ",\"rcode\":\"{}\"", msg.rcode());
        }
    }
    if msg.answers().next().is_some() {
        write_records(out, "answers", msg, &mut msg.answers(), &mut n);
        // grouped: one list per type, types in order of first appearance
        out.extend_from_slice(b",\"grouped\":{");
        let mut types: [u16; 16] = [0; 16];
        let mut nt = 0;
        for r in msg.answers() {
            if nt < types.len()
                && !types[..nt].contains(&r.rrtype)
                && dp::rdata(msg.buf, r.rrtype, r.rdata_off, r.rdata).is_ok_and(|d| d != Rdata::Other)
            {
                types[nt] = r.rrtype;
                nt += 1;
            }
        }
        for (i, &t) in types[..nt].iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            rrtype(out, t);
            out.extend_from_slice(b":[");
            let mut first = true;
            for r in msg.answers().filter(|r| r.rrtype == t) {
                if !first {
                    out.push(b',');
                }
                first = false;
                rdata(out, msg.buf, &r, true, &mut n);
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    if msg.authorities().next().is_some() {
        write_records(out, "authorities", msg, &mut msg.authorities(), &mut n);
    }
    out.extend_from_slice(b"}}\n");
    1
}
