//! SIEM export against real receivers that the tests start on loopback: rsyslog (TCP, TLS,
//! UDP, RELP), nfcapd/nfdump (IPFIX over UDP), redis-server (list and stream), and a collector
//! outage in the middle of a stream. The receivers come from Debian's packages (rsyslog,
//! rsyslog-gnutls, rsyslog-relp, nfdump, redis-server, openssl), which `scripts/deps.sh --test` installs.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn need(tool: &str) {
    let ok = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "{tool} is missing: run scripts/deps.sh --test (it installs rsyslog, nfdump, redis-server, openssl)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_tcp(port: u16) {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A daemon the test owns: SIGTERM (an orderly stop) when dropped.
struct Daemon(Child);

impl Daemon {
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).stderr(Stdio::null()).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
fn certs(d: &TempDir) {
    need("openssl");
    let dir = d.0.to_str().unwrap();
    let script = format!(
        "set -e; cd {dir}
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=spinewatch test CA'
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost'
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj '/CN=spinewatch sensor'
        printf 'extendedKeyUsage=clientAuth\n' > client.cnf
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.cnf"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
}

/// rsyslogd in the foreground writing `MSGID MSG` lines from TCP `tcp`, TLS `tls` (with the
/// certificates of [`certs`]), TLS requiring a client certificate `mtls`, UDP `udp`, RELP
/// `relp` and RELP over TLS requiring a client certificate `relptls` inputs (0: none) to `out`
/// with the extension `.tcp`, `.tls`, `.mtls`, `.udp`, `.relp` or `.relptls`.
fn rsyslog(d: &TempDir, tag: &str, ports: [u16; 6], out: &Path) -> Daemon {
    let [tcp, tls, mtls, udp, relp, relptls] = ports;
    need("rsyslogd");
    let dir = d.0.join(format!("rs-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let w = dir.to_str().unwrap();
    let p = d.0.to_str().unwrap();
    let mut conf = format!("global(workDirectory=\"{w}\" maxMessageSize=\"64k\"");
    if tls > 0 || mtls > 0 {
        conf += &format!(
            " DefaultNetstreamDriverCAFile=\"{p}/ca.pem\" DefaultNetstreamDriverCertFile=\"{p}/server.pem\" DefaultNetstreamDriverKeyFile=\"{p}/server.key\""
        );
    }
    conf += ")\nmodule(load=\"imtcp\")\ntemplate(name=\"raw\" type=\"string\" string=\"%msgid% %msg%\\n\")\n";
    let out = out.display();
    let mut relp_loaded = false;
    for (kind, port) in [("tcp", tcp), ("tls", tls), ("mtls", mtls), ("udp", udp), ("relp", relp), ("relptls", relptls)]
    {
        if port == 0 {
            continue;
        }
        conf += &match kind {
            "tcp" => format!("input(type=\"imtcp\" port=\"{port}\" ruleset=\"{kind}\")\n"),
            "tls" => format!("input(type=\"imtcp\" port=\"{port}\" ruleset=\"{kind}\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n"),
            "mtls" => format!("input(type=\"imtcp\" port=\"{port}\" ruleset=\"{kind}\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"x509/certvalid\")\n"),
            "relp" | "relptls" => {
                let load = if relp_loaded { "" } else { "module(load=\"imrelp\")\n" };
                relp_loaded = true;
                let tls = if kind == "relptls" {
                    format!(" tls=\"on\" tls.cacert=\"{p}/ca.pem\" tls.mycert=\"{p}/server.pem\" tls.myprivkey=\"{p}/server.key\" tls.authmode=\"certvalid\"")
                } else {
                    String::new()
                };
                format!("{load}input(type=\"imrelp\" port=\"{port}\" ruleset=\"{kind}\"{tls})\n")
            }
            _ => format!("module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"{kind}\" rcvbufSize=\"16m\")\n"),
        };
        conf +=
            &format!("ruleset(name=\"{kind}\") {{ action(type=\"omfile\" file=\"{out}.{kind}\" template=\"raw\") }}\n");
    }
    let cf = dir.join("rsyslog.conf");
    std::fs::write(&cf, conf).unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f", cf.to_str().unwrap(), "-i", dir.join("pid").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = Daemon(child);
    for port in [tcp, tls, mtls, relp, relptls].into_iter().filter(|&p| p > 0) {
        wait_tcp(port);
    }
    if udp > 0 {
        std::thread::sleep(Duration::from_millis(300));
    }
    d
}

/// Lines of a file, waiting until it stops growing (the receiver may still be writing).
fn settled_lines(p: &Path) -> Vec<String> {
    let mut last = usize::MAX;
    for _ in 0..50 {
        let n = std::fs::read_to_string(p).map(|s| s.len()).unwrap_or(0);
        if n == last && n > 0 {
            break;
        }
        last = n;
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(p).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The messages rsyslog wrote to `p` (`MSGID MSG` lines), without their MSGID, sorted.
fn sorted_messages(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = settled_lines(p).into_iter().map(|l| l.split_once(' ').unwrap().1.to_owned()).collect();
    v.sort();
    v
}

/// A datacenter capture with the attack scenarios, so the demo rules alert.
fn capture(d: &TempDir, flows: &str) -> std::path::PathBuf {
    let p = d.path("dc.pcap");
    let out = Command::new(bin())
        .args(["gen", "--preset", "imix-dc", "--flows", flows, "--attacks", "all", "--out", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    p
}

fn rules() -> String {
    format!("{}/configs/rules/demo.rules", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `spinewatch replay` with a config, returns stderr (the summary), checking it balances.
fn replay_with(config: &str, d: &TempDir, args: &[&str]) -> String {
    let cfg = d.path("export.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = Command::new(bin())
        .args(["replay", "--config", cfg.to_str().unwrap(), "--source", "file"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("accounting           balanced"), "{err}");
    err
}

/// The summary line of a sink, as name → (counter → value).
fn sink_counters(summary: &str, name: &str) -> BTreeMap<String, u64> {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("sink {name} ")))
        .unwrap_or_else(|| panic!("no sink {name} in {summary}"));
    let mut m = BTreeMap::new();
    let words: Vec<&str> = line.split([' ', ',', ';', ':', '(', ')']).filter(|w| !w.is_empty()).collect();
    for w in words.windows(2) {
        if let Ok(v) = w[1].parse::<u64>() {
            m.insert(w[0].to_string(), v);
        }
    }
    for (k, key) in [("spool", "left"), ("start", "recovered")] {
        if let Some(v) = m.get(k).copied() {
            m.insert(key.into(), v);
        }
    }
    m
}

#[test]
fn syslog_to_rsyslog_over_tcp_tls_udp_and_relp() {
    let d = TempDir::new("syslog");
    certs(&d);
    let (tcp, tls, mtls, udp) = (free_port(), free_port(), free_port(), free_udp_port());
    let (relp, relptls) = (free_port(), free_port());
    let got = d.path("rsyslog.log");
    let _rs = rsyslog(&d, "a", [tcp, tls, mtls, udp, relp, relptls], &got);
    let pcap = capture(&d, "300");
    let eve = d.path("eve.json");
    let ca = d.path("ca.pem");
    // A TLS sink URL with the CA and the client certificate.
    let with_client_cert = |scheme: &str, port: u16, name: &str| {
        format!(
            "{scheme}://127.0.0.1:{port}?name={name}&ca={}&cert={}&key={}",
            ca.display(),
            d.path("client.pem").display(),
            d.path("client.key").display()
        )
    };
    let summary = replay_with(
        "[export]\nspool_dir = \"\"\n",
        &d,
        &[
            "--workers",
            "2",
            "--rules",
            &rules(),
            "--eve",
            eve.to_str().unwrap(),
            "--export",
            &format!("syslog+tcp://127.0.0.1:{tcp}?name=tcp"),
            "--export",
            &format!("syslog+tls://127.0.0.1:{tls}?format=cef&name=tls&ca={}", ca.display()),
            "--export",
            &format!("syslog+udp://127.0.0.1:{udp}?name=udp&format=cef"),
            "--export",
            &with_client_cert("syslog+tls", mtls, "mtls"),
            "--export",
            &format!("syslog+relp://127.0.0.1:{relp}?name=relp"),
            "--export",
            &with_client_cert("syslog+relp+tls", relptls, "relptls"),
            pcap.to_str().unwrap(),
        ],
    );
    let eve_lines: Vec<String> = std::fs::read_to_string(&eve).unwrap().lines().map(str::to_owned).collect();
    let alerts: Vec<serde_json::Value> = eve_lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event_type"] == "alert")
        .collect();
    assert!(alerts.len() >= 5, "the demo rules should alert on the attacks: {}", alerts.len());
    let tcp_lines = settled_lines(&got.with_extension("log.tcp"));
    // Over TCP, EVE: every line, exactly once, the MSGID its event type.
    let mut via_tcp: Vec<String> = Vec::new();
    for l in &tcp_lines {
        let (msgid, json) = l.split_once(' ').unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["event_type"], msgid, "{l}");
        via_tcp.push(json.to_owned());
    }
    let mut want = eve_lines.clone();
    want.sort();
    via_tcp.sort();
    assert_eq!(via_tcp.len(), want.len());
    assert!(via_tcp == want, "rsyslog's TCP lines differ from the EVE file");
    // Over TLS, CEF: every record; every alert's signature there; a flow line per flow.
    let tls_lines = settled_lines(&got.with_extension("log.tls"));
    let n = sink_counters(&summary, "tls");
    assert_eq!((n["sent"], tls_lines.len() as u64), (n["records"], n["records"]), "{summary}");
    // One connection throughout: what the server sends after the handshake (TLS 1.3 session
    // tickets) is not taken for the collector closing.
    for name in ["tls", "mtls", "tcp"] {
        assert_eq!(sink_counters(&summary, name)["errors"], 0, "{summary}");
    }
    assert!(tls_lines.iter().all(|l| l.contains(" CEF:0|spinewatch|spinewatch|")));
    for a in &alerts {
        let sid = a["alert"]["signature_id"].as_u64().unwrap();
        let id = a["flow_id"].as_u64();
        let hit = tls_lines
            .iter()
            .any(|l| l.contains(&format!("|1:{sid}:")) && id.is_none_or(|i| l.contains(&format!("externalId={i} "))));
        assert!(hit, "alert {sid} on flow {id:?} not in the CEF over TLS");
    }
    let flows = eve_lines.iter().filter(|l| l.contains("\"event_type\":\"flow\"")).count();
    assert_eq!(tls_lines.iter().filter(|l| l.starts_with("flow CEF:")).count(), flows);
    // Over TLS with a client certificate (the collector requires one), EVE: every line.
    let via_mtls = sorted_messages(&got.with_extension("log.mtls"));
    assert!(via_mtls == want, "rsyslog's mutual-TLS lines differ from the EVE file ({} lines)", via_mtls.len());
    // Over RELP, plain and over TLS with a client certificate, EVE: every line, exactly once,
    // each one answered by the collector.
    for kind in ["relp", "relptls"] {
        let lines = sorted_messages(&got.with_extension(format!("log.{kind}")));
        assert!(lines == want, "rsyslog's {kind} lines differ from the EVE file ({} lines)", lines.len());
        let n = sink_counters(&summary, kind);
        assert_eq!((n["sent"], n["errors"]), (n["records"], 0), "{summary}");
    }
    // Over UDP, the same CEF messages: UDP has no back-pressure and a collector's socket
    // buffer overflows under a burst (rsyslog counts those drops, not the sender), so only
    // what arrived is checked: whole messages, each one of the TLS sink's.
    let udp_lines = settled_lines(&got.with_extension("log.udp"));
    let n = sink_counters(&summary, "udp");
    assert_eq!(n["sent"], n["records"]);
    assert!(!udp_lines.is_empty());
    let tls_set: std::collections::HashSet<&String> = tls_lines.iter().collect();
    assert!(udp_lines.iter().all(|l| tls_set.contains(l)), "a UDP message differs from its TLS copy");
}

/// Syslog over TLS 1.3 to `openssl s_server`, which sends session tickets after the handshake:
/// the sink must take them in and keep its one connection (a sink that took any byte from the
/// server for the collector closing reconnected before every batch).
#[test]
fn syslog_over_tls13_keeps_its_connection_through_session_tickets() {
    let d = TempDir::new("tls13");
    certs(&d);
    let port = free_port();
    let got = d.path("s_server.out");
    let out = std::fs::File::create(&got).unwrap();
    let mut server = Daemon(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-tls1_3", "-accept", &port.to_string(), "-naccept", "1"])
            .args(["-cert", d.path("server.pem").to_str().unwrap(), "-key", d.path("server.key").to_str().unwrap()])
            // Kept open: s_server closes the connection at the end of its stdin.
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_tcp_tls(port);
    let pcap = capture(&d, "150");
    let summary = replay_with(
        "[export]\nspool_dir = \"\"\neve = \"none\"\n",
        &d,
        &[
            "--export",
            &format!("syslog+tls://127.0.0.1:{port}?name=tls13&ca={}", d.path("ca.pem").display()),
            pcap.to_str().unwrap(),
        ],
    );
    let n = sink_counters(&summary, "tls13");
    assert_eq!((n["sent"], n["errors"]), (n["records"], 0), "{summary}");
    // s_server ends once its one connection has closed (-naccept 1), having written all it read.
    let t0 = Instant::now();
    while server.0.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
    // Octet-counted frames: as many messages as records.
    let b = std::fs::read(&got).unwrap();
    let (mut at, mut msgs) = (0, 0u64);
    while at < b.len() {
        let sp = b[at..].iter().position(|&c| c == b' ').unwrap();
        let len: usize = std::str::from_utf8(&b[at..at + sp]).unwrap().parse().unwrap();
        at += sp + 1 + len;
        msgs += 1;
    }
    assert_eq!(msgs, n["records"]);
}

/// Waits for a TLS server to listen (a probe connection counts as s_server's one accept, so
/// only the port is checked, through /proc/net/tcp and tcp6).
fn wait_tcp_tls(port: u16) {
    let hex = format!(":{port:04X} ");
    let t0 = Instant::now();
    loop {
        let t = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default()
            + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
        if t.lines().any(|l| l.split_whitespace().nth(1).is_some_and(|a| a.ends_with(hex.trim())) && l.contains(" 0A "))
        {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `nfdump -r` of what nfcapd received: `proto|src|sport|dst|dport|pkts|bytes|out pkts|out bytes`.
fn nfdump_flows(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_str().unwrap().starts_with("nfcapd.") {
            continue;
        }
        let out = Command::new("nfdump")
            .args([
                "-q",
                "-N",
                "-6",
                "-r",
                p.to_str().unwrap(),
                "-o",
                "fmt:%pr|%sa|%sp|%da|%dp|%ipkt|%ibyt|%opkt|%obyt",
            ])
            .output()
            .unwrap();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<String> = l.split('|').map(|s| s.trim().to_string()).collect();
            if f.len() != 9 {
                continue;
            }
            let ip = |s: &str| s.parse::<std::net::IpAddr>().map(|a| a.to_string()).unwrap_or(s.to_string());
            let (sp, dp) =
                if f[0] == "6" || f[0] == "17" { (f[2].clone(), f[4].clone()) } else { ("-".into(), "-".into()) };
            v.push(format!("{}|{}|{sp}|{}|{dp}|{}|{}|{}|{}", f[0], ip(&f[1]), ip(&f[3]), f[5], f[6], f[7], f[8]));
        }
    }
    v.sort();
    v
}

fn eve_flows(eve: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for l in std::fs::read_to_string(eve).unwrap().lines() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        if e["event_type"] != "flow" {
            continue;
        }
        let ip = |s: &serde_json::Value| s.as_str().unwrap().parse::<std::net::IpAddr>().unwrap().to_string();
        // As numbers (nfdump -N prints them so).
        let proto = match e["proto"].as_str().unwrap() {
            "TCP" => "6".to_string(),
            "UDP" => "17".to_string(),
            "ICMP" => "1".to_string(),
            "IPv6-ICMP" => "58".to_string(),
            "GRE" => "47".to_string(),
            "SCTP" => "132".to_string(),
            p => p.to_string(),
        };
        let port = |k: &str| if proto == "6" || proto == "17" { e[k].to_string() } else { "-".into() };
        let f = &e["flow"];
        v.push(format!(
            "{proto}|{}|{}|{}|{}|{}|{}|{}|{}",
            ip(&e["src_ip"]),
            port("src_port"),
            ip(&e["dest_ip"]),
            port("dest_port"),
            f["pkts_toserver"],
            f["bytes_toserver"],
            f["pkts_toclient"],
            f["bytes_toclient"]
        ));
    }
    v.sort();
    v
}

#[test]
fn ipfix_to_nfcapd_matches_the_eve_flows() {
    need("nfcapd");
    need("nfdump");
    let d = TempDir::new("ipfix");
    let port = free_udp_port();
    let nf = d.path("nf");
    std::fs::create_dir_all(&nf).unwrap();
    let mut nfcapd = Daemon(
        Command::new("nfcapd")
            .args([
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-w",
                nf.to_str().unwrap(),
                "-t",
                "3600",
                "-B",
                "8388608",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let pcap = capture(&d, "400");
    let eve = d.path("eve.json");
    let summary = replay_with(
        "[export]\nspool_dir = \"\"\n",
        &d,
        &[
            "--eve",
            eve.to_str().unwrap(),
            "--export",
            &format!("ipfix+udp://127.0.0.1:{port}?name=ipfix"),
            pcap.to_str().unwrap(),
        ],
    );
    let n = sink_counters(&summary, "ipfix");
    std::thread::sleep(Duration::from_millis(500));
    nfcapd.stop(); // writes its file
    let got = nfdump_flows(&nf);
    let want = eve_flows(&eve);
    assert_eq!(n["records"], want.len() as u64, "{summary}");
    assert_eq!(got.len(), want.len(), "nfdump has {} flows, EVE {}", got.len(), want.len());
    let diff: Vec<_> = got.iter().zip(&want).filter(|(a, b)| a != b).take(3).collect();
    assert!(diff.is_empty(), "flows differ (nfdump, EVE): {diff:?}");
}

/// A minimal IPFIX collector over TCP: the templates, then every data record's counters.
fn read_ipfix_tcp(mut s: TcpStream) -> (Vec<u32>, Vec<(u16, Vec<u8>)>) {
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let (mut seqs, mut recs) = (Vec::new(), Vec::new());
    let mut templates: BTreeMap<u16, usize> = BTreeMap::new();
    let mut at = 0;
    while at + 16 <= all.len() {
        assert_eq!(u16::from_be_bytes([all[at], all[at + 1]]), 10, "IPFIX version");
        let len = u16::from_be_bytes([all[at + 2], all[at + 3]]) as usize;
        seqs.push(u32::from_be_bytes(all[at + 8..at + 12].try_into().unwrap()));
        let msg = &all[at..at + len];
        let mut o = 16;
        while o + 4 <= msg.len() {
            let id = u16::from_be_bytes([msg[o], msg[o + 1]]);
            let sl = u16::from_be_bytes([msg[o + 2], msg[o + 3]]) as usize;
            let set = &msg[o + 4..o + sl];
            if id == 2 {
                let mut t = 0;
                while t + 4 <= set.len() {
                    let tid = u16::from_be_bytes([set[t], set[t + 1]]);
                    let n = u16::from_be_bytes([set[t + 2], set[t + 3]]);
                    t += 4;
                    let mut rl = 0;
                    for _ in 0..n {
                        let e = u16::from_be_bytes([set[t], set[t + 1]]);
                        rl += u16::from_be_bytes([set[t + 2], set[t + 3]]) as usize;
                        t += if e & 0x8000 != 0 { 8 } else { 4 };
                    }
                    templates.insert(tid, rl);
                }
            } else {
                let rl = *templates.get(&id).expect("data before its template");
                for r in set.chunks_exact(rl) {
                    recs.push((id, r.to_vec()));
                }
            }
            o += sl;
        }
        at += len;
    }
    assert_eq!(at, all.len(), "a torn message");
    (seqs, recs)
}

#[test]
fn ipfix_over_tcp_is_framed_and_sequenced() {
    let d = TempDir::new("ipfix-tcp");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let collector = std::thread::spawn(move || read_ipfix_tcp(l.accept().unwrap().0));
    let pcap = capture(&d, "300");
    let eve = d.path("eve.json");
    replay_with(
        "[export]\nspool_dir = \"\"\n",
        &d,
        &["--eve", eve.to_str().unwrap(), "--export", &format!("ipfix+tcp://127.0.0.1:{port}"), pcap.to_str().unwrap()],
    );
    let (seqs, recs) = collector.join().unwrap();
    let want = eve_flows(&eve);
    assert_eq!(recs.len(), want.len());
    // Sequence numbers count the data records before each message.
    assert_eq!(seqs[0], 0);
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    // Bytes each way (octetDeltaCount and its reverse) add up to EVE's.
    let sum = |i: usize| -> u64 {
        recs.iter()
            .map(|(t, r)| {
                let o = if *t == 257 { 32 } else { 8 } + 5 + 16 + i * 8;
                u64::from_be_bytes(r[o..o + 8].try_into().unwrap())
            })
            .sum()
    };
    let col = |i: usize| -> u64 { want.iter().map(|w| w.split('|').nth(5 + i).unwrap().parse::<u64>().unwrap()).sum() };
    assert_eq!((sum(0), sum(1), sum(2), sum(3)), (col(1), col(0), col(3), col(2)));
}

#[test]
fn redis_list_and_stream_get_every_record() {
    need("redis-server");
    need("redis-cli");
    let d = TempDir::new("redis");
    let port = free_port();
    let _redis = Daemon(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(&d.0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_tcp(port);
    let pcap = capture(&d, "200");
    let eve = d.path("eve.json");
    replay_with(
        "[export]\nspool_dir = \"\"\n",
        &d,
        &[
            "--rules",
            &rules(),
            "--eve",
            eve.to_str().unwrap(),
            "--export",
            &format!("redis://127.0.0.1:{port}/sw-stream?mode=stream"),
            "--export",
            &format!("redis://127.0.0.1:{port}/sw-list?name=list"),
            pcap.to_str().unwrap(),
        ],
    );
    let mut want: Vec<String> = std::fs::read_to_string(&eve).unwrap().lines().map(str::to_owned).collect();
    want.sort();
    let cli = |args: &[&str]| -> Vec<String> {
        let out = Command::new("redis-cli").args(["-p", &port.to_string(), "--raw"]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with('{')).map(str::to_owned).collect()
    };
    let mut list = cli(&["LRANGE", "sw-list", "0", "-1"]);
    let mut stream = cli(&["XRANGE", "sw-stream", "-", "+"]);
    list.sort();
    stream.sort();
    assert_eq!(list.len(), want.len());
    assert!(list == want, "the list differs from EVE");
    assert!(stream == want, "the stream differs from EVE");
}

/// The collector stops mid-stream and comes back: over RELP, where the collector answers each
/// message once it has taken it, it gets every record exactly once. (Over plain TCP or TLS
/// syslog what its kernel accepted but it never read when it stopped is lost unseen: RELP is
/// the transport for a collector that must not lose anything.)
#[test]
fn collector_outage_mid_stream_loses_nothing() {
    need("mkfifo");
    let d = TempDir::new("outage");
    let port = free_port();
    let got = d.path("rsyslog.log");
    let mut rs = rsyslog(&d, "1", [0, 0, 0, 0, port, 0], &got);
    // The capture comes through a FIFO over about 8 s, so records stream out while the
    // collector goes down and comes back.
    let pcap = capture(&d, "3000");
    let fifo = d.path("in.pcap");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let data = std::fs::read(&pcap).unwrap();
    let f2 = fifo.clone();
    let feeder = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&f2).unwrap();
        let n = 40;
        for i in 0..n {
            std::io::Write::write_all(&mut f, &data[data.len() * i / n..data.len() * (i + 1) / n]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let eve = d.path("eve.json");
    let cfg = d.path("outage.toml");
    std::fs::write(
        &cfg,
        format!(
            "[export]\nspool_dir = \"{}\"\nqueue_bytes = 65536\ndrain_timeout_secs = 30\n",
            d.path("spool").display()
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["replay", "--config", cfg.to_str().unwrap(), "--source", "file", "--workers", "1", "--eve"])
        .arg(&eve)
        .args(["--export", &format!("syslog+relp://127.0.0.1:{port}?name=siem"), fifo.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let before = std::fs::read_to_string(got.with_extension("log.relp")).map(|s| s.lines().count()).unwrap_or(0);
    rs.stop();
    std::thread::sleep(Duration::from_millis(3000));
    let _rs2 = rsyslog(&d, "2", [0, 0, 0, 0, port, 0], &got);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{summary}");
    assert!(summary.contains("accounting           balanced"), "{summary}");
    let c = sink_counters(&summary, "siem");
    let mut want: Vec<String> = std::fs::read_to_string(&eve).unwrap().lines().map(str::to_owned).collect();
    let have = sorted_messages(&got.with_extension("log.relp"));
    assert!(before > 0 && before < want.len(), "the outage must come mid-stream: {before} of {} before it", want.len());
    assert!(c["spooled"] > 0 && c["replayed"] == c["spooled"], "{summary}");
    assert!(c["errors"] > 0, "the outage was seen: {summary}");
    assert_eq!(c["sent"], c["records"]);
    // Nothing lost: every EVE line reached the collector, and nothing else did. RELP delivers
    // at least once: a message the collector took whose answer died with the connection is sent
    // again, so a repeat is possible, at most once per message in flight (128) at the stop.
    want.sort();
    let mut once = have.clone();
    once.dedup();
    let mut want_once = want.clone();
    want_once.dedup();
    assert!(
        once == want_once,
        "the records the collector got differ from EVE ({} distinct of {})",
        once.len(),
        want_once.len()
    );
    assert!(have.len() >= want.len());
    let repeats = have.len() - want.len();
    assert!(repeats <= 128, "{repeats} records repeated");
    eprintln!("outage: {} records, all received, {repeats} repeated", want.len());
}

#[test]
fn records_left_in_the_spool_go_first_in_the_next_run() {
    let d = TempDir::new("spool");
    let port = free_port(); // nothing listens yet
    let pcap = d.path("m.pcap");
    write_pcap(&pcap, &pcapgen::mixed());
    let conf =
        format!("[export]\nspool_dir = \"{}\"\ndrain_timeout_secs = 1\neve = \"none\"\n", d.path("spool").display());
    let url = format!("syslog+tcp://127.0.0.1:{port}?name=siem");
    let first = replay_with(&conf, &d, &["--export", &url, pcap.to_str().unwrap()]);
    let c = sink_counters(&first, "siem");
    assert_eq!((c["sent"], c["left"], c["records"]), (0, 19, 19), "{first}");
    // The collector is back: the next run sends the 19 left, then its own 19.
    let got = d.path("rsyslog.log");
    let _rs = rsyslog(&d, "s", [port, 0, 0, 0, 0, 0], &got);
    let second = replay_with(&conf, &d, &["--export", &url, pcap.to_str().unwrap()]);
    let c = sink_counters(&second, "siem");
    assert_eq!((c["recovered"], c["sent"], c["left"], c["records"]), (19, 38, 0, 19), "{second}");
    let lines = settled_lines(&got.with_extension("log.tcp"));
    assert_eq!(lines.len(), 38);
    // In order: the first run's records came first (the same records, so each appears twice,
    // and the first half equals the second).
    assert_eq!(lines[..19], lines[19..]);
}

/// A spool belongs to its collector: a later run whose sink has the same name but another
/// address does not send it there (it says the spool is kept), and the run that names the first
/// collector again sends it.
#[test]
fn records_spooled_for_one_collector_never_go_to_another() {
    let d = TempDir::new("spool-identity");
    let (a, b) = (free_port(), free_port());
    let pcap = d.path("m.pcap");
    write_pcap(&pcap, &pcapgen::mixed());
    let conf =
        format!("[export]\nspool_dir = \"{}\"\ndrain_timeout_secs = 1\neve = \"none\"\n", d.path("spool").display());
    let url = |port: u16| format!("syslog+tcp://127.0.0.1:{port}?name=siem");
    let first = replay_with(&conf, &d, &["--export", &url(a), pcap.to_str().unwrap()]);
    assert_eq!(sink_counters(&first, "siem")["left"], 19, "{first}");
    // Collector B is up; A's spool is not for it.
    let got_b = d.path("b.log");
    let rs_b = rsyslog(&d, "b", [b, 0, 0, 0, 0, 0], &got_b);
    let second = replay_with(&conf, &d, &["--export", &url(b), pcap.to_str().unwrap()]);
    let c = sink_counters(&second, "siem");
    assert_eq!((c.get("recovered").copied().unwrap_or(0), c["sent"], c["left"]), (0, 19, 0), "{second}");
    assert!(second.contains("which no sink of this run writes to: kept, not sent"), "{second}");
    assert!(
        second.contains(&format!("syslog+tcp://127.0.0.1:{a}")),
        "the warning names the spool's collector: {second}"
    );
    assert_eq!(settled_lines(&got_b.with_extension("log.tcp")).len(), 19, "B gets its own records only");
    drop(rs_b);
    // A is back: it gets what was spooled for it, then this run's.
    let got_a = d.path("a.log");
    let _rs_a = rsyslog(&d, "a", [a, 0, 0, 0, 0, 0], &got_a);
    let third = replay_with(&conf, &d, &["--export", &url(a), pcap.to_str().unwrap()]);
    let c = sink_counters(&third, "siem");
    assert_eq!((c["recovered"], c["sent"], c["left"]), (19, 38, 0), "{third}");
    assert_eq!(settled_lines(&got_a.with_extension("log.tcp")).len(), 38);
}

/// A UDP collector that is down: a warning at first and then at most one per half minute, not
/// one per retry (about ten a second before).
#[test]
fn a_dead_udp_collector_is_reported_twice_a_minute_at_most() {
    let d = TempDir::new("udp-dead");
    // DNS and HTTP transactions all along: records for the sink all the time.
    let p = capture(&d, "2000");
    let url = format!("syslog+udp://127.0.0.1:{}?name=siem", free_udp_port());
    let cfg = d.path("c.toml");
    std::fs::write(&cfg, "[export]\ndrain_timeout_secs = 1\nspool_dir = \"\"\n").unwrap();
    let mut args: Vec<String> = [
        "replay",
        "--source",
        "file",
        "--workers",
        "1",
        "--eve",
        "none",
        "--config",
        cfg.to_str().unwrap(),
        "--export",
    ]
    .map(String::from)
    .to_vec();
    args.push(url);
    // Long enough to be stopped: the same capture many times over.
    args.extend(std::iter::repeat_n(p.to_str().unwrap().to_string(), 2000));
    let mut child = Command::new(bin()).args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Five seconds of records refused from the first refusal on.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap_or(0) > 0 {
            if line.contains("sink=siem") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("a first warning about the collector");
    std::thread::sleep(Duration::from_secs(5));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    child.wait().unwrap();
    let err = reader.join().unwrap();
    let c = sink_counters(&err, "siem");
    assert!(c["errors"] >= 4, "the collector refused many times: {err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("sink=siem") || l.contains("sink=\"siem\"")).collect();
    assert!(!warnings.is_empty() && warnings.len() <= 2, "{} warnings:\n{}", warnings.len(), warnings.join("\n"));
}

/// Several formatting threads write what one writes: the same lines in the same order (one
/// worker: a deterministic order), the same counters, with thresholds and the behaviour
/// detectors deciding across workers, and at two workers the same records.
#[test]
fn parallel_formatting_writes_what_one_thread_writes() {
    let d = TempDir::new("export-format-threads");
    let pcap = d.path("t.pcap");
    generate(&pcap, &["--preset", "imix-dc", "--attacks", "all"]);
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/rules/demo.rules");
    let run = |threads: usize, workers: &str| {
        let cfg = d.path(&format!("ft{threads}.toml"));
        // Batches sealed by size only: an age limit (wall clock) would cut them where a slow or
        // loaded machine happens to be, and where a batch ends decides where the threshold
        // merger's released alerts go, in one thread's output as in several.
        std::fs::write(&cfg, format!("[export]\nformat_threads = {threads}\nbatch_max_age_ms = 3600000\n")).unwrap();
        let (c, p) = (cfg.to_str().unwrap(), pcap.to_str().unwrap());
        replay(&["--source", "file", "--workers", workers, "--config", c, "--rules", rules, p])
    };
    let one = run(1, "1");
    assert!(one.of_type("alert").count() > 10 && one.of_type("dns").count() > 100, "{}", one.stderr);
    let counters = |r: &Run| -> Vec<String> {
        let s = r.stderr.split("spinewatch summary").nth(1).unwrap_or("");
        s.lines().filter(|l| !l.contains("elapsed") && !l.contains("cpu")).map(String::from).collect()
    };
    for threads in [2, 3] {
        let many = run(threads, "1");
        assert!(one.lines == many.lines, "{threads} formatting threads: the lines differ");
        assert_eq!(counters(&one), counters(&many), "{threads} formatting threads");
    }
    assert_same_lines(&run(1, "2"), &run(3, "2"), "3 formatting threads, 2 workers");
}
