//! The per-worker core shared by every source: the engine, the worker's export batcher and its
//! published counters.

use crate::counters::{WorkerStats, WorkerSummary};
use crossbeam_utils::CachePadded;
use detect::flow::{FlowRecord, RecordSink};
use detect::time::Micros;
use detect::{Engine, FlowConfig};
use export::Batcher;
use std::sync::Arc;

/// How much of the pipeline a worker runs (`spinewatch bench --pipeline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Receive and free only: the input path's ceiling.
    Rx,
    /// Receive and decode.
    Decode,
    /// Receive, decode, flow update; records are counted and discarded.
    Flow,
    /// Everything, records exported.
    Full,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Rx => "rx",
            Stage::Decode => "decode",
            Stage::Flow => "flow",
            Stage::Full => "full",
        }
    }
}

/// A sink that counts records and drops them (the `flow` stage).
#[derive(Debug, Default)]
struct Discard(u64);

impl RecordSink for Discard {
    fn emit(&mut self, _r: &FlowRecord) {
        self.0 += 1;
    }
    fn emit_event(&mut self, _m: &detect::EventMeta, _e: &detect::AppEvent<'_>) {
        self.0 += 1;
    }
}

pub struct WorkerCore {
    pub id: usize,
    pub core: Option<usize>,
    engine: Engine,
    batcher: Batcher,
    discard: Discard,
    /// The stage of the last burst (records of the `flow` stage are discarded).
    stage: Stage,
    stats: Arc<[CachePadded<WorkerStats>]>,
    pub received: u64,
    pub received_bytes: u64,
    pub bursts: u64,
    /// Triggered packet capture, when configured.
    capture: Option<crate::alertpcap::AlertCapture>,
    /// `--bpf`: packets it refuses are counted here and go no further.
    filter: Option<crate::bpf::Filter>,
    pub filtered: u64,
}

/// The batcher, with every packet also shown to the triggered capture.
struct Tapped<'a> {
    b: &'a mut Batcher,
    cap: &'a mut crate::alertpcap::AlertCapture,
}

impl detect::flow::RecordSink for Tapped<'_> {
    #[inline]
    fn emit(&mut self, rec: &detect::flow::FlowRecord) {
        self.b.emit(rec)
    }
    #[inline]
    fn emit_event(&mut self, meta: &detect::EventMeta, ev: &detect::AppEvent<'_>) {
        self.b.emit_event(meta, ev)
    }
    #[inline]
    fn emit_alert(&mut self, meta: &detect::EventMeta, a: &detect::flow::AlertInfo<'_>) {
        self.b.emit_alert(meta, a)
    }
    fn emit_sketch(&mut self, s: detect::rules::sketch::WindowSketch) {
        self.b.emit_sketch(s)
    }
    fn mark(&mut self, now: Micros) {
        self.b.mark(now)
    }
    fn wants_packets(&self) -> bool {
        true
    }
    #[inline]
    fn packet(&mut self, data: &[u8], wire_len: u32, ts: Micros, flow: u64, alerted: bool) {
        self.cap.packet(data, wire_len, ts, flow, alerted)
    }
}

