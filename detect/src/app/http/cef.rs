//! HTTP transactions in CEF: `dhost`, `request`, `requestMethod`, `requestClientApplication`,
//! the status as `cn3`.

use crate::app::AppProto;
use crate::cef::{context, ext, head, labelled};
use crate::flow::EventMeta;

/// An HTTP transaction.
pub fn write_http(out: &mut Vec<u8>, m: &EventMeta, t: &super::Tx) {
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
