//! The app-layer protocols' targets (`http`, `tls`, `ssh`, `dhcp`: each a bin of its own that
//! calls its function here), driven through their `Protocol` implementations and rendered as
//! the EVE and CEF writers do. Also run by `tests/fuzz.rs` on stable Rust.
#![allow(dead_code)]
use detect::app::http::HttpLimits;
use detect::app::stream::Chunk;
use detect::app::AppConfig;

#[path = "common.rs"]
mod common;

/// Any bytes as an HTTP exchange: the first byte picks how the rest is cut into segments and
/// which direction each goes, with gaps; transactions are rendered as the EVE writer does.
pub fn http(data: &[u8]) {
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

/// Any bytes as a TLS session cut into segments both ways: records, handshake messages across
/// records, hellos, certificates, fingerprints; rendered as the EVE and CEF writers do.
pub fn tls(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let step = 1 + (ctl & 0x3f) as usize * 8;
    let chunks = rest.chunks(step).enumerate().map(|(i, ch)| (((ctl >> 6) as usize + i / 2) % 2, Chunk::Data(ch)));
    common::session::<detect::app::tls::Tls>(&Default::default(), 443, chunks);
    // The hello parsers and the certificate walker on the raw bytes too.
    let _ = detect::app::tls::parser::client_hello(rest);
    let _ = detect::app::tls::parser::server_hello(rest);
    let _ = detect::app::tls::x509::parse(rest);
}

/// Any bytes as an SSH session: banners and KEXINIT packets cut anywhere, both ways.
pub fn ssh(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let step = 1 + (ctl & 0x7f) as usize;
    let chunks = rest.chunks(step).enumerate().map(|(i, ch)| ((ctl as usize >> 7) ^ (i % 2), Chunk::Data(ch)));
    common::session::<detect::app::ssh::Ssh>(&Default::default(), 22, chunks);
}

/// Any bytes as DHCP datagrams: the first byte cuts the rest into messages and picks their
/// directions; each is parsed and rendered as the EVE and CEF writers do.
pub fn dhcp(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    // Messages of at least the fixed header, so the options are reached.
    let step = 240 + ctl as usize * 2;
    let msgs = rest.chunks(step).enumerate().map(|(i, m)| ((ctl as usize + i) % 2, m));
    common::datagrams::<detect::app::dhcp::Dhcp>(67, msgs);
}
