//! Any bytes as a spool segment left by an earlier run (a torn write, a disk error, another
//! file): the spool opens, reads back what is whole, counts the rest, and never panics.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    use export::sink::spool::{entry_bytes, Peek, Spool};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sw-fuzz-spool-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::create_dir_all(&dir);
    // The first byte picks a read position to leave beside it (an orderly stop's).
    if let Some((&b, rest)) = data.split_first() {
        let _ = std::fs::write(dir.join("000000000000.spool"), rest);
        if b & 1 == 1 {
            let _ = std::fs::write(dir.join("000000000000.read"), (b as u64 * 4).to_string());
        }
    }
    if let Ok((mut s, held)) = Spool::open(&dir, "fuzz", 1 << 20, None) {
        let mut got = 0u64;
        for _ in 0..10_000 {
            match s.peek() {
                Ok(Peek::Entry(pos, c)) => {
                    got += c.records as u64;
                    assert!(c.ends.last().map_or(0, |&e| e as usize) <= c.data.len());
                    s.advance(pos, c.records, entry_bytes(&c));
                }
                Ok(Peek::Empty) => break,
                Err((_, lost)) => got += lost,
            }
        }
        assert_eq!(got, held, "records found at open and read back differ");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
