//! DHCP end to end: the generator's leases against the records, the records against Suricata 7's
//! extended DHCP log on the same capture and on suricata-verify's DHCP captures, and the same
//! records at every worker count.

mod common;
use common::*;
use pcapgen::traffic::{generate as gen_traffic, ProtoMix, TrafficConfig};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn capture(d: &TempDir) -> (std::path::PathBuf, Value) {
    let p = d.path("dhcp.pcap");
    let cfg = TrafficConfig {
        seed: 7,
        flows: 400,
        ipv6_percent: 20,
        mix: ProtoMix { dhcp: 30, dns_udp: 20, udp: 10, http: 10, ..ProtoMix::NONE },
        ..TrafficConfig::default()
    };
    let mut w = capture::pcap::PcapWriter::create(&p).unwrap();
    let t = gen_traffic(&cfg, |ts, f| w.write(ts, f, f.len() as u32).unwrap());
    w.finish().unwrap();
    (p, serde_json::from_str(&t.to_json()).unwrap())
}

/// A DHCP record without what differs by design from Suricata's (its `pcap_cnt`, `pkt_src`;
/// flow ids are each sensor's own).
fn comparable(e: &Value) -> String {
    let mut e = e.clone();
    for k in ["flow_id", "pcap_cnt", "pkt_src"] {
        e.as_object_mut().unwrap().remove(k);
    }
    e.to_string()
}

#[test]
fn every_generated_lease_is_two_records_naming_host_mac_and_address() {
    let d = TempDir::new("dhcp-truth");
    let (p, truth) = capture(&d);
    let r = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
    let leases: Vec<&Value> = truth["flows"].as_array().unwrap().iter().filter(|f| f["app"] == "dhcp").collect();
    assert!(leases.len() > 50, "only {} DHCP flows generated", leases.len());
    let recs: Vec<&Value> = r.of_type("dhcp").collect();
    assert_eq!(recs.len(), 2 * leases.len(), "{}", r.stderr);
    for f in &leases {
        let client = f["src_ip"].as_str().unwrap();
        let mine: Vec<&&Value> = recs.iter().filter(|e| e["dhcp"]["client_ip"] == client).collect();
        assert_eq!(mine.len(), 2, "{client}: {mine:?}");
        let (req, ack) = (&mine[0], &mine[1]);
        assert_eq!(req["dhcp"]["type"], "request");
        assert_eq!(req["dhcp"]["dhcp_type"], "request");
        assert_eq!(req["src_ip"], client, "a request faces from the client");
        assert_eq!(req["dhcp"]["params"], serde_json::json!(["subnet_mask", "router", "domain", "dns_server"]));
        assert_eq!(ack["dhcp"]["dhcp_type"], "ack");
        assert_eq!(ack["dest_ip"], client, "an ack faces from the server");
        assert_eq!(ack["dhcp"]["assigned_ip"], client);
        assert_eq!(ack["dhcp"]["routers"][0], f["dest_ip"]);
        for e in [req, ack] {
            assert_eq!(e["dhcp"]["hostname"], f["detail"]);
            assert_eq!(e["dhcp"]["client_mac"], req["dhcp"]["client_id"]);
        }
        let lease = ack["dhcp"]["lease_time"].as_u64().unwrap();
        assert_eq!(ack["dhcp"]["renewal_time"].as_u64().unwrap(), lease / 2);
    }
    assert_eq!(r.flows().filter(|e| e["app_proto"] == "dhcp").count(), leases.len());
    assert_eq!(
        counter(&r.stderr, "app events"),
        2 * leases.len() as u64 + r.of_type("dns").count() as u64 + r.of_type("http").count() as u64
    );
    for (what, o) in runs_at_other_worker_counts(&p) {
        assert_same_lines(&r, &o, &what);
    }
}

/// Suricata's eve.json for `pcap` with the DHCP log in extended mode (as spinewatch writes it).
fn suricata_dhcp(pcap: &Path, dir: &TempDir, run: usize) -> Vec<String> {
    let yaml = std::fs::read_to_string("/etc/suricata/suricata.yaml").expect("Suricata's default config");
    let at = yaml.find("- dhcp:").expect("a dhcp log in Suricata's config");
    let ext = at + yaml[at..].find("extended: no").expect("dhcp's extended key");
    let yaml = format!("{}extended: yes{}", &yaml[..ext], &yaml[ext + "extended: no".len()..]);
    let cfg = dir.path("suricata.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let logs = dir.path(&format!("suricata-{run}"));
    std::fs::create_dir_all(&logs).unwrap();
    let o = Command::new("suricata")
        .args(["-r", pcap.to_str().unwrap(), "-k", "none", "-S", "/dev/null", "--runmode", "single", "-c"])
        .arg(&cfg)
        .arg("-l")
        .arg(&logs)
        .output()
        .unwrap();
    assert!(o.status.success(), "suricata: {}", String::from_utf8_lossy(&o.stderr));
    let mut v: Vec<String> = std::fs::read_to_string(logs.join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event_type"] == "dhcp")
        .map(|e| comparable(&e))
        .collect();
    v.sort();
    v
}

fn ours(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = r.of_type("dhcp").map(comparable).collect();
    v.sort();
    v
}

#[test]
fn dhcp_records_are_suricatas_extended_ones() {
    if !suricata_available() {
        return;
    }
    let d = TempDir::new("dhcp-suricata");
    let (p, _) = capture(&d);
    let mut inputs = vec![p];
    let sv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/suricata-verify/tests/dhcp-eve-extended/input.pcap");
    assert!(sv.is_file() || std::env::var_os("CI").is_none(), "CI must have {}", sv.display());
    if sv.is_file() {
        inputs.push(sv);
    }
    for (i, pcap) in inputs.into_iter().enumerate() {
        let r = replay(&["--source", "file", "--workers", "1", pcap.to_str().unwrap()]);
        let (a, b) = (ours(&r), suricata_dhcp(&pcap, &d, i));
        assert!(!a.is_empty());
        let only_a: Vec<&String> = a.iter().filter(|l| !b.contains(l)).take(3).collect();
        let only_b: Vec<&String> = b.iter().filter(|l| !a.contains(l)).take(3).collect();
        assert!(
            a == b,
            "{}: {} records, Suricata {}\nours only: {only_a:#?}\nSuricata only: {only_b:#?}",
            pcap.display(),
            a.len(),
            b.len()
        );
    }
}
