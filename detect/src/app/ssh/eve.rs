//! SSH sessions in Suricata 7's EVE format (`ssh`, with HASSH).

use super::{SshSide, SshState};
use crate::eve::{key_str, write_header as header, write_str};
use crate::flow::EventMeta;
use std::io::Write;

/// One `ssh` line.
pub fn write_ssh(out: &mut Vec<u8>, m: &EventMeta, s: &SshState) -> usize {
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
