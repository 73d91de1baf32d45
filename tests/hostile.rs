//! Hostile traffic, generated: a SYN flood from spoofed sources, fragment floods, tiny and
//! out-of-order TCP segment floods, deep VLAN and tunnel nesting, DNS compression loops and
//! giant HTTP heads. Each must end with no panic, state within its configured bound, a counter
//! for what was refused, and the legitimate traffic beside it reported right.

mod common;
use common::*;
use pcapgen::{flags, ip, ip_frame, tcp_segment, tunnel, udp_frame, Rng, TcpSession, L2, T0};
use std::net::{IpAddr, Ipv4Addr};

/// Writes `pkts` (1 ms apart) and replays them with `config` on one worker.
fn run(name: &str, pkts: Vec<Vec<u8>>, config: &str) -> Run {
    let d = TempDir::new(name);
    let p = d.path("t.pcap");
    let timed: Vec<pcapgen::Packet> = pkts.into_iter().enumerate().map(|(i, f)| (T0 + i as u64 * 1000, f)).collect();
    write_pcap(&p, &timed);
    let cfg = d.path("t.toml");
    std::fs::write(&cfg, config).unwrap();
    replay(&["--config", cfg.to_str().unwrap(), "--source", "file", "--workers", "1", p.to_str().unwrap()])
}

/// The number after `key` on the summary line starting with `label`.
fn field(stderr: &str, label: &str, key: &str) -> u64 {
    let line =
        stderr.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("no {label}: {stderr}"));
    let at = line.find(key).unwrap_or_else(|| panic!("no {key} in {line}"));
    line[at + key.len()..]
        .trim_start_matches([' ', ':', '('])
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line}"))
}

/// An HTTP exchange on its own connection, its frames in order.
fn http_exchange(cport: u16, req: &[u8], resp: &[u8]) -> Vec<Vec<u8>> {
    let mut s = TcpSession::new(ip("10.0.0.1"), cport, ip("10.0.0.2"), 80);
    let mut v: Vec<Vec<u8>> = s.handshake().into_iter().map(|(_, f)| f).collect();
    v.push(s.seg(true, flags::PSH | flags::ACK, req));
    v.push(s.seg(false, flags::PSH | flags::ACK, resp));
    v.extend(s.close().into_iter().map(|(_, f)| f));
    v
}

#[test]
fn syn_flood_from_spoofed_sources_stays_in_its_table_and_spares_established_flows() {
    let mut r = Rng::new(7);
    // 20 established connections: handshake first, then data during the flood, closed after.
    let mut sessions: Vec<TcpSession> =
        (0..20).map(|i| TcpSession::new(ip("10.1.0.1"), 41000 + i, ip("10.1.0.2"), 443)).collect();
    let mut pkts = Vec::new();
    for s in &mut sessions {
        pkts.extend(s.handshake().into_iter().map(|(_, f)| f));
    }
    let flood = 30_000;
    for i in 0..flood {
        let src = IpAddr::V4(Ipv4Addr::from(0x0b00_0000u32 | (r.next_u64() as u32 & 0x00ff_ffff)));
        let seg = tcp_segment(1024 + (r.next_u64() % 60000) as u16, 443, r.next_u64() as u32, 0, flags::SYN, 1024, &[]);
        pkts.push(ip_frame(&L2::default(), true, src, ip("10.1.0.2"), 6, seg, Some(16)));
        if i % 1500 == 0 {
            // Each established connection sends a little now and then (idle far longer than
            // the flood takes to fill the table).
            let s = &mut sessions[(i / 1500) as usize % 20];
            pkts.push(s.seg(true, flags::PSH | flags::ACK, b"ping"));
            pkts.push(s.seg(false, flags::ACK, &[]));
        }
    }
    for s in &mut sessions {
        pkts.extend(s.close().into_iter().map(|(_, f)| f));
    }
    let cap = 1024;
    let run = run("synflood", pkts, &format!("[flow]\ncapacity = {cap}\n[behaviour]\nenabled = false\n"));
    // Bounded: the table never held more than its capacity (records = flows created).
    let created = counter(&run.stderr, "flows created");
    let evicted = field(&run.stderr, "records", "evicted");
    assert_eq!(created, flood as u64 + 20, "{}", run.stderr);
    assert!(evicted >= created - cap as u64 && evicted < created, "evicted {evicted} of {created}");
    assert!(run.stderr.contains("accounting           balanced"));
    // Every established connection: one record, not evicted, every packet on it.
    for s in &sessions {
        let recs: Vec<_> = run.flows().filter(|e| e["src_ip"] == "10.1.0.1" && e["src_port"] == s.cport).collect();
        assert_eq!(recs.len(), 1, "port {}: {recs:?}", s.cport);
        let f = &recs[0]["flow"];
        assert_ne!(f["reason"], "evicted", "{f}");
        assert_eq!(recs[0]["tcp"]["state"], "closed", "{}", recs[0]);
        let pkts = f["pkts_toserver"].as_u64().unwrap() + f["pkts_toclient"].as_u64().unwrap();
        let rounds = (0..flood).step_by(1500).filter(|i| (i / 1500) as u16 % 20 == s.cport - 41000).count() as u64;
        assert_eq!(pkts, 3 + 2 * rounds + 4, "{f}");
    }
}

