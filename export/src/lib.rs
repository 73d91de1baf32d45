//! The export side: workers hand finished records to one export thread in batches over bounded
//! channels ([`Batcher`] on the worker side, [`spawn`] for the thread), and the thread writes
//! Suricata-EVE-compatible JSON lines ([`eve`]).
//!
//! A worker never blocks on the exporter: when the channel is full it keeps its batch in a
//! bounded backlog and retries at the next burst; past that backlog it drops, counted.
//! Batches are preallocated and go back to their worker once written, so steady state
//! allocates nothing.
#![forbid(unsafe_code)]

pub mod batch;
pub mod eve;
pub mod fanout;
pub mod sink;
pub mod thresholds;

pub use batch::{spawn, Batch, Batcher, BatcherStats, ExportConfig, ExportHandle};
pub use fanout::{ExportStats, SinkDefaults};
pub use sink::url::SinkSpec;
pub use sink::SinkStats;
pub use thresholds::ThresholdStats;
