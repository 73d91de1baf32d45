//! IP fragmentation, and a capture of flows whose large packets arrive as fragments out of
//! order: the any-core-count tests' input (a NIC spreads fragments by their addresses and the
//! other packets of their flow by the 5-tuple, so datagram and flow often land on different
//! workers).

use crate::{flags, ip, udp_frame, Packet, Rng, TcpSession, L2, T0};
use std::net::IpAddr;

/// Where the IP header of an Ethernet frame starts (after any 802.1Q / 802.1ad tags), and its
/// EtherType.
fn ip_start(frame: &[u8]) -> Option<(usize, u16)> {
    let mut at = 12;
    loop {
        let et = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        if et == 0x8100 || et == 0x88a8 {
            at += 4;
        } else {
            return Some((at + 2, et));
        }
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Splits an Ethernet frame's IP packet (IPv4 without options, or IPv6 without extension
/// headers) into fragments carrying at most `max` bytes of its payload each (a multiple of 8),
/// with identification `id`. A packet that fits is returned whole.
pub fn fragment(frame: &[u8], max: usize, id: u32) -> Vec<Vec<u8>> {
    let max = (max / 8).max(1) * 8;
    let Some((at, et)) = ip_start(frame) else { return vec![frame.to_vec()] };
    let (hlen, v6) = match et {
        0x0800 => (20, false),
        0x86dd => (40, true),
        _ => return vec![frame.to_vec()],
    };
    let body = &frame[(at + hlen).min(frame.len())..];
    if body.len() <= max {
        return vec![frame.to_vec()];
    }
    let (l2, hdr) = (&frame[..at], &frame[at..at + hlen]);
    let mut out = Vec::new();
    let mut off = 0;
    while off < body.len() {
        let end = (off + max).min(body.len());
        let more = end < body.len();
        let piece = &body[off..end];
        let mut f = l2.to_vec();
        if v6 {
            let mut h = hdr.to_vec();
            let next = h[6];
            h[6] = 44;
            h[4..6].copy_from_slice(&((8 + piece.len()) as u16).to_be_bytes());
            f.extend_from_slice(&h);
            f.extend_from_slice(&[next, 0]);
            f.extend_from_slice(&((off as u16) | more as u16).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        } else {
            let mut h = hdr.to_vec();
            h[2..4].copy_from_slice(&((20 + piece.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
            h[6..8].copy_from_slice(&(((off / 8) as u16) | if more { 0x2000 } else { 0 }).to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = ipv4_checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
        }
        f.extend_from_slice(piece);
        out.push(f);
        off = end;
    }
    out
}

/// A DNS response for `name` with `n` TXT records of 250 bytes: about `n` × 262 bytes.
fn big_txt_response(id: u16, name: &str, n: u16, rng: &mut Rng) -> Vec<u8> {
    let mut m = crate::traffic::dns_query(id, name, 16);
    m[2] = 0x81;
    m[3] = 0x80;
    m[6..8].copy_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0x0e, 0x10, 0, 251, 250]);
        m.extend((0..250).map(|_| b"abcdefghijklmnopqrstuvwxyz234567"[rng.below(32) as usize]));
    }
    m
}

/// Puts fragments out of order: reversed, or the last first, or swapped pairs.
fn shuffle(mut f: Vec<Vec<u8>>, rng: &mut Rng) -> Vec<Vec<u8>> {
    match rng.below(3) {
        0 => f.reverse(),
        1 => f.rotate_right(1),
        _ => {
            for i in (1..f.len()).step_by(2) {
                f.swap(i - 1, i);
            }
        }
    }
    f
}

/// `flows` flows (half DNS over UDP with responses of 2-4 KB, half HTTP over TCP with 3-6 KB
/// response segments, as a sender with segmentation offload and a small path MTU makes them),
/// IPv4 and IPv6 alternately, every large packet in fragments of at most 1 232 bytes delivered
/// out of order; some flows in a VLAN. Starts at [`T0`], flows overlapping in time, packets in
/// time order with distinct timestamps.
pub fn fragmented_flows(seed: u64, flows: u32) -> Vec<Packet> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Packet> = Vec::new();
    for i in 0..flows {
        let v6 = i % 2 == 1;
        let (c, s): (IpAddr, IpAddr) = if v6 {
            (ip(&format!("fd00:9::{:x}", i + 1)), ip(&format!("fd00:8::{:x}", i % 7 + 1)))
        } else {
            (IpAddr::from([10, 9, (i >> 8) as u8, i as u8]), IpAddr::from([10, 8, 0, (i % 7 + 1) as u8]))
        };
        let l2 = if i % 5 == 0 { L2::vlan(100 + (i % 3) as u16) } else { L2::default() };
        let cport = 30000 + (i % 20000) as u16;
        // Flows start 2 ms apart and last about 6 ms: several are in flight at once.
        let mut t = T0 + i as u64 * 2000;
        let mut step = |out: &mut Vec<Packet>, f: Vec<u8>| {
            out.push((t, f));
            t += 100 + rng.below(50);
        };
        let mut r2 = Rng::new(seed ^ ((i as u64 + 1) * 0x9e37_79b9));
        let id = 0x1000 + i;
        if i % 4 < 2 {
            let name = format!("big{i}.frag.example");
            let q = crate::traffic::dns_query(i as u16, &name, 16);
            step(&mut out, udp_frame(&l2, true, c, cport, s, 53, &q));
            let resp = big_txt_response(i as u16, &name, 8 + (i % 8) as u16, &mut r2);
            let frame = udp_frame(&l2, false, s, 53, c, cport, &resp);
            for f in shuffle(fragment(&frame, 1232, id), &mut r2) {
                step(&mut out, f);
            }
        } else {
            let mut tcp = TcpSession::new(c, cport, s, 80).with_l2(l2);
            for (_, f) in tcp.handshake() {
                step(&mut out, f);
            }
            let req = format!("GET /file{i} HTTP/1.1\r\nHost: frag{i}.example\r\n\r\n");
            step(&mut out, tcp.seg(true, flags::PSH | flags::ACK, req.as_bytes()));
            let len = 3000 + (i as usize % 4) * 1000;
            let body: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
            let mut resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
            resp.extend_from_slice(&body);
            let seg = tcp.seg(false, flags::PSH | flags::ACK, &resp);
            for f in shuffle(fragment(&seg, 1232, id), &mut r2) {
                step(&mut out, f);
            }
            step(&mut out, tcp.seg(true, flags::ACK, &[]));
            for (_, f) in tcp.close() {
                step(&mut out, f);
            }
        }
    }
    out.sort_by_key(|p| p.0);
    for k in 1..out.len() {
        if out[k].0 <= out[k - 1].0 {
            out[k].0 = out[k - 1].0 + 1;
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn fragments_cover_the_packet() {
        let l2 = L2::default();
        let payload = vec![7u8; 3000];
        for (c, s) in [(ip("10.0.0.1"), ip("10.0.0.2")), (ip("fd00::1"), ip("fd00::2"))] {
            let f = udp_frame(&l2, true, c, 1, s, 2, &payload);
            let fr = fragment(&f, 1232, 9);
            assert_eq!(fr.len(), 3);
            let hlen = if c.is_ipv4() { 20 } else { 48 };
            let carried: usize = fr.iter().map(|x| x.len() - 14 - hlen).sum();
            assert_eq!(carried, 3008, "every byte of the UDP datagram, once");
        }
        let caps = fragmented_flows(1, 8);
        assert!(caps.windows(2).all(|w| w[0].0 < w[1].0), "distinct, ordered timestamps");
    }
}