#[test]
fn fragment_floods_and_overlaps_are_bounded_and_counted() {
    let mut pkts = Vec::new();
    // 5000 datagrams of which only the first fragment comes (the memory a flood would take).
    for id in 0..5000u16 {
        let mut f = udp_frame(&L2::default(), true, ip("10.2.0.1"), 5000, ip("10.2.0.2"), 53, &[0u8; 64]);
        let o = 14;
        f[o + 4..o + 6].copy_from_slice(&id.to_be_bytes());
        f[o + 6] = 0x20; // more fragments, offset 0
        let c = ip_checksum(&f[o..o + 20]);
        f[o + 10..o + 12].copy_from_slice(&c.to_be_bytes());
        pkts.push(f);
    }
    // Overlapping UDP fragments with different bytes, and a TCP first fragment too short for
    // the TCP header (RFC 1858's tiny fragment).
    for (id, proto, frags) in
        [(60001u16, 17u8, [(0u16, 16usize, true), (8, 24, false)]), (60002, 6, [(0, 8, true), (8, 16, false)])]
    {
        for (off, len, more) in frags {
            let mut payload = vec![(off as u8) | 1; len];
            if off == 0 {
                payload[..8].copy_from_slice(&[0x13, 0x88, 0, 53, 0, 32, 0, 0]);
            }
            pkts.push(fragment(ip("10.2.0.3"), ip("10.2.0.4"), proto, id, off, more, &payload));
        }
    }
    let run = run("fragflood", pkts, "[defrag]\nmax_datagrams = 256\n[behaviour]\nenabled = false\n");
    let s = &run.stderr;
    assert_eq!(counter(s, "fragments"), 5004, "{s}");
    assert!(field(s, "defrag", "evicted") >= 5000 - 256, "{s}");
    assert!(field(s, "defrag", "pending") <= 256, "{s}");
    assert!(field(s, "defrag", "overlaps") >= 1, "{s}");
    assert!(field(s, "defrag", "tiny") >= 1, "{s}");
    assert!(s.contains("accounting           balanced"));
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for (i, c) in h.chunks(2).enumerate() {
        if i != 5 {
            sum += u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]) as u32;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 fragment: `payload` at 8-byte offset `off`.
fn fragment(src: IpAddr, dst: IpAddr, proto: u8, id: u16, off: u16, more: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = ip_frame(&L2::default(), true, src, dst, proto, payload.to_vec(), None);
    let o = 14;
    f[o + 4..o + 6].copy_from_slice(&id.to_be_bytes());
    let fo = (off / 8) | if more { 0x2000 } else { 0 };
    f[o + 6..o + 8].copy_from_slice(&fo.to_be_bytes());
    let c = ip_checksum(&f[o..o + 20]);
    f[o + 10..o + 12].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn tiny_segments_and_out_of_order_floods_stay_within_the_reassembly_bounds() {
    // An HTTP request in 1-byte segments: parsed whole.
    let mut s = TcpSession::new(ip("10.3.0.1"), 42000, ip("10.3.0.2"), 80);
    let mut pkts: Vec<Vec<u8>> = s.handshake().into_iter().map(|(_, f)| f).collect();
    let req = b"GET /tiny HTTP/1.1\r\nHost: tiny.example\r\n\r\n";
    for b in req {
        pkts.push(s.seg(true, flags::PSH | flags::ACK, &[*b]));
    }
    pkts.push(s.seg(false, flags::PSH | flags::ACK, b"HTTP/1.1 204 No Content\r\n\r\n"));
    // A flood of out-of-order data: a 1-byte hole, then 2000 segments of 1000 bytes after it.
    let mut o = TcpSession::new(ip("10.3.0.3"), 42001, ip("10.3.0.4"), 80);
    pkts.extend(o.handshake().into_iter().map(|(_, f)| f));
    let base = o.cseq;
    for i in 0..2000u32 {
        let seg = tcp_segment(42001, 80, base + 1 + i * 1000, o.sseq, flags::ACK, 65535, &[b'x'; 1000]);
        pkts.push(ip_frame(&L2::default(), true, o.client, o.server, 6, seg, Some(16)));
    }
    let cfg = "[app]\nooo_per_flow = 65536\nooo_per_worker = 131072\n[behaviour]\nenabled = false\n";
    let run = run("ooo", pkts, cfg);
    let http: Vec<_> = run.of_type("http").collect();
    assert_eq!(http.len(), 1, "{:?}", run.lines);
    assert_eq!(http[0]["http"]["url"], "/tiny");
    assert_eq!(http[0]["http"]["hostname"], "tiny.example");
    let st = &run.stderr;
    assert!(field(st, "reassembly", "buffer full") >= 1, "{st}");
    assert!(field(st, "reassembly", "peak buffered") <= 65536 + 1000, "{st}");
    assert!(st.contains("accounting           balanced"));
}

#[test]
fn deep_vlan_and_tunnel_nesting_is_refused_and_counted() {
    let inner = udp_frame(&L2::default(), true, ip("10.4.0.1"), 7000, ip("10.4.0.2"), 7001, b"deep");
    // Eight VLAN tags.
    let l2 = L2 { vlans: (0..8).map(|i| (0x8100, 10 + i)).collect(), ..Default::default() };
    let vlans = udp_frame(&l2, true, ip("10.4.0.1"), 7000, ip("10.4.0.2"), 7001, b"tags");
    // VXLAN in VXLAN ... 12 deep.
    let mut nested = inner.clone();
    for i in 0..12u32 {
        nested = tunnel::vxlan(&nested, 100 + i, ip("192.0.2.1"), ip("192.0.2.2"), 50000 + i as u16);
    }
    // And one tunnel level that is fine, as a control.
    let ok = tunnel::vxlan(&inner, 7, ip("192.0.2.1"), ip("192.0.2.2"), 50000);
    let run = run("nesting", vec![vlans, nested, ok], "[behaviour]\nenabled = false\n");
    let st = &run.stderr;
    assert!(st.contains("vlan.too_many_vlans"), "{st}");
    assert!(st.contains("too_many_tunnels"), "{st}");
    assert_eq!(counter(st, "decode errors"), 2, "{st}");
    assert!(run.flows().any(|e| e["src_port"] == 7000 && e["tunnel"]["id"] == 7), "{:?}", run.lines);
    assert!(st.contains("accounting           balanced"));
}

#[test]
fn dns_compression_loops_and_giant_http_heads_are_anomalies_not_hangs() {
    let mut pkts = Vec::new();
    // A DNS query, then a response whose answer name points at itself, and one whose names
    // point at each other.
    let q = [0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b'l', b'o', b'o', b'p', 0, 0, 1, 0, 1];
    pkts.push(udp_frame(&L2::default(), true, ip("10.5.0.1"), 33000, ip("10.5.0.2"), 53, &q));
    for ptr in [[0xc0u8, 12], [0xc0, 30]] {
        let mut r = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        r.extend_from_slice(&[0xc0, 12 + 6, 0, 1, 0, 1]); // question name: a pointer forward
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        r[12..14].copy_from_slice(&ptr);
        r.extend_from_slice(&[0xc0, 18]);
        pkts.push(udp_frame(&L2::default(), false, ip("10.5.0.1"), 33000, ip("10.5.0.2"), 53, &r));
    }
    // An HTTP request with a 100 KB header, then a normal one on another connection.
    let mut giant = b"GET /giant HTTP/1.1\r\nHost: big.example\r\nX-Pad: ".to_vec();
    giant.extend(std::iter::repeat_n(b'a', 100_000));
    giant.extend_from_slice(b"\r\n\r\n");
    let mut s = TcpSession::new(ip("10.5.0.3"), 43000, ip("10.5.0.4"), 80);
    pkts.extend(s.handshake().into_iter().map(|(_, f)| f));
    for c in giant.chunks(1400) {
        pkts.push(s.seg(true, flags::ACK, c));
    }
    pkts.extend(s.close().into_iter().map(|(_, f)| f));
    pkts.extend(http_exchange(
        43001,
        b"GET /fine HTTP/1.1\r\nHost: ok.example\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ));
    let run = run("loops", pkts, "[behaviour]\nenabled = false\n");
    let st = &run.stderr;
    assert!(field(st, "parser anomalies", "dns malformed") >= 1, "{st}");
    assert!(field(st, "parser anomalies", "head too long") >= 1, "{st}");
    // The next connection is parsed as usual, and the giant one still has its flow record.
    assert!(run.of_type("http").any(|e| e["http"]["url"] == "/fine"), "{:?}", run.lines);
    assert!(run.flows().any(|e| e["src_port"] == 43000), "{:?}", run.lines);
    assert!(st.contains("accounting           balanced"));
}
