//! DNS records in Suricata 7's EVE format (version 2: `query` and `answer` lines, detailed and
//! grouped answers).

use super::parser::{self as dp, Rdata};
use super::{Message, Name};
use crate::eve::{write_header as header, write_ip, write_str};
use crate::flow::EventMeta;
use std::io::Write;

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

/// A DNS message's EVE lines (version 2): one `query` line per question, or one `answer`
/// line with the detailed and grouped answers; returns the line count.
pub fn write_dns(out: &mut Vec<u8>, m: &EventMeta, msg: &Message<'_>, tx_id: u64) -> usize {
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
