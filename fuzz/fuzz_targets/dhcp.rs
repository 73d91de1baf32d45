//! Any bytes as DHCP datagrams: the first byte cuts the rest into messages and picks their
//! directions; each is parsed and rendered as the EVE and CEF writers do.
#![cfg_attr(fuzzing, no_main)]

#[path = "common.rs"]
mod common;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else { return };
    // Messages of at least the fixed header, so the options are reached.
    let step = 240 + ctl as usize * 2;
    let msgs = rest.chunks(step).enumerate().map(|(i, m)| ((ctl as usize + i) % 2, m));
    common::datagrams::<detect::app::dhcp::Dhcp>(67, msgs);
}
