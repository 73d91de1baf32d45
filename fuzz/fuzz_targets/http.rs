//! Any bytes as an HTTP exchange: the first byte picks how the rest is cut into segments and
//! which direction each goes, with gaps; transactions are rendered as the EVE writer does.
#![cfg_attr(fuzzing, no_main)]
use detect::app::http::HttpLimits;
use detect::app::stream::Chunk;
use detect::app::AppConfig;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    // Heads and bodies kept or not as the control byte says (rules loaded or not).
    let keep = ctl & 0x80 != 0;
    let http = HttpLimits { max_head: 512, max_pending: 4, keep_heads: keep, body_limit: if keep { 256 } else { 0 } };
    let cfg = AppConfig { http, ..AppConfig::default() };
    let step = 1 + (ctl & 0x1f) as usize;
    let chunks = rest.chunks(step).enumerate().map(|(i, ch)| {
        let dir = ((ctl >> 5) as usize + i) % 2;
        (dir, if ch.first() == Some(&0xff) { Chunk::Gap(ch.len() as u32) } else { Chunk::Data(ch) })
    });
    common::session::<detect::app::http::Http>(&cfg, 80, chunks);
}
