//! Any bytes as an SSH session: banners and KEXINIT packets cut anywhere, both ways.
#![cfg_attr(fuzzing, no_main)]
use detect::app::stream::Chunk;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let step = 1 + (ctl & 0x7f) as usize;
    let chunks = rest.chunks(step).enumerate().map(|(i, ch)| ((ctl as usize >> 7) ^ (i % 2), Chunk::Data(ch)));
    common::session::<detect::app::ssh::Ssh>(&Default::default(), 22, chunks);
}
