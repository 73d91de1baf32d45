//! ArcSight Common Event Format (CEF 0) for flows, alerts and app-layer transactions:
//! `CEF:0|spinewatch|spinewatch|VERSION|CLASS|NAME|SEVERITY|key=value ...`.
//!
//! Keys (ArcSight's dictionary): `rt` (the event's time, ms), `start`/`end` (ms), `src`/`dst`
//! (IPv4) or `c6a2`/`c6a3` (IPv6), `spt`, `dpt`, `proto`, `app` (the app protocol), `in` (bytes
//! from source to destination) and `out` (back), `externalId` (the EVE `flow_id`, to join with
//! EVE), `act`, `cat` (the rule's category), `reason`. Custom strings and numbers with their
//! labels: `cs1` signature, `cs2` JA3, `cs3` SNI, `cs4` JA4, `cs5` HASSH, `cs6` SSH software,
//! `cn1`/`cn2` packets to server/client, `cn3` signature id. HTTP uses `dhost`, `request`,
//! `requestMethod`, `requestClientApplication`; DNS `destinationDnsDomain`.
//!
//! Severity (0-10): flows and transactions 1; alerts by Suricata priority 1→10, 2→7, 3→5,
//! otherwise 3; the behaviours judged over every worker 7.

use detect::app::AppProto;
pub use detect::cef::finish_line;
use detect::cef::{context, ext, ext_num, head, labelled};
use detect::flow::{EventMeta, FlowRecord};

/// A flow record.
pub fn write_flow(out: &mut Vec<u8>, r: &FlowRecord) {
    head(out, "flow", format!("Flow end ({})", r.reason.name()).as_bytes(), 1);
    context(out, &r.meta, r.app_proto);
    ext_num(out, "start", r.start / 1000);
    ext_num(out, "end", r.end / 1000);
    ext_num(out, "in", r.bytes_toserver);
    ext_num(out, "out", r.bytes_toclient);
    labelled(out, "cn1", "pkts_toserver", r.pkts_toserver.to_string().as_bytes());
    labelled(out, "cn2", "pkts_toclient", r.pkts_toclient.to_string().as_bytes());
    ext(out, "reason", r.reason.name().as_bytes());
    if r.alerted {
        ext(out, "cs1Label", b"alerted");
        ext(out, "cs1", b"true");
    }
}

fn alert_severity(priority: u8) -> u8 {
    match priority {
        1 => 10,
        2 => 7,
        3 => 5,
        _ => 3,
    }
}

/// A rule's (or an indicator's) alert.
pub fn write_alert(
    out: &mut Vec<u8>,
    m: &EventMeta,
    r: &detect::rules::Rule,
    app: AppProto,
    ioc: Option<&detect::rules::ioc::Ioc>,
) {
    head(out, &format!("{}:{}:{}", r.gid, r.sid, r.rev), r.msg.as_bytes(), alert_severity(r.priority));
    context(out, m, app);
    ext(out, "act", b"allowed");
    ext(out, "cat", r.category.as_bytes());
    labelled(out, "cs1", "signature", r.msg.as_bytes());
    labelled(out, "cn3", "signature_id", r.sid.to_string().as_bytes());
    if let Some(i) = ioc {
        labelled(out, "cs6", "ioc", format!("{}:{} ({})", i.kind.name(), i.value, i.source).as_bytes());
    }
}

/// A behaviour judged on every worker's merged evidence.
pub fn write_finding(out: &mut Vec<u8>, f: &detect::rules::sketch::Finding, ts: u64) {
    let k = f.kind;
    head(out, &format!("1:{}:1", k.sid()), k.msg().as_bytes(), 7);
    ext_num(out, "rt", ts / 1000);
    let ip = |a: u128| {
        if a >> 32 == 0xffff {
            (true, std::net::Ipv4Addr::from(a as u32).to_string())
        } else {
            (false, std::net::Ipv6Addr::from(a).to_string())
        }
    };
    if let Some(s) = f.src {
        let (v4, s) = ip(s);
        ext(out, if v4 { "src" } else { "c6a2" }, s.as_bytes());
    }
    if let Some(d) = f.dst {
        let (v4, d) = ip(d);
        ext(out, if v4 { "dst" } else { "c6a3" }, d.as_bytes());
    }
    if let Some(p) = f.port {
        ext_num(out, "dpt", p as u64);
    }
    ext(out, "act", b"allowed");
    ext(out, "cat", k.category().as_bytes());
    labelled(out, "cs1", "signature", k.msg().as_bytes());
    let (tid, _) = k.mitre();
    labelled(out, "cs2", "mitre_technique_id", tid.as_bytes());
    ext_num(out, "cnt", f.count);
    if let Some(d) = &f.domain {
        ext(out, "destinationDnsDomain", d.as_bytes());
    }
}
