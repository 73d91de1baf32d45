//! Tunnels: each kind carries an HTTP session and a DNS exchange; the inner flows are tracked
//! with their tunnel on the record, count inner IP bytes, and their app-layer events come out as
//! without the tunnel.

mod common;
use common::*;
use pcapgen::{flags, ip, tunnel, udp_frame, TcpSession, L2, T0};
use serde_json::Value;
use std::net::IpAddr;

/// The inner traffic: (client to server?, inner Ethernet frame).
fn inner_session(cport: u16) -> Vec<(bool, Vec<u8>)> {
    let mut s = TcpSession::new(ip("10.0.0.1"), cport, ip("10.0.0.2"), 80);
    let mut v = s.handshake();
    v.push((true, s.seg(true, flags::PSH | flags::ACK, b"GET /t HTTP/1.1\r\nHost: inner.example\r\n\r\n")));
    v.push((false, s.seg(false, flags::PSH | flags::ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")));
    v.extend(s.close());
    let l2 = L2::default();
    let q = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w', b'w', b'w', 0, 0, 1, 0, 1];
    let mut r = q;
    r[2] = 0x81;
    r[3] = 0x80;
    v.push((true, udp_frame(&l2, true, ip("10.0.0.1"), cport, ip("10.0.0.3"), 53, &q)));
    v.push((false, udp_frame(&l2, false, ip("10.0.0.3"), 53, ip("10.0.0.1"), cport, &r)));
    v
}

/// Wraps every frame, the outer direction following the inner one.
/// Wraps an inner frame for the wire, from outer source to outer destination.
type WrapFn = dyn Fn(&[u8], IpAddr, IpAddr) -> Vec<u8>;

fn wrapped(cport: u16, wrap: &WrapFn) -> Vec<pcapgen::Packet> {
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    inner_session(cport)
        .into_iter()
        .enumerate()
        .map(|(i, (c2s, f))| (T0 + i as u64 * 1000, if c2s { wrap(&f, a, b) } else { wrap(&f, b, a) }))
        .collect()
}

/// The inner IP bytes of the inner frames of one direction and 5-tuple side.
fn inner_bytes(cport: u16, c2s: bool, udp: bool) -> u64 {
    inner_session(cport)
        .iter()
        .filter(|(d, f)| *d == c2s && (f[23] == 17) == udp)
        .map(|(_, f)| f.len() as u64 - 14)
        .sum()
}

fn run(pkts: &[pcapgen::Packet], name: &str) -> Run {
    let d = TempDir::new(name);
    let p = d.path("t.pcap");
    write_pcap(&p, pkts);
    replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()])
}

fn flow(r: &Run, dport: u64) -> &Value {
    r.flows()
        .find(|e| e["dest_port"] == dport && e["src_ip"] == "10.0.0.1")
        .unwrap_or_else(|| panic!("no inner flow to port {dport}: {:?}", r.lines))
}

#[test]
fn every_tunnel_kind_gives_inner_flows_with_their_tunnel() {
    type Wrap = Box<WrapFn>;
    let kinds: Vec<(&str, u64, Wrap)> = vec![
        ("vxlan", 5001, Box::new(|f, s, d| tunnel::vxlan(f, 5001, s, d, 49152))),
        ("geneve", 77, Box::new(|f, s, d| tunnel::geneve(f, 77, s, d, 49153))),
        ("gre", 9, Box::new(|f, s, d| tunnel::gre(f, Some(9), s, d))),
        ("gre", 0, Box::new(|f, s, d| tunnel::gre(f, None, s, d))),
        ("erspan2", 42, Box::new(|f, s, d| tunnel::erspan2(f, 42, s, d))),
        ("erspan3", 43, Box::new(|f, s, d| tunnel::erspan3(f, 43, s, d, true))),
        ("ipip", 0, Box::new(tunnel::ipip)),
    ];
    for (kind, id, wrap) in &kinds {
        let r = run(&wrapped(40000, wrap.as_ref()), kind);
        let http = flow(&r, 80);
        assert_eq!(http["app_proto"], "http", "{kind}");
        let t = &http["tunnel"];
        assert_eq!(
            (t["type"].as_str(), t["id"].as_u64(), t["depth"].as_u64()),
            (Some(*kind), Some(*id), Some(1)),
            "{kind}: {t}"
        );
        assert_eq!((t["src_ip"].as_str(), t["dest_ip"].as_str()), (Some("192.0.2.1"), Some("192.0.2.2")), "{kind}");
        // Inner IP bytes, plus the inner Ethernet header where Suricata counts it (its GENEVE and
        // ERSPAN decoders keep it in the inner packet, its VXLAN decoder does not).
        let eth = if matches!(*kind, "geneve" | "erspan2" | "erspan3") { 14 } else { 0 };
        let pkts = |ts: bool| http["flow"][if ts { "pkts_toserver" } else { "pkts_toclient" }].as_u64().unwrap();
        assert_eq!(
            http["flow"]["bytes_toserver"],
            inner_bytes(40000, true, false) + eth * pkts(true),
            "{kind}: inner bytes"
        );
        assert_eq!(http["flow"]["bytes_toclient"], inner_bytes(40000, false, false) + eth * pkts(false), "{kind}");
        assert_eq!(http["tcp"]["state"], "closed", "{kind}");
        let ev: Vec<&Value> = r.of_type("http").collect();
        assert_eq!(ev.len(), 1, "{kind}");
        assert_eq!(
            (ev[0]["http"]["hostname"].as_str(), ev[0]["flow_id"].clone()),
            (Some("inner.example"), http["flow_id"].clone())
        );
        assert_eq!(ev[0]["tunnel"]["type"], *kind);
        let dns = flow(&r, 53);
        assert_eq!(
            (dns["app_proto"].as_str(), dns["flow"]["bytes_toserver"].as_u64()),
            (Some("dns"), Some(inner_bytes(40000, true, true) + eth))
        );
        assert_eq!(r.of_type("dns").count(), 2, "{kind}: query and answer");
        // UDP tunnels are UDP flows too: VTEP:port → VTEP:port per direction, so two here.
        let outer: Vec<&Value> =
            r.flows().filter(|e| e["src_ip"] == "192.0.2.1" || e["src_ip"] == "192.0.2.2").collect();
        match *kind {
            "vxlan" | "geneve" => {
                assert_eq!(outer.len(), 2, "{kind}: {outer:?}");
                assert!(outer.iter().all(|e| e["proto"] == "UDP" && e["app_proto"] == "failed"));
            }
            _ => assert!(outer.is_empty(), "{kind}: {outer:?}"),
        }
        assert_eq!(counter(&r.stderr, "decode errors"), 0);
    }
}

#[test]
fn nesting_keys_and_mpls() {
    // VXLAN inside GRE: depth 2, the innermost kind and id, the outermost tuple.
    let (g1, g2) = (ip("198.18.0.1"), ip("198.18.0.2"));
    let nested = wrapped(40000, &move |f, s, d| {
        let v = tunnel::vxlan(f, 7, s, d, 49152);
        let (os, od) = if s == ip("192.0.2.1") { (g1, g2) } else { (g2, g1) };
        tunnel::gre(&v, Some(1), os, od)
    });
    let r = run(&nested, "nested");
    let t = &flow(&r, 80)["tunnel"];
    assert_eq!(
        (t["type"].as_str(), t["id"].as_u64(), t["depth"].as_u64(), t["src_ip"].as_str()),
        (Some("vxlan"), Some(7), Some(2), Some("198.18.0.1")),
        "{t}"
    );
    // The same inner flow in two VNIs is two flows; in two ERSPAN sessions (or plain and
    // mirrored) it is one.
    let mut two = wrapped(40000, &|f, s, d| tunnel::vxlan(f, 1, s, d, 49152));
    two.extend(wrapped(40000, &|f, s, d| tunnel::vxlan(f, 2, s, d, 49152)).into_iter().map(|(t, f)| (t + 500, f)));
    let r = run(&two, "vnis");
    assert_eq!(r.flows().filter(|e| e["dest_port"] == 80).count(), 2);
    let mut mirrored = wrapped(40000, &|f, s, d| tunnel::erspan2(f, 1, s, d));
    for (i, p) in mirrored.iter_mut().enumerate() {
        if i % 2 == 1 {
            let inner = inner_session(40000)[i].1.clone();
            p.1 = tunnel::erspan2(&inner, 2, ip("192.0.2.9"), ip("192.0.2.8"));
        }
    }
    let r = run(&mirrored, "sessions");
    assert_eq!(r.flows().filter(|e| e["dest_port"] == 80).count(), 1);
    // MPLS: labels differ per direction and are not part of the key; no tunnel object.
    let pkts: Vec<pcapgen::Packet> = inner_session(40000)
        .into_iter()
        .enumerate()
        .map(|(i, (c2s, f))| (T0 + i as u64 * 1000, tunnel::mpls(&f, if c2s { &[100, 200] } else { &[300] })))
        .collect();
    let r = run(&pkts, "mpls");
    let f = flow(&r, 80);
    assert_eq!((f["app_proto"].as_str(), f["tunnel"].is_null()), (Some("http"), true));
    assert_eq!(r.flows().count(), 2);
    // Five IP-in-IP layers: past the bound, counted.
    let deep: Vec<pcapgen::Packet> = inner_session(40000)
        .into_iter()
        .enumerate()
        .map(|(i, (_, mut f))| {
            for _ in 0..5 {
                f = tunnel::ipip(&f, ip("192.0.2.1"), ip("192.0.2.2"));
            }
            (T0 + i as u64 * 1000, f)
        })
        .collect();
    let r = run(&deep, "deep");
    assert_eq!(counter(&r.stderr, "tunnel.too_many_tunnels"), deep.len() as u64);
    assert_eq!(r.flows().count(), 0);
}

/// Mirrored and tunnelled traffic with many inner flows over few outer tuples: ERSPAN II and
/// III and GRE from one mirror session, one VXLAN tunnel whose VTEPs use a fixed source port,
/// and VXLAN whose source port follows the inner flow. ERSPAN and GRE spread over every worker
/// by inner flow; a UDP tunnel follows its outer flow, which stays one record. Every event is
/// the same with 1, 2 and 4 workers, file and DPDK.
#[test]
fn mirrored_and_tunnelled_flows_spread_and_stay_whole_with_any_worker_count() {
    let mut inner: Vec<pcapgen::Packet> = pcapgen::many_flows(11, 240, 6, pcapgen::SizeMix::Imix);
    let end = inner.last().unwrap().0;
    for k in 0..40u16 {
        for (i, (_, f)) in inner_session(30000 + k).into_iter().enumerate() {
            inner.push((end + 1 + k as u64 * 50 + i as u64, f));
        }
    }
    let (mirror, collector) = (ip("192.0.2.10"), ip("192.0.2.20"));
    let (va, vb) = (ip("192.0.2.30"), ip("192.0.2.40"));
    let pkts: Vec<pcapgen::Packet> = inner
        .iter()
        .map(|(t, f)| {
            // One encapsulation per inner flow (by its ports, the same both ways).
            let ports = u16::from_be_bytes([f[34], f[35]]) ^ u16::from_be_bytes([f[36], f[37]]);
            let fwd = f[26..30] < f[30..34];
            let (a, b) = if fwd { (va, vb) } else { (vb, va) };
            let w = match ports % 5 {
                0 => tunnel::erspan2(f, 7, mirror, collector),
                1 => tunnel::erspan3(f, 7, mirror, collector, ports % 2 == 0),
                2 => tunnel::gre(f, Some(9), mirror, collector),
                3 => tunnel::vxlan(f, 5000, a, b, 49152),
                _ => tunnel::vxlan(f, 5001, a, b, 50000 + ports % 10000),
            };
            (*t, w)
        })
        .collect();
    let d = TempDir::new("tunnel-workers");
    let p = d.path("t.pcap");
    write_pcap(&p, &pkts);
    let one = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
    assert_eq!(one.of_type("http").count(), 40, "{}", one.stderr);
    assert_eq!(one.flows().filter(|e| e["tunnel"].is_object()).count(), 240 + 80, "every inner flow, once");
    // The fixed-port VXLAN tunnel: one outer flow record (of each direction's tuple).
    let outer = |r: &Run| r.flows().filter(|e| e["src_port"] == 49152 && e["dest_port"] == 4789).count();
    assert_eq!(outer(&one), 2);
    let runs = runs_at_other_worker_counts(&p);
    for (what, r) in &runs {
        assert_same_lines(r, &one, &format!("{what} against 1 worker"));
        let per: Vec<u64> = r
            .stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("worker "))
            .map(|l| l.split("packets ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap())
            .collect();
        eprintln!("{what}: packets per worker {per:?}");
        let total: u64 = per.iter().sum();
        // Every worker takes a share (three fifths of the flows are mirror-session flows).
        assert!(per.iter().all(|&x| x * 10 > total / per.len() as u64), "{what}: {per:?}");
    }
}
