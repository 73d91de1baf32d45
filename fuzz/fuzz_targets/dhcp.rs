#![cfg_attr(fuzzing, no_main)]
#[path = "app.rs"]
mod app;
#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| app::dhcp(data));
