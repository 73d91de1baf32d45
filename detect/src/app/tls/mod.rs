//! TLS: records and handshake messages (`parser.rs`), certificates (`x509.rs`), per-flow state
//! and fingerprints (`state.rs`), EVE and CEF records (`eve.rs`, `cef.rs`), rule buffers
//! (`rules.rs`).

pub mod cef;
pub mod eve;
pub mod parser;
pub mod rules;
pub mod state;
pub mod x509;

pub use state::{TlsCounters, TlsInfo, TlsState};

use crate::app::protocol::Info;
use crate::app::{Emit, Input, Protocol, Wanted};
use crate::rules::ioc::IocKind;

/// TLS, identified by a handshake record on any port; logged when the handshake ends (the
/// first application data) or with its flow.
#[derive(Debug)]
pub struct Tls;

impl Protocol for Tls {
    const INFO: Info = Info::new("tls", &["tls"], &[6]).buffers(rules::BUFFERS);
    type State = TlsState;
    type Counters = TlsCounters;
    type Event<'a> = &'a TlsInfo;
    type Owned = TlsInfo;

    fn probe_tcp(_dir: usize, data: &[u8], _ports: (u16, u16)) -> Option<bool> {
        parser::probe(data)
    }

    fn tcp_input(s: &mut TlsState, i: Input<'_, '_, TlsCounters>) -> u64 {
        s.input(i.dir, i.chunk, i.counters, i.emit);
        0
    }

    fn is_done(s: &TlsState) -> bool {
        s.is_done()
    }

    fn finish(s: &mut TlsState, _c: &mut TlsCounters, emit: &mut Emit<'_>) {
        s.finish(emit)
    }

    fn add(a: &mut TlsCounters, b: &TlsCounters) {
        a.client_hellos += b.client_hellos;
        a.server_hellos += b.server_hellos;
        a.certificates += b.certificates;
        a.malformed += b.malformed;
        a.gaps += b.gaps;
    }

    fn anomalies(c: &TlsCounters, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "tls malformed {} gaps {}", c.malformed, c.gaps);
    }

    crate::event_by_copy!(TlsInfo);

    crate::records_by!(eve::write_tls, cef::write_tls, rules::inspect);

    fn indicators(t: &&TlsInfo, want: Wanted, f: &mut dyn FnMut(IocKind, &[u8])) {
        if let (Some(sni), true) = (t.sni(), want.domains) {
            f(IocKind::Domain, sni);
        }
        if want.hashes {
            if let Some(h) = t.ja3_hash() {
                f(IocKind::Ja3, &h);
            }
            if let Some(h) = t.ja3s_hash() {
                f(IocKind::Ja3s, &h);
            }
            if let Some(h) = t.ja4() {
                f(IocKind::Ja4, &h);
            }
        }
    }
}
