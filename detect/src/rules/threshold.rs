//! Thresholds across workers: `threshold` and `detection_filter` decided once, on every
//! worker's matches, in packet-time order.
//!
//! A worker does not decide whether a match of a thresholded rule alerts: it hands the match
//! over as a candidate (rule, tracked addresses, packet time, input position, flow) with its
//! batch, and keeps no threshold state. The exporter's [`Merger`] holds the candidates until
//! every worker's watermark (a lower bound of the time of its next candidate, carried by its
//! batches) has passed them, then applies them in order to one [`Thresholds`] table. So a rule
//! "30 SYNs from one source in 60 s" counts every worker's SYNs, and `limit` fires once, whatever
//! the number of workers. Nothing is shared on the packet path.
//!
//! The semantics are Suricata 7's, checked against `suricata -r` (tests/detect.rs): a tracker
//! starts at its first match; a match at time `t` is in the tracker's window while
//! `t <= start + seconds` (microseconds); a later match starts a new window, counted as its
//! first match.
//! - `limit`: the first `count` matches of a window alert.
//! - `threshold`: every `count`-th match of a window alerts (the count starts over after it).
//! - `both`: the `count`-th match of a window alerts, once.
//! - `detection_filter`: every match after the first `count` of a window alerts.

use super::{Rule, ThresholdKind, Track};
use crate::time::Micros;
use std::collections::{BinaryHeap, HashMap};

/// What a candidate is tracked by: the rule and the addresses of its track (by_src: the
/// source; by_dst: the destination; by_both: both; by_rule: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TrackKey {
    pub rule: u32,
    pub a: u128,
    pub b: u128,
}

impl TrackKey {
    /// The key of a match of `rule` (index `idx`) between `src` and `dst`; None when the rule
    /// has no threshold (its matches alert on the worker).
    #[inline]
    pub fn of(rule: &Rule, idx: u32, src: u128, dst: u128) -> Option<TrackKey> {
        let t = rule.threshold.or(rule.detection_filter)?;
        let (a, b) = match t.track {
            Track::BySrc => (src, 0),
            Track::ByDst => (dst, 0),
            Track::ByRule => (0, 0),
            Track::ByBoth => (src, dst),
        };
        Some(TrackKey { rule: idx, a, b })
    }
}

/// A candidate's place among every worker's candidates: packet time, then input position (the
/// file source numbers its packets; 0 when the source does not; `u64::MAX` for a match made
/// when the flow ended), then flow, then arrival. The same at any number of workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Order {
    pub ts: Micros,
    pub seq: u64,
    pub flow: u64,
}

/// The bound on tracked keys.
pub const MAX_TRACKERS: usize = 1 << 16;

#[derive(Debug, Clone, Copy)]
struct Tracker {
    start: Micros,
    count: u32,
}

/// The threshold table: one tracker per (rule, tracked addresses).
#[derive(Debug, Default)]
pub struct Thresholds {
    trackers: HashMap<TrackKey, Tracker>,
    /// Trackers dropped because the table was full (their match alerted untracked).
    pub evicted: u64,
}

impl Thresholds {
    /// Whether a match of `rule` tracked by `key` at `ts` alerts.
    pub fn decide(&mut self, rule: &Rule, key: TrackKey, ts: Micros) -> bool {
        let Some(t) = rule.threshold.or(rule.detection_filter) else { return true };
        let window = t.seconds as u64 * 1_000_000;
        if self.trackers.len() >= MAX_TRACKERS && !self.trackers.contains_key(&key) {
            // Full: trackers whose window has passed go first; else this match is not tracked
            // (it alerts) and the eviction is counted.
            self.trackers.retain(|_, s| ts <= s.start.saturating_add(window));
            if self.trackers.len() >= MAX_TRACKERS {
                self.evicted += 1;
                return true;
            }
        }
        let s = self.trackers.entry(key).or_insert(Tracker { start: ts, count: 0 });
        if ts > s.start.saturating_add(window) {
            *s = Tracker { start: ts, count: 0 };
        }
        s.count += 1;
        let c = s.count;
        match t.kind {
            ThresholdKind::Limit => c <= t.count,
            ThresholdKind::Threshold => {
                if c >= t.count {
                    s.count = 0;
                    true
                } else {
                    false
                }
            }
            ThresholdKind::Both => c == t.count,
            ThresholdKind::DetectionFilter => c > t.count,
        }
    }

    pub fn clear(&mut self) {
        self.trackers.clear();
    }
}

/// The most candidates held waiting for a lagging worker; past it the oldest is decided
/// without waiting (counted in [`Merger::early`]).
pub const MAX_PENDING: usize = 1 << 16;

