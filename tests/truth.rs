//! The generator's ground truth against spinewatch's records: every flow in the truth is a flow
//! reported, with the same packet and byte counts per direction, the same application protocol
//! and its name (HTTP host, TLS SNI, DNS query, SSH server software) in an event of that flow.
//! Tunnelled flows (VXLAN, GRE) are inner flows that count inner IP bytes, as Suricata does (the
//! truth counts whole frames: the encapsulation's bytes are taken off); a VXLAN tunnel is also a
//! UDP flow of its own per direction (VTEP:port → VTEP:4789), with whole frames.

mod common;
use common::*;
use pcapgen::traffic::{generate, Attack, EncapMix, TrafficConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

type Key = (String, IpAddr, u64, IpAddr, u64, u64);

fn norm(ip: &Value) -> IpAddr {
    ip.as_str().unwrap().parse().unwrap()
}

fn proto_num(p: &Value) -> u64 {
    match p.as_str() {
        Some("TCP") => 6,
        Some("UDP") => 17,
        Some("ICMP") => 1,
        Some("IPv6-ICMP") => 58,
        Some("GRE") => 47,
        Some(other) => other.parse().unwrap(),
        None => p.as_u64().unwrap(),
    }
}

fn expected(truth: &Value) -> BTreeMap<Key, Vec<[u64; 4]>> {
    let mut m: BTreeMap<Key, Vec<[u64; 4]>> = BTreeMap::new();
    let mut outer: BTreeMap<Key, [u64; 4]> = BTreeMap::new();
    for f in truth["flows"].as_array().unwrap() {
        let n = |k: &str| f[k].as_u64().unwrap();
        let proto = n("proto");
        let ports = |k: &str| if proto == 6 || proto == 17 { n(k) } else { 0 };
        let encap = f["encap"].as_str().unwrap();
        let tunnelled = encap == "vxlan" || encap == "gre";
        // The inner flow of a tunnel counts inner IP packets: outer Ethernet, IPv4, UDP, VXLAN
        // and inner Ethernet are 64 bytes a packet; outer Ethernet, IPv4 and keyed GRE 42.
        let per = match encap {
            "vxlan" => 64,
            "gre" => 42,
            _ => 0,
        };
        let vlan = f["vlan"].as_array().unwrap().iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        let vlan = if tunnelled { String::new() } else { vlan };
        let k = (vlan, norm(&f["src_ip"]), ports("src_port"), norm(&f["dest_ip"]), ports("dest_port"), proto);
        m.entry(k).or_default().push([
            n("pkts_toserver"),
            n("pkts_toclient"),
            n("bytes_toserver") - per * n("pkts_toserver"),
            n("bytes_toclient") - per * n("pkts_toclient"),
        ]);
        if encap == "vxlan" {
            // Each direction is its own outer UDP flow (VTEP:port → VTEP:4789), whole frames.
            let o = &f["outer"];
            let (a, b, sp) = (norm(&o["src_ip"]), norm(&o["dest_ip"]), o["src_port"].as_u64().unwrap());
            let e = outer.entry((String::new(), a, sp, b, 4789, 17)).or_default();
            e[0] += n("pkts_toserver");
            e[2] += n("bytes_toserver");
            let e = outer.entry((String::new(), b, sp, a, 4789, 17)).or_default();
            e[0] += n("pkts_toclient");
            e[2] += n("bytes_toclient");
        }
    }
    for (k, v) in outer {
        if v != [0; 4] {
            m.entry(k).or_default().push(v);
        }
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

fn reported(r: &Run) -> BTreeMap<Key, Vec<[u64; 4]>> {
    let mut m: BTreeMap<Key, Vec<[u64; 4]>> = BTreeMap::new();
    for e in r.flows() {
        let f = &e["flow"];
        let vlan = e["vlan"]
            .as_array()
            .map(|a| a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let k = (
            vlan,
            norm(&e["src_ip"]),
            e["src_port"].as_u64().unwrap_or(0),
            norm(&e["dest_ip"]),
            e["dest_port"].as_u64().unwrap_or(0),
            proto_num(&e["proto"]),
        );
        let n = |k: &str| f[k].as_u64().unwrap();
        m.entry(k).or_default().push([
            n("pkts_toserver"),
            n("pkts_toclient"),
            n("bytes_toserver"),
            n("bytes_toclient"),
        ]);
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

/// Every truth flow's application protocol and name against the flow's `app_proto` and its
/// events; flows of other protocols must not be claimed by a parser.
fn app_diff(truth: &Value, r: &Run) -> Vec<String> {
    let mut flows: BTreeMap<(IpAddr, u64, IpAddr, u64), &Value> = BTreeMap::new();
    for e in r.flows() {
        let p = |k: &str| e[k].as_u64().unwrap_or(0);
        flows.insert((norm(&e["src_ip"]), p("src_port"), norm(&e["dest_ip"]), p("dest_port")), e);
    }
    let mut events: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    // (Alerts of the behaviours merged over workers belong to no flow.)
    for e in r.events.iter().filter(|e| e["event_type"] != "flow" && e["flow_id"].is_u64()) {
        events.entry(e["flow_id"].as_u64().unwrap()).or_default().push(e);
    }
    let mut d = Vec::new();
    for f in truth["flows"].as_array().unwrap() {
        let p = |k: &str| f[k].as_u64().unwrap_or(0);
        let key = (norm(&f["src_ip"]), p("src_port"), norm(&f["dest_ip"]), p("dest_port"));
        let Some(rec) = flows.get(&key) else { continue };
        let app = f["app"].as_str().unwrap();
        // (An attack flow's detail names the attack's payload; only its protocol is checked.)
        // SSH software without the banner's comments, as Suricata logs it.
        let detail = f["detail"].as_str().unwrap_or("").split(' ').next().unwrap_or("");
        let got = rec["app_proto"].as_str().unwrap_or("-");
        let evs = events.get(&rec["flow_id"].as_u64().unwrap()).map(|v| v.as_slice()).unwrap_or(&[]);
        let (want, field): (&str, fn(&Value) -> &Value) = match app {
            "http" => ("http", |e| &e["http"]["hostname"]),
            "tls" => ("tls", |e| &e["tls"]["sni"]),
            "dns" | "dns-tcp" => ("dns", |e| &e["dns"]["rrname"]),
            "ssh" => ("ssh", |e| &e["ssh"]["server"]["software_version"]),
            _ => {
                if ["http", "tls", "dns", "ssh"].contains(&got) {
                    d.push(format!("{key:?}: a {app} flow identified as {got}"));
                }
                continue;
            }
        };
        if got != want {
            d.push(format!("{key:?}: truth {app}, app_proto {got}"));
        } else if f.get("scenario").is_none() && !evs.iter().any(|e| e["event_type"] == want && field(e) == detail) {
            d.push(format!("{key:?}: no {want} event naming {detail:?} in {evs:?}"));
        }
    }
    d
}

fn diff(want: &BTreeMap<Key, Vec<[u64; 4]>>, got: &BTreeMap<Key, Vec<[u64; 4]>>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in want {
        if got.get(k) != Some(v) {
            d.push(format!("{k:?}: truth {v:?}, reported {:?}", got.get(k)));
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        d.push(format!("{k:?}: reported {:?}, not in the truth", got[k]));
    }
    d
}

#[test]
fn generated_truth_matches_the_records() {
    let d = TempDir::new("truth");
    let p = d.path("traffic.pcap");
    let cfg = TrafficConfig {
        seed: 42,
        flows: 3000,
        encap: EncapMix { none: 80, vlan: 8, qinq: 4, vxlan: 4, gre: 4 },
        ipv6_percent: 15,
        attacks: Attack::ALL.to_vec(),
        ..TrafficConfig::default()
    };
    let mut w = capture::pcap::PcapWriter::create(&p).unwrap();
    let t = generate(&cfg, |ts, f| w.write(ts, f, f.len() as u32).unwrap());
    w.finish().unwrap();
    let truth: Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(truth["scenarios"].as_array().unwrap().len(), 7);
    for app in ["http", "tls", "dns", "dns-tcp", "ssh", "udp", "icmp", "tcp", "ftp"] {
        assert!(t.flows.iter().any(|f| f.app == app), "no {app} flow generated");
    }
    for enc in ["none", "vlan", "qinq", "vxlan", "gre"] {
        assert!(t.flows.iter().any(|f| f.encap == enc), "no {enc} flow generated");
    }
    let want = expected(&truth);
    let file = replay(&["--source", "file", "--workers", "2", p.to_str().unwrap()]);
    assert_eq!(counter(&file.stderr, "input packets"), t.packets);
    let d1 = diff(&want, &reported(&file));
    assert!(d1.is_empty(), "{} differences (file):\n{}", d1.len(), d1[..d1.len().min(20)].join("\n"));
    let a1 = app_diff(&truth, &file);
    assert!(a1.is_empty(), "{} app-layer differences (file):\n{}", a1.len(), a1[..a1.len().min(20)].join("\n"));
    let apps = |p: &str| file.flows().filter(|e| e["app_proto"] == p).count();
    for p in ["http", "tls", "dns", "ssh"] {
        assert!(apps(p) > 10, "only {} {p} flows", apps(p));
    }
    #[cfg(feature = "dpdk")]
    {
        let dpdk = replay(&["--source", "dpdk", "--workers", "2", p.to_str().unwrap()]);
        let d2 = diff(&want, &reported(&dpdk));
        assert!(d2.is_empty(), "{} differences (dpdk):\n{}", d2.len(), d2[..d2.len().min(20)].join("\n"));
    }
}
