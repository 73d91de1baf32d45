//! HTTP transactions in Suricata 7's EVE format (`http`, extended).

use super::Tx;
use crate::eve::{write_header as header, write_str, Obj};
use crate::flow::EventMeta;
use std::io::Write;

/// One `http` line.
pub fn write_http(out: &mut Vec<u8>, m: &EventMeta, t: &Tx) -> usize {
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
