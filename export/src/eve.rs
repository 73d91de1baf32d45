//! Suricata EVE JSON for flow records: the same field names, order and formats as Suricata
//! 7's `event_type: "flow"` (timestamps `YYYY-MM-DDTHH:MM:SS.uuuuuu+0000`, IPv6 fully
//! expanded, `tcp_flags` as two hex digits, flag booleans only when set).

pub use detect::eve::{
    has_ports, key_str, num, write_header, write_ip, write_proto, write_str, write_timestamp, write_tunnel, Obj,
};
use detect::flow::{EventMeta, FlowRecord, TcpState};
use detect::wire::TcpFlags;
use std::io::Write;

/// Appends one EVE alert (Suricata's fields) and a newline. `meta` faces the direction the
/// rule matched in.
pub fn write_alert(
    out: &mut Vec<u8>,
    m: &EventMeta,
    r: &detect::rules::Rule,
    app: detect::app::AppProto,
    to_server: bool,
    ioc: Option<&detect::rules::ioc::Ioc>,
) {
    write_header(out, m, "alert");
    if let Some(a) = app.name() {
        let _ = write!(out, ",\"app_proto\":\"{a}\"");
    }
    let _ = write!(
        out,
        ",\"direction\":\"{}\",\"alert\":{{\"action\":\"allowed\",\"gid\":{},\"signature_id\":{},\"rev\":{},\"signature\":",
        if to_server { "to_server" } else { "to_client" },
        r.gid,
        r.sid,
        r.rev
    );
    write_str(out, r.msg.as_bytes());
    out.extend_from_slice(b",\"category\":");
    write_str(out, r.category.as_bytes());
    let _ = write!(out, ",\"severity\":{}", r.priority);
    if !r.metadata.is_empty() {
        // {"key": ["value", ...]}, keys in first-seen order, as Suricata groups them.
        out.extend_from_slice(b",\"metadata\":{");
        let mut first = true;
        for (i, (k, _)) in r.metadata.iter().enumerate() {
            if r.metadata[..i].iter().any(|(k2, _)| k2 == k) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, k.as_bytes());
            out.extend_from_slice(b":[");
            for (j, (_, v)) in r.metadata.iter().filter(|(k2, _)| k2 == k).enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write_str(out, v.as_bytes());
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.push(b'}');
    if let Some(i) = ioc {
        // The indicator that matched (spinewatch's own object; Suricata has none).
        out.extend_from_slice(b",\"ioc\":{\"type\":");
        write_str(out, i.kind.name().as_bytes());
        out.extend_from_slice(b",\"value\":");
        write_str(out, i.value.as_bytes());
        out.extend_from_slice(b",\"source\":");
        write_str(out, i.source.as_bytes());
        if !i.description.is_empty() {
            out.extend_from_slice(b",\"description\":");
            write_str(out, i.description.as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

/// Appends the EVE alert of a behaviour judged on every worker's merged evidence: no flow (it
/// spans many), the source and destination it is about where there is one, and what was
/// counted.
pub fn write_finding(out: &mut Vec<u8>, f: &detect::rules::sketch::Finding, ts: u64) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(out, ts.min(i64::MAX as u64));
    out.extend_from_slice(b"\",\"event_type\":\"alert\"");
    let ip = |out: &mut Vec<u8>, key: &str, a: u128| {
        let v = if a >> 32 == 0xffff {
            std::net::IpAddr::V4(std::net::Ipv4Addr::from(a as u32))
        } else {
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(a))
        };
        let _ = write!(out, ",\"{key}\":\"{v}\"");
    };
    if let Some(s) = f.src {
        ip(out, "src_ip", s);
    }
    if let Some(d) = f.dst {
        ip(out, "dest_ip", d);
    }
    if let Some(p) = f.port {
        let _ = write!(out, ",\"dest_port\":{p}");
    }
    let k = f.kind;
    let (tid, tname) = k.mitre();
    let _ = write!(
        out,
        ",\"alert\":{{\"action\":\"allowed\",\"gid\":1,\"signature_id\":{},\"rev\":1,\"signature\":\"{}\",\"category\":\"{}\",\"severity\":2,\"metadata\":{{\"mitre_technique_id\":[\"{tid}\"],\"mitre_technique_name\":[\"{tname}\"]}}}}",
        k.sid(),
        k.msg(),
        k.category()
    );
    let _ = write!(out, ",\"behaviour\":{{\"count\":{}", f.count);
    if let Some(d) = &f.domain {
        out.extend_from_slice(b",\"domain\":");
        write_str(out, d.as_bytes());
    }
    out.extend_from_slice(b"}}\n");
}

/// Appends one EVE flow event and a newline; with `community_id: Some(seed)`, its Community ID.
pub fn write_flow(out: &mut Vec<u8>, r: &FlowRecord, community_id: Option<u16>) {
    write_header(out, &EventMeta { community_seed: community_id, ..r.meta }, "flow");
    if let Some(a) = r.app_proto.name() {
        out.extend_from_slice(b",\"app_proto\":\"");
        out.extend_from_slice(a.as_bytes());
        out.push(b'"');
    }
    if let Some(i) = &r.icmp {
        out.extend_from_slice(b",\"icmp_type\":");
        num(out, i.icmp_type);
        out.extend_from_slice(b",\"icmp_code\":");
        num(out, i.icmp_code);
        if let Some((t, c)) = i.response {
            out.extend_from_slice(b",\"response_icmp_type\":");
            num(out, t);
            out.extend_from_slice(b",\"response_icmp_code\":");
            num(out, c);
        }
    }
    out.extend_from_slice(b",\"flow\":{\"pkts_toserver\":");
    num(out, r.pkts_toserver);
    out.extend_from_slice(b",\"pkts_toclient\":");
    num(out, r.pkts_toclient);
    out.extend_from_slice(b",\"bytes_toserver\":");
    num(out, r.bytes_toserver);
    out.extend_from_slice(b",\"bytes_toclient\":");
    num(out, r.bytes_toclient);
    out.extend_from_slice(b",\"start\":\"");
    write_timestamp(out, r.start);
    out.extend_from_slice(b"\",\"end\":\"");
    write_timestamp(out, r.end);
    out.extend_from_slice(b"\",\"age\":");
    num(out, r.age());
    out.extend_from_slice(b",\"state\":\"");
    out.extend_from_slice(r.state.name().as_bytes());
    out.extend_from_slice(b"\",\"reason\":\"");
    out.extend_from_slice(r.reason.name().as_bytes());
    out.extend_from_slice(if r.alerted { b"\",\"alerted\":true}" } else { b"\",\"alerted\":false}" });
    if let Some(t) = &r.tcp {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hex = |out: &mut Vec<u8>, b: u8| {
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        };
        let all = t.flags_ts | t.flags_tc;
        out.extend_from_slice(b",\"tcp\":{\"tcp_flags\":\"");
        hex(out, all);
        out.extend_from_slice(b"\",\"tcp_flags_ts\":\"");
        hex(out, t.flags_ts);
        out.extend_from_slice(b"\",\"tcp_flags_tc\":\"");
        hex(out, t.flags_tc);
        out.push(b'"');
        for (bit, name) in [
            (TcpFlags::SYN, &b",\"syn\":true"[..]),
            (TcpFlags::FIN, b",\"fin\":true"),
            (TcpFlags::RST, b",\"rst\":true"),
            (TcpFlags::PSH, b",\"psh\":true"),
            (TcpFlags::ACK, b",\"ack\":true"),
            (TcpFlags::URG, b",\"urg\":true"),
            (TcpFlags::ECE, b",\"ecn\":true"),
            (TcpFlags::CWR, b",\"cwr\":true"),
        ] {
            if all & bit != 0 {
                out.extend_from_slice(name);
            }
        }
        if let Some(s) = t.state {
            if s != TcpState::None {
                out.extend_from_slice(b",\"state\":\"");
                out.extend_from_slice(s.name().as_bytes());
                out.push(b'"');
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod test {
    use super::*;
    use detect::flow::{EndReason, FlowState, IcmpInfo, TcpInfo};

    #[test]
    fn test_timestamp() {
        let mut v = Vec::new();
        write_timestamp(&mut v, 1_700_000_000_010_000);
        assert_eq!(String::from_utf8(v).unwrap(), "2023-11-14T22:13:20.010000+0000");
        let mut v = Vec::new();
        write_timestamp(&mut v, 951_782_400_000_001); // 2000-02-29
        assert_eq!(String::from_utf8(v).unwrap(), "2000-02-29T00:00:00.000001+0000");
    }

    fn rec() -> FlowRecord {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        FlowRecord {
            meta: EventMeta {
                flow_id: 2696199211,
                timestamp: 1_700_000_000_000_000,
                ip_version: 4,
                src_ip: src,
                dest_ip: dst,
                src_port: 40000,
                dest_port: 80,
                proto: 6,
                vlan: [100, 0, 0],
                vlan_count: 1,
                tunnel: None,
                ..Default::default()
            },
            pkts_toserver: 6,
            pkts_toclient: 5,
            bytes_toserver: 403,
            bytes_toclient: 366,
            start: 1_700_000_006_000_000,
            end: 1_700_000_006_010_000,
            first_seen: [1_700_000_006_000_000, 1_700_000_006_001_000],
            last_seen: [1_700_000_006_009_000, 1_700_000_006_010_000],
            state: FlowState::Closed,
            reason: EndReason::Shutdown,
            tcp: Some(TcpInfo { flags_ts: 0x1b, flags_tc: 0x1b, state: Some(TcpState::Closed) }),
            icmp: None,
            app_proto: detect::AppProto::Http,
            alerted: false,
            tracked: false,
        }
    }

    #[test]
    fn test_emit_tcp_like_suricata() {
        let mut v = Vec::new();
        write_flow(&mut v, &rec(), None);
        // Suricata 7.0.10's line for the same flow, less the region counters.
        let want = r#"{"timestamp":"2023-11-14T22:13:20.000000+0000","flow_id":2696199211,"event_type":"flow","vlan":[100],"src_ip":"10.0.0.1","src_port":40000,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","app_proto":"http","flow":{"pkts_toserver":6,"pkts_toclient":5,"bytes_toserver":403,"bytes_toclient":366,"start":"2023-11-14T22:13:26.000000+0000","end":"2023-11-14T22:13:26.010000+0000","age":0,"state":"closed","reason":"shutdown","alerted":false},"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#;
        assert_eq!(String::from_utf8(v).unwrap(), format!("{want}\n"));
    }

    #[test]
    fn test_emit_icmpv6() {
        let mut r = rec();
        r.meta.ip_version = 6;
        r.meta.src_ip = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        r.meta.dest_ip = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        r.meta.proto = 58;
        r.meta.vlan_count = 0;
        r.tcp = None;
        r.app_proto = detect::AppProto::Unknown;
        r.icmp = Some(IcmpInfo { icmp_type: 128, icmp_code: 0, response: Some((129, 0)) });
        let mut v = Vec::new();
        write_flow(&mut v, &r, None);
        let s = String::from_utf8(v).unwrap();
        assert!(s.contains(r#""src_ip":"2001:0db8:0000:0000:0000:0000:0000:0001","dest_ip":"2001:0db8:0000:0000:0000:0000:0000:0002","proto":"IPv6-ICMP","icmp_type":128,"icmp_code":0,"response_icmp_type":129,"response_icmp_code":0,"flow":{"#), "{s}");
    }
}
