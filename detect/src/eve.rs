//! The EVE JSON primitives every record writer shares: numbers, timestamps, addresses, strings
//! escaped as Suricata escapes them, and the head every event starts with. Pure formatting into
//! a `Vec<u8>` (the exporter and the protocols' writers under [`crate::app`] use them).

use crate::flow::{EventMeta, TunnelRec};
use std::io::Write;

/// Appends a number in decimal (without `core::fmt`: the exporter writes millions a second).
#[inline]
pub fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

/// `00` to `99`.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[inline]
fn pair(out: &mut [u8], n: u64) {
    let i = (n as usize % 100) * 2;
    out[0] = PAIRS[i];
    out[1] = PAIRS[i + 1];
}

/// `YYYY-MM-DDT` of a day since the epoch.
fn date_prefix(days: i64) -> [u8; 11] {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = (yoe + era * 400 + (m <= 2) as i64).clamp(0, 9999) as u64;
    let mut o = *b"0000-00-00T";
    pair(&mut o[0..2], y / 100);
    pair(&mut o[2..4], y % 100);
    pair(&mut o[5..7], m as u64);
    pair(&mut o[8..10], d as u64);
    o
}

thread_local! {
    /// The last day formatted: records come in time order, so nearly every timestamp of a
    /// run falls on it.
    static DAY: std::cell::Cell<(u64, [u8; 11])> = const { std::cell::Cell::new((u64::MAX, [0; 11])) };
}

/// Appends `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000` for microseconds since the epoch (UTC).
pub fn write_timestamp(out: &mut Vec<u8>, us: u64) {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let day = secs / 86_400;
    let sod = secs % 86_400;
    let prefix = DAY.with(|c| {
        let (d, p) = c.get();
        if d == day {
            p
        } else {
            let p = date_prefix(day as i64);
            c.set((day, p));
            p
        }
    });
    let mut t = *b"00:00:00.000000+0000";
    pair(&mut t[0..2], sod / 3600);
    pair(&mut t[3..5], (sod / 60) % 60);
    pair(&mut t[6..8], sod % 60);
    pair(&mut t[9..11], micros / 10_000);
    pair(&mut t[11..13], (micros / 100) % 100);
    pair(&mut t[13..15], micros % 100);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&t);
}

/// Appends an address as Suricata writes it: dotted quad, or IPv6 as eight 4-digit groups.
pub fn write_ip(out: &mut Vec<u8>, version: u8, a: &[u8; 16]) {
    if version == 4 {
        for (i, b) in a[..4].iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            num(out, *b);
        }
    } else {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in 0..8 {
            if i > 0 {
                out.push(b':');
            }
            for b in [a[2 * i], a[2 * i + 1]] {
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
    }
}

/// Appends the protocol as Suricata names it (`TCP`, `IPv6-ICMP`...), else its number.
pub fn write_proto(out: &mut Vec<u8>, p: u8) {
    let name: &[u8] = match p {
        1 => b"ICMP",
        6 => b"TCP",
        17 => b"UDP",
        47 => b"GRE",
        50 => b"ESP",
        51 => b"AH",
        58 => b"IPv6-ICMP",
        132 => b"SCTP",
        n => return num(out, n),
    };
    out.extend_from_slice(name);
}

pub fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132)
}

/// Appends `ADDR"[,"src_port":P],"dest_ip":"ADDR"[,"dest_port":P]` (after an opened
/// `"src_ip":"`); ports only for protocols that have them.
#[allow(clippy::too_many_arguments)]
fn write_endpoints(out: &mut Vec<u8>, v: u8, src: &[u8; 16], sp: u16, dst: &[u8; 16], dp: u16, proto: u8) {
    write_ip(out, v, src);
    out.push(b'"');
    if has_ports(proto) {
        out.extend_from_slice(b",\"src_port\":");
        num(out, sp);
    }
    out.extend_from_slice(b",\"dest_ip\":\"");
    write_ip(out, v, dst);
    out.push(b'"');
    if has_ports(proto) {
        out.extend_from_slice(b",\"dest_port\":");
        num(out, dp);
    }
}

/// Appends `,"tunnel":{...}`: the outermost IP tuple (Suricata's alert `tunnel` fields), plus
/// the innermost tunnel's `type` and `id` (VNI, GRE key, ERSPAN session).
pub fn write_tunnel(out: &mut Vec<u8>, t: &TunnelRec) {
    out.extend_from_slice(b",\"tunnel\":{\"src_ip\":\"");
    write_endpoints(out, t.ip_version, &t.src_ip, t.src_port, &t.dest_ip, t.dest_port, t.proto);
    let _ = write!(
        out,
        ",\"proto\":\"{}\",\"depth\":{},\"type\":\"{}\",\"id\":{}}}",
        crate::wire::EveProto(t.proto),
        t.depth,
        t.kind.name(),
        t.id
    );
}

/// Appends the head every event shares, Suricata's order: `{"timestamp":..,"flow_id":..,
/// "event_type":..,["vlan":..,]"src_ip":..,["src_port":..,]"dest_ip":..,["dest_port":..,]
/// "proto":..`, the `tunnel` when the flow came through one, and `community_id` when the
/// formatter asks for it (no closing brace).
pub fn write_header(out: &mut Vec<u8>, m: &EventMeta, event_type: &str) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(out, m.timestamp);
    out.extend_from_slice(b"\",\"flow_id\":");
    num(out, m.flow_id);
    out.extend_from_slice(b",\"event_type\":\"");
    out.extend_from_slice(event_type.as_bytes());
    out.push(b'"');
    if m.vlan_count > 0 {
        out.extend_from_slice(b",\"vlan\":[");
        for (i, v) in m.vlans().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            num(out, *v);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"src_ip\":\"");
    write_endpoints(out, m.ip_version, &m.src_ip, m.src_port, &m.dest_ip, m.dest_port, m.proto);
    out.extend_from_slice(b",\"proto\":\"");
    write_proto(out, m.proto);
    out.push(b'"');
    if let Some(t) = &m.tunnel {
        write_tunnel(out, t);
    }
    if let Some(seed) = m.community_seed {
        out.extend_from_slice(b",\"community_id\":\"");
        out.extend_from_slice(&crate::community_id::of(seed, m));
        out.push(b'"');
    }
}

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
pub struct Obj<'a> {
    pub out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Obj { out, first: true }
    }

    pub fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        let _ = write!(self.out, "\"{k}\":");
    }

    /// A string member, skipped when `None`.
    pub fn str(&mut self, k: &str, v: Option<&[u8]>) {
        if let Some(v) = v {
            self.key(k);
            write_str(self.out, v);
        }
    }

    pub fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }
}

pub fn key_str(out: &mut Vec<u8>, key: &str, v: &[u8]) {
    let _ = write!(out, ",\"{key}\":");
    write_str(out, v);
}
