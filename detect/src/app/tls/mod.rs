//! TLS: records and handshake messages (`parser.rs`), certificates (`x509.rs`), per-flow state
//! and fingerprints (`state.rs`).

pub mod parser;
pub mod state;
pub mod x509;

pub use state::{TlsCounters, TlsInfo, TlsState};
