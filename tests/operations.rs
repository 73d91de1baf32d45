//! Running for months: a full disk that fills and frees again, log files moved by logrotate
//! (SIGHUP), rotated names that keep their extension, signals, and exit codes that tell the truth.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A tmpfs of `kib` KiB mounted on `dir` for the test's life (root only: the CI machine and
/// this one run the tests as root; elsewhere the test says why it cannot run, and fails in CI).
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(dir: &Path, kib: u32) -> Option<SmallFs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs", dir.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(std::env::var("CI").is_err(), "CI=true: cannot mount a tmpfs for the disk-full test (run as root)");
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(SmallFs(dir.to_path_buf()))
    }

    /// Fills the file system with `filler`, then frees `keep` bytes of it.
    fn fill(&self, keep: u64) -> std::path::PathBuf {
        use std::io::Write;
        let p = self.0.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.flush();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(keep)).unwrap();
        p
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `n` numbered EVE-like lines of about `width` bytes each, from `first` on.
fn chunk(first: u32, n: u32, width: usize) -> Arc<export::sink::Chunk> {
    let mut c = export::sink::Chunk::default();
    for i in first..first + n {
        let line = format!("{{\"seq\":{i},\"pad\":\"{}\"}}\n", "x".repeat(width.saturating_sub(24)));
        c.data.extend_from_slice(line.as_bytes());
        c.end_message();
    }
    c.records = n;
    Arc::new(c)
}

