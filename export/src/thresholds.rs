//! The export thread's threshold stage: every worker's candidates (matches of rules with a
//! `threshold` or `detection_filter`) decided once, in packet-time order
//! ([`detect::rules::threshold`]), and the flow records of their flows completed with the
//! outcome (`alerted`).

use crate::batch::{Batch, BatchEvent, EventBody};
use detect::flow::{EndReason, FlowRecord};
use detect::rules::threshold::{Merger, Thresholds, TrackKey};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Raised flows remembered until their last record: past this, the oldest knowledge goes
/// (a flow record may then say `alerted: false` for a flow whose thresholded rule alerted).
const MAX_RAISED: usize = 1 << 20;

/// What the stage gives back to be written (moved straight to the writer: boxing the larger
/// variant would allocate per item).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Released {
    Alert(BatchEvent),
    Flow(FlowRecord),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThresholdStats {
    /// Candidates taken from the workers' batches.
    pub candidates: u64,
    /// Of those, alerts raised and matches suppressed.
    pub alerts: u64,
    pub suppressed: u64,
    /// Trackers not kept because the table was full (their match alerted).
    pub evicted: u64,
    /// Decided before every worker had passed them (too many held), and taken after a later
    /// one had been decided (see [`Merger`]).
    pub early: u64,
    pub late: u64,
}

pub(crate) struct ThresholdStage {
    merger: Merger<(TrackKey, BatchEvent)>,
    table: Thresholds,
    /// The rule set the table's trackers belong to (a reload starts them over).
    set: Option<Arc<detect::rules::RuleSet>>,
    /// Candidates held per flow, flow records held until their flow's candidates are decided,
    /// and flows with a raised alert whose last record has not come yet.
    pending: HashMap<u64, u32>,
    held: HashMap<u64, Vec<FlowRecord>>,
    raised: HashSet<u64>,
    pub stats: ThresholdStats,
}

impl ThresholdStage {
    pub fn new(workers: usize) -> Self {
        ThresholdStage {
            merger: Merger::new(workers),
            table: Thresholds::default(),
            set: None,
            pending: HashMap::new(),
            held: HashMap::new(),
            raised: HashSet::new(),
            stats: ThresholdStats::default(),
        }
    }

    /// A batch's candidates go in; its worker's watermark moves.
    pub fn take(&mut self, batch: &mut Batch) {
        for c in batch.candidates.drain(..) {
            self.stats.candidates += 1;
            *self.pending.entry(c.order.flow).or_default() += 1;
            self.merger.push(c.order, (c.key, c.ev));
        }
        self.merger.mark(batch.worker, batch.mark);
    }

    /// A flow record: true to write it now (its `alerted` completed), false when it waits for
    /// its flow's candidates (given back by [`ThresholdStage::release`]).
    pub fn admit(&mut self, r: &mut FlowRecord) -> bool {
        if !r.tracked {
            return true;
        }
        let id = r.meta.flow_id;
        if self.pending.contains_key(&id) {
            self.held.entry(id).or_default().push(*r);
            return false;
        }
        self.complete(r);
        true
    }

    fn complete(&mut self, r: &mut FlowRecord) {
        let id = r.meta.flow_id;
        r.alerted |= self.raised.contains(&id);
        if r.reason != EndReason::Active {
            self.raised.remove(&id);
        }
    }

    /// Decides the candidates that are due (`all`: every one, the end of the input).
    pub fn release(&mut self, all: bool, out: &mut dyn FnMut(Released)) {
        if all {
            self.merger.finish();
        }
        while let Some((order, (key, ev))) = self.merger.pop_due() {
            let EventBody::Alert { set, rule, .. } = &ev.body else { continue };
            if !self.set.as_ref().is_some_and(|s| Arc::ptr_eq(s, set)) {
                self.table.clear();
                self.set = Some(set.clone());
            }
            let id = order.flow;
            if self.table.decide(&set.rules[*rule as usize], key, order.ts) {
                self.stats.alerts += 1;
                if self.raised.len() >= MAX_RAISED {
                    self.raised.clear();
                }
                self.raised.insert(id);
                out(Released::Alert(ev));
            } else {
                self.stats.suppressed += 1;
            }
            let n = self.pending.get_mut(&id).map(|n| {
                *n -= 1;
                *n
            });
            if n == Some(0) {
                self.pending.remove(&id);
                for mut r in self.held.remove(&id).unwrap_or_default() {
                    self.complete(&mut r);
                    out(Released::Flow(r));
                }
            }
        }
        if all {
            // Records held for a flow whose candidates were lost (cannot happen: a flow's
            // candidates come before its records).
            let ids: Vec<u64> = self.held.keys().copied().collect();
            for id in ids {
                for mut r in self.held.remove(&id).unwrap_or_default() {
                    self.complete(&mut r);
                    out(Released::Flow(r));
                }
            }
        }
        self.stats.evicted = self.table.evicted;
        self.stats.early = self.merger.early;
        self.stats.late = self.merger.late;
    }
}
