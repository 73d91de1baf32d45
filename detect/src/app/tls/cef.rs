//! TLS handshakes in CEF: JA3 (`cs2`), SNI (`cs3`), JA4 (`cs4`), the subject (`cs5`).

use crate::app::AppProto;
use crate::cef::{context, head, labelled};
use crate::flow::EventMeta;

/// A TLS handshake.
pub fn write_tls(out: &mut Vec<u8>, m: &EventMeta, t: &super::TlsInfo) {
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
