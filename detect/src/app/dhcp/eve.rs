//! DHCP messages in Suricata 7's EVE format, extended mode (every message, every field
//! Suricata's extended logger writes, options in the order they came).

use super::parser::{param_name, type_name, Message};
use crate::eve::{num, write_header as header, write_str};
use crate::flow::EventMeta;

fn ip(out: &mut Vec<u8>, key: &str, a: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    quoted_ip(out, a);
}

fn quoted_ip(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'"');
    for (i, b) in a.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        num(out, *b);
    }
    out.push(b'"');
}

/// `"aa:bb:..."`, as Suricata's `format_addr_hex`.
fn hex_addr(out: &mut Vec<u8>, key: &str, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":\"");
    for (i, b) in v.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
    out.push(b'"');
}

fn ip_list(out: &mut Vec<u8>, key: &str, v: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, a) in v.chunks_exact(4).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        quoted_ip(out, a);
    }
    out.push(b']');
}

fn uint(out: &mut Vec<u8>, key: &str, v: &[u8]) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    num(out, u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
}

/// One `dhcp` line.
pub fn write_dhcp(out: &mut Vec<u8>, m: &EventMeta, msg: &Message<'_>) -> usize {
    header(out, m, "dhcp");
    out.extend_from_slice(if msg.is_reply() {
        b",\"dhcp\":{\"type\":\"reply\""
    } else {
        b",\"dhcp\":{\"type\":\"request\""
    });
    out.extend_from_slice(b",\"id\":");
    num(out, msg.xid());
    hex_addr(out, "client_mac", msg.client_hw());
    ip(out, "assigned_ip", &msg.your_ip());
    ip(out, "client_ip", &msg.client_ip());
    if msg.is_reply() {
        ip(out, "relay_ip", &msg.relay_ip());
        ip(out, "next_server_ip", &msg.server_ip());
    }
    for (code, v) in msg.options() {
        match (code, v.len()) {
            (61, 2..) => hex_addr(out, "client_id", &v[1..]),
            (51, 4) => uint(out, "lease_time", v),
            (58, 4) => uint(out, "renewal_time", v),
            (59, 4) => uint(out, "rebinding_time", v),
            (1, 4) => ip(out, "subnet_mask", v),
            (50, 4) => ip(out, "requested_ip", v),
            (12, 1..) => {
                out.extend_from_slice(b",\"hostname\":");
                write_str(out, v);
            }
            (53, 1..) => {
                out.extend_from_slice(b",\"dhcp_type\":\"");
                out.extend_from_slice(type_name(v[0]).as_bytes());
                out.push(b'"');
            }
            (55, _) => {
                out.extend_from_slice(b",\"params\":[");
                // Parameters without a name are left out, as Suricata does.
                for (i, name) in v.iter().filter_map(|p| param_name(*p)).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'"');
                    out.extend_from_slice(name.as_bytes());
                    out.push(b'"');
                }
                out.push(b']');
            }
            (6, _) => ip_list(out, "dns_servers", v),
            (3, _) => ip_list(out, "routers", v),
            (60, 1..) => {
                out.extend_from_slice(b",\"vendor_class_identifier\":");
                write_str(out, v);
            }
            // Options Suricata does not log.
            _ => {}
        }
    }
    out.extend_from_slice(b"}}\n");
    1
}
