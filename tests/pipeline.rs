//! Pipeline tests: generated captures → `spinewatch replay` → EVE, with exact expected records.

mod common;
use common::*;
use pcapgen::{flags, ip, udp_frame, TcpSession, L2, T0};

const V6A: &str = "2001:0db8:0000:0000:0000:0000:0000:0001";
const V6B: &str = "2001:0db8:0000:0000:0000:0000:0000:0002";

fn expected_mixed() -> Vec<String> {
    let mut v: Vec<String> = [
        // (a) handshake + data + FIN both ways: closed; ended by the 60 s closed timeout.
        "-|10.0.0.1|40000|10.0.0.2|80|TCP|6|5|379|351|closed|timeout|closed|http".to_string(),
        // (b) SYN answered by RST-ACK.
        "-|10.0.0.1|40001|10.0.0.2|81|TCP|1|1|54|54|closed|timeout|closed|-".into(),
        // (c) half-open.
        "-|10.0.0.1|40002|10.0.0.2|443|TCP|1|0|54|0|new|timeout|syn_sent|-".into(),
        // (d) DNS-like exchange (established, still live at the end) and a one-way packet; their
        // payloads are not DNS, so app_proto is failed, as for every UDP flow with payload that
        // no parser recognises.
        "-|10.0.0.1|33333|10.0.0.3|53|UDP|1|1|71|98|established|shutdown|-|failed".into(),
        "-|10.0.0.1|44444|10.0.0.4|9999|UDP|1|0|48|0|new|timeout|-|failed".into(),
        // (e) two echo ids, one ICMP flow.
        "-|10.0.0.1|-|10.0.0.5|-|ICMP|2|2|148|148|established|shutdown|-|-".into(),
        // (f) IPv6 TCP without close.
        format!("-|{V6A}|40000|{V6B}|80|TCP|3|2|252|148|established|shutdown|established|http"),
        // (g) same 5-tuple in VLAN 100: its own flow; server closes first.
        "100|10.0.0.1|40000|10.0.0.2|80|TCP|5|4|312|259|closed|timeout|closed|http".into(),
        // (h) QinQ.
        "200,300|10.0.0.1|5000|10.0.0.6|6000|UDP|1|0|62|0|new|timeout|-|failed".into(),
        // (i) ICMPv6 echo.
        format!("-|{V6A}|-|{V6B}|-|IPv6-ICMP|1|1|72|72|established|shutdown|-|-"),
        // (j) established TCP idle 200 s: one flow, age 200; payload one way only, so no
        // app_proto (Suricata writes none either).
        "-|10.0.0.1|40010|10.0.0.7|8080|TCP|4|1|230|54|established|shutdown|established|-".into(),
        // (k) one-way UDP, 100 s gap > 30 s new timeout: two flows.
        "-|10.0.0.1|7000|10.0.0.8|7001|UDP|1|0|51|0|new|timeout|-|failed".into(),
        "-|10.0.0.1|7000|10.0.0.8|7001|UDP|1|0|51|0|new|timeout|-|failed".into(),
        // (l) two-way UDP, 100 s gap < 300 s established timeout: one flow.
        "-|10.0.0.1|7100|10.0.0.8|7101|UDP|2|1|102|51|established|shutdown|-|failed".into(),
        // (m) mid-stream pick-up: no session state.
        "-|10.0.0.1|40020|10.0.0.9|22|TCP|1|1|65|54|new|timeout|-|-".into(),
    ]
    .to_vec();
    v.sort();
    v
}

