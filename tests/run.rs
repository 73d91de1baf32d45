//! `spinewatch run` on a live DPDK vdev (net_pcap replaying from memory, TSC clock), stopped
//! with SIGINT: every live flow is written with reason "shutdown", the exporter drained, the
//! summary printed and balanced; meanwhile the Prometheus endpoint and the JSON stats file
//! show the live counters.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn run_until_sigint_flushes_everything() {
    let d = TempDir::new("run");
    let q0 = d.path("q0.pcap");
    let q1 = d.path("q1.pcap");
    write_pcap(&q0, &pcapgen::many_flows(1, 100, 10, pcapgen::SizeMix::Small));
    write_pcap(&q1, &pcapgen::many_flows(2, 100, 10, pcapgen::SizeMix::Small));
    let eve = d.path("eve.json");
    let cfg = d.path("vdev.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stats = d.path("stats.json");
    let rest = format!(
        "[export]\neve = \"{}\"\n[stats]\ninterval_secs = 1\nfile = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        eve.display(),
        stats.display()
    );
    std::fs::write(&cfg, vdev_run_config(&[&q0, &q1], "sw-run-test", &rest)).unwrap();
    let child = Command::new(bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // The endpoint, while the sensor runs: every family, a row per worker, the port's packets.
    let metrics = http_get(port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    for w in ["0", "1"] {
        assert!(metrics.contains(&format!("spinewatch_packets_total{{worker=\"{w}\"}}")), "{metrics}");
    }
    assert!(value("spinewatch_packets_total") > 10_000, "{metrics}");
    assert!(value("spinewatch_port_ipackets_total{port=") > 10_000, "{metrics}");
    assert_eq!(value("spinewatch_flows_active"), 200, "{metrics}");
    assert_eq!(value("spinewatch_flow_capacity") % 2, 0);
    assert!(metrics.contains("spinewatch_sink_sent_total{sink=\"file:"), "{metrics}");
    assert!(metrics.contains("# TYPE spinewatch_reassembly_bytes gauge"), "{metrics}");
    // Which core and queue each worker has; the drops on its queues (Prometheus takes rates).
    for (w, core) in [("0", "0"), ("1", "1")] {
        let info = format!("spinewatch_worker_info{{worker=\"{w}\",core=\"{core}\",queues=\"net_pcap0:{w}\"}} 1");
        assert!(metrics.contains(&info), "{info} in {metrics}");
        assert!(metrics.contains(&format!("spinewatch_queue_drops_total{{worker=\"{w}\"}} 0")), "{metrics}");
    }
    assert!(http_get(port, "/nope").starts_with("HTTP/1.1 404"));
    std::thread::sleep(Duration::from_secs(1));
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("accounting           balanced"), "{err}");
    assert!(err.contains("INFO stats"), "no periodic stats line: {err}");
    // Its rates per worker (core and queue) and per port.
    let line = err.lines().rfind(|l| l.contains("INFO stats")).unwrap();
    for want in ["w0@core0[net_pcap0:0] ", "w1@core1[net_pcap0:1] ", "; port net_pcap0"] {
        assert!(line.contains(want), "{want} in {line}");
    }
    let processed = counter(&err, "packets processed");
    assert!(processed > 100_000, "{processed} packets in 4 s");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&eve).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 200 flows, all still live (packets keep coming) when SIGINT arrives.
    assert_eq!(lines.len(), 200, "{err}");
    assert!(lines.iter().all(|e| e["flow"]["reason"] == "shutdown"));
    let pkts: u64 = lines
        .iter()
        .map(|e| e["flow"]["pkts_toserver"].as_u64().unwrap() + e["flow"]["pkts_toclient"].as_u64().unwrap())
        .sum();
    assert_eq!(pkts, processed, "every processed packet is on a record");
    // The JSON stats: a line a second, each an object with the workers' and the port's counters.
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&stats).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2, "{} stats lines", lines.len());
    let last = lines.last().unwrap();
    assert_eq!(last["workers"].as_array().unwrap().len(), 2);
    assert!(last["ports"][0]["ipackets"].as_u64().unwrap() > 10_000, "{last}");
    // Rates over the last second, per worker (its core and queue) and per port: the packets
    // each queue delivered per second, and the drops per second (none here).
    let mut sum = 0.0;
    for (i, w) in last["workers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(w["core"], i as u64, "{w}");
        assert_eq!(w["queues"], serde_json::json!([format!("net_pcap0:{i}")]), "{w}");
        let pps = w["pps"].as_f64().unwrap();
        assert!(pps > 5_000.0, "worker {i}: {pps} packets/s: {w}");
        assert_eq!(w["drops_per_sec"].as_f64(), Some(0.0), "{w}");
        sum += pps;
    }
    let port_pps = last["ports"][0]["pps"].as_f64().unwrap();
    assert!(port_pps > 0.5 * sum, "the port's rate ({port_pps}) against its queues' ({sum}): {last}");
    assert_eq!(last["ports"][0]["drops_per_sec"].as_f64(), Some(0.0), "{last}");
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn bench_reports_rates_per_worker() {
    let d = TempDir::new("bench");
    let p = d.path("b.pcap");
    write_pcap(&p, &pcapgen::many_flows(5, 300, 10, pcapgen::SizeMix::Imix));
    for (stage, workers) in [("full", "2"), ("rx", "1"), ("decode", "1"), ("flow", "1")] {
        let out = Command::new(bin())
            .args([
                "bench",
                "--pipeline",
                stage,
                "--workers",
                workers,
                "--duration",
                "0.5",
                "--warmup",
                "0.3",
                "--json",
            ])
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stage}: {err}");
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{stage}: {e}: {err}"));
        assert_eq!(v["pipeline"], stage);
        assert_eq!(v["workers"].as_u64().unwrap(), workers.parse::<u64>().unwrap());
        let per = v["per_worker"].as_array().unwrap();
        assert_eq!(per.len() as u64, v["workers"].as_u64().unwrap());
        let sum: u64 = per.iter().map(|w| w["packets"].as_u64().unwrap()).sum();
        assert_eq!(sum, v["packets"].as_u64().unwrap());
        assert!(v["mpps"].as_f64().unwrap() > 0.05, "{stage}: {v}");
        assert!(v["gbps"].as_f64().unwrap() > 0.0);
        for w in per {
            let l = &w["latency_ns"];
            assert!(l["p50"].as_u64().unwrap() <= l["p99"].as_u64().unwrap());
            assert!(l["p99"].as_u64().unwrap() <= l["max"].as_u64().unwrap());
            assert!(w["cycles_per_packet"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(v["drops"]["rx_nombuf"], 0);
        if stage == "full" || stage == "flow" {
            // 300 flows replayed forever: all live in the tables.
            assert_eq!(v["flow_table"]["active"], 300, "{v}");
        }
        assert!(v["peak_rss_mib"].as_f64().unwrap() > 0.0);
    }
}

/// `run` asking for hugepages on a machine without them says so and what to do, instead of
/// EAL's "Permission denied" (which it says even to root).
#[test]
fn no_hugepages_is_said_plainly() {
    let d = TempDir::new("nohuge");
    let q0 = d.path("q0.pcap");
    write_pcap(&q0, &pcapgen::many_flows(1, 10, 4, pcapgen::SizeMix::Small));
    let cfg = d.path("huge.toml");
    let text = vdev_run_config(&[&q0], "sw-huge-test", "[export]\neve = \"none\"\n")
        .replace("hugepages = false", "hugepages = true");
    std::fs::write(&cfg, text).unwrap();
    let reserved: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("HugePages_Total:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let out = Command::new(bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    // With hugepages the sensor runs: stop it.
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    let out = out.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Success (0)"), "{err}");
    if reserved == 0 {
        assert!(!out.status.success());
        assert!(err.contains("dpdk.hugepages = true but this machine has no hugepages reserved"), "{err}");
        assert!(err.contains("or set dpdk.hugepages = false with dpdk.memory_mb"), "{err}");
        assert!(!err.contains("Permission denied"), "{err}");
    }
}
