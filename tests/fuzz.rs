//! A short fuzzing run of every fuzz target on stable Rust, for CI: the targets' own bodies
//! (`fuzz/fuzz_targets/*.rs`, which cargo-fuzz runs for real with `scripts/fuzz.sh`) fed
//! seeds made here from generated traffic and the project's files, then mutations of them
//! (bit flips, byte changes, cuts, repeats, splices) from a fixed-seed generator, for a fixed
//! number of inputs each. An input that panics fails the test, printed in hex.

// Every target includes its own copy of fuzz_targets/common.rs.
#![allow(clippy::duplicate_mod)]

mod common;
use common::*;

#[path = "../fuzz/fuzz_targets/app.rs"]
mod app;
#[path = "../fuzz/fuzz_targets/config.rs"]
mod config_target;
#[path = "../fuzz/fuzz_targets/decode.rs"]
mod decode;
#[path = "../fuzz/fuzz_targets/defrag.rs"]
mod defrag;
#[path = "../fuzz/fuzz_targets/dns.rs"]
mod dns;
#[path = "../fuzz/fuzz_targets/pipeline.rs"]
mod pipeline;
#[path = "../fuzz/fuzz_targets/rules.rs"]
mod rules;
#[path = "../fuzz/fuzz_targets/sink_url.rs"]
mod sink_url;
#[path = "../fuzz/fuzz_targets/spool.rs"]
mod spool;
#[path = "../fuzz/fuzz_targets/stream.rs"]
mod stream;

/// xorshift64*: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(r: &mut Rng, seeds: &[Vec<u8>], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&seeds[r.below(seeds.len())]);
    for _ in 0..1 + r.below(4) {
        let n = out.len();
        match r.below(7) {
            0 if n > 0 => {
                let i = r.below(n);
                out[i] ^= 1 << r.below(8);
            }
            1 if n > 0 => {
                let i = r.below(n);
                out[i] = [0, 0xff, 0x7f, 0x80, b'\n', b':', b'"'][r.below(7)];
            }
            2 if n > 0 => out.truncate(r.below(n)),
            3 if n > 0 => {
                let (a, b) = (r.below(n), r.below(n));
                let (a, b) = (a.min(b), a.max(b));
                let piece = out[a..b].to_vec();
                let at = r.below(out.len() + 1);
                out.splice(at..at, piece);
            }
            4 => {
                let other = &seeds[r.below(seeds.len())];
                let cut = r.below(out.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[r.below(other.len() + 1)..]);
            }
            5 if n > 0 => {
                let i = r.below(n);
                out.remove(i);
            }
            _ => {
                let at = r.below(n + 1);
                out.insert(at, r.next() as u8);
            }
        }
        out.truncate(1 << 16);
    }
}

/// Runs `target` on every seed and on `n` mutations.
fn smoke(name: &str, target: fn(&[u8]), seeds: &[Vec<u8>], n: usize) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let mut r = Rng(0x5eed_0000 ^ name.len() as u64 ^ (name.as_bytes()[0] as u64) << 32);
    let mut input = Vec::new();
    let run = |data: &[u8]| {
        if std::panic::catch_unwind(|| target(data)).is_err() {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            panic!("fuzz target {name} panicked on input {hex}");
        }
    };
    for s in seeds {
        run(s);
    }
    for _ in 0..n {
        mutate(&mut r, seeds, &mut input);
        run(&input);
    }
    eprintln!("{name}: {} seeds, {n} mutations", seeds.len());
}

