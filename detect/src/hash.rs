//! The symmetric flow hash: both directions of a flow hash alike.
//!
//! One function serves three places so they always agree: the flow table's index, the choice of
//! worker for file replay, and the pre-split of a capture into per-queue files for DPDK replay.
//! It is not seeded: a capture gives the same `flow_id`s and the same split on every run.

use crate::decode::{decode, Decoded, Kind};
use crate::flow::FlowKey;

#[inline]
pub(crate) fn fmix64(mut k: u64) -> u64 {
    // MurmurHash3's finaliser.
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ceb9fe1a85ec53);
    k ^ (k >> 33)
}

/// Hash of a canonical key (so of both directions). Each 64-bit word is multiplied by its own
/// odd constant independently (the multiplies run in parallel), the products are folded, and
/// one finaliser spreads the bits.
#[inline]
pub fn key_hash(k: &FlowKey) -> u64 {
    let w = [
        k.lo_addr as u64,
        (k.lo_addr >> 64) as u64,
        k.hi_addr as u64,
        (k.hi_addr >> 64) as u64,
        (k.lo_port as u64) | ((k.hi_port as u64) << 16) | ((k.tunnel_id as u64) << 32),
        (k.vlan[0] as u64)
            | ((k.vlan[1] as u64) << 16)
            | ((k.vlan[2] as u64) << 32)
            | ((k.proto as u64) << 48)
            | ((k.info as u64) << 56),
    ];
    const K: [u64; 6] = [
        0x9e37_79b9_7f4a_7c15,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0xff51_afd7_ed55_8ccd,
        0xc4ce_b9fe_1a85_ec53,
        0x2545_f491_4f6c_dd1d,
    ];
    let a = w[0].wrapping_mul(K[0]) ^ w[1].wrapping_mul(K[1]).rotate_left(21);
    let b = w[2].wrapping_mul(K[2]) ^ w[3].wrapping_mul(K[3]).rotate_left(21);
    let c = w[4].wrapping_mul(K[4]) ^ w[5].wrapping_mul(K[5]).rotate_left(21);
    fmix64(a ^ b.rotate_left(27) ^ c.rotate_left(43))
}

/// Maps a hash onto `0..n` using its high 32 bits (the table index uses the low bits).
#[inline]
pub fn worker_of(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

/// How packets spread over workers (`capture.rss`), as a NIC's symmetric RSS would spread
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spread {
    /// Fragments by their address pair, every other packet by its 5-tuple; a datagram
    /// reassembled from fragments is handed to its flow's worker ([`crate::shard`]).
    #[default]
    Flow,
    /// Every packet by its address pair: a flow and its fragments are always together (no
    /// hand-offs), at the price of a coarser spread (every flow between two hosts on one
    /// worker).
    Addresses,
}

/// The worker (or queue) index of a frame among `n`. Frames that do not decode, non-IP frames
/// and fragments go by their addresses alone, or to worker 0 when they have none.
pub fn dispatch(frame: &[u8], n: usize, spread: Spread) -> usize {
    dispatch_frag(frame, n, spread).0
}

/// [`dispatch`], and whether the frame is an IP fragment (its datagram's flow may belong to
/// another worker: see [`crate::shard`]).
pub fn dispatch_frag(frame: &[u8], n: usize, spread: Spread) -> (usize, bool) {
    if n <= 1 {
        return (0, false);
    }
    match decode(frame) {
        Ok(d) => (worker_of(dispatch_hash(&d, spread), n), d.kind == Kind::Fragment),
        Err(_) => (0, false),
    }
}

/// A decoded packet's key without its ports (ICMP: without its type).
fn addresses_hash(d: &Decoded) -> u64 {
    let mut d2 = *d;
    d2.src_port = 0;
    d2.dst_port = 0;
    d2.icmp_type = 0;
    key_hash(&FlowKey::from_decoded(&d2).0)
}

/// The hash [`dispatch`] uses for a decoded frame.
///
/// A frame in a UDP tunnel (VXLAN, GENEVE) goes by its outer addresses only (the two VTEPs).
/// Its outer UDP flow is tracked too and must stay on one worker, and so must each inner flow,
/// whose two directions travel in two outer flows (A:p to B:4789 and B:q to A:4789): hashing the
/// outer 5-tuple, as a NIC's RSS does, would split them. The cost: one VTEP pair's traffic is on
/// one worker. A frame in GRE or ERSPAN (a mirror session: one outer tuple for everything) or
/// IP-in-IP goes by its inner flow, as a NIC with inner-header RSS would spread it: those outer
/// tunnels have no flow of their own. With [`Spread::Addresses`] every packet goes by its
/// (inner) addresses.
pub fn dispatch_hash(d: &Decoded, spread: Spread) -> u64 {
    if d.tunnel.outer_udp_payload != 0 {
        let mut o = d.tunnel.outer_udp();
        o.src_port = 0;
        o.dst_port = 0;
        return key_hash(&FlowKey::from_decoded(&o).0);
    }
    match d.kind {
        Kind::Ip if spread == Spread::Flow => key_hash(&FlowKey::from_decoded(d).0),
        // Fragments have no ports: spread them by addresses so a datagram's pieces stay together.
        Kind::Ip | Kind::Fragment => addresses_hash(d),
        Kind::NonIp => 0,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_symmetric() {
        let mut d =
            Decoded { kind: Kind::Ip, ip_version: 4, proto: 6, src_port: 1234, dst_port: 80, ..Default::default() };
        d.set_v4([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut r = d;
        core::mem::swap(&mut r.src, &mut r.dst);
        core::mem::swap(&mut r.src_port, &mut r.dst_port);
        assert_eq!(dispatch_hash(&d, Spread::Flow), dispatch_hash(&r, Spread::Flow));
        let mut other = d;
        other.dst_port = 81;
        assert_ne!(dispatch_hash(&d, Spread::Flow), dispatch_hash(&other, Spread::Flow));
        assert_eq!(dispatch_hash(&d, Spread::Addresses), dispatch_hash(&other, Spread::Addresses));
        for n in 1..9 {
            assert!(worker_of(dispatch_hash(&d, Spread::Flow), n) < n);
        }
    }
}
