//! spinewatch's packet sources and the per-core worker loop.
//!
//! Two sources feed the same [`worker::WorkerCore`]:
//! - [`file`]: pcap/pcapng files, pure Rust, in any build. A reader thread sends each packet to
//!   the worker its symmetric flow hash picks, so records do not depend on the worker count.
//! - `dpdk` (feature `dpdk`): DPDK ports and vdevs, one RX queue per worker per port, symmetric
//!   RSS, pinned threads registered with DPDK.
//!
//! Counters live in per-worker cache-padded structs ([`counters`]) that workers publish once per
//! burst and a stats reporter reads.
#![forbid(unsafe_code)]

pub mod afpacket;
pub mod alertpcap;
pub mod bpf;
pub mod counters;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod file;
pub mod metrics;
pub mod pcap;
pub mod pin;
pub mod progress;
pub mod runner;
pub mod split;
pub mod worker;

pub use counters::{RunSummary, WorkerStats, WorkerSummary};
pub use worker::WorkerCore;
