//! DHCP messages (RFC 2131 / 2132) for the generator: a client's REQUEST (a renewal, sent from
//! its address) and the server's ACK. Written independently of the sensor's parser, so the
//! tests compare two implementations of the format.

use std::net::Ipv4Addr;

const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// A BOOTP message with options (`op` 1 request, 2 reply), padded to the 300 bytes a BOOTP
/// relay expects.
#[allow(clippy::too_many_arguments)]
pub fn message(
    op: u8,
    xid: u32,
    mac: [u8; 6],
    ciaddr: Ipv4Addr,
    yiaddr: Ipv4Addr,
    siaddr: Ipv4Addr,
    options: &[(u8, &[u8])],
) -> Vec<u8> {
    let mut m = vec![op, 1, 6, 0];
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]); // secs, flags
    for a in [ciaddr, yiaddr, siaddr, Ipv4Addr::UNSPECIFIED] {
        m.extend_from_slice(&a.octets());
    }
    m.extend_from_slice(&mac);
    m.resize(m.len() + 10 + 64 + 128, 0); // chaddr padding, sname, file
    m.extend_from_slice(&MAGIC);
    for (code, v) in options {
        m.push(*code);
        m.push(v.len() as u8);
        m.extend_from_slice(v);
    }
    m.push(255);
    if m.len() < 300 {
        m.resize(300, 0);
    }
    m
}

/// A renewal REQUEST from `client`: message type, host name, parameter list, client id.
pub fn request(xid: u32, mac: [u8; 6], client: Ipv4Addr, host: &str) -> Vec<u8> {
    let mut id = vec![1];
    id.extend_from_slice(&mac);
    let z = Ipv4Addr::UNSPECIFIED;
    message(1, xid, mac, client, z, z, &[(53, &[3]), (12, host.as_bytes()), (55, &[1, 3, 15, 6]), (61, &id)])
}

/// The server's ACK: lease, renewal and rebinding times, mask, router, DNS server, host name.
pub fn ack(xid: u32, mac: [u8; 6], client: Ipv4Addr, server: Ipv4Addr, lease: u32, host: &str) -> Vec<u8> {
    let s = server.octets();
    message(
        2,
        xid,
        mac,
        client,
        client,
        server,
        &[
            (53, &[5]),
            (54, &s),
            (51, &lease.to_be_bytes()),
            (58, &(lease / 2).to_be_bytes()),
            (59, &(lease / 8 * 7).to_be_bytes()),
            (1, &[255, 255, 0, 0]),
            (3, &s),
            (6, &s),
            (12, host.as_bytes()),
        ],
    )
}
