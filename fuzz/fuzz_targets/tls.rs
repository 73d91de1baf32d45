//! Any bytes as a TLS session cut into segments both ways: records, handshake messages across
//! records, hellos, certificates, fingerprints; rendered as the EVE and CEF writers do.
#![cfg_attr(fuzzing, no_main)]
use detect::app::stream::Chunk;

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let step = 1 + (ctl & 0x3f) as usize * 8;
    let chunks = rest.chunks(step).enumerate().map(|(i, ch)| (((ctl >> 6) as usize + i / 2) % 2, Chunk::Data(ch)));
    common::session::<detect::app::tls::Tls>(&Default::default(), 443, chunks);
    // The hello parsers and the certificate walker on the raw bytes too.
    let _ = detect::app::tls::parser::client_hello(rest);
    let _ = detect::app::tls::parser::server_hello(rest);
    let _ = detect::app::tls::x509::parse(rest);
}
