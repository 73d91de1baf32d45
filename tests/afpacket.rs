//! `spinewatch run` on AF_PACKET rings: a veth pair whose far end lives in a network namespace
//! the test makes, a generated capture sent into that end (so the traffic never leaves the
//! pair), two workers in a fanout group. The flows must come out with the same packets and
//! bytes as a file replay of the same capture (VLAN tags the kernel takes out put back), and
//! the accounting must balance. Needs root and iproute2 (`ip`), which CI has.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

fn sh(cmd: &str) -> bool {
    Command::new("sh").args(["-c", cmd]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The namespace and the veth pair, removed when dropped.
struct Veth {
    ns: String,
    near: String,
    far: String,
}

impl Veth {
    fn new() -> Veth {
        let id = std::process::id() % 100_000;
        let v = Veth { ns: format!("swt{id}"), near: format!("swa{id}"), far: format!("swb{id}") };
        let (ns, a, b) = (&v.ns, &v.near, &v.far);
        let ok = sh(&format!(
            "ip netns add {ns} && ip link add {a} type veth peer name {b} && ip link set {b} netns {ns} && \
             ip link set {a} mtu 9000 up && ip netns exec {ns} ip link set {b} mtu 9000 up"
        ));
        assert!(ok, "could not make a veth pair in a namespace: this test needs root and iproute2");
        v
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        sh(&format!("ip link del {}", self.near));
        sh(&format!("ip netns del {}", self.ns));
    }
}

/// Per flow (tuple, VLANs, tunnel id): packets and bytes, summed over its records.
fn totals(eve: &str) -> BTreeMap<String, (u64, u64)> {
    let mut m = BTreeMap::new();
    for l in eve.lines() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        if e["event_type"] != "flow" {
            continue;
        }
        let k = format!(
            "{} {} {} {} {} {} {}",
            e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"], e["vlan"], e["tunnel"]["id"]
        );
        let f = &e["flow"];
        let t = m.entry(k).or_insert((0, 0));
        t.0 += f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
        t.1 += f["bytes_toserver"].as_u64().unwrap() + f["bytes_toclient"].as_u64().unwrap();
    }
    m
}

#[test]
fn af_packet_on_a_veth_pair_gives_the_records_of_a_replay() {
    let d = TempDir::new("afpacket");
    let v = Veth::new();
    let pcap = d.path("dc.pcap");
    let out = Command::new(bin())
        .args(["gen", "--preset", "imix-dc", "--flows", "200", "--max-packets", "40", "--out", pcap.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let eve = d.path("eve.json");
    let cfg = d.path("af.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &cfg,
        format!(
            "[capture]\ncores = [0, 1]\n[afpacket]\ninterfaces = [\"{}\"]\n[export]\neve = \"{}\"\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n[behaviour]\nenabled = false\n",
            v.near,
            eve.display()
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Send the capture's frames into the far end, paced so the kernel's backlog keeps up.
    let sender = d.path("send.py");
    std::fs::write(
        &sender,
        "import socket, struct, sys, time\nb = open(sys.argv[1], 'rb').read()\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind((sys.argv[2], 0))\nat, n = 24, 0\nwhile at + 16 <= len(b):\n    incl = struct.unpack('<I', b[at+8:at+12])[0]\n    \
         s.send(b[at+16:at+16+incl]); n += 1\n    at += 16 + incl\n    if n % 64 == 0: time.sleep(0.001)\nprint(n)\n",
    )
    .unwrap();
    let sent = Command::new("ip")
        .args(["netns", "exec", &v.ns, "python3", sender.to_str().unwrap(), pcap.to_str().unwrap(), &v.far])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let n: u64 = String::from_utf8_lossy(&sent.stdout).trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // The interface's kernel counters on the metrics endpoint (read each second).
    let metrics = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut o = String::new();
        s.read_to_string(&mut o).unwrap();
        o
    };
    let row = format!("spinewatch_port_ipackets_total{{port=\"{}\"}} ", v.near);
    let seen: u64 =
        metrics.lines().find_map(|l| l.strip_prefix(&row)).unwrap_or_else(|| panic!("{metrics}")).parse().unwrap();
    assert!(seen >= n, "{seen} packets on the port, {n} sent");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("spinewatch summary (af_packet, 2 workers)"), "{err}");
    assert!(err.contains("accounting           balanced"), "{err}");
    // Every frame sent came in (the kernel may add a few of its own: IPv6 neighbour discovery
    // on the new link), and both workers had flows.
    let got = counter(&err, "packets processed");
    assert!(got >= n && got < n + 50, "sent {n}, processed {got}: {err}");
    for w in ["worker 0", "worker 1"] {
        let line = err.lines().find(|l| l.trim_start().starts_with(w)).unwrap();
        assert!(!line.contains("flows 0 "), "{line}");
    }
    let live = totals(&std::fs::read_to_string(&eve).unwrap());
    let file = replay(&["--source", "file", "--workers", "1", pcap.to_str().unwrap()]);
    let want = totals(&file.lines.join("\n"));
    for (k, t) in &want {
        assert_eq!(live.get(k), Some(t), "flow {k}");
    }
    assert!(live.len() >= want.len() && live.len() < want.len() + 10);
}
