//! Any bytes as a TLS session cut into segments both ways: records, handshake messages across
//! records, hellos, certificates, fingerprints; rendered as the EVE writer does.
#![cfg_attr(fuzzing, no_main)]
use detect::app::stream::Chunk;
use detect::app::tls::{TlsCounters, TlsState};
use detect::app::AppEvent;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mut st = TlsState::default();
    let mut c = TlsCounters::default();
    let mut out = Vec::new();
    let m = common::meta(6, 443);
    let mut emit = |e: &AppEvent<'_>| {
        e.write_eve(&mut out, &m);
    };
    let step = 1 + (ctl & 0x3f) as usize * 8;
    for (i, ch) in rest.chunks(step).enumerate() {
        let dir = ((ctl >> 6) as usize + i / 2) % 2;
        st.input(dir, Chunk::Data(ch), &mut c, &mut emit);
    }
    st.finish(&mut emit);
    // The hello parsers and the certificate walker on the raw bytes too.
    let _ = detect::app::tls::parser::client_hello(rest);
    let _ = detect::app::tls::parser::server_hello(rest);
    let _ = detect::app::tls::x509::parse(rest);
}
