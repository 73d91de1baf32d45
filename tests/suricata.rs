//! Side by side with Suricata 7 (`suricata -r FILE -k none`): the same flows with the same
//! packet and byte counts per direction, the same `app_proto`, and the same dns / http / tls /
//! ssh events field by field for the fields both write. Runs when `suricata` is installed
//! (.ci/run installs it from bookworm-backports); otherwise it says why it did not run.

mod common;
use common::*;
use pcapgen::traffic::generate;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

fn suricata_available() -> bool {
    Command::new("suricata").arg("-V").output().map(|o| o.status.success()).unwrap_or(false)
}

/// Flow key → (pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state), summed over
/// records of the same key (a key can have several flows over time).
type Counts = (u64, u64, u64, u64, String);

fn table(events: &[Value]) -> BTreeMap<String, Vec<Counts>> {
    let mut m: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        let k = format!(
            "{}|{}|{}|{}|{}|{}",
            e["vlan"], e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"]
        );
        let f = &e["flow"];
        m.entry(k).or_default().push((
            f["pkts_toserver"].as_u64().unwrap(),
            f["pkts_toclient"].as_u64().unwrap(),
            f["bytes_toserver"].as_u64().unwrap(),
            f["bytes_toclient"].as_u64().unwrap(),
            f["state"].as_str().unwrap().to_owned(),
        ));
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

fn run_suricata(d: &TempDir, pcap: &std::path::Path) -> Vec<Value> {
    run_suricata_with(d, pcap, &[])
}

/// Suricata on `pcap`, with more `--set` options.
fn run_suricata_with(d: &TempDir, pcap: &std::path::Path, sets: &[&str]) -> Vec<Value> {
    let logdir = d.path("suricata");
    std::fs::create_dir_all(&logdir).unwrap();
    let out = Command::new("suricata")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-k",
            "none",
            "-S",
            "/dev/null",
            "--runmode",
            "single",
            "-l",
            logdir.to_str().unwrap(),
            // the fingerprints spinewatch always writes
            "--set",
            "app-layer.protocols.tls.ja3-fingerprints=yes",
            "--set",
            "app-layer.protocols.ssh.hassh=yes",
        ])
        .args(sets.iter().flat_map(|s| ["--set", s]))
        .output()
        .expect("run suricata");
    assert!(out.status.success(), "suricata failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(logdir.join("eve.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn same_flows_and_counts_as_suricata() {
    if !suricata_available() {
        // CI installs Suricata (scripts/deps.sh --test): there, its absence is a failure.
        assert!(std::env::var_os("CI").is_none(), "CI must have suricata installed (scripts/deps.sh --test)");
        eprintln!("SKIPPED same_flows_and_counts_as_suricata: `suricata` is not installed (scripts/deps.sh --test installs it)");
        return;
    }
    let d = TempDir::new("suricata");
    let mut pkts = pcapgen::mixed();
    // Plus many TCP sessions with real handshakes and UDP flows, IMIX sizes.
    pkts.extend(pcapgen::many_flows(11, 500, 8, pcapgen::SizeMix::Imix).into_iter().map(|(t, f)| (t + 400_000_000, f)));
    let p = d.path("mixed.pcap");
    write_pcap(&p, &pkts);
    let ours = replay(&["--source", "file", "--workers", "2", p.to_str().unwrap()]);
    let theirs = run_suricata(&d, &p);
    let (a, b) = (table(&ours.events), table(&theirs));
    assert_eq!(a.len(), 15 - 1 + 500, "distinct flow keys (the UDP key with a 100 s gap has two flows)");
    let mut diffs = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None => diffs.push(format!("only in Suricata: {k} {v:?}")),
            Some(w) => {
                let strip =
                    |x: &Vec<(u64, u64, u64, u64, String)>| x.iter().map(|t| (t.0, t.1, t.2, t.3)).collect::<Vec<_>>();
                if strip(v) != strip(w) {
                    diffs.push(format!("counts differ for {k}: suricata {v:?} spinewatch {w:?}"));
                }
                // Flow state too, for flows Suricata's stream engine follows the same way.
                if v.iter().map(|t| &t.4).collect::<Vec<_>>() != w.iter().map(|t| &t.4).collect::<Vec<_>>() {
                    diffs.push(format!("state differs for {k}: suricata {v:?} spinewatch {w:?}"));
                }
            }
        }
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        diffs.push(format!("only in spinewatch: {k}"));
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}