#[test]
fn mixed_capture_exact_records() {
    let d = TempDir::new("mixed");
    let p = d.path("mixed.pcap");
    write_pcap(&p, &pcapgen::mixed());
    let r = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
    assert_eq!(sorted_summaries(&r), expected_mixed());
    // The whole line of flow (a), field by field as Suricata writes it.
    let a = r
        .lines
        .iter()
        .find(|l| {
            l.contains("\"src_port\":40000,\"dest_ip\":\"10.0.0.2\"") && !l.contains("vlan") && l.contains("\"flow\"")
        })
        .unwrap();
    assert_eq!(
        a,
        r#"{"timestamp":"2023-11-14T22:14:20.010000+0000","flow_id":3583127686,"event_type":"flow","src_ip":"10.0.0.1","src_port":40000,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","app_proto":"http","flow":{"pkts_toserver":6,"pkts_toclient":5,"bytes_toserver":379,"bytes_toclient":351,"start":"2023-11-14T22:13:20.000000+0000","end":"2023-11-14T22:13:20.010000+0000","age":0,"state":"closed","reason":"timeout","alerted":false},"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}"#
    );
    // Its two HTTP transactions, and those of (f) and (g), field by field; the flows whose
    // payload is not one of our protocols have no app-layer events.
    let http: Vec<String> = r.of_type("http").map(|e| e.to_string()).collect();
    assert_eq!(
        http,
        [
            r#"{"dest_ip":"10.0.0.2","dest_port":80,"event_type":"http","flow_id":3583127686,"http":{"hostname":"x","http_method":"GET","length":5,"protocol":"HTTP/1.1","request_body_len":0,"status":200,"url":"/"},"proto":"TCP","src_ip":"10.0.0.1","src_port":40000,"timestamp":"2023-11-14T22:13:20.004000+0000","tx_id":0}"#,
            r#"{"dest_ip":"10.0.0.2","dest_port":80,"event_type":"http","flow_id":3583127686,"http":{"hostname":"x","http_method":"GET","length":0,"protocol":"HTTP/1.1","request_body_len":0,"status":200,"url":"/2"},"proto":"TCP","src_ip":"10.0.0.1","src_port":40000,"timestamp":"2023-11-14T22:13:20.006000+0000","tx_id":1}"#,
            // (g): 204 without a body, no Host header
            r#"{"dest_ip":"10.0.0.2","dest_port":80,"event_type":"http","flow_id":1688853126521801,"http":{"http_method":"GET","length":0,"protocol":"HTTP/1.1","request_body_len":0,"status":204,"url":"/vlan"},"proto":"TCP","src_ip":"10.0.0.1","src_port":40000,"timestamp":"2023-11-14T22:13:26.004000+0000","tx_id":0,"vlan":[100]}"#,
            // (f): a request never answered, logged when its flow ends (at its last packet)
            r#"{"dest_ip":"2001:0db8:0000:0000:0000:0000:0000:0002","dest_port":80,"event_type":"http","flow_id":1407378125994383,"http":{"hostname":"v6","http_method":"GET","length":0,"protocol":"HTTP/1.1","request_body_len":0,"url":"/v6"},"proto":"TCP","src_ip":"2001:0db8:0000:0000:0000:0000:0000:0001","src_port":40000,"timestamp":"2023-11-14T22:13:25.004000+0000","tx_id":0}"#,
        ][..],
        "{http:#?}"
    );
    // Ages: the idle TCP flow spans 200 s, the two-way UDP flow 100 s.
    let age = |sport: u64| r.events.iter().find(|e| e["src_port"] == sport).unwrap()["flow"]["age"].as_u64().unwrap();
    assert_eq!(age(40010), 200);
    assert_eq!(age(7100), 100);
    // Counters: 54 frames = 50 on flows + 1 ARP + 3 malformed, each malformed one by kind.
    assert_eq!(counter(&r.stderr, "input packets"), 54);
    assert_eq!(counter(&r.stderr, "on flows"), 50);
    assert_eq!(counter(&r.stderr, "not IP"), 1);
    assert_eq!(counter(&r.stderr, "decode errors"), 3);
    assert_eq!(counter(&r.stderr, "ipv4.truncated"), 1);
    assert_eq!(counter(&r.stderr, "ipv6.bad_version"), 1);
    assert_eq!(counter(&r.stderr, "tcp.bad_header_len"), 1);
    assert_eq!(counter(&r.stderr, "flows created"), 15);
}

/// The mixed capture plus many interleaved flows.
fn big_capture(d: &TempDir) -> std::path::PathBuf {
    let mut pkts = pcapgen::mixed();
    pkts.extend(pcapgen::many_flows(3, 2000, 6, pcapgen::SizeMix::Imix).into_iter().map(|(t, f)| (t + 400_000_000, f)));
    let p = d.path("big.pcap");
    write_pcap(&p, &pkts);
    p
}

#[test]
fn same_records_with_1_2_4_workers() {
    let d = TempDir::new("workers");
    let p = big_capture(&d);
    let one = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
    assert_eq!(one.flows().count(), 15 + 2000);
    for n in ["2", "4"] {
        let r = replay(&["--source", "file", "--workers", n, p.to_str().unwrap()]);
        assert_eq!(sorted_lines(&r), sorted_lines(&one), "{n} workers differ from 1");
    }
}

