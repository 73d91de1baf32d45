//! Any bytes as an HTTP exchange: the first byte picks how the rest is cut into segments and
//! which direction each goes, with gaps; transactions are rendered as the EVE writer does.
#![cfg_attr(fuzzing, no_main)]
use detect::app::http::{HttpCounters, HttpLimits, HttpState};
use detect::app::stream::Chunk;
use detect::app::AppEvent;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mut st = HttpState::default();
    let mut c = HttpCounters::default();
    // Heads and bodies kept or not as the control byte says (rules loaded or not).
    let keep = ctl & 0x80 != 0;
    let lim = HttpLimits { max_head: 512, max_pending: 4, keep_heads: keep, body_limit: if keep { 256 } else { 0 } };
    let mut out = Vec::new();
    let m = common::meta(6, 80);
    let mut emit = |e: &AppEvent<'_>| {
        e.write_eve(&mut out, &m);
    };
    let step = 1 + (ctl & 0x1f) as usize;
    for (i, ch) in rest.chunks(step).enumerate() {
        let dir = ((ctl >> 5) as usize + i) % 2;
        if ch.first() == Some(&0xff) {
            st.input(dir, Chunk::Gap(ch.len() as u32), &lim, &mut c, &mut emit);
        } else {
            st.input(dir, Chunk::Data(ch), &lim, &mut c, &mut emit);
        }
    }
    st.finish(&mut c, &mut emit);
}