impl WorkerCore {
    /// This worker's live counters.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats[self.id]
    }

    pub fn new(id: usize, flow: FlowConfig, batcher: Batcher, stats: Arc<[CachePadded<WorkerStats>]>) -> Self {
        WorkerCore {
            id,
            core: None,
            engine: Engine::new(flow),
            batcher,
            discard: Discard::default(),
            stage: Stage::Full,
            stats,
            received: 0,
            received_bytes: 0,
            bursts: 0,
            capture: None,
            filter: None,
            filtered: 0,
        }
    }

    /// Takes only the packets `f` matches (`--bpf`).
    pub fn set_filter(&mut self, f: crate::bpf::Filter) {
        self.filter = Some(f);
    }

    /// Joins the worker mesh (see [`detect::shard`]).
    pub fn set_shard(&mut self, shard: detect::shard::Shard) {
        self.engine.set_shard(shard);
    }

    /// One burst of frames `(data, wire_len, ts, seq)` through the whole pipeline, numbered by
    /// their position in the input (the file source; 0: not numbered): hand-offs from other
    /// workers take their exact place among them.
    #[inline]
    pub fn burst_numbered<'a, I: IntoIterator<Item = (&'a [u8], u32, Micros, u64)>>(&mut self, frames: I) {
        self.stage = Stage::Full;
        let (received, bytes) = (&mut self.received, &mut self.received_bytes);
        let frames = frames.into_iter().inspect(|f| {
            *received += 1;
            *bytes += f.1 as u64;
        });
        if let Some(bpf) = &self.filter {
            let filtered = &mut self.filtered;
            let frames = frames.filter(|f| {
                let take = bpf.matches(f.0);
                *filtered += !take as u64;
                take
            });
            match self.capture.as_mut() {
                Some(cap) => self.engine.process_numbered(frames, &mut Tapped { b: &mut self.batcher, cap }),
                None => self.engine.process_numbered(frames, &mut self.batcher),
            }
            return;
        }
        match self.capture.as_mut() {
            Some(cap) => self.engine.process_numbered(frames, &mut Tapped { b: &mut self.batcher, cap }),
            None => self.engine.process_numbered(frames, &mut self.batcher),
        }
    }

    /// This worker will take no more packets (a replay's end): the others need not wait for it.
    pub fn input_done(&self) {
        self.engine.input_done();
    }

    /// Turns on triggered packet capture for this worker.
    pub fn set_alert_capture(&mut self, c: crate::alertpcap::AlertCapture) {
        self.capture = Some(c);
    }

    /// One burst of frames `(data, wire_len, ts)`: decode and flow update. No allocation, no
    /// lock, no syscall. A `ts` of 0 means "no timestamp": the packet clock stays where it is.
    #[inline]
    pub fn burst<'a, I: IntoIterator<Item = (&'a [u8], u32, Micros)>>(&mut self, frames: I) {
        self.burst_stage(Stage::Full, frames)
    }

    /// The `rx` stage of a DPDK burst: count `n` frames of `bytes` bytes, touch nothing else.
    #[inline]
    pub fn rx_only(&mut self, n: usize, bytes: u64) {
        self.received += n as u64;
        self.received_bytes += bytes;
    }

    /// One burst through the first stages only (see [`Stage`]).
    #[inline]
    pub fn burst_stage<'a, I: IntoIterator<Item = (&'a [u8], u32, Micros)>>(&mut self, stage: Stage, frames: I) {
        if stage == Stage::Full {
            return self.burst_numbered(frames.into_iter().map(|(d, l, t)| (d, l, t, 0)));
        }
        self.stage = stage;
        let (received, bytes) = (&mut self.received, &mut self.received_bytes);
        let frames = frames.into_iter().inspect(|f| {
            *received += 1;
            *bytes += f.1 as u64;
        });
        match stage {
            Stage::Rx => frames.for_each(drop),
            Stage::Decode => self.engine.decode_only(frames),
            // Flow (Full went to burst_numbered above).
            Stage::Flow | Stage::Full => self.engine.process_burst(frames, &mut self.discard),
        }
    }

    /// No packet came for a while (a watched folder waiting for its next capture): what the
    /// batcher holds goes out once old enough, the counters are published.
    pub fn idle(&mut self, mono_ms: u64) {
        if self.stage != Stage::Flow {
            self.batcher.tick(mono_ms);
        }
        if let Some(c) = self.capture.as_mut() {
            c.tick(mono_ms);
        }
    }

    /// Once per burst: expiry on the packet clock (or `clock` when the source has a live one),
    /// batch hand-off, counters published.
    #[inline]
    pub fn end_burst(&mut self, clock: Option<Micros>, mono_ms: u64) {
        self.bursts += 1;
        // The bench's `flow` stage discards its records, expired ones included.
        if self.stage == Stage::Flow {
            self.engine.end_burst(clock, &mut self.discard);
        } else {
            self.engine.end_burst(clock, &mut self.batcher);
        }
        self.batcher.tick(mono_ms);
        if let Some(c) = self.capture.as_mut() {
            c.tick(mono_ms);
        }
        let s = &self.stats[self.id];
        let (c, f) = self.engine.counters_ref();
        s.publish(c, f, &self.batcher.stats, self.engine.gauges());
        s.publish_shard(&self.engine.shard_counters());
        s.bursts.store(self.bursts, std::sync::atomic::Ordering::Relaxed);
        s.received.store(self.received, std::sync::atomic::Ordering::Relaxed);
        s.received_bytes.store(self.received_bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The worker's packet clock.
    pub fn now(&self) -> Micros {
        self.engine.now()
    }

    /// Ends every live flow at `end` and hands the last records to the exporter (blocking).
    pub fn finish(mut self, end: Micros) -> WorkerSummary {
        // Every live flow's record must reach the exporter: wait for it rather than drop.
        self.batcher.set_blocking(true);
        self.engine.flush(end, &mut self.batcher);
        if let Some(c) = self.capture.take() {
            c.finish();
        }
        let engine = self.engine.counters();
        let export = self.batcher.finish();
        self.stats[self.id].publish(&engine, &engine.flows, &export, self.engine.gauges());
        self.stats[self.id].publish_shard(&engine.shard);
        WorkerSummary {
            id: self.id,
            core: self.core,
            engine,
            export,
            received: self.received,
            bursts: self.bursts,
            flow_capacity: self.engine.flow_table().capacity() as u64,
            discarded_records: self.discard.0,
            filtered: self.filtered,
        }
    }
}
