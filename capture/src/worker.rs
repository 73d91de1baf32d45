//! The per-worker core shared by every source: the engine, the worker's export batcher and its
//! published counters.

use crate::counters::{WorkerStats, WorkerSummary};
use crossbeam_utils::CachePadded;
use detect::time::Micros;
use detect::{Engine, FlowConfig};
use export::Batcher;
use std::sync::Arc;

pub struct WorkerCore {
    pub id: usize,
    pub core: Option<usize>,
    engine: Engine,
    batcher: Batcher,
    stats: Arc<[CachePadded<WorkerStats>]>,
    pub received: u64,
    pub bursts: u64,
}

impl WorkerCore {
    pub fn new(id: usize, flow: FlowConfig, batcher: Batcher, stats: Arc<[CachePadded<WorkerStats>]>) -> Self {
        WorkerCore { id, core: None, engine: Engine::new(flow), batcher, stats, received: 0, bursts: 0 }
    }

    /// One burst of frames `(data, wire_len, ts)`: decode and flow update. No allocation, no
    /// lock, no syscall. A `ts` of 0 means "no timestamp": the packet clock stays where it is.
    #[inline]
    pub fn burst<'a, I: IntoIterator<Item = (&'a [u8], u32, Micros)>>(&mut self, frames: I) {
        let received = &mut self.received;
        self.engine.process_burst(frames.into_iter().inspect(|_| *received += 1), &mut self.batcher);
    }

    /// Once per burst: expiry on the packet clock (or `clock` when the source has a live one),
    /// batch hand-off, counters published.
    #[inline]
    pub fn end_burst(&mut self, clock: Option<Micros>, mono_ms: u64) {
        self.bursts += 1;
        self.engine.end_burst(clock, &mut self.batcher);
        self.batcher.tick(mono_ms);
        self.stats[self.id].publish(&self.engine.counters(), &self.batcher.stats);
        self.stats[self.id].bursts.store(self.bursts, std::sync::atomic::Ordering::Relaxed);
    }

    /// The worker's packet clock.
    pub fn now(&self) -> Micros {
        self.engine.now()
    }

    /// Ends every live flow at `end` and hands the last records to the exporter (blocking).
    pub fn finish(mut self, end: Micros) -> WorkerSummary {
        self.engine.flush(end, &mut self.batcher);
        let engine = self.engine.counters();
        let export = self.batcher.finish();
        self.stats[self.id].publish(&engine, &export);
        WorkerSummary { id: self.id, core: self.core, engine, export, received: self.received, bursts: self.bursts }
    }
}
