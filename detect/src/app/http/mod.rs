//! HTTP/1.x: heads (`parser.rs`), request/response transactions (`state.rs`), their EVE and
//! CEF records (`eve.rs`, `cef.rs`) and rule buffers (`rules.rs`).

pub mod cef;
pub mod eve;
pub mod parser;
pub mod rules;
pub mod state;

pub use state::{HttpCounters, HttpLimits, HttpState, Tx};

use crate::app::protocol::Info;
use crate::app::{Emit, Input, Protocol, Wanted};
use crate::rules::ioc::IocKind;

/// HTTP/1.x, identified by a request line (to the server) or a status line (to the client) on
/// any port.
#[derive(Debug)]
pub struct Http;

impl Protocol for Http {
    const INFO: Info = Info::new("http", &["http", "http1"], &[6]).buffers(rules::BUFFERS);
    type State = HttpState;
    type Counters = HttpCounters;
    /// A finished transaction (or one left unfinished at the end of its flow).
    type Event<'a> = &'a Tx;
    type Owned = Tx;

    fn probe_tcp(dir: usize, data: &[u8], _ports: (u16, u16)) -> Option<bool> {
        if dir == 0 {
            parser::probe_request(data)
        } else {
            parser::probe_response(data)
        }
    }

    fn tcp_input(s: &mut HttpState, i: Input<'_, '_, HttpCounters>) -> u64 {
        s.input(i.dir, i.chunk, &i.cfg.http, i.counters, i.emit)
    }

    fn finish(s: &mut HttpState, c: &mut HttpCounters, emit: &mut Emit<'_>) {
        s.finish(c, emit)
    }

    fn add(a: &mut HttpCounters, b: &HttpCounters) {
        a.requests += b.requests;
        a.responses += b.responses;
        a.head_too_long += b.head_too_long;
        a.malformed += b.malformed;
        a.resyncs += b.resyncs;
        a.incomplete += b.incomplete;
    }

    fn anomalies(c: &HttpCounters, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "http malformed {} head too long {} resyncs {} incomplete {}",
            c.malformed, c.head_too_long, c.resyncs, c.incomplete
        );
    }

    crate::event_by_copy!(Tx);

    crate::records_by!(eve::write_http, cef::write_http, rules::inspect);

    fn indicators(ev: &&Tx, want: Wanted, f: &mut dyn FnMut(IocKind, &[u8])) {
        if let (true, Some(h)) = (want.domains, ev.hostname()) {
            f(IocKind::Domain, h);
        }
    }
}
