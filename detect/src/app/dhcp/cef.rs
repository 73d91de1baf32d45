//! DHCP messages in CEF: the client's MAC (`smac`) and host name (`shost`), the message type
//! (`cs1`) and the address given (`cs2`).

use super::parser::{type_name, Message};
use crate::app::AppProto;
use crate::cef::{context, ext, head, labelled};
use crate::flow::EventMeta;

pub fn write_dhcp(out: &mut Vec<u8>, m: &EventMeta, msg: &Message<'_>) {
    let t = msg.msg_type().map_or("unknown", type_name);
    head(out, "dhcp", format!("DHCP {t}").as_bytes(), 1);
    context(out, m, AppProto::Dhcp);
    let mac: Vec<String> = msg.client_hw().iter().map(|b| format!("{b:02x}")).collect();
    ext(out, "smac", mac.join(":").as_bytes());
    if let Some(h) = msg.hostname() {
        ext(out, "shost", h);
    }
    labelled(out, "cs1", "dhcp_type", t.as_bytes());
    let y = msg.your_ip();
    labelled(out, "cs2", "assigned_ip", format!("{}.{}.{}.{}", y[0], y[1], y[2], y[3]).as_bytes());
}