#[cfg(feature = "dpdk")]
#[test]
fn dpdk_and_file_give_the_same_records() {
    let d = TempDir::new("dpdk");
    let p = big_capture(&d);
    let file = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
    for n in ["1", "2", "4"] {
        let r = replay(&["--source", "dpdk", "--workers", n, p.to_str().unwrap()]);
        assert!(r.stderr.contains("dpdk net_pcap"), "not the DPDK path: {}", r.stderr);
        let ipackets = r
            .stderr
            .lines()
            .find(|l| l.contains("port net_pcap_replay0"))
            .and_then(|l| l.split("ipackets ").nth(1))
            .and_then(|x| x.split_whitespace().next())
            .unwrap();
        assert_eq!(ipackets, (54 + 2000 * 6).to_string(), "the NIC count: every packet of the capture");
        assert_eq!(sorted_lines(&r), sorted_lines(&file), "DPDK with {n} workers differs from file");
    }
}

fn config(d: &TempDir, body: &str) -> String {
    let p = d.path("test.toml");
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn idle_and_active_timeouts() {
    let d = TempDir::new("timeouts");
    let l2 = L2::default();
    let s = 1_000_000;
    let mut pkts = Vec::new();
    // A one-way UDP flow at t=0, idle afterwards: times out at t=30 (udp new timeout).
    pkts.push((T0, udp_frame(&l2, true, ip("10.9.0.1"), 1000, ip("10.9.0.2"), 2000, b"x")));
    // A TCP session with a packet every 2 s for 24 s, and a 10 s active timeout.
    let mut t = TcpSession::new(ip("10.9.0.3"), 3000, ip("10.9.0.4"), 80);
    let hs = t.handshake();
    for (i, (_, f)) in hs.into_iter().enumerate() {
        pkts.push((T0 + i as u64 * 2 * s, f));
    }
    for i in 3..13u64 {
        let c2s = i % 2 == 1;
        pkts.push((T0 + i * 2 * s, t.seg(c2s, flags::ACK | flags::PSH, b"data")));
    }
    // Something at t=100 so the clock passes the UDP flow's expiry.
    pkts.push((T0 + 100 * s, udp_frame(&l2, true, ip("10.9.0.5"), 1, ip("10.9.0.6"), 2, b"z")));
    pkts.sort_by_key(|p| p.0);
    let p = d.path("t.pcap");
    write_pcap(&p, &pkts);
    let cfg = config(&d, "[flow]\nactive_timeout = 10\n");
    let r = replay(&["--config", &cfg, "--source", "file", "--workers", "1", p.to_str().unwrap()]);
    let udp = r.events.iter().find(|e| e["src_port"] == 1000).unwrap();
    assert_eq!(udp["flow"]["reason"], "timeout");
    assert_eq!(udp["timestamp"], "2023-11-14T22:13:50.000000+0000", "expired at last seen + 30 s");
    let mut tcp: Vec<_> = r.events.iter().filter(|e| e["src_port"] == 3000).collect();
    tcp.sort_by_key(|e| e["flow"]["start"].as_str().unwrap().to_owned());
    let got: Vec<(String, u64, u64, String, String)> = tcp
        .iter()
        .map(|e| {
            let f = &e["flow"];
            (
                f["reason"].as_str().unwrap().into(),
                f["pkts_toserver"].as_u64().unwrap(),
                f["pkts_toclient"].as_u64().unwrap(),
                f["start"].as_str().unwrap().into(),
                f["end"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("active".into(), 3, 2, "2023-11-14T22:13:20.000000+0000".into(), "2023-11-14T22:13:28.000000+0000".into()),
            ("active".into(), 3, 2, "2023-11-14T22:13:30.000000+0000".into(), "2023-11-14T22:13:38.000000+0000".into()),
            // the last interval: t=20, 22, 24; then the established flow outlives the input.
            (
                "shutdown".into(),
                1,
                2,
                "2023-11-14T22:13:40.000000+0000".into(),
                "2023-11-14T22:13:44.000000+0000".into()
            ),
        ]
    );
    // All records of the long flow share its flow_id and add up to its 13 packets.
    assert!(tcp.iter().all(|e| e["flow_id"] == tcp[0]["flow_id"]));
    assert_eq!(counter(&r.stderr, "flows created"), 3);
}

#[test]
fn eviction_when_the_table_is_full() {
    let d = TempDir::new("evict");
    let l2 = L2::default();
    let pkts: Vec<_> = (0..10u16)
        .map(|i| (T0 + i as u64 * 1000, udp_frame(&l2, true, ip("10.8.0.1"), 1000 + i, ip("10.8.0.2"), 53, b"q")))
        .collect();
    let p = d.path("e.pcap");
    write_pcap(&p, &pkts);
    let cfg = config(&d, "[flow]\ncapacity = 4\n");
    let r = replay(&["--config", &cfg, "--source", "file", "--workers", "1", p.to_str().unwrap()]);
    let mut evicted: Vec<u64> =
        r.events.iter().filter(|e| e["flow"]["reason"] == "evicted").map(|e| e["src_port"].as_u64().unwrap()).collect();
    evicted.sort();
    assert_eq!(evicted, vec![1000, 1001, 1002, 1003, 1004, 1005], "the oldest idle flows go first");
    let mut kept: Vec<u64> =
        r.events.iter().filter(|e| e["flow"]["reason"] != "evicted").map(|e| e["src_port"].as_u64().unwrap()).collect();
    kept.sort();
    assert_eq!(kept, vec![1006, 1007, 1008, 1009]);
    assert!(r.stderr.contains("evicted 6"), "{}", r.stderr);
}

#[test]
fn bad_input_gives_clear_errors() {
    let d = TempDir::new("bad");
    let p = d.path("not.pcap");
    std::fs::write(&p, b"definitely not a capture file").unwrap();
    let out =
        std::process::Command::new(bin()).args(["replay", "--source", "file", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not.pcap") && err.contains("not a pcap or pcapng file"), "{err}");
    // A capture cut inside a record (tcpdump killed mid-write): its whole packets are
    // processed, the summary says where it was cut, and the run ends normally.
    let full = d.path("full.pcap");
    write_pcap(&full, &pcapgen::mixed());
    let bytes = std::fs::read(&full).unwrap();
    let cut = d.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out =
        std::process::Command::new(bin()).args(["replay", "--source", "file", cut.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the file ends inside a record") && err.contains("(a capture cut short)"), "{err}");
    // Corruption inside the file (not at its end) is still an error.
    let mut bad = bytes.clone();
    bad[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let badp = d.path("corrupt.pcap");
    std::fs::write(&badp, &bad).unwrap();
    let out = std::process::Command::new(bin())
        .args(["replay", "--source", "file", badp.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt record at byte"));
}

#[test]
fn check_config_names_file_and_keys() {
    let root = env!("CARGO_MANIFEST_DIR");
    for f in ["replay.toml", "sensor-100g.toml", "sensor-vdev.toml"] {
        let out =
            std::process::Command::new(bin()).args(["check-config", &format!("{root}/configs/{f}")]).output().unwrap();
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let d = TempDir::new("cfg");
    let bad = config(&d, "[capture]\nburst_size = 0\n[[capture.ports]]\ndevice = \"0000:01:00.0\"\ncores = [2, 2]\n[flow]\ncapacity = 0\n[dpdk]\nhugepages = false\n");
    let out = std::process::Command::new(bin()).args(["check-config", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "test.toml",
        "4 problem(s)",
        "capture.burst_size",
        "capture.ports[0].cores: core 2 listed twice",
        "flow.capacity",
        "dpdk.memory_mb",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    // A timeouts table may set one key; the others keep the protocol's defaults.
    let partial = config(&d, "[flow.timeouts.udp]\nnew = 5\n");
    let out = std::process::Command::new(bin()).args(["check-config", &partial]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The app-layer and defrag tables: every problem, with its key.
    let app = config(&d, "[app]\nhttp_max_head = 10\nooo_per_flow = 100000000\n[defrag]\nmax_bytes = 5\n");
    let out = std::process::Command::new(bin()).args(["check-config", &app]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for key in ["app.ooo_per_flow", "app.http_max_head", "defrag: max_datagrams"] {
        assert!(err.contains(key), "{key} not named: {err}");
    }
    let unknown = config(&d, "[flow]\ncapcity = 5\n");
    let out = std::process::Command::new(bin()).args(["check-config", &unknown]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("test.toml") && err.contains("unknown field `capcity`"), "{err}");
    // A sink's options are its URL's query keys, declared once per scheme: check-config lists
    // them, a table key works as the query key does, and one the scheme does not take is
    // refused with the sink's index and what it takes.
    let sinks = config(&d, "[[export.sinks]]\nurl = \"file:///tmp/x.json\"\nrotate_bytes = 1000\nfsync = \"rotate\"\n");
    let out = std::process::Command::new(bin()).args(["check-config", &sinks]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("export.sinks[0] file:///tmp/x.json: options name, queue_bytes, spool_bytes, rotate_bytes, rotate_secs, rotate_name, fsync"), "{text}");
    let wrong = config(&d, "[[export.sinks]]\nurl = \"redis://127.0.0.1/k\"\nrotate_bytes = 5\n");
    let out = std::process::Command::new(bin()).args(["check-config", &wrong]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("test.toml") && err.contains("export.sinks[0]: unknown option \"rotate_bytes\" for a redis sink (it takes name, queue_bytes, spool_bytes, mode)"), "{err}");
}

/// `check-config` says everything wrong in one run, each with its line: bad values in several
/// tables, an unknown table, a key of an array-of-tables element, the checks of what loaded,
/// files that are missing, directories that cannot be written; in words, not Rust types. A
/// TOML syntax error is one problem with its line.
#[test]
fn check_config_reports_every_problem_in_one_run() {
    let d = TempDir::new("cfg-all");
    let text = "[capture]\nmempool_size = \"lots\"\nburst_size = 0\n\n[flow]\ncapacity = \"x\"\nbogus = 1\n\n[nope]\na = 1\n\n[[capture.ports]]\ndevice = \"net_null0\"\ncores = \"zero\"\n";
    let bad = config(&d, text);
    let out = std::process::Command::new(bin()).args(["check-config", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "6 problem(s)",
        "line 2: capture.mempool_size: invalid value: string \"lots\", expected \"auto\" or a whole number",
        "line 3: capture.burst_size: 0 is outside 1..=512",
        "line 6: flow.capacity: invalid type: string \"x\", expected a whole number",
        "line 7: flow.bogus: unknown field `bogus`",
        "line 9: nope: unknown field `nope`",
        "line 14: capture.ports[0].cores: invalid type: string \"zero\", expected an array",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    for rust in ["usize", "untagged", "AutoOr", "struct "] {
        assert!(!err.contains(rust), "{rust} in {err}");
    }
    let syntax = config(&d, "[flow]\ncapacity = 10\n[export\n");
    let out = std::process::Command::new(bin()).args(["check-config", &syntax]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 problem(s)") && err.contains("line 3: TOML syntax:"), "{err}");
    // The files it names.
    let ro = d.path("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let paths = config(
        &d,
        &format!(
            "[rules]\nfiles = [\"{0}/none.rules\"]\n[ioc]\nfiles = [\"{0}/none.csv\"]\n[export]\neve = \"/proc/none/eve.json\"\nspool_dir = \"/proc/spool\"\n",
            d.0.display()
        ),
    );
    let out = std::process::Command::new(bin()).args(["check-config", &paths]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "4 problem(s) with the files it names",
        "rules.files[0]: ",
        "none.rules: No such file or directory",
        "ioc.files[0]: ",
        "export.eve: /proc/none/eve.json: cannot write in /proc",
        "export.spool_dir: cannot write in /proc",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    assert!(!err.contains("(os error 2): No such file"), "said once: {err}");
    // A missing configuration or capture is said once, not twice.
    let out = std::process::Command::new(bin()).args(["check-config", "/nonexistent.toml"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let out =
        std::process::Command::new(bin()).args(["replay", "--source", "file", "/nonexistent.pcap"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn output_failure_is_counted_not_silent() {
    // A replay waits for its output (retrying) for the drain timeout, then gives up.
    let (_d, p, cfg) = mixed_and_config("full", "[export]\ndrain_timeout_secs = 1\n");
    let out = std::process::Command::new(bin())
        .args([
            "replay",
            "--source",
            "file",
            "--config",
            cfg.to_str().unwrap(),
            "--eve",
            "/dev/full",
            p.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("lost to output errors 19"), "{err}"); // 15 flows, 4 HTTP events
    assert!(err.contains("accounting           every record counted; 19 LOST"), "{err}");
    assert!(err.contains("19 records not written"), "{err}");
}

/// Flows whose large packets arrive as IPv4 and IPv6 fragments out of order (DNS responses,
/// HTTP response segments), mixed with the many-flows capture: a NIC's RSS, and the file
/// source, send the fragments to the worker of their address pair, which hands each datagram to
/// the worker of its flow. One record per flow, and the same output, whatever the worker count
/// and source.
#[test]
fn fragmented_flows_give_the_same_records_with_any_worker_count() {
    let d = TempDir::new("frag-workers");
    let mut pkts = pcapgen::frag::fragmented_flows(7, 120);
    let end = pkts.last().unwrap().0;
    pkts.extend(pcapgen::many_flows(5, 300, 6, pcapgen::SizeMix::Imix).into_iter().map(|(t, f)| (t - T0 + end + 1, f)));
    let p = d.path("frag.pcap");
    write_pcap(&p, &pkts);
    let one = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
    assert_eq!(one.flows().count(), 120 + 300, "one record per flow: {}", one.stderr);
    assert_eq!(one.of_type("dns").filter(|e| e["dns"]["type"] == "answer").count(), 60, "every fragmented answer");
    assert_eq!(one.of_type("http").filter(|e| e["http"]["status"] == 200).count(), 60);
    assert!(one.flows().all(|f| f["flow"]["pkts_toserver"].as_u64() > Some(0)));
    let runs = runs_at_other_worker_counts(&p);
    for (what, r) in &runs {
        assert_same_lines(r, &one, &format!("{what} against 1 worker"));
        if !what.ends_with(" 1 workers") {
            assert!(counter(&r.stderr, "hand-offs") > 0, "{what}: no datagram was handed over: {}", r.stderr);
            assert!(r.stderr.contains("(late 0), 0 dropped"), "{what}: {}", r.stderr);
            for l in r.stderr.lines().filter(|l| l.contains("hand-offs") || l.trim_start().starts_with("worker ")) {
                eprintln!("{what}: {}", l.trim());
            }
        }
    }
    // RSS on addresses only (`capture.rss`): a flow and its fragments are on one worker, so
    // nothing is handed over, and the records are the same.
    let cfg = d.path("addresses.toml");
    std::fs::write(&cfg, "[capture]\nrss = \"addresses\"\n").unwrap();
    let mut sources = vec!["file"];
    if cfg!(feature = "dpdk") {
        sources.push("dpdk");
    }
    for source in sources {
        for n in ["2", "4"] {
            let r =
                replay(&["--config", cfg.to_str().unwrap(), "--source", source, "--workers", n, p.to_str().unwrap()]);
            assert_same_lines(&r, &one, &format!("{source}, {n} workers, rss = addresses"));
            assert!(!r.stderr.contains("hand-offs"), "{source}, {n} workers: {}", r.stderr);
        }
    }
}

/// The whole EVE output (every event type) of the generator's datacenter mix and of its attack
/// scenarios, with the demo rules and with ET Open (`../shared/data`), is the same with 1, 2
/// and 4 workers: records, app-layer events, thresholded and merged alerts.
#[test]
fn whole_eve_is_the_same_with_any_worker_count() {
    let d = TempDir::new("whole-eve");
    let gen = |name: &str, args: &[&str]| {
        let p = d.path(name);
        generate(&p, args);
        p
    };
    let dc = gen("dc.pcap", &["--preset", "imix-dc", "--flows", "1500", "--attacks", "all"]);
    let attacks = gen("attacks.pcap", &["--flows", "300", "--attacks", "all"]);
    let mut sets = vec![("demo", vec![format!("{}/configs/rules/demo.rules", env!("CARGO_MANIFEST_DIR"))])];
    if let Some(files) = et_open_files() {
        sets.push(("ET Open", files));
    }
    for pcap in [&dc, &attacks] {
        for (name, files) in &sets {
            let run = |source: &str, n: &str| {
                let mut args = vec!["--source", source, "--workers", n];
                for f in files {
                    args.extend(["--rules", f.as_str()]);
                }
                args.push(pcap.to_str().unwrap());
                replay(&args)
            };
            let one = run("file", "1");
            assert!(one.of_type("alert").count() >= 10, "{name} on {}: {}", pcap.display(), one.stderr);
            let mut others = vec![("file", "2"), ("file", "4")];
            if cfg!(feature = "dpdk") {
                others.push(("dpdk", "4"));
            }
            for (source, n) in others {
                let r = run(source, n);
                assert_same_lines(&r, &one, &format!("{name} on {}, {source} with {n} workers", pcap.display()));
            }
        }
    }
}
