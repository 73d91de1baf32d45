//! Any sequence of segments (sequence numbers, lengths, cut frames, ACKs) into one direction of
//! reassembly with small bounds and a parser that asks to skip bytes now and then: it never
//! panics, never delivers past the depth, and releases every buffer.
#![cfg_attr(fuzzing, no_main)]
use detect::app::stream::{Budget, Chunk, Stream, StreamLimits};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let lim = StreamLimits { depth: 4096, ooo_per_stream: 512, ooo_total: 1024, max_ahead: 1 << 16 };
    let mut budget = Budget::new(lim);
    let mut s = Stream::default();
    let base = u32::MAX - 300; // wrap around zero
    s.start(base);
    let mut delivered = 0u64;
    // The parser side asks to skip a few bytes now and then (as HTTP does for bodies).
    let ask = data.first().copied().unwrap_or(0) as u64 % 5;
    let mut out = |c: Chunk<'_>| {
        delivered += match c {
            Chunk::Data(d) => d.len() as u64,
            Chunk::Gap(n) => n as u64,
            Chunk::Skipped(n) => n,
        };
        if delivered.is_multiple_of(3) {
            ask * 7
        } else {
            0
        }
    };
    let mut it = data.chunks_exact(6);
    for op in &mut it {
        let off = u16::from_be_bytes([op[0], op[1]]) as u32;
        let len = op[2] as usize;
        let claimed = len as u32 + (op[3] & 3) as u32;
        let seq = base.wrapping_add(off);
        let payload = vec![op[4]; len];
        if op[5] & 1 == 0 {
            s.segment(seq, &payload, claimed, &mut budget, &mut out);
        } else {
            s.acked(seq, &mut budget, &mut out);
        }
    }
    s.finish(&mut budget, &mut out);
    assert!(delivered <= 4096);
    assert_eq!(budget.counters.ooo_bytes, 0);
}
