//! Triggered packet capture: the generator's attacks with the demo rules, `[alert_capture]` on.
//! The pcapng files must hold every packet of every flow that alerted, or on which a
//! thresholded rule matched (the ring and
//! `packets_before` are large enough here to still hold everything from before the alert; an
//! HTTP rule alerts when the transaction completes, after the response), replaying them must
//! raise the same signatures on the same flows, and the files must stay within their bounds.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

fn tuple(e: &serde_json::Value) -> String {
    format!("{} {} {} {} {}", e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"])
}

/// Flow tuple → packets, summed over the flow's records.
fn flow_packets(r: &Run) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in r.flows() {
        let f = &e["flow"];
        *m.entry(tuple(e)).or_insert(0) += f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
    }
    m
}

#[test]
fn alerting_flows_are_written_whole_and_replay_to_the_same_alerts() {
    let d = TempDir::new("evidence");
    let pcap = d.path("att.pcap");
    let out = std::process::Command::new(bin())
        .args(["gen", "--preset", "imix-dc", "--flows", "300", "--attacks", "all", "--max-packets", "30"])
        .args(["--out", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rules = format!("{}/configs/rules/demo.rules", env!("CARGO_MANIFEST_DIR"));
    // The capture replayed with the rules and `[alert_capture]` into `dir` (`extra`: more keys).
    let run = |dir: &std::path::Path, extra: &str| -> Run {
        let cfg = d.path("c.toml");
        let keys = "packets_before = 65536\nring_packets = 65536\nsnaplen = 9216\n";
        let text = format!(
            "[alert_capture]\nenabled = true\ndir = \"{}\"\n{keys}{extra}[behaviour]\nenabled = false\n",
            dir.display()
        );
        std::fs::write(&cfg, text).unwrap();
        let c = cfg.to_str().unwrap();
        replay(&["--config", c, "--source", "file", "--workers", "2", "--rules", &rules, pcap.to_str().unwrap()])
    };
    let dir = d.path("pcap");
    let orig = run(&dir, "file_bytes = 16384\nfiles = 3\n");
    let alerts: Vec<&serde_json::Value> = orig.of_type("alert").collect();
    assert!(alerts.len() >= 10, "{}", orig.stderr);
    let line = orig.stderr.lines().find(|l| l.contains("alert capture")).expect("an alert capture line");
    let num = |key: &str| -> u64 {
        let at = line.find(key).unwrap() + key.len();
        line[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    // Bounded: small files, at most 3 kept per worker, though more were written.
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(num("in") > files.len() as u64, "rotation: {line}");
    for w in 0..2 {
        let n = files.iter().filter(|p| p.to_string_lossy().contains(&format!("alerts-w{w}-"))).count();
        assert!((1..=3).contains(&n), "worker {w}: {n} files");
    }
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() < 16384 + 2 * 9300, "{}", f.display());
    }
    // The kept files only hold the latest flows: check the whole capture with files big enough.
    let dir2 = d.path("pcap2");
    let orig = run(&dir2, "");
    let line = orig.stderr.lines().find(|l| l.contains("alert capture")).expect("an alert capture line");
    assert!(line.contains("(dropped 0)"), "{line}");
    let mut evidence: Vec<String> =
        std::fs::read_dir(&dir2).unwrap().map(|e| e.unwrap().path().to_string_lossy().into_owned()).collect();
    evidence.sort();
    let mut args = vec!["--source", "file", "--workers", "1", "--rules", &rules];
    args.extend(evidence.iter().map(String::as_str));
    let again = replay(&args);
    // Every flow that alerted is in the evidence with all its packets, and nothing else is.
    let want = flow_packets(&orig);
    let got = flow_packets(&again);
    let alerted: BTreeSet<String> = orig.of_type("alert").filter(|a| a["flow_id"].is_u64()).map(tuple).collect();
    for t in &alerted {
        assert_eq!(got.get(t), want.get(t), "flow {t}");
    }
    // And the flows a thresholded rule matched without alerting: whether a match alerts is
    // decided across workers after the worker has seen the packet, so the capture keeps every
    // flow a rule matched. Those are the alerting flows of the same rules without thresholds.
    let text = std::fs::read_to_string(&rules).unwrap();
    let unthresholded: String = text
        .lines()
        .map(|l| match l.find("threshold:") {
            Some(i) => format!("{}{}", &l[..i], &l[i + l[i..].find(';').unwrap() + 1..]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(unthresholded, text, "the demo rules have thresholds");
    let plain = d.path("plain.rules");
    std::fs::write(&plain, unthresholded).unwrap();
    let cfg = d.path("plain.toml");
    std::fs::write(&cfg, "[behaviour]\nenabled = false\n").unwrap();
    let every = replay(
        &["--config", cfg.to_str().unwrap(), "--source", "file", "--workers", "2", "--rules"]
            .into_iter()
            .chain([plain.to_str().unwrap(), pcap.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    let matched: BTreeSet<String> = every.of_type("alert").filter(|a| a["flow_id"].is_u64()).map(tuple).collect();
    assert!(matched.len() > alerted.len(), "thresholds suppressed some matches");
    assert!(alerted.is_subset(&matched));
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), matched);
    // The signatures without thresholds alert on the same flows again.
    let sids = |r: &Run| -> BTreeSet<(String, u64)> {
        r.of_type("alert")
            .filter(|a| [9000001, 9000002, 9000006].contains(&a["alert"]["signature_id"].as_u64().unwrap()))
            .map(|a| (tuple(a), a["alert"]["signature_id"].as_u64().unwrap()))
            .collect()
    };
    assert!(!sids(&orig).is_empty());
    assert_eq!(sids(&again), sids(&orig));
}
