//! HTTP/1.x: heads (`parser.rs`) and request/response transactions (`state.rs`).

pub mod parser;
pub mod state;

pub use state::{HttpCounters, HttpLimits, HttpState, Tx};
