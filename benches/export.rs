//! The export thread's throughput: synthetic flow records fed as fast as a worker can batch
//! them, formatted and written by the export thread and one sink (its own thread):
//! - `file`: EVE JSON lines to a file (in the system's temporary directory);
//! - `ipfix`: IPFIX over UDP to a receiver on loopback (a thread that counts the datagrams).
//!
//! Prints records per second of wall time, and per second of the CPU the export and sink
//! threads used together (what one core sustains), the median of `--runs` runs, and writes
//! benches/results/export.json. Before each run the page cache is synced (and dropped when
//! the bench may: as root), so a run does not pay for the dirty pages of the one before: a
//! file sink's pace is otherwise the disk's writeback.
//!
//!   cargo bench --bench export [-- --records N] [--runs R]

use detect::flow::{EndReason, EventMeta, FlowRecord, FlowState, RecordSink, TcpInfo};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn records() -> Vec<FlowRecord> {
    let mut v = Vec::new();
    for i in 0..4096u32 {
        let v6 = i % 5 == 0;
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if v6 {
            src = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8];
            dst = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        } else {
            src[..4].copy_from_slice(&[10, 1, (i >> 8) as u8, i as u8]);
            dst[..4].copy_from_slice(&[10, 2, 0, (i % 50) as u8]);
        }
        let tcp = i % 3 != 2;
        let t0 = 1_700_000_000_000_000 + i as u64 * 1000;
        v.push(FlowRecord {
            meta: EventMeta {
                flow_id: 1_000_000_007u64.wrapping_mul(i as u64 + 1),
                timestamp: t0 + 60_000_000,
                ip_version: if v6 { 6 } else { 4 },
                src_ip: src,
                dest_ip: dst,
                src_port: 30000 + (i % 30000) as u16,
                dest_port: if tcp { 443 } else { 53 },
                proto: if tcp { 6 } else { 17 },
                vlan: [(i % 4) as u16 * 100, 0, 0],
                vlan_count: (i % 4 != 0) as u8,
                tunnel: None,
                ..Default::default()
            },
            pkts_toserver: 12 + i as u64 % 7,
            pkts_toclient: 10 + i as u64 % 5,
            bytes_toserver: 1500 + i as u64 * 3,
            bytes_toclient: 90_000 + i as u64 * 17,
            start: t0,
            end: t0 + 2_345_000,
            first_seen: [t0, t0 + 1000],
            last_seen: [t0 + 2_000_000, t0 + 2_345_000],
            state: FlowState::Closed,
            reason: EndReason::Timeout,
            tcp: tcp.then_some(TcpInfo { flags_ts: 0x1b, flags_tc: 0x1b, state: Some(detect::flow::TcpState::Closed) }),
            icmp: None,
            app_proto: if tcp { detect::AppProto::Tls } else { detect::AppProto::Dns },
            alerted: false,
            tracked: false,
        });
    }
    v
}

struct Result {
    name: &'static str,
    records: u64,
    secs: f64,
    cpu_secs: f64,
    export_cpu: f64,
    sink_cpu: f64,
    bytes: u64,
}

fn run(name: &'static str, url: &str, n: u64, recs: &[FlowRecord], format_threads: usize) -> Result {
    let sinks = vec![export::sink::url::parse(url).expect("a sink URL")];
    let mut cfg = export::ExportConfig { blocking: true, format_threads, ..Default::default() };
    cfg.sinks.network_blocking = true;
    let (h, mut batchers) = export::spawn(&sinks, 1, &cfg).expect("export thread");
    let mut b = batchers.pop().expect("one batcher");
    let t0 = Instant::now();
    for i in 0..n {
        b.emit(&recs[(i as usize) % recs.len()]);
        if i % 4096 == 0 {
            b.pump();
        }
    }
    b.finish();
    let (st, err) = h.join().expect("export thread");
    let secs = t0.elapsed().as_secs_f64();
    assert!(err.is_none(), "{err:?}");
    let s = &st.sinks[0];
    assert_eq!(s.sent, n, "{s:?}");
    Result {
        name,
        records: n,
        secs,
        cpu_secs: (st.cpu_ns + s.cpu_ns) as f64 / 1e9,
        export_cpu: st.cpu_ns as f64 / 1e9,
        sink_cpu: s.cpu_ns as f64 / 1e9,
        bytes: s.bytes,
    }
}

/// Writes back dirty pages and drops the page cache (as root), so runs start alike.
fn settle() {
    let _ = std::process::Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    std::thread::sleep(std::time::Duration::from_millis(500));
}

/// The run with the median wall time.
fn median(mut v: Vec<Result>) -> Result {
    v.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let i = v.len() / 2;
    v.swap_remove(i)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)?.parse::<u64>().ok());
    let n = arg("--records").unwrap_or(2_000_000);
    let runs = arg("--runs").unwrap_or(3).max(1);
    let recs = records();
    let dir = std::env::temp_dir().join(format!("spinewatch-export-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut results = Vec::new();
    // EVE to a file.
    let path = dir.join("eve.json");
    // One formatting thread and two (with the writer thread), alternately.
    let (mut v, mut v2) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (k, out) in [(1, &mut v), (2, &mut v2)] {
            settle();
            let name = if k == 1 { "file" } else { "file, 2 formatting threads" };
            out.push(run(name, &format!("file://{}", path.display()), n, &recs, k));
            let _ = std::fs::remove_file(&path);
        }
    }
    results.push(median(v));
    results.push(median(v2));
    // IPFIX over UDP to a receiver on loopback.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    rx.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let (d2, g2) = (done.clone(), got.clone());
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !d2.load(Ordering::Relaxed) {
            if let Ok(k) = rx.recv(&mut buf) {
                g2.fetch_add(k as u64, Ordering::Relaxed);
            }
        }
    });
    let mut v = Vec::new();
    for _ in 0..runs {
        v.push(run("ipfix", &format!("ipfix+udp://127.0.0.1:{port}"), n, &recs, 1));
    }
    results.push(median(v));
    done.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("export thread + sink thread, {n} flow records, median of {runs} runs, {cpu}");
    println!("| sink | records/s (wall) | per core: export + sink threads' CPU | export thread's CPU | sink thread's CPU | MB/s written |");
    println!("|---|---|---|---|---|---|");
    let mut js = Vec::new();
    for r in &results {
        let wall = r.records as f64 / r.secs;
        let core = r.records as f64 / r.cpu_secs.max(1e-9);
        println!(
            "| {} | {:.2} M | {:.2} M | {:.2} M | {:.2} M | {:.0} |",
            r.name,
            wall / 1e6,
            core / 1e6,
            r.records as f64 / r.export_cpu.max(1e-9) / 1e6,
            r.records as f64 / r.sink_cpu.max(1e-9) / 1e6,
            r.bytes as f64 / r.secs / 1e6
        );
        js.push(format!(
            "{{\"sink\":\"{}\",\"records\":{},\"secs\":{:.3},\"cpu_secs\":{:.3},\"export_cpu_secs\":{:.3},\"sink_cpu_secs\":{:.3},\"records_per_sec\":{:.0},\"records_per_cpu_sec\":{:.0}}}",
            r.name, r.records, r.secs, r.cpu_secs, r.export_cpu, r.sink_cpu, wall, core
        ));
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/export.json");
    let _ = std::fs::write(out, format!("{{\"cpu\":{:?},\"results\":[{}]}}\n", cpu, js.join(",")));
    if got.load(Ordering::Relaxed) == 0 {
        eprintln!("warning: the IPFIX receiver got nothing");
    }
}
