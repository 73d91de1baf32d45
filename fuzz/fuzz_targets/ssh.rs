//! Any bytes as an SSH session: banners and KEXINIT packets cut anywhere, both ways.
#![cfg_attr(fuzzing, no_main)]
use detect::app::ssh::{SshCounters, SshState};
use detect::app::stream::Chunk;
use detect::app::AppEvent;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mut st = SshState::default();
    let mut c = SshCounters::default();
    let mut out = Vec::new();
    let m = common::meta(6, 22);
    let mut emit = |e: &AppEvent<'_>| {
        e.write_eve(&mut out, &m);
    };
    let step = 1 + (ctl & 0x7f) as usize;
    for (i, ch) in rest.chunks(step).enumerate() {
        st.input((ctl as usize >> 7) ^ (i % 2), Chunk::Data(ch), &mut c, &mut emit);
    }
    st.finish(&mut emit);
}
