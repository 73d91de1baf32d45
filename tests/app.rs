//! The application layer end to end (capture → decode → defrag → reassembly → parsers → EVE):
//! segments out of order, retransmitted, overlapping and split mid-header; fragments out of
//! order and overlapping; TLS and SSH split anywhere. Exact expected records.

mod common;
use common::*;
use pcapgen::{flags, ip, ip_frame, tcp_segment, TcpSession, L2, T0};
use serde_json::Value;

fn run(pkts: Vec<Vec<u8>>, name: &str) -> Run {
    let d = TempDir::new(name);
    let p = d.path("t.pcap");
    let timed: Vec<pcapgen::Packet> = pkts.into_iter().enumerate().map(|(i, f)| (T0 + i as u64 * 1000, f)).collect();
    write_pcap(&p, &timed);
    replay(&["--source", "file", "--workers", "1", p.to_str().unwrap()])
}

/// A client segment at an explicit sequence number (for overlaps and retransmissions).
fn client_seg(seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let seg = tcp_segment(40000, 80, seq, ack, flags::PSH | flags::ACK, 65535, payload);
    ip_frame(&L2::default(), true, ip("10.0.0.1"), ip("10.0.0.2"), 6, seg, Some(16))
}

fn only(r: &Run, t: &str) -> Value {
    let v: Vec<&Value> = r.of_type(t).collect();
    assert_eq!(v.len(), 1, "one {t} event: {:?}", r.lines);
    v[0][t].clone()
}

#[test]
fn http_through_reordered_retransmitted_overlapping_segments() {
    let mut s = TcpSession::new(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80);
    let mut pkts: Vec<Vec<u8>> = s.handshake().into_iter().map(|x| x.1).collect();
    let req = b"POST /upload?x=1 HTTP/1.1\r\nHost: Files.Example.ORG:8080\r\nUser-Agent: test/1.0\r\nContent-Length: 6\r\n\r\nabcdef";
    // Four pieces, cut mid-line; sent 1, 3, 4, 2, then 2 again, then a copy of 3 with other
    // bytes (it arrives after the original: the original's bytes stay).
    let cuts = [0, 20, 45, 80, req.len()];
    let seq0 = s.cseq;
    let ack = s.sseq;
    let piece = |i: usize| client_seg(seq0 + cuts[i] as u32, ack, &req[cuts[i]..cuts[i + 1]]);
    pkts.push(piece(0));
    pkts.push(piece(2));
    let mut evil = req[cuts[2]..cuts[3]].to_vec();
    evil[0] = b'X';
    pkts.push(client_seg(seq0 + cuts[2] as u32, ack, &evil));
    pkts.push(piece(3));
    pkts.push(piece(1));
    pkts.push(piece(1));
    s.cseq = seq0 + req.len() as u32;
    let resp = b"HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    pkts.push(s.seg(false, flags::PSH | flags::ACK, &resp[..30]));
    pkts.push(s.seg(false, flags::PSH | flags::ACK, &resp[30..]));
    pkts.extend(s.close().into_iter().map(|x| x.1));
    let r = run(pkts, "app-http");
    let h = only(&r, "http");
    // length: the message as on the wire, chunk framing included but the last empty line
    // (libhtp's response_message_len): "5\r\n" + "hello" + "\r\n" + "0\r\n".
    assert_eq!(
        h.to_string(),
        r#"{"hostname":"Files.Example.ORG","http_content_type":"text/plain","http_method":"POST","http_port":8080,"http_user_agent":"test/1.0","length":13,"protocol":"HTTP/1.1","request_body_len":6,"status":201,"url":"/upload?x=1"}"#
    );
    let f = r.flows().next().unwrap();
    assert_eq!(f["app_proto"], "http");
    assert!(r.stderr.contains("out of order 3, retransmitted 1, differing 1"), "{}", r.stderr);
    assert!(r.stderr.contains("gaps 0"), "{}", r.stderr);
}