struct Held<T> {
    order: Order,
    /// Arrival number: keeps one worker's candidates of one packet in their order.
    n: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.order, self.n) == (o.order, o.n)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Reversed: the heap's top is the earliest.
        (o.order, o.n).cmp(&(self.order, self.n))
    }
}

/// Holds every worker's candidates and gives them back in [`Order`] once no worker can still
/// send an earlier one.
pub struct Merger<T> {
    heap: BinaryHeap<Held<T>>,
    /// Per worker: its next candidate's time is at least this (`u64::MAX`: its input is done).
    marks: Vec<Micros>,
    n: u64,
    /// The order of the last candidate given back.
    last: Option<Order>,
    /// Candidates given back before every worker had passed them (the pending bound), and
    /// candidates that came after a later one had been given back (a worker's clock went
    /// back, or a match when a flow ended, with that flow's last packet time).
    pub early: u64,
    pub late: u64,
}

impl<T> Merger<T> {
    pub fn new(workers: usize) -> Self {
        Merger { heap: BinaryHeap::new(), marks: vec![0; workers.max(1)], n: 0, last: None, early: 0, late: 0 }
    }

    pub fn push(&mut self, order: Order, item: T) {
        if self.last.is_some_and(|l| order < l) {
            self.late += 1;
        }
        self.n += 1;
        self.heap.push(Held { order, n: self.n, item });
    }

    /// Worker `w`'s watermark (kept monotonic).
    pub fn mark(&mut self, w: usize, ts: Micros) {
        if let Some(m) = self.marks.get_mut(w) {
            *m = (*m).max(ts);
        }
    }

    /// Candidates held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The next candidate that is due: earlier than every worker's watermark, or the oldest
    /// when too many are held.
    pub fn pop_due(&mut self) -> Option<(Order, T)> {
        let low = self.marks.iter().copied().min().unwrap_or(0);
        let top = self.heap.peek()?;
        let due = top.order.ts < low || low == u64::MAX;
        if !due && self.heap.len() <= MAX_PENDING {
            return None;
        }
        if !due {
            self.early += 1;
        }
        let h = self.heap.pop()?;
        self.last = Some(self.last.map_or(h.order, |l| l.max(h.order)));
        Some((h.order, h.item))
    }

    /// The end of the input: every candidate is due.
    pub fn finish(&mut self) {
        for m in &mut self.marks {
            *m = u64::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_set;

    /// The times of the capture tests/detect.rs runs through Suricata, one source: a window
    /// includes its end.
    #[test]
    fn each_type_over_a_window_that_includes_its_end() {
        let set = test_set(
            r#"alert tcp any any -> any any (msg:"l"; threshold:type limit,track by_src,count 2,seconds 2; sid:1;)
alert tcp any any -> any any (msg:"t"; threshold:type threshold,track by_src,count 2,seconds 2; sid:2;)
alert tcp any any -> any any (msg:"b"; threshold:type both,track by_src,count 2,seconds 2; sid:3;)
alert tcp any any -> any any (msg:"d"; detection_filter:track by_src,count 2,seconds 2; sid:4;)
"#,
        );
        let times = [0.9, 1.2, 1.5, 1.95, 2.1, 2.5, 2.95, 3.3, 4.05, 4.95, 5.2, 7.8, 8.0, 8.1];
        let run = |idx: usize| -> Vec<bool> {
            let mut t = Thresholds::default();
            let r = &set.rules[idx];
            times
                .iter()
                .map(|&s| t.decide(r, TrackKey::of(r, idx as u32, 1, 2).unwrap(), (s * 1e6f64).round() as u64))
                .collect()
        };
        let f = |v: &[usize]| (0..times.len()).map(|i| v.contains(&i)).collect::<Vec<_>>();
        assert_eq!(run(0), f(&[0, 1, 6, 7, 10, 11, 12]));
        assert_eq!(run(1), f(&[1, 3, 5, 7, 9, 12]));
        assert_eq!(run(2), f(&[1, 7, 12]));
        assert_eq!(run(3), f(&[2, 3, 4, 5, 8, 9, 13]));
    }

    #[test]
    fn merger_gives_back_in_order_once_every_worker_passed() {
        let mut m: Merger<u32> = Merger::new(2);
        let o = |ts| Order { ts, seq: 0, flow: 0 };
        m.push(o(5), 5);
        m.push(o(3), 3);
        m.mark(0, 10);
        assert!(m.pop_due().is_none(), "worker 1 may still send an earlier one");
        m.mark(1, 4);
        assert_eq!(m.pop_due().map(|x| x.1), Some(3));
        assert!(m.pop_due().is_none());
        m.push(o(2), 2);
        assert_eq!(m.late, 1);
        m.finish();
        assert_eq!(std::iter::from_fn(|| m.pop_due()).map(|x| x.1).collect::<Vec<_>>(), vec![2, 5]);
    }
}
