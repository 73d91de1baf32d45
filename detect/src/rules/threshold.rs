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

use super::addr::{parse_addresses, IpMatch, Vars};
use super::{Rule, Threshold, ThresholdKind, Track};
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

/// Which address of an alert a `suppress` entry looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressTrack {
    BySrc,
    ByDst,
    ByEither,
}

/// A threshold.config `suppress` entry on a rule: its alerts are dropped (with `only`: those
/// whose source, destination or either address is in the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppress {
    pub only: Option<(SuppressTrack, IpMatch)>,
}

impl Suppress {
    /// Whether an alert from `src` to `dst` is suppressed.
    #[inline]
    pub fn drops(&self, src: u128, dst: u128) -> bool {
        match &self.only {
            None => true,
            Some((SuppressTrack::BySrc, ips)) => ips.matches(src),
            Some((SuppressTrack::ByDst, ips)) => ips.matches(dst),
            Some((SuppressTrack::ByEither, ips)) => ips.matches(src) || ips.matches(dst),
        }
    }
}

/// One entry of a threshold.config.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEntry {
    /// `threshold` or `event_filter`: the rules' threshold.
    Threshold {
        gid: u32,
        sid: u32,
        threshold: Threshold,
    },
    Suppress {
        gid: u32,
        sid: u32,
        suppress: Suppress,
    },
}

/// A threshold.config (Suricata's `threshold-file`), parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThresholdConfig {
    pub entries: Vec<ConfigEntry>,
    /// Lines understood but not applied, with why (`rate_filter`: it changes a rule's action,
    /// and an IDS only alerts).
    pub skipped: Vec<(usize, String)>,
}

/// Splits on commas outside brackets (`ip [10.0.0.0/8,192.168.0.0/16]`).
fn split_parts(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut from) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[from..].trim());
    out
}

/// Parses a threshold.config: `threshold`, `event_filter` and `suppress` lines as Suricata 7
/// reads them (`gen_id`, `sig_id`, `type`, `track`, `count`, `seconds`; `suppress` with an
/// optional `track by_src|by_dst|by_either` and `ip`, which may be a variable or a list).
/// The first bad line is an error: its number (1-based) and what is wrong.
pub fn parse_config(text: &str, vars: &Vars) -> Result<ThresholdConfig, (usize, String)> {
    let mut cfg = ThresholdConfig::default();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut kv: Vec<(&str, &str)> = Vec::new();
        for part in split_parts(rest) {
            let (k, v) = part.split_once(char::is_whitespace).map(|(k, v)| (k, v.trim())).unwrap_or((part, ""));
            kv.push((k, v));
        }
        let get = |k: &str| kv.iter().find(|(x, _)| *x == k).map(|(_, v)| *v);
        let num = |k: &str| -> Result<Option<u32>, (usize, String)> {
            get(k).map(|v| v.parse::<u32>().map_err(|_| (n, format!("{k}: not a number: {v:?}")))).transpose()
        };
        for (k, _) in &kv {
            let known = ["gen_id", "sig_id", "type", "track", "count", "seconds", "ip", "new_action", "timeout"];
            if !known.contains(k) {
                return Err((n, format!("{kind}: unknown part {k:?}")));
            }
        }
        let gid = num("gen_id")?.ok_or((n, format!("{kind}: no gen_id")))?;
        let sid = num("sig_id")?.ok_or((n, format!("{kind}: no sig_id")))?;
        match kind {
            "threshold" | "event_filter" => {
                let kind_of = match get("type") {
                    Some("limit") => ThresholdKind::Limit,
                    Some("threshold") => ThresholdKind::Threshold,
                    Some("both") => ThresholdKind::Both,
                    other => return Err((n, format!("{kind}: type must be limit, threshold or both, not {other:?}"))),
                };
                let track = match get("track") {
                    Some("by_src") => Track::BySrc,
                    Some("by_dst") => Track::ByDst,
                    Some("by_rule") => Track::ByRule,
                    Some("by_both") => Track::ByBoth,
                    other => {
                        return Err((
                            n,
                            format!("{kind}: track must be by_src, by_dst, by_rule or by_both, not {other:?}"),
                        ))
                    }
                };
                let count = num("count")?.ok_or((n, format!("{kind}: no count")))?;
                let seconds = num("seconds")?.ok_or((n, format!("{kind}: no seconds")))?;
                let threshold = Threshold { kind: kind_of, track, count, seconds };
                cfg.entries.push(ConfigEntry::Threshold { gid, sid, threshold });
            }
            "suppress" => {
                let only = match (get("track"), get("ip")) {
                    (None, None) => None,
                    (Some(t), Some(ip)) => {
                        let t = match t {
                            "by_src" => SuppressTrack::BySrc,
                            "by_dst" => SuppressTrack::ByDst,
                            "by_either" => SuppressTrack::ByEither,
                            _ => {
                                return Err((
                                    n,
                                    format!("suppress: track must be by_src, by_dst or by_either, not {t:?}"),
                                ))
                            }
                        };
                        let ips = parse_addresses(ip, vars).map_err(|e| (n, format!("suppress: ip {ip:?}: {e}")))?;
                        Some((t, ips))
                    }
                    _ => return Err((n, "suppress: track and ip go together".into())),
                };
                cfg.entries.push(ConfigEntry::Suppress { gid, sid, suppress: Suppress { only } });
            }
            "rate_filter" => {
                cfg.skipped.push((n, "rate_filter changes a rule's action; spinewatch only alerts".into()))
            }
            _ => return Err((n, format!("unknown entry {kind:?} (threshold, event_filter, suppress, rate_filter)"))),
        }
    }
    Ok(cfg)
}

