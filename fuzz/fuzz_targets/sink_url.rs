//! Any text as a sink URL (`--export`): parsed or refused with a reason, never a panic; a
//! parsed one names itself.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = export::sink::url::parse(text) {
        assert!(!s.name.is_empty());
    }
}