/// Fields only spinewatch writes (extensions, listed in the README); everything else either
/// both write, with the same value, or it is a difference.
const OURS_ONLY: [&str; 5] = ["request_body_len", "client_alpns", "server_alpns", "ja4", "tunnel"];

/// (event type, tuple) → the events' type objects, sorted.
fn app_table(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in events {
        let t = e["event_type"].as_str().unwrap_or("");
        let body = match t {
            "dns" | "http" | "tls" | "ssh" => e[t].clone(),
            "flow" => serde_json::json!({ "app_proto": e["app_proto"] }),
            _ => continue,
        };
        let k = format!(
            "{t}|{}|{}|{}|{}|{}|{}",
            e["vlan"], e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"]
        );
        m.entry(k).or_default().push(body);
    }
    for v in m.values_mut() {
        v.sort_by_key(|x| x.to_string());
    }
    m
}

/// Community ID v1 with a seed: the same id as Suricata's on every flow record (TCP, UDP, ICMP
/// and ICMPv6, IPv4 and IPv6, VLANs and tunnels), and every event of a flow carries its flow's.
#[test]
fn same_community_ids_as_suricata() {
    if !suricata_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have suricata installed (scripts/deps.sh --test)");
        eprintln!("SKIPPED same_community_ids_as_suricata: `suricata` is not installed");
        return;
    }
    let d = TempDir::new("suricata-cid");
    let p = d.path("app.pcap");
    let cfg = app_traffic(11);
    let mut w = capture::pcap::PcapWriter::create(&p).unwrap();
    generate(&cfg, |ts, f| w.write(ts, f, f.len() as u32).unwrap());
    w.finish().unwrap();
    let conf = d.path("cid.toml");
    std::fs::write(&conf, "[export]\ncommunity_id = true\ncommunity_id_seed = 4242\n").unwrap();
    let ours = replay(&["--source", "file", "--workers", "2", "--config", conf.to_str().unwrap(), p.to_str().unwrap()]);
    let theirs =
        run_suricata_with(&d, &p, &["outputs.1.eve-log.community-id=true", "outputs.1.eve-log.community-id-seed=4242"]);
    let ids = |events: &[Value]| -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut m: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for e in events.iter().filter(|e| e["event_type"] == "flow") {
            let k = format!(
                "{}|{}|{}|{}|{}|{}",
                e["vlan"], e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"]
            );
            let id = e["community_id"].as_str().unwrap_or_else(|| panic!("no community_id: {e}"));
            m.entry(k).or_default().insert(id.to_string());
        }
        m
    };
    let (a, b) = (ids(&ours.events), ids(&theirs));
    let protos: std::collections::BTreeSet<&str> = a.keys().map(|k| k.rsplit('|').next().unwrap()).collect();
    assert!(protos.len() >= 4, "TCP, UDP, ICMP and ICMPv6 flows: {protos:?}");
    let differ: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: suricata {v:?}, ours {:?}", a.get(k)))
        .collect();
    assert!(differ.is_empty(), "{} of {} flows differ:\n{}", differ.len(), b.len(), differ.join("\n"));
    assert_eq!(a.len(), b.len());
    // Each event of a flow carries the flow record's id.
    let by_flow: BTreeMap<u64, &str> = ours
        .events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| (e["flow_id"].as_u64().unwrap(), e["community_id"].as_str().unwrap()))
        .collect();
    let mut events = 0;
    for e in ours.events.iter().filter(|e| e["event_type"] != "flow" && e["flow_id"].is_u64()) {
        assert_eq!(e["community_id"].as_str(), Some(by_flow[&e["flow_id"].as_u64().unwrap()]), "{e}");
        events += 1;
    }
    assert!(events > 100, "{events} events checked");
    // Off by default, as in Suricata.
    let plain = replay(&["--source", "file", p.to_str().unwrap()]);
    assert!(plain.events.iter().all(|e| e.get("community_id").is_none()));
}

