//! Any DNS message: parse, then walk and render every record as the EVE writer does (names,
//! compression, rdata), over UDP and over a TCP stream cut anywhere.
#![cfg_attr(fuzzing, no_main)]
use detect::app::dns::{parser, DnsCounters, DnsState, Name};
use detect::app::stream::Chunk;
use detect::app::AppEvent;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    if let Ok(m) = parser::Message::parse(data) {
        let mut n = Name::default();
        for q in m.questions() {
            let _ = parser::read_name(data, q.name, Some(&mut n));
        }
        for r in m.answers().chain(m.authorities()) {
            let _ = parser::read_name(data, r.name, Some(&mut n));
            let _ = parser::rdata(data, r.rrtype, r.rdata_off, r.rdata);
        }
    }
    let mut st = DnsState::default();
    let mut c = DnsCounters::default();
    let mut out = Vec::new();
    let m = common::meta(17, 53);
    let mut emit = |e: &AppEvent<'_>| {
        e.write_eve(&mut out, &m);
    };
    st.message(data, &mut c, &mut emit);
    let step = 1 + data.first().copied().unwrap_or(0) as usize % 17;
    for ch in data.chunks(step) {
        st.tcp_input(0, Chunk::Data(ch), &mut c, &mut emit);
    }
    st.tcp_input(1, Chunk::Data(data), &mut c, &mut emit);
}
