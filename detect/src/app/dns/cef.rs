//! DNS messages in CEF: the first question's name as `destinationDnsDomain`.

use crate::app::AppProto;
use crate::cef::{context, ext, head};
use crate::flow::EventMeta;

/// A DNS message: one event per question name.
pub fn write_dns(out: &mut Vec<u8>, m: &EventMeta, msg: &super::Message<'_>) {
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
