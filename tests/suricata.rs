//! Side by side with Suricata 7 (`suricata -r FILE -k none`): the same flows with the same
//! packet and byte counts per direction. Runs when `suricata` is installed (.ci/run installs
//! it from bookworm-backports); otherwise it says why it did not run.

mod common;
use common::*;
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
        ])
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
