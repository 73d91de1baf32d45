//! Any rule text: parsed (accepted or rejected with a reason, never a panic); an accepted rule
//! is compiled into a set and run on the same bytes as a packet payload.
#![cfg_attr(fuzzing, no_main)]
use detect::rules::{parse_classifications, parse_rule, Hdr, Matcher, RuleSet, Vars, DEFAULT_CLASSIFICATION};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (classes, _) = parse_classifications(DEFAULT_CLASSIFICATION);
    let vars = Vars::default();
    // The text as a whole rule, and after a valid header (so the options get exercised).
    let mut rules = Vec::new();
    for line in [text.to_string(), format!("alert tcp any any -> any any ({text}; sid:1;)")] {
        if let Ok(r) = parse_rule(&line, &vars, &classes) {
            if detect::rules::compile_check(&r).is_ok() {
                rules.push(r);
            }
        }
    }
    if rules.is_empty() {
        return;
    }
    let set = RuleSet::new(rules);
    let mut m = Matcher::default();
    let h = Hdr { proto: 6, to_server: true, established: true, sport: 1234, dport: 80, ..Hdr::default() };
    m.on_packet(&set, &h, data, 1, &mut false, &mut |_| {});
}
