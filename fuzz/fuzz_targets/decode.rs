//! Any frame, whole or as the first segment of a longer one: decode never panics, and whatever
//! it reports stays inside the frame.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    if let Ok(d) = detect::decode(data) {
        if d.kind == detect::decode::Kind::Ip {
            assert!(d.l4_offset as usize <= data.len());
            assert!(d.payload_offset as usize <= data.len());
        }
    }
    let cut = data.first().copied().unwrap_or(0) as usize % (data.len() + 1);
    let _ = detect::decode_partial(&data[..cut], data.len() + 100);
}