fn app_traffic(seed: u64) -> pcapgen::traffic::TrafficConfig {
    use pcapgen::traffic::{EncapMix, ProtoMix, TrafficConfig};
    TrafficConfig {
        seed,
        flows: 600,
        mix: ProtoMix {
            tcp: 10,
            http: 30,
            tls: 30,
            dns_udp: 15,
            dns_tcp: 5,
            ssh: 5,
            udp: 3,
            icmp: 2,
            ..ProtoMix::NONE
        },
        encap: EncapMix { none: 80, vlan: 8, qinq: 4, vxlan: 4, gre: 4 },
        ipv6_percent: 15,
        ..TrafficConfig::default()
    }
}

#[test]
fn same_app_events_as_suricata() {
    if !suricata_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must have suricata installed (scripts/deps.sh --test)");
        eprintln!(
            "SKIPPED same_app_events_as_suricata: `suricata` is not installed (scripts/deps.sh --test installs it)"
        );
        return;
    }
    let d = TempDir::new("suricata-app");
    let p = d.path("app.pcap");
    let cfg = app_traffic(7);
    let mut w = capture::pcap::PcapWriter::create(&p).unwrap();
    generate(&cfg, |ts, f| w.write(ts, f, f.len() as u32).unwrap());
    w.finish().unwrap();
    let ours = replay(&["--source", "file", "--workers", "2", p.to_str().unwrap()]);
    let theirs = run_suricata(&d, &p);
    let (a, b) = (app_table(&ours.events), app_table(&theirs));
    let mut diffs = Vec::new();
    let mut compared = BTreeMap::<String, usize>::new();
    for k in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (x, y) = (a.get(k).map(Vec::as_slice).unwrap_or(&[]), b.get(k).map(Vec::as_slice).unwrap_or(&[]));
        if x.len() != y.len() {
            diffs.push(format!("{k}: spinewatch {} events, suricata {}: {x:?} / {y:?}", x.len(), y.len()));
            continue;
        }
        for (ev, sv) in x.iter().zip(y) {
            let (eo, so) = (ev.as_object().unwrap(), sv.as_object().unwrap());
            for (f, v) in so {
                match eo.get(f) {
                    Some(w) if w == v => {
                        *compared.entry(format!("{}.{f}", k.split('|').next().unwrap())).or_default() += 1
                    }
                    Some(w) => diffs.push(format!("{k}: {f}: spinewatch {w}, suricata {v}")),
                    None if v.is_null() => {}
                    None => diffs.push(format!("{k}: {f} only in suricata ({v})")),
                }
            }
            for f in eo.keys().filter(|f| !so.contains_key(*f) && !OURS_ONLY.contains(&f.as_str())) {
                if !eo[f].is_null() {
                    diffs.push(format!("{k}: {f} only in spinewatch ({})", eo[f]));
                }
            }
        }
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs[..diffs.len().min(30)].join("\n"));
    // It compared something of each: the fields that carry the metadata.
    for f in [
        "flow.app_proto",
        "dns.rrname",
        "dns.answers",
        "http.hostname",
        "http.url",
        "http.status",
        "tls.sni",
        "tls.ja3",
        "tls.ja3s",
        "tls.subject",
        "tls.fingerprint",
        "ssh.client",
        "ssh.server",
    ] {
        assert!(compared.get(f).copied().unwrap_or(0) >= 3, "too few {f} compared: {compared:?}");
    }
}
