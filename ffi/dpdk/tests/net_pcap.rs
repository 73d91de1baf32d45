//! The safe layer against a real PMD: EAL without hugepages or PCI, a `net_pcap` vdev reading a
//! small capture, one RX queue. Checks what the mbuf accessors of the C shim read on this
//! DPDK's (22.11+) mbuf layout: data bytes, pkt_len, and the RX timestamp dynfield, plus bulk
//! free and owned `Mbuf` drop (the pool gets every mbuf back). EAL initialises once per process,
//! so this file holds one test.

use dpdk_sys::{Burst, Eal, Mempool, Port, TimestampField};

fn write_pcap(path: &std::path::Path, pkts: &[(u64, Vec<u8>)]) {
    let mut f = Vec::new();
    for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for (ts, p) in pkts {
        for v in [(ts / 1_000_000) as u32, (ts % 1_000_000) as u32, p.len() as u32, p.len() as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(p);
    }
    std::fs::write(path, f).unwrap();
}

#[test]
fn rx_burst_reads_frames_lengths_and_timestamps() {
    let dir = std::env::temp_dir().join(format!("dpdk-sys-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("three.pcap");
    let pkts: Vec<(u64, Vec<u8>)> = (0..3u8)
        .map(|i| {
            (1_700_000_000_000_000 + i as u64 * 1_234_567, (0..60 + i as usize * 700).map(|b| (b as u8) ^ i).collect())
        })
        .collect();
    write_pcap(&pcap, &pkts);
    let args: Vec<String> = [
        "dpdk-sys-test".to_string(),
        "--no-huge".into(),
        "--no-pci".into(),
        "-m".into(),
        "128".into(),
        format!("--file-prefix=dpdk-sys-test-{}", std::process::id()),
        "--no-telemetry".into(),
        "--log-level=warning".into(),
        format!("--vdev=net_pcap_t0,rx_pcap={}", pcap.display()),
    ]
    .to_vec();
    let eal = Eal::init(&args).expect("EAL init");
    assert!(Eal::init(&args).is_err(), "a second EAL init is refused");
    let ts = TimestampField::register(&eal).unwrap();
    let pool = std::sync::Arc::new(Mempool::create(&eal, "t_pool", 1023, 0, 2176, -1).unwrap());
    let mut port = Port::by_name(&eal, "net_pcap_t0").unwrap();
    assert!(Port::by_name(&eal, "net_nothing9").is_err());
    assert!(Port::by_name(&eal, "net_pcap_t0").is_err(), "one handle per port");
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_pcap");
    port.configure(1, 1, 0, 0, 0, 0).unwrap();
    assert!(port.rx_queue_setup(1, 256, info.socket, &pool).is_err(), "queue 1 of a 1-queue port");
    port.rx_queue_setup(0, 256, info.socket, &pool).unwrap();
    port.tx_queue_setup(0, 256, info.socket).unwrap();
    port.start().unwrap();
    let mut queues = port.rx_queues(Some(ts)).unwrap();
    assert_eq!(queues.len(), 1);
    assert!(port.rx_queues(None).is_err(), "queues are handed out once");
    let mut q = queues.pop().unwrap();
    let mut burst = Burst::new(32);
    let mut got: Vec<(u64, Vec<u8>, u32)> = Vec::new();
    for _ in 0..1000 {
        if q.rx_burst(&mut burst) > 0 {
            for m in burst.iter() {
                got.push((m.timestamp().expect("net_pcap stamps the capture time"), m.data().to_vec(), m.pkt_len()));
            }
            // Keep the last one as an owned Mbuf, free the rest in bulk.
            let last = burst.pop().unwrap();
            assert_eq!(last.pkt_len() as usize, last.data().len());
            burst.free();
            drop(last);
        }
        if got.len() == 3 {
            break;
        }
    }
    assert_eq!(got.len(), 3);
    for ((ts, data, len), (want_ts, want)) in got.iter().zip(&pkts) {
        assert_eq!(ts, want_ts);
        assert_eq!(*len as usize, want.len());
        assert_eq!(data, want, "first segment holds the whole frame (data room 2048)");
    }
    assert_eq!(port.stats().ipackets, 3);
    assert!(!port.xstats().is_empty());
    let _ = q;
    drop(burst);
    port.stop();
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
    drop(port);
    drop(pool);
    let _ = eal;
    std::fs::remove_dir_all(&dir).ok();
}