#[test]
fn a_lost_segment_is_a_gap_and_http_finds_the_next_request() {
    let mut s = TcpSession::new(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 80);
    let mut pkts: Vec<Vec<u8>> = s.handshake().into_iter().map(|x| x.1).collect();
    pkts.push(s.seg(true, flags::PSH | flags::ACK, b"GET /first HTTP/1.1\r\nHo"));
    let _lost = s.seg(true, flags::PSH | flags::ACK, b"st: a\r\n\r\n");
    pkts.push(s.seg(true, flags::PSH | flags::ACK, b"GET /second HTTP/1.1\r\nHost: b\r\n\r\n"));
    pkts.push(s.seg(false, flags::PSH | flags::ACK, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
    pkts.extend(s.close().into_iter().map(|x| x.1));
    let r = run(pkts, "app-gap");
    let h = only(&r, "http");
    assert_eq!(
        (h["url"].as_str(), h["hostname"].as_str(), h["status"].as_u64()),
        (Some("/second"), Some("b"), Some(404))
    );
    // The server's ACK covers the lost bytes: the hole is declared at once.
    assert!(r.stderr.contains("reassembly           gaps 1"), "{}", r.stderr);
}

/// An IPv4 UDP DNS query, as fragments with the given (offset, length) pieces of its UDP part.
fn dns_fragments(pieces: &[(usize, usize)], tamper: Option<usize>) -> (Vec<Vec<u8>>, usize) {
    let mut q = vec![0x4a, 0x4b, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x03www\x0afragmented\x07example\x00\x00\x01\x00\x01");
    q.extend_from_slice(&[0; 40]); // padding to make fragments worth it
    let mut udp = vec![0xd4, 0x31, 0, 53];
    udp.extend_from_slice(&((8 + q.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&q);
    let frames = pieces
        .iter()
        .enumerate()
        .map(|(i, &(off, len))| {
            let more = off + len < udp.len();
            let mut f = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
            let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 3];
            h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
            h[6..8].copy_from_slice(&(((off / 8) as u16) | if more { 0x2000 } else { 0 }).to_be_bytes());
            f.extend_from_slice(&h);
            let mut body = udp[off..off + len].to_vec();
            if tamper == Some(i) {
                body[0] ^= 0xff;
            }
            f.extend_from_slice(&body);
            f
        })
        .collect();
    (frames, udp.len())
}

#[test]
fn dns_query_in_fragments_out_of_order_and_overlapping() {
    // 88 bytes of UDP in pieces [48,88) [0,32) [24,56): the last overlaps both others and
    // arrives last; its first byte (inside [0,32)) is altered (BSD: the fragment that starts
    // earlier wins, so the original bytes are kept).
    let (frames, udp_len) = dns_fragments(&[(48, 40), (0, 32), (24, 32)], Some(2));
    assert_eq!(udp_len, 88);
    let r = run(frames, "app-frag");
    let q = only(&r, "dns");
    assert_eq!(
        (q["type"].as_str(), q["rrname"].as_str(), q["id"].as_u64()),
        (Some("query"), Some("www.fragmented.example"), Some(0x4a4b))
    );
    let f = r.flows().next().unwrap();
    // One packet of the datagram: link header + IP header + 80 bytes, as Suricata counts it.
    assert_eq!(
        (f["flow"]["pkts_toserver"].as_u64(), f["flow"]["bytes_toserver"].as_u64()),
        (Some(1), Some(14 + 20 + 88))
    );
    assert!(
        r.stderr.contains("defrag               1 datagrams from 3 fragments (overlaps 2, differing 1"),
        "{}",
        r.stderr
    );
    assert_eq!(counter(&r.stderr, "fragments"), 3);
    // An incomplete datagram is dropped at its timeout, counted, and produces nothing.
    let (mut frames, _) = dns_fragments(&[(0, 32)], None);
    frames.truncate(1);
    let r = run(frames, "app-frag-incomplete");
    assert_eq!(r.of_type("dns").count(), 0);
    assert!(r.stderr.contains("defrag               0 datagrams from 1 fragments"), "{}", r.stderr);
}

#[test]
fn tls_and_ssh_split_at_every_byte() {
    let mut rng = pcapgen::Rng::new(3);
    let ch = pcapgen::traffic::tls_client_hello_with(&mut rng, "split.example", &["h2"], true);
    let (hello, cert) = pcapgen::traffic::tls12_server_flight(&mut rng, "h2");
    let mut s = TcpSession::new(ip("10.0.0.1"), 40001, ip("10.0.0.2"), 443);
    let mut pkts: Vec<Vec<u8>> = s.handshake().into_iter().map(|x| x.1).collect();
    for b in ch.chunks(1) {
        pkts.push(s.seg(true, flags::PSH | flags::ACK, b));
    }
    for part in [&hello[..], &cert[..]] {
        for b in part.chunks(7) {
            pkts.push(s.seg(false, flags::PSH | flags::ACK, b));
        }
    }
    pkts.push(s.seg(true, flags::PSH | flags::ACK, &[0x17, 3, 3, 0, 2, 0, 0]));
    pkts.extend(s.close().into_iter().map(|x| x.1));
    let mut ssh = TcpSession::new(ip("10.0.0.1"), 40002, ip("10.0.0.2"), 22);
    pkts.extend(ssh.handshake().into_iter().map(|x| x.1));
    for b in b"SSH-2.0-OpenSSH_9.6p1 Debian\r\n".chunks(3) {
        pkts.push(ssh.seg(true, flags::PSH | flags::ACK, b));
    }
    for b in b"SSH-2.0-dropbear\r\n".chunks(2) {
        pkts.push(ssh.seg(false, flags::PSH | flags::ACK, b));
    }
    pkts.extend(ssh.close().into_iter().map(|x| x.1));
    let r = run(pkts, "app-split");
    let t = only(&r, "tls");
    assert_eq!(t["sni"], "split.example");
    assert_eq!(t["version"], "TLS 1.2");
    assert_eq!(t["subject"], "C=US, ST=California, O=Example Corp, OU=Web, CN=www.example.com");
    // The DER integer's bytes, its leading zero included (as Suricata writes it).
    assert_eq!(t["serial"], "00:C0:FF:EE:12:34");
    assert_eq!(t["fingerprint"], "e1:c0:a6:7d:a2:98:18:0d:1a:a5:73:3e:df:97:85:18:aa:8c:66:08");
    assert_eq!(
        (t["notbefore"].as_str(), t["notafter"].as_str()),
        (Some("2026-11-23T02:38:28"), Some("2029-02-25T02:38:28"))
    );
    // GREASE left out of JA3; the ALPN h2.
    assert!(!t["ja3"]["string"].as_str().unwrap().contains("10794"), "{t}");
    assert!(t["ja3"]["string"].as_str().unwrap().starts_with("771,4865-4866-4867-49195"), "{t}");
    assert_eq!(t["ja3s"]["string"], "771,49199,65281-11-16");
    assert!(t["ja4"].as_str().unwrap().starts_with("t13d0807h2_"), "{t}");
    let h = only(&r, "ssh");
    assert_eq!(
        h.to_string(),
        r#"{"client":{"proto_version":"2.0","software_version":"OpenSSH_9.6p1"},"server":{"proto_version":"2.0","software_version":"dropbear"}}"#
    );
}

/// A keep-alive HTTP flow whose responses have long bodies (skipped by the parser; the flow
/// table passes over their in-order segments without the session), then whatever breaks that
/// path: a retransmission, two segments swapped, a pipelined request, and a flow that ends
/// mid-body. Each response's length is what came of its body, as before the fast path.
#[test]
fn long_bodies_skipped_in_the_flow_table_are_counted_right() {
    let mut s = TcpSession::new(ip("10.0.0.1"), 40010, ip("10.0.0.2"), 80);
    let mut pkts: Vec<Vec<u8>> = s.handshake().into_iter().map(|x| x.1).collect();
    let body = |n: usize| -> Vec<u8> { (0..n).map(|i| b'a' + (i % 26) as u8).collect() };
    // 1: 20 000 bytes in order, in 1 400-byte segments, the head in the first.
    pkts.push(s.seg(true, flags::PSH | flags::ACK, b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
    let mut r1 = b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n".to_vec();
    r1.extend(body(20000));
    for c in r1.chunks(1400) {
        pkts.push(s.seg(false, flags::ACK, c));
    }
    // 2: 9 000 bytes; the fourth segment retransmitted, the sixth and seventh swapped.
    pkts.push(s.seg(true, flags::PSH | flags::ACK, b"GET /two HTTP/1.1\r\nHost: a\r\n\r\n"));
    let mut r2 = b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n".to_vec();
    r2.extend(body(9000));
    let segs: Vec<Vec<u8>> = r2.chunks(1000).map(|c| s.seg(false, flags::ACK, c)).collect();
    for (i, p) in segs.iter().enumerate() {
        match i {
            5 => pkts.push(segs[6].clone()),
            6 => pkts.push(segs[5].clone()),
            _ => pkts.push(p.clone()),
        }
        if i == 3 {
            pkts.push(p.clone());
        }
    }
    // 3: a request arrives while the body of the response to it is under way; then 4 is
    // asked and its 50 000-byte body is cut after 6 000 bytes by the end of the capture.
    pkts.push(s.seg(true, flags::PSH | flags::ACK, b"GET /three HTTP/1.1\r\nHost: a\r\n\r\n"));
    let mut r3 = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_vec();
    r3.extend(body(5000));
    for (i, c) in r3.chunks(1000).enumerate() {
        if i == 3 {
            // (It acknowledges what the client has had so far.)
            pkts.push(s.seg(true, flags::PSH | flags::ACK, b"GET /four HTTP/1.1\r\nHost: a\r\n\r\n"));
        }
        pkts.push(s.seg(false, flags::ACK, c));
    }
    let mut r4 = b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n".to_vec();
    r4.extend(body(6000));
    for c in r4.chunks(1000) {
        pkts.push(s.seg(false, flags::ACK, c));
    }
    let r = run(pkts, "app-long-bodies");
    let got: Vec<(String, u64)> = r
        .of_type("http")
        .map(|e| (e["http"]["url"].as_str().unwrap().to_string(), e["http"]["length"].as_u64().unwrap_or(0)))
        .collect();
    let want: Vec<(String, u64)> = [("/one", 20000), ("/two", 9000), ("/three", 5000), ("/four", 6000)]
        .iter()
        .map(|(u, n)| (u.to_string(), *n))
        .collect();
    assert_eq!(got, want, "{:?}", r.lines);
    assert!(r.stderr.contains("gaps 0"), "{}", r.stderr);
    assert!(r.stderr.contains("out of order 1, retransmitted 1, differing 0"), "{}", r.stderr);
    // Every response segment is in order but the swapped one (buffered) and the retransmission;
    // the flow table passed over those inside a body, except each body's last and those
    // after a packet that went to the session (the swap, the retransmission, the request).
    let n = |k: &str| -> u64 {
        let i = r.stderr.find(k).unwrap_or_else(|| panic!("{k} in {}", r.stderr)) + k.len();
        r.stderr[i..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (in_order, fast) = (n("; in order "), n("passed over in the flow table "));
    // Requests 4; responses 15, 10 (one of them buffered), 6 and 7.
    assert_eq!(in_order, 4 + 15 + 9 + 6 + 7, "{}", r.stderr);
    assert!(fast >= 25 && fast < in_order, "{fast} of {in_order}: {}", r.stderr);
}
