//! Any text as the TOML configuration: it parses or is refused with a message, and a parsed one
//! validates to a list of problems (each naming its key) and builds its sinks; never a panic.
#![cfg_attr(fuzzing, no_main)]

#[path = "../../src/config.rs"]
#[allow(dead_code)]
mod config;
#[path = "../../src/config_check.rs"]
#[allow(dead_code)]
mod config_check;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The checker: every problem has its key (or says it is the TOML syntax), never a panic.
    if let Err(problems) = config_check::parse(text) {
        assert!(!problems.is_empty());
        for p in &problems {
            assert!(p.text.contains(':'), "a problem without its key: {p}");
        }
    }
    let Ok(cfg) = toml::from_str::<config::Config>(text) else { return };
    let problems = cfg.validate();
    for p in &problems {
        assert!(p.contains(':'), "a problem without its key: {p}");
    }
    if problems.is_empty() {
        let _ = cfg.sinks(None, &[]);
        let _ = cfg.export_config();
        let _ = cfg.flow_config();
    }
}
