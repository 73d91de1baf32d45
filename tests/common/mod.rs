//! Helpers shared by the pipeline tests: write generated captures, run the binary, read EVE.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_spinewatch")
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("spinewatch-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn write_pcap(path: &Path, pkts: &[pcapgen::Packet]) {
    let mut w = capture::pcap::PcapWriter::create(path).unwrap();
    for (ts, f) in pkts {
        w.write(*ts, f, f.len() as u32).unwrap();
    }
    w.finish().unwrap();
}

pub struct Run {
    pub events: Vec<Value>,
    pub lines: Vec<String>,
    pub stderr: String,
}

impl Run {
    /// The flow events.
    pub fn flows(&self) -> impl Iterator<Item = &Value> {
        self.events.iter().filter(|e| e["event_type"] == "flow")
    }

    /// The events of one type.
    pub fn of_type<'a>(&'a self, t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["event_type"] == t)
    }
}

/// Runs `spinewatch replay ARGS` and returns its EVE events (stdout) and stderr.
pub fn replay(args: &[&str]) -> Run {
    let out = Command::new(bin()).arg("replay").args(args).output().expect("run spinewatch");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "spinewatch replay {args:?} failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("EVE is UTF-8");
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let events =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}"))).collect();
    assert!(stderr.contains("accounting           balanced"), "unbalanced run: {stderr}");
    Run { events, lines, stderr }
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// One flow event as `vlan|src|sport|dst|dport|proto|pkts_ts|pkts_tc|bytes_ts|bytes_tc|state|reason|tcp_state|app_proto`.
pub fn summary(e: &Value) -> String {
    let f = &e["flow"];
    [
        s(&e["vlan"]),
        s(&e["src_ip"]),
        s(&e["src_port"]),
        s(&e["dest_ip"]),
        s(&e["dest_port"]),
        s(&e["proto"]),
        s(&f["pkts_toserver"]),
        s(&f["pkts_toclient"]),
        s(&f["bytes_toserver"]),
        s(&f["bytes_toclient"]),
        s(&f["state"]),
        s(&f["reason"]),
        s(&e["tcp"]["state"]),
        s(&e["app_proto"]),
    ]
    .join("|")
}

/// The flow events' summaries, sorted.
pub fn sorted_summaries(r: &Run) -> Vec<String> {
    let mut v: Vec<String> = r.flows().map(summary).collect();
    v.sort();
    v
}

pub fn sorted_lines(r: &Run) -> Vec<String> {
    let mut v = r.lines.clone();
    v.sort();
    v
}

/// The counter on the summary line that starts with `label` (first number after it).
pub fn counter(stderr: &str, label: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' in {stderr}"));
    line.trim_start()[label.len()..].split_whitespace().next().unwrap().parse().unwrap()
}

/// Asserts two runs wrote the same lines (in any order); on a difference, shows only the lines
/// one of them lacks (at most 5 each).
pub fn assert_same_lines(a: &Run, b: &Run, what: &str) {
    let (x, y) = (sorted_lines(a), sorted_lines(b));
    if x == y {
        return;
    }
    let only = |p: &[String], q: &[String]| -> Vec<String> {
        let q: std::collections::HashSet<&String> = q.iter().collect();
        p.iter().filter(|l| !q.contains(l)).take(5).map(|l| l.chars().take(600).collect()).collect()
    };
    panic!(
        "{what}: {} vs {} lines\nonly in the first:\n{}\nonly in the second:\n{}\nstderr of the first:\n{}",
        x.len(),
        y.len(),
        only(&x, &y).join("\n"),
        only(&y, &x).join("\n"),
        a.stderr
    );
}

/// Whether `suricata` runs here. Under CI (`CI` set) it must: .ci/run installs it, and a
/// comparison with it must not pass by being skipped.
pub fn suricata_available() -> bool {
    let ok = Command::new("suricata").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok || std::env::var_os("CI").is_none(), "CI must have suricata installed (scripts/deps.sh --test)");
    if !ok {
        eprintln!("SKIPPED: `suricata` is not installed (scripts/deps.sh --test installs it)");
    }
    ok
}

/// ET Open's rule files from `../shared/data` (sorted), or None when they are absent (a
/// failure under CI, which must have them).
pub fn et_open_files() -> Option<Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/et-open/rules");
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI must have {}", dir.display());
        eprintln!("SKIPPED: {} is absent", dir.display());
        return None;
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    Some(files)
}

/// `replay` of `pcap` with the file source at 2 and 4 workers and, when built with DPDK, the
/// DPDK source at 1, 2 and 4: the runs to compare with the file source's one worker.
pub fn runs_at_other_worker_counts(pcap: &Path) -> Vec<(String, Run)> {
    let p = pcap.to_str().unwrap();
    let mut runs = Vec::new();
    for n in ["2", "4"] {
        runs.push((format!("file, {n} workers"), replay(&["--source", "file", "--workers", n, p])));
    }
    if cfg!(feature = "dpdk") {
        for n in ["1", "2", "4"] {
            runs.push((format!("dpdk, {n} workers"), replay(&["--source", "dpdk", "--workers", n, p])));
        }
    }
    runs
}

/// `spinewatch gen ARGS --out OUT`.
pub fn generate(out: &Path, args: &[&str]) {
    let o = Command::new(bin()).arg("gen").args(args).args(["--out", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "gen {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A `spinewatch run` configuration on a `net_pcap` vdev replaying `queues` (one RX queue each,
/// from memory, forever), one worker core per queue, no hugepages, and `rest` (more tables).
pub fn vdev_run_config(queues: &[&Path], prefix: &str, rest: &str) -> String {
    let rx: String = queues.iter().map(|q| format!("rx_pcap={},", q.display())).collect();
    let cores: Vec<String> = (0..queues.len()).map(|i| i.to_string()).collect();
    format!(
        "[capture]\nmempool_size = {}\n[[capture.ports]]\ndevice = \"net_pcap0,{rx}infinite_rx=1\"\ncores = [{}]\nrx_descriptors = 512\n\
         [dpdk]\nhugepages = false\nmemory_mb = 256\nfile_prefix = \"{prefix}-{}\"\n{rest}",
        8192 * queues.len() - 1,
        cores.join(", "),
        std::process::id()
    )
}

/// A temporary directory with the pipeline tests' mixed capture (`m.pcap`) and a configuration
/// file (`c.toml`) holding `toml`.
pub fn mixed_and_config(name: &str, toml: &str) -> (TempDir, PathBuf, PathBuf) {
    let d = TempDir::new(name);
    let (p, cfg) = (d.path("m.pcap"), d.path("c.toml"));
    write_pcap(&p, &pcapgen::mixed());
    std::fs::write(&cfg, toml).unwrap();
    (d, p, cfg)
}

/// Waits up to `secs` seconds for `f` to hold.
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
