//! The symmetric flow hash: both directions of a flow hash alike.
//!
//! One function serves three places so they always agree: the flow table's index, the choice of
//! worker for file replay, and the pre-split of a capture into per-queue files for DPDK replay.
//! It is not seeded: a capture gives the same `flow_id`s and the same split on every run.

use crate::decode::{decode, Decoded, Kind};
use crate::flow::FlowKey;

#[inline]
fn fmix64(mut k: u64) -> u64 {
    // MurmurHash3's finaliser.
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ceb9fe1a85ec53);
    k ^ (k >> 33)
}

#[inline]
fn word(b: &[u8; 16], i: usize) -> u64 {
    u64::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]])
}

/// Hash of a canonical key (so of both directions).
#[inline]
pub fn key_hash(k: &FlowKey) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    let mix = |h: u64, w: u64| fmix64(h ^ w).rotate_left(17);
    h = mix(h, word(&k.lo_addr, 0));
    h = mix(h, word(&k.lo_addr, 8));
    h = mix(h, word(&k.hi_addr, 0));
    h = mix(h, word(&k.hi_addr, 8));
    let ports =
        (k.lo_port as u64) | ((k.hi_port as u64) << 16) | ((k.proto as u64) << 32) | ((k.vlan_count as u64) << 40);
    h = mix(h, ports);
    let vl = (k.vlan[0] as u64) | ((k.vlan[1] as u64) << 16) | ((k.vlan[2] as u64) << 32);
    fmix64(h ^ vl)
}

/// Maps a hash onto `0..n` using its high 32 bits (the table index uses the low bits).
#[inline]
pub fn worker_of(hash: u64, n: usize) -> usize {
    (((hash >> 32) * n as u64) >> 32) as usize
}

/// The worker (or queue) index of a frame among `n`. Frames that do not decode, non-IP frames
/// and fragments go by their addresses alone, or to worker 0 when they have none.
pub fn dispatch(frame: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    match decode(frame) {
        Ok(d) => worker_of(dispatch_hash(&d), n),
        Err(_) => 0,
    }
}

/// The hash [`dispatch`] uses for a decoded frame.
pub fn dispatch_hash(d: &Decoded) -> u64 {
    match d.kind {
        Kind::Ip => key_hash(&FlowKey::from_decoded(d).0),
        // Fragments have no ports: spread them by addresses so a datagram's pieces stay together.
        Kind::Fragment => {
            let mut d2 = *d;
            d2.src_port = 0;
            d2.dst_port = 0;
            d2.icmp_type = 0;
            key_hash(&FlowKey::from_decoded(&d2).0)
        }
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
        d.src[..4].copy_from_slice(&[10, 0, 0, 1]);
        d.dst[..4].copy_from_slice(&[10, 0, 0, 2]);
        let mut r = d;
        core::mem::swap(&mut r.src, &mut r.dst);
        core::mem::swap(&mut r.src_port, &mut r.dst_port);
        assert_eq!(dispatch_hash(&d), dispatch_hash(&r));
        let mut other = d;
        other.dst_port = 81;
        assert_ne!(dispatch_hash(&d), dispatch_hash(&other));
        for n in 1..9 {
            assert!(worker_of(dispatch_hash(&d), n) < n);
        }
    }
}