/// The sequence numbers in a file of such lines; panics on a torn or foreign line.
fn seqs(p: &Path) -> Vec<u64> {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    s.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line {l:?}: {e}"));
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

/// A live file sink on a file system that fills up: while it is full nothing is lost that the
/// queue can hold (the rest is dropped, counted), no line is torn (a write cut by ENOSPC is cut
/// off the file again) or written twice, and writing resumes by itself once space is freed.
#[test]
fn a_full_disk_is_retried_and_writing_resumes() {
    use std::sync::atomic::Ordering::Relaxed;
    let d = TempDir::new("diskfull");
    let Some(fs) = SmallFs::mount(&d.path("fs"), 256) else { return };
    let eve = d.path("fs/eve.json");
    let spec = export::sink::url::parse(eve.to_str().unwrap()).unwrap();
    let t = spec.target.0.open(&spec.name).unwrap();
    let opts = export::sink::QueueOptions { queue_bytes: 24 << 10, ..Default::default() };
    let sink = export::sink::Sink::start(&spec.name, t, opts).unwrap();
    let live = sink.counters();

    // Room for a few lines only: the first chunk fits, the second is cut by ENOSPC.
    let filler = fs.fill(6000);
    let mut next = 0;
    for _ in 0..40 {
        sink.push(chunk(next, 4, 1000));
        next += 4;
    }
    wait_for("write errors", 10, || live.errors.load(Relaxed) >= 2);
    let while_full = seqs(&eve);
    assert!(!while_full.is_empty() && while_full.len() < 40, "some lines fit, most do not: {}", while_full.len());
    assert!(live.dropped.load(Relaxed) > 0, "the queue (24 KiB) cannot hold 160 KB: the oldest are dropped, counted");

    std::fs::remove_file(&filler).unwrap();
    wait_for("the queue to drain", 60, || live.sent.load(Relaxed) + live.dropped.load(Relaxed) == 160);
    for _ in 0..5 {
        sink.push(chunk(next, 4, 1000));
        next += 4;
    }
    let st = sink.finish();
    let got = seqs(&eve);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, none twice: {got:?}");
    assert_eq!(&got[..while_full.len()], &while_full[..]);
    assert_eq!(got.len() as u64, st.sent, "{st:?}");
    assert_eq!(st.records, 180);
    assert_eq!(st.sent + st.dropped, st.records, "{st:?}");
    assert_eq!(st.lost, 0);
    assert!(st.balanced());
    assert!(got.ends_with(&(160..180).collect::<Vec<_>>()), "written again after the disk freed: {got:?}");
}

/// logrotate's way: the files are renamed, then SIGHUP; the sensor writes on in new files at
/// the old paths (the stats file every second, the EVE records of the flows still live at the
/// end), nothing more into the renamed ones. SIGUSR1 then ends the run with its summary.
#[cfg(feature = "dpdk")]
#[test]
fn sighup_reopens_the_output_files_after_logrotate() {
    let d = TempDir::new("sighup");
    let q0 = d.path("q0.pcap");
    write_pcap(&q0, &pcapgen::many_flows(3, 50, 10, pcapgen::SizeMix::Small));
    let (eve, stats) = (d.path("eve.json"), d.path("stats.json"));
    let cfg = d.path("vdev.toml");
    let rest = format!(
        "[export]\neve = \"{}\"\n[stats]\ninterval_secs = 1\nfile = \"{}\"\n[metrics]\nlisten = \"\"\n",
        eve.display(),
        stats.display()
    );
    std::fs::write(&cfg, vdev_run_config(&[&q0], "sw-hup-test", &rest)).unwrap();
    let child = Command::new(bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    wait_for("stats lines", 30, || std::fs::read_to_string(&stats).unwrap_or_default().lines().count() >= 2);
    let (eve1, stats1) = (d.path("eve.json.1"), d.path("stats.json.1"));
    std::fs::rename(&eve, &eve1).unwrap();
    std::fs::rename(&stats, &stats1).unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    wait_for("a new stats file", 10, || std::fs::read_to_string(&stats).unwrap_or_default().lines().count() >= 2);
    let old_stats = std::fs::read_to_string(&stats1).unwrap().lines().count();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(Command::new("kill").args(["-USR1", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a live run that a signal ends ends normally: {err}");
    assert!(err.contains("SIGHUP: reopening the output files"), "{err}");
    assert!(err.contains("spinewatch summary"), "SIGUSR1 ends the run with its summary: {err}");
    assert!(err.contains("accounting           balanced"), "{err}");
    assert!(!err.contains("interrupted"), "a live run is not a replay cut short: {err}");
    assert_eq!(
        std::fs::read_to_string(&stats1).unwrap().lines().count(),
        old_stats,
        "nothing more into the renamed file"
    );
    let flows =
        std::fs::read_to_string(&eve).unwrap().lines().filter(|l| l.contains("\"event_type\":\"flow\"")).count();
    assert_eq!(flows, 50, "the records at the end go to the new file");
    assert_eq!(std::fs::read_to_string(&eve1).unwrap_or_default().lines().count(), 0);
}

/// A replay cut short by SIGINT exits 130 and says so; the summary still balances.
#[test]
fn an_interrupted_replay_exits_non_zero_and_says_so() {
    let d = TempDir::new("interrupt");
    let p = d.path("many.pcap");
    write_pcap(&p, &pcapgen::many_flows(4, 2_000, 10, pcapgen::SizeMix::Small));
    let eve = d.path("eve.json");
    let mut args: Vec<String> = ["replay", "--source", "file", "--workers", "1", "--eve"].map(String::from).to_vec();
    args.push(eve.to_str().unwrap().into());
    // The same capture many times over: a replay long enough to be interrupted.
    args.extend(std::iter::repeat_n(p.to_str().unwrap().to_string(), 1000));
    let child = Command::new(bin()).args(&args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    // The EVE file is opened after the signal handlers are in place.
    wait_for("the EVE file", 60, || std::fs::metadata(&eve).is_ok());
    std::thread::sleep(Duration::from_millis(300));
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted          by SIGINT: the input was not read to its end"), "{err}");
    assert!(err.contains("error: interrupted by SIGINT"), "{err}");
    assert!(err.contains("accounting           balanced"), "{err}");
}

/// A replay whose collector is down drops records at the end (no spool): the exit status is
/// 1 and the summary says how many were lost instead of "balanced".
#[test]
fn a_replay_that_lost_records_exits_non_zero() {
    let (d, p, cfg) = mixed_and_config("lossy", "[export]\ndrain_timeout_secs = 1\nspool_dir = \"\"\n");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(bin())
        .args(["replay", "--source", "file", "--config", cfg.to_str().unwrap()])
        .args(["--eve", d.path("eve.json").to_str().unwrap(), "--export", &format!("syslog+tcp://127.0.0.1:{dead}")])
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("accounting           every record counted; 19 LOST"), "{err}");
    assert!(!err.contains("accounting           balanced"), "{err}");
    assert!(err.contains("error: 19 records were not delivered to every sink"), "{err}");
}

/// Rules as suricata-update leaves them: a directory of files, one of them with a line that is
/// not UTF-8, drop rules from a drop.conf. `check-rules DIR` reads the directory, names the bad
/// line and loads the rest; a replay with `--rules DIR` alerts on the drop rule, "allowed".
#[test]
fn rule_directories_bad_lines_and_drop_rules() {
    let d = TempDir::new("ruledir");
    let dir = d.path("rules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.rules"),
        "drop http any any -> any any (msg:\"dropped GET\"; http.method; content:\"GET\"; sid:10;)\n",
    )
    .unwrap();
    let mut latin1 = b"alert tcp any any -> any any (msg:\"ok\"; content:\"zz\"; sid:11;)\n".to_vec();
    latin1.extend_from_slice(b"alert tcp any any -> any any (msg:\"caf\xe9\"; content:\"zz\"; sid:12;)\n");
    std::fs::write(dir.join("b.rules"), latin1).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rules file\n").unwrap();
    let out = Command::new(bin()).args(["check-rules", "--verbose", dir.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("2 rule file(s): 2 rules loaded, 1 rejected"), "{text}");
    assert!(text.contains("b.rules:2: not UTF-8"), "{text}");
    let empty = d.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(bin()).args(["check-rules", empty.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no *.rules file in it"), "{err}");

    let p = d.path("m.pcap");
    write_pcap(&p, &pcapgen::mixed());
    let run = replay(&["--source", "file", "--rules", dir.to_str().unwrap(), p.to_str().unwrap()]);
    let alerts: Vec<_> = run.of_type("alert").collect();
    assert!(!alerts.is_empty(), "{}", run.stderr);
    assert!(alerts.iter().all(|a| a["alert"]["signature_id"] == 10 && a["alert"]["action"] == "allowed"), "{alerts:?}");
}

/// Writes `pkts` as a classic pcap of link type `link` (raw IP 101, Linux SLL 113, SLL2 276),
/// each Ethernet frame's header replaced by that link's (non-IP frames left out).
fn write_pcap_link(path: &std::path::Path, pkts: &[pcapgen::Packet], link: u32) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    for (ts, f) in pkts {
        let (et, body) = (&f[12..14], &f[14..]);
        if et != [0x08, 0x00] && et != [0x86, 0xdd] {
            continue;
        }
        let mut frame = Vec::new();
        match link {
            101 => {}
            113 => {
                frame.extend_from_slice(&[0, 0, 0, 1, 0, 6]);
                frame.extend_from_slice(&f[6..12]);
                frame.extend_from_slice(&[0, 0]);
                frame.extend_from_slice(et);
            }
            276 => {
                frame.extend_from_slice(et);
                frame.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
                frame.extend_from_slice(&f[6..12]);
                frame.extend_from_slice(&[0, 0]);
            }
            _ => unreachable!(),
        }
        frame.extend_from_slice(body);
        for v in [(ts / 1_000_000) as u32, (ts % 1_000_000) as u32, frame.len() as u32, frame.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// Raw-IP, Linux SLL and SLL2 captures (`tcpdump -i any`) give the same records through DPDK as
/// through the file source, bytes included (counted as the capture has them, as Suricata does);
/// a capture cut inside its last record gives the records of its whole packets on both, says so
/// in the summary, and exits 0.
#[test]
fn every_link_type_and_a_cut_capture_give_the_same_records_on_every_source() {
    let d = TempDir::new("links");
    let pkts = pcapgen::mixed();
    let eth = d.path("eth.pcap");
    write_pcap(&eth, &pkts);
    let ethernet = replay(&["--source", "file", "--workers", "1", eth.to_str().unwrap()]);
    let flows = |r: &Run| -> u64 { r.events.iter().filter(|e| e["event_type"] == "flow").count() as u64 };
    for (name, link) in [("raw", 101), ("sll", 113), ("sll2", 276)] {
        let p = d.path(&format!("{name}.pcap"));
        write_pcap_link(&p, &pkts, link);
        let one = replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()]);
        assert!(flows(&one) > 5 && flows(&one) <= flows(&ethernet), "{name}: {}", one.stderr);
        // Its bytes are the capture's: raw IP 14 fewer per packet than Ethernet, flow by flow.
        if link == 101 {
            let table = |r: &Run| -> std::collections::BTreeMap<String, (u64, u64)> {
                r.events
                    .iter()
                    .filter(|e| e["event_type"] == "flow" && e.get("vlan").is_none() && e.get("tunnel").is_none())
                    .map(|e| {
                        let f = &e["flow"];
                        let k = format!(
                            "{}|{}|{}|{}|{}",
                            e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"], e["proto"]
                        );
                        let pk = f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
                        (k, (pk, f["bytes_toserver"].as_u64().unwrap() + f["bytes_toclient"].as_u64().unwrap()))
                    })
                    .collect()
            };
            let (raw, eth) = (table(&one), table(&ethernet));
            let mut compared = 0;
            for (k, (pk, b)) in &raw {
                if let Some((epk, eb)) = eth.get(k) {
                    assert_eq!((pk, b + 14 * pk), (epk, *eb), "{k}: raw IP counts its IP bytes");
                    compared += 1;
                }
            }
            assert!(compared >= 5, "{compared} flows compared");
        }
        for (what, r) in runs_at_other_worker_counts(&p) {
            assert_same_lines(&r, &one, &format!("{name}: {what} against the file source's 1 worker"));
        }
    }
    // Cut inside its last record: the records of the whole packets, on every source.
    let bytes = std::fs::read(&eth).unwrap();
    let cut = d.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let whole = d.path("whole.pcap");
    write_pcap(&whole, &pkts[..pkts.len() - 1]);
    let want = replay(&["--source", "file", "--workers", "1", whole.to_str().unwrap()]);
    let one = replay(&["--source", "file", "--workers", "1", cut.to_str().unwrap()]);
    assert_same_lines(&one, &want, "the cut capture against its whole packets");
    assert!(
        one.stderr.contains("input                ")
            && one.stderr.contains("cut.pcap: the file ends inside a record at byte"),
        "{}",
        one.stderr
    );
    for (what, r) in runs_at_other_worker_counts(&cut) {
        assert_same_lines(&r, &want, &format!("cut: {what}"));
        assert!(r.stderr.contains("(a capture cut short)"), "{what}: {}", r.stderr);
    }
}

/// Captures as analysts hand them over: standard input (`-`, on both sources), a folder (its
/// files in name order), `-r FILE`; `--bpf` on both sources (what it refuses is counted, the
/// run balances); a bad filter is refused before anything runs.
#[test]
fn stdin_folders_and_bpf_on_every_source() {
    let d = TempDir::new("inputs");
    let dir = d.path("caps");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    write_pcap(&a, &pcapgen::mixed());
    write_pcap(&b, &pcapgen::many_flows(7, 40, 6, pcapgen::SizeMix::Small));
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let both = replay(&["--source", "file", sa, sb]);
    assert_same_lines(&replay(&["--source", "file", dir.to_str().unwrap()]), &both, "a folder");
    assert_same_lines(&replay(&["--source", "file", "-r", sa, "-r", sb]), &both, "-r");
    let one = replay(&["--source", "file", sa]);
    for source in if cfg!(feature = "dpdk") { vec!["file", "dpdk"] } else { vec!["file"] } {
        let out = Command::new(bin())
            .args(["replay", "--source", source, "-"])
            .stdin(std::fs::File::open(&a).unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
        let events = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_same_lines(&Run { events, lines, stderr: err.into_owned() }, &one, &format!("{source}: standard input"));
    }
    // --bpf: TCP only; the rest counted as filtered, the same on both sources.
    let tcp = replay(&["--source", "file", "--bpf", "tcp", sa, sb]);
    let flows: Vec<&serde_json::Value> = tcp.events.iter().filter(|e| e["event_type"] == "flow").collect();
    assert!(flows.len() > 10 && flows.iter().all(|e| e["proto"] == "TCP"), "{}", tcp.stderr);
    let filtered = counter(&tcp.stderr, "filtered out (bpf)");
    assert!(filtered > 0, "{}", tcp.stderr);
    let all = counter(&both.stderr, "packets processed");
    assert_eq!(counter(&tcp.stderr, "packets processed") + filtered, all, "{}", tcp.stderr);
    if cfg!(feature = "dpdk") {
        assert_same_lines(&replay(&["--source", "dpdk", "--workers", "2", "--bpf", "tcp", sa, sb]), &tcp, "dpdk --bpf");
    }
    let out = Command::new(bin()).args(["replay", "--source", "file", "--bpf", "tcp prt 80", sa]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--bpf \"tcp prt 80\"") && err.contains("syntax error"), "{err}");
    let bad = d.path("bad.toml");
    std::fs::write(&bad, "[capture]\nbpf = \"port port\"\n").unwrap();
    let out = Command::new(bin()).args(["check-config", bad.to_str().unwrap()]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("capture.bpf: \"port port\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--continuous DIR`: the captures written into the folder while the sensor runs, each once
/// it is finished, in name order, logged; SIGINT ends it with its summary and exit 0; every
/// record of both files is there.
#[test]
fn a_watched_folder_takes_each_new_capture() {
    let d = TempDir::new("watch");
    let dir = d.path("incoming");
    std::fs::create_dir_all(&dir).unwrap();
    let eve = d.path("eve.json");
    let child = Command::new(bin())
        .args(["replay", "--continuous", dir.to_str().unwrap(), "--workers", "2", "--eve", eve.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // App-layer events (not flow records, which wait for their flow's end).
    let dns = |e: &str| {
        std::fs::read_to_string(e)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("\"event_type\":\"flow\""))
            .count()
    };
    // The first capture: its events come out while the watch goes on.
    write_pcap(&dir.join("1.pcap"), &pcapgen::mixed());
    wait_for("the first capture's events", 60, || dns(eve.to_str().unwrap()) > 0);
    let first = dns(eve.to_str().unwrap());
    // A second one, an hour later.
    let second = dir.join("2.pcap");
    let mut pkts = pcapgen::mixed();
    for (ts, _) in pkts.iter_mut() {
        *ts += 3_600_000_000;
    }
    write_pcap(&second, &pkts);
    wait_for("the second capture's events", 60, || dns(eve.to_str().unwrap()) >= 2 * first);
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a watch ends by a signal, normally: {err}");
    assert!(err.contains("accounting           balanced"), "{err}");
    let finished: Vec<&str> = err.lines().filter(|l| l.contains("finished")).collect();
    assert_eq!(finished.len(), 2, "{err}");
    assert!(finished[0].contains("1.pcap") && finished[1].contains("2.pcap"), "{err}");
    // Every record of both: the same as reading the two files.
    let want = replay(&["--source", "file", dir.join("1.pcap").to_str().unwrap(), second.to_str().unwrap()]);
    let lines: Vec<String> = std::fs::read_to_string(&eve).unwrap().lines().map(String::from).collect();
    let events = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_same_lines(&Run { events, lines, stderr: String::new() }, &want, "the watched folder against the two files");
}

/// A replay longer than a few seconds shows a progress line on a terminal (and clears it
/// before the summary); none when stderr is not a terminal.
#[test]
fn a_long_replay_shows_its_progress_on_a_terminal() {
    let d = TempDir::new("progress");
    let p = d.path("many.pcap");
    write_pcap(&p, &pcapgen::many_flows(9, 4_000, 10, pcapgen::SizeMix::Small));
    let files: Vec<String> = std::iter::repeat_n(p.to_str().unwrap().to_string(), 120).collect();
    let cmd = format!("{} replay --source file --workers 1 --eve none {}", bin(), files.join(" "));
    let out = Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("replay: ") && text.contains("% of ") && text.contains("Mpps"), "no progress line: {text}");
    assert!(
        text.contains("\r\x1b[Kspinewatch summary") || text.contains("\x1b[Kspinewatch summary"),
        "cleared before the summary: {text}"
    );
    let out = Command::new(bin())
        .args(["replay", "--source", "file", "--workers", "1", "--eve", "none"])
        .args(&files)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("replay: "), "not on a pipe");
}
