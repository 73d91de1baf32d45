//! Any frames through a whole engine (decode, tunnels, defrag, flows, reassembly, every parser,
//! EVE rendering): the input is split into frames by a 2-byte length prefix; a frame's time
//! advances by its first byte. Accounting must balance at the end.
#![cfg_attr(fuzzing, no_main)]
use detect::flow::{EventMeta, FlowRecord, RecordSink};
use detect::{AppEvent, Engine, FlowConfig};

struct Sink(Vec<u8>);
impl RecordSink for Sink {
    fn emit(&mut self, rec: &FlowRecord) {
        self.0.clear();
        export::eve::write_flow(&mut self.0, rec, Some(0));
    }
    fn emit_event(&mut self, meta: &EventMeta, ev: &AppEvent<'_>) {
        self.0.clear();
        ev.write_eve(&mut self.0, meta);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// One input (also run by `tests/fuzz.rs` on stable Rust).
pub fn run(data: &[u8]) {
    let mut cfg = FlowConfig { capacity: 64, ..FlowConfig::default() };
    cfg.app.max_sessions = 16;
    cfg.app.stream.ooo_total = 4096;
    cfg.app.stream.ooo_per_stream = 1024;
    cfg.defrag.max_datagrams = 4;
    let mut e = Engine::new(cfg);
    let mut sink = Sink(Vec::new());
    let mut rest = data;
    let mut ts = 1_700_000_000_000_000u64;
    while rest.len() >= 2 {
        let n = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let frame = &rest[2..2 + n];
        rest = &rest[2 + n..];
        ts += frame.first().copied().unwrap_or(0) as u64 * 100_000;
        e.process(frame, frame.len() as u32, ts, &mut sink);
        e.end_burst(None, &mut sink);
    }
    e.flush(ts, &mut sink);
    assert!(e.counters().balanced());
}
