//! What the targets share: the flow context of the events they render, and the drive of one
//! app-layer protocol through its `Protocol` implementation.
#![allow(dead_code)]

use detect::app::stream::Chunk;
use detect::app::{AppConfig, AppEvent, Input, Protocol};

/// A flow context for rendering events (the values do not matter to the parsers).
pub fn meta(proto: u8, dest_port: u16) -> detect::EventMeta {
    detect::EventMeta {
        flow_id: 1,
        timestamp: 0,
        ip_version: 4,
        src_ip: [0; 16],
        dest_ip: [0; 16],
        src_port: 1,
        dest_port,
        proto,
        vlan: [0; 3],
        vlan_count: 0,
        tunnel: None,
        ..Default::default()
    }
}

/// Any bytes as a session of protocol `P`: `chunks` cuts them (each chunk with its direction,
/// data or a gap), every event is rendered as EVE and CEF, then the session is finished.
pub fn session<'a, P: Protocol>(cfg: &AppConfig, dest_port: u16, chunks: impl Iterator<Item = (usize, Chunk<'a>)>) {
    let mut st = P::State::default();
    let mut c = P::Counters::default();
    let mut out = Vec::new();
    let m = meta(6, dest_port);
    let mut emit = |e: &AppEvent<'_>| {
        e.write_eve(&mut out, &m);
        e.write_cef(&mut out, &m);
    };
    for (dir, chunk) in chunks {
        P::tcp_input(&mut st, Input { dir, chunk, cfg, counters: &mut c, emit: &mut emit });
    }
    P::finish(&mut st, &mut c, &mut emit);
}

/// Datagrams of protocol `P` both ways, rendered as EVE and CEF.
pub fn datagrams<'a, P: Protocol>(dest_port: u16, msgs: impl Iterator<Item = (usize, &'a [u8])>) {
    let cfg = AppConfig::default();
    let mut st = P::State::default();
    let mut c = P::Counters::default();
    let mut out = Vec::new();
    let m = meta(17, dest_port);
    let mut emit = |e: &AppEvent<'_>| {
        e.write_eve(&mut out, &m);
        e.write_cef(&mut out, &m);
    };
    for (dir, d) in msgs {
        let _ = P::probe_udp(dir, d, (68, dest_port));
        P::udp_input(&mut st, Input { dir, chunk: Chunk::Data(d), cfg: &cfg, counters: &mut c, emit: &mut emit });
    }
}
