//! spinewatch's packet code: everything that works on `&[u8]` and timestamps.
//!
//! No I/O, no DPDK, no `unsafe`: decoders ([`wire`], [`decode`]), the per-worker flow table
//! ([`flow`]) and the per-worker [`engine::Engine`] that ties them together. Everything here can
//! be tested, fuzzed and benchmarked without a NIC.
#![forbid(unsafe_code)]

pub mod app;
pub mod cef;
pub mod community_id;
pub mod decode;
pub mod defrag;
pub mod engine;
pub mod eve;
pub mod flow;
pub mod hash;
pub mod rules;
pub mod shard;
pub mod time;
pub mod wire;

pub use app::{AppConfig, AppEvent, AppProto};
pub use decode::{decode, decode_into, decode_partial, DecodeError, DecodeErrorKind, Decoded, Layer};
pub use engine::{Engine, EngineCounters, RecordSink};
pub use flow::{EndReason, EventMeta, FlowConfig, FlowRecord, FlowState, TcpState, Timeouts};
