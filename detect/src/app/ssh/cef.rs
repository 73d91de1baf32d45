//! SSH sessions in CEF: the client's software (`cs6`) and HASSH (`cs5`), the server's
//! software (`cs4`).

use crate::app::AppProto;
use crate::cef::{context, head, labelled};
use crate::flow::EventMeta;

/// An SSH banner exchange.
pub fn write_ssh(out: &mut Vec<u8>, m: &EventMeta, s: &super::SshState) {
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