/// Applies a threshold.config to the rules, as Suricata does: an entry for a sid (and gid;
/// `gen_id 0` is any) replaces the rule's own `threshold` or `detection_filter`; `sig_id 0`
/// is every rule that has none of its own. `suppress` entries add up. Returns how many rules
/// an entry changed.
pub fn apply_config(rules: &mut [Rule], cfg: &ThresholdConfig) -> usize {
    let mut changed = 0;
    let hits = |r: &Rule, gid: u32, sid: u32| (gid == 0 || gid == r.gid) && (sid == 0 || sid == r.sid);
    for r in rules.iter_mut() {
        let own = r.threshold.is_some() || r.detection_filter.is_some();
        let mut touched = false;
        for e in &cfg.entries {
            match e {
                ConfigEntry::Threshold { gid, sid, threshold } if hits(r, *gid, *sid) && (*sid != 0 || !own) => {
                    r.threshold = Some(*threshold);
                    r.detection_filter = None;
                    touched = true;
                }
                ConfigEntry::Suppress { gid, sid, suppress } if hits(r, *gid, *sid) => {
                    r.suppress.push(suppress.clone());
                    touched = true;
                }
                _ => {}
            }
        }
        changed += touched as usize;
    }
    changed
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
    fn threshold_config_entries_apply_as_suricata() {
        let mut set = test_set(
            r#"alert tcp any any -> any any (msg:"a"; threshold:type limit,track by_src,count 5,seconds 9; sid:1;)
alert tcp any any -> any any (msg:"b"; sid:2;)
alert tcp any any -> any any (msg:"c"; sid:3;)
"#,
        );
        let text = "# comment\nthreshold gen_id 1, sig_id 1, type both, track by_dst, count 2, seconds 3\n\
                    event_filter gen_id 0, sig_id 0, type limit, track by_rule, count 1, seconds 60\n\
                    suppress gen_id 1, sig_id 3, track by_either, ip [10.0.0.0/8, 192.168.1.1]\n\
                    suppress gen_id 1, sig_id 2\n\
                    rate_filter gen_id 1, sig_id 2, track by_rule, count 10, seconds 1, new_action drop, timeout 5\n";
        let cfg = parse_config(text, &Vars::default()).unwrap();
        assert_eq!(cfg.entries.len(), 4);
        assert_eq!(cfg.skipped.len(), 1);
        assert_eq!(apply_config(&mut set.rules, &cfg), 3);
        let t = |i: usize| set.rules[i].threshold.unwrap();
        assert_eq!((t(0).kind, t(0).track, t(0).count), (ThresholdKind::Both, Track::ByDst, 2), "sid 1's entry wins");
        assert_eq!((t(1).kind, t(1).track), (ThresholdKind::Limit, Track::ByRule), "sig_id 0: a rule with none");
        let s = &set.rules[2].suppress[0];
        let a = |x: &str| crate::rules::addr::addr_u128(x.parse().unwrap());
        assert!(s.drops(a("10.1.2.3"), a("172.16.0.1")) && s.drops(a("172.16.0.1"), a("192.168.1.1")));
        assert!(!s.drops(a("172.16.0.1"), a("172.16.0.2")));
        assert!(set.rules[1].suppress[0].drops(0, 0));
        for (bad, why) in [
            ("threshold gen_id 1, sig_id 1, type limit, track by_src, count 1\n", "no seconds"),
            ("suppress gen_id 1, sig_id 1, track by_src\n", "go together"),
            ("limit gen_id 1, sig_id 1\n", "unknown entry"),
            ("suppress gen_id 1, sig_id x\n", "not a number"),
        ] {
            let e = parse_config(&format!("\n{bad}"), &Vars::default()).unwrap_err();
            assert_eq!(e.0, 2);
            assert!(e.1.contains(why), "{bad}: {}", e.1);
        }
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