/// Frames of a generated datacenter capture (the same generator as the fuzz seeds).
fn frames() -> Vec<Vec<u8>> {
    let d = TempDir::new("fuzz-seeds");
    let p = d.path("dc.pcap");
    let out = std::process::Command::new(bin())
        .args(["gen", "--preset", "imix-dc", "--flows", "150", "--attacks", "all", "--out", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let b = std::fs::read(&p).unwrap();
    let mut v = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        v.push(b[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    v
}

/// (proto, server port, payload) of each frame with payload.
fn payloads(frames: &[Vec<u8>]) -> Vec<(u8, u16, Vec<u8>)> {
    let mut v = Vec::new();
    for f in frames {
        if let Ok(d) = detect::decode(f) {
            let (o, l) = (d.payload_offset as usize, d.payload_len as usize);
            if l > 0 && o + l <= f.len() {
                v.push((d.proto, d.src_port.min(d.dst_port), f[o..o + l].to_vec()));
            }
        }
    }
    v
}

#[test]
fn every_fuzz_target_survives_a_short_run() {
    let fs = frames();
    let pays = payloads(&fs);
    let by_port = |ports: &[u16], proto: u8| -> Vec<Vec<u8>> {
        // A control byte, then a flow's worth of payloads (the targets' format).
        let mut v: Vec<Vec<u8>> = Vec::new();
        let mut cur = vec![0x1f];
        for (p, port, pay) in &pays {
            if *p == proto && ports.contains(port) {
                cur.extend_from_slice(pay);
                if cur.len() > 600 {
                    v.push(std::mem::replace(&mut cur, vec![0x1f]));
                }
            }
        }
        if cur.len() > 1 {
            v.push(cur);
        }
        v.truncate(40);
        v
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let n = 3000;
    smoke("decode", decode::run, &fs[..fs.len().min(300)], n);
    let runs: Vec<Vec<u8>> = fs
        .chunks(60)
        .take(20)
        .map(|c| c.iter().flat_map(|f| (f.len() as u16).to_be_bytes().into_iter().chain(f.iter().copied())).collect())
        .collect();
    smoke("pipeline", pipeline::run, &runs, n / 10);
    let dns_msgs: Vec<Vec<u8>> =
        pays.iter().filter(|(p, port, _)| *p == 17 && *port == 53).map(|(_, _, d)| d.clone()).take(100).collect();
    smoke("dns", dns::run, &dns_msgs, n);
    smoke("http", app::http, &by_port(&[80, 8080, 8000], 6), n);
    smoke("tls", app::tls, &by_port(&[443, 8443], 6), n);
    smoke("ssh", app::ssh, &by_port(&[22], 6), n);
    // A lease (request and ack, 300 bytes each: the control byte 30 cuts there).
    let (mac, c, sv) = ([2, 0, 0, 0, 0, 1], "10.1.2.3".parse().unwrap(), "10.1.0.1".parse().unwrap());
    let mut lease = vec![30u8];
    lease.extend(pcapgen::dhcp::request(7, mac, c, "host"));
    lease.extend(pcapgen::dhcp::ack(7, mac, c, sv, 3600, "host"));
    smoke("dhcp", app::dhcp, &[lease], n);
    smoke("stream", stream::run, &[(0..240u8).collect()], n);
    smoke("defrag", defrag::run, &[vec![0, 0, 1, 3, 7, 0, 3, 1, 3, 7, 0, 6, 0, 3, 7]], n);
    let rule_lines: Vec<Vec<u8>> = std::fs::read_to_string(format!("{root}/configs/rules/demo.rules"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .flat_map(|l| [l.as_bytes().to_vec(), l.as_bytes()[l.find('(').unwrap() + 1..l.rfind(')').unwrap()].to_vec()])
        .collect();
    smoke("rules", rules::run, &rule_lines, n);
    let configs: Vec<Vec<u8>> = std::fs::read_dir(format!("{root}/configs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    smoke("config", config_target::run, &configs, n);
    let urls: Vec<Vec<u8>> = [
        "syslog+tls://siem.example:6514?format=cef&ca=/etc/ca.pem&facility=local3",
        "ipfix+udp://[2001:db8::1]:4739?domain=7",
        "redis://127.0.0.1/eve%3Aflows?mode=stream&name=r",
        "file:///var/log/eve.json?rotate_bytes=1000&rotate_secs=60&fsync=always",
        "-",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    smoke("sink_url", sink_url::run, &urls, n);
    // A spool segment as the sink writes it: entries of two messages each.
    let mut seg = vec![0u8];
    for k in 0..4u32 {
        let data = format!("{{\"a\":{k}}}\n{{\"b\":{k}}}\n");
        for v in [0x5357_5350u32, 2, 2, data.len() as u32, (data.len() / 2) as u32, data.len() as u32] {
            seg.extend_from_slice(&v.to_le_bytes());
        }
        seg.extend_from_slice(data.as_bytes());
    }
    smoke("spool", spool::run, &[seg], n / 10);
}
