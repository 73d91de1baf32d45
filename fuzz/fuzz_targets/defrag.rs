//! Any set of IPv4 fragments (offsets, lengths, flags, ids, overlaps) into a small
//! defragmenter: never panics, and its byte count returns to zero once everything expired.
#![cfg_attr(fuzzing, no_main)]
use detect::defrag::{Defrag, DefragConfig};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let mut df = Defrag::new(DefragConfig {
        enabled: true,
        max_datagrams: 4,
        max_bytes: 70_000,
        timeout: 1,
        ..DefragConfig::default()
    });
    let mut t = 0;
    for op in data.chunks_exact(5) {
        let off = u16::from_be_bytes([op[0], op[1]]) & 0x1fff;
        let more = op[2] & 1 != 0;
        let len = 8 * (1 + (op[3] as usize % 24));
        let id = (op[4] % 3) as u16;
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[6..8].copy_from_slice(&(off | if more { 0x2000 } else { 0 }).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend((0..len).map(|i| op[i % 5]));
        if let Ok(d) = detect::decode(&f) {
            if d.kind == detect::decode::Kind::Fragment {
                let _ = df.add(&f, &d, t);
            }
        }
        t += 1000;
    }
    df.expire(t + 10_000_000);
    assert_eq!(df.counters.pending_bytes, 0);
}
