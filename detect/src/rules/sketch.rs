//! Behaviours whose evidence spans cores: a scanner's or a flooder's flows hash to every
//! worker. Each worker keeps, per time window, compact bounded sketches (counters and
//! HyperLogLog distinct counts) keyed by who and what; at the window's end it hands them over
//! (with its records, to the export thread), where an [`Aggregator`] merges every worker's
//! sketch of the window and raises the alerts. Nothing here is shared on the packet path.

use std::collections::HashMap as StdMap;
use std::hash::{BuildHasher, Hasher};

/// A fast keyed hash for the sketch maps (updated at every new flow: SipHash costs too much
/// there): multiply-rotate over the words, a per-process random seed (the keys are addresses an
/// attacker chooses), and a strong finaliser.
#[derive(Debug, Clone, Copy)]
pub struct FastState(u64);

impl Default for FastState {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        FastState(*SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)))
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.word(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.word(v as u64);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.word(v);
    }
    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.word(v as u64);
        self.word((v >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.word(v as u64);
    }
}

/// The sketches' maps.
pub type HashMap<K, V> = StdMap<K, V, FastState>;

/// Registers of the distinct-count sketch: 2^6 (about 13% standard error, plenty for
/// thresholds in the hundreds; 64 bytes per key).
const HLL_BITS: u32 = 6;
const HLL_M: usize = 1 << HLL_BITS;

/// A HyperLogLog distinct counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll([u8; HLL_M]);

impl Default for Hll {
    fn default() -> Self {
        Hll([0; HLL_M])
    }
}

fn mix(x: u64) -> u64 {
    crate::hash::fmix64(x)
}

impl Hll {
    pub fn add(&mut self, v: u64) {
        let h = mix(v);
        let i = (h >> (64 - HLL_BITS)) as usize;
        let rank = ((h << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
        self.0[i] = self.0[i].max(rank);
    }

    pub fn merge(&mut self, o: &Hll) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct values (with the small-range correction).
    pub fn count(&self) -> f64 {
        let m = HLL_M as f64;
        let sum: f64 = self.0.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let est = 0.709 * m * m / sum;
        let zeros = self.0.iter().filter(|&&r| r == 0).count();
        if est <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            est
        }
    }
}

/// Keys a sketch map holds at most per worker and window; past it new keys are counted
/// (`dropped`) and not tracked. Only keys the [`Gate`] admits take a place.
pub const MAX_KEYS: usize = 16_384;

/// Counters per row of the gate's count-min sketch (two rows of one byte: 2 MiB per worker;
/// with conservative update its estimates stay near the truth for millions of events per
/// window, where a narrower one would admit every key).
const CMS_WIDTH: usize = 1 << 20;
/// Bits per generation of the gate's recurrence filter (two generations: 2 MiB per worker).
const RECUR_BITS: usize = 1 << 23;

/// A worker's admission gate in front of the sketch maps, so that a burst of background flows
/// cannot fill them first (the maps admitted keys in arrival order before, and a spine link's
/// new flows filled them within seconds: the attacks that came later went unseen):
/// - a count-min sketch of events per key in this window: a key takes a place in a map only once
///   it has an eighth of the threshold its map is judged by (a port scan's source after 12 new
///   flows to one host); a key below that can never alert, so the maps hold only the heavy
///   keys. A counter starts from the count-min estimate when its key is admitted; a distinct
///   count (HyperLogLog) misses what came before admission (at most an eighth of its threshold);
/// - a two-generation Bloom filter of the (source, destination, port) keys that started flows
///   in this window and the last: a flow start is kept for the beacon detector only when its
///   key has started a flow before (a beacon repeats; a one-off flow cannot be one), so the
///   start list holds the repeating keys (beacons up to two windows apart are seen).
///
/// The gate decides only under pressure (its map, or the start list, half full): below that
/// every key is kept as before, so light traffic gives the same alerts and counts at any number
/// of workers. Reset every window (one memset), allocated on first use (4 MiB per worker), kept
/// by the worker (not handed over with the window's sketch).
#[derive(Debug, Default, Clone)]
pub struct Gate {
    cms: Vec<u8>,
    seen: [Vec<u64>; 2],
    cur: usize,
}

impl Gate {
    fn ensure(&mut self) {
        if self.cms.is_empty() {
            self.cms = vec![0; 2 * CMS_WIDTH];
            self.seen = [vec![0; RECUR_BITS / 64], vec![0; RECUR_BITS / 64]];
        }
    }

    /// A new window: counts start over, the older generation of keys is forgotten.
    pub fn new_window(&mut self) {
        if self.cms.is_empty() {
            return;
        }
        self.cms.fill(0);
        self.cur ^= 1;
        self.seen[self.cur].fill(0);
    }

    /// Counts one event of key `h` and returns the key's estimated events in this window
    /// (saturating at 255). Conservative update: only the counters at the minimum grow.
    fn count(&mut self, h: u64) -> u8 {
        self.ensure();
        let a = (h as usize) & (CMS_WIDTH - 1);
        let b = CMS_WIDTH + ((h >> 32) as usize & (CMS_WIDTH - 1));
        let n = self.cms[a].min(self.cms[b]).saturating_add(1);
        self.cms[a] = self.cms[a].max(n);
        self.cms[b] = self.cms[b].max(n);
        n
    }

    /// Whether key `h` started a flow in this window or the last (before this one, which is
    /// recorded).
    fn recurs(&mut self, h: u64) -> bool {
        self.ensure();
        let bits = [(h as usize) & (RECUR_BITS - 1), (h >> 40) as usize & (RECUR_BITS - 1)];
        let has = |g: &Vec<u64>| bits.iter().all(|&i| g[i / 64] >> (i % 64) & 1 == 1);
        let seen = has(&self.seen[0]) || has(&self.seen[1]);
        let g = &mut self.seen[self.cur];
        for i in bits {
            g[i / 64] |= 1 << (i % 64);
        }
        seen
    }

    /// Counts an event of `key` (in map `tag`) and returns its estimated count when the key is
    /// heavy enough for a map judged at `threshold`.
    fn admit<K: std::hash::Hash>(&mut self, tag: u8, key: &K, threshold: f64) -> Option<u64> {
        let n = self.count(FastState::default().hash_one((tag, key)));
        (n as f64 >= (threshold / 8.0).max(1.0)).then_some(n as u64)
    }
}

/// Flow start times kept per (source, destination, port) over windows (by the aggregator).
pub const MAX_STARTS: usize = 64;
/// Flow starts a worker records per window.
pub const MAX_START_RECORDS: usize = 1 << 18;

/// Ports whose many short connections from one source are a brute-force attempt.
pub const AUTH_PORTS: [u16; 7] = [21, 22, 23, 445, 3389, 5900, 1433];

/// One worker's evidence for one window.
#[derive(Debug, Default, Clone)]
pub struct WindowSketch {
    /// Window number (packet time / window length).
    pub window: u64,
    /// The thresholds (carried to the aggregator).
    pub cfg: SketchConfig,
    /// The number of workers (so the aggregator knows when a window is complete).
    pub workers: usize,
    /// (source, destination) → distinct destination ports: vertical scan.
    pub ports: HashMap<(u128, u128), Hll>,
    /// (source, destination port) → distinct destinations: horizontal scan.
    pub hosts: HashMap<(u128, u16), Hll>,
    /// (destination, port) → SYNs seen, and their distinct sources: SYN flood.
    pub syns: HashMap<(u128, u16), (u64, Hll)>,
    /// (source, destination, auth port) → connections: brute force.
    pub conns: HashMap<(u128, u128, u16), u64>,
    /// (source, base domain) → distinct subdomains, the base domain, and TXT queries: DNS
    /// tunnelling.
    pub dns: HashMap<(u128, u64), (Hll, String, u64)>,
    /// Flow starts (source, destination, port, time), appended (one push per new flow, no
    /// allocation once grown; at most [`MAX_START_RECORDS`] per window): beaconing.
    pub starts: Vec<((u128, u128, u16), u64)>,
    /// Keys not tracked because a map was full.
    pub dropped: u64,
    /// The worker's last sketch: its input is done.
    pub last: bool,
    /// The sketch belongs to a window the worker has entered (a fresh one has not).
    pub started: bool,
    /// The worker's admission gate (moved from window to window, never handed over).
    pub gate: Gate,
}

/// A key's entry in a sketch map; a full map first makes room by dropping its lighter half
/// (by `weight`: keys that far below the others cannot be the ones that alert; lossy
/// counting's way), so a burst of keys cannot lock out the ones that come after it; only when
/// that leaves it full is the key counted (`dropped`) and not tracked.
fn bounded<'a, K: std::hash::Hash + Eq, V: Default>(
    m: &'a mut HashMap<K, V>,
    k: K,
    dropped: &mut u64,
    weight: fn(&V) -> u64,
) -> Option<&'a mut V> {
    if m.len() >= MAX_KEYS && !m.contains_key(&k) {
        let mut w: Vec<u64> = m.values().map(weight).collect();
        let half = w.len() / 2;
        let (_, cut, _) = w.select_nth_unstable(half);
        let cut = *cut;
        // Exactly the lighter half goes: below the median, then as many at it as needed (keys
        // often tie: all of them going would throw the map's evidence away).
        let mut at_cut = half - w.iter().filter(|&&x| x < cut).count();
        m.retain(|_, v| {
            let x = weight(v);
            if x < cut || (x == cut && at_cut > 0) {
                at_cut -= (x == cut) as usize;
                return false;
            }
            true
        });
        if m.len() >= MAX_KEYS {
            *dropped += 1;
            return None;
        }
    }
    Some(m.entry(k).or_default())
}

/// A distinct count's weight for pruning: the sum of its registers (grows with the count).
fn hll_weight(h: &Hll) -> u64 {
    h.0.iter().map(|&r| r as u64).sum()
}

impl WindowSketch {
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
            && self.hosts.is_empty()
            && self.syns.is_empty()
            && self.conns.is_empty()
            && self.dns.is_empty()
            && self.starts.is_empty()
    }

    /// A new flow from `src` to `dst:dport` (protocol `proto`) at `ts`; `syn`: it opened with
    /// a bare SYN.
    pub fn new_flow(&mut self, src: u128, dst: u128, dport: u16, proto: u8, syn: bool, ts: u64) {
        if proto != 6 && proto != 17 {
            return;
        }
        let (d, g, c) = (&mut self.dropped, &mut self.gate, &self.cfg);
        // The gate counts every event, and decides only under pressure (a map or the start
        // list half full): below that every key is kept, exactly as the evidence came, so the
        // alerts and their counts are the same whatever the number of workers.
        let calm = |len: usize, max: usize| len < max / 2;
        let recurs = g.recurs(FastState::default().hash_one((src, dst, dport)));
        if recurs || calm(self.starts.len(), MAX_START_RECORDS) {
            if self.starts.len() < MAX_START_RECORDS {
                self.starts.push(((src, dst, dport), ts));
            } else {
                *d += 1;
            }
        }
        let admitted = g.admit(0, &(src, dst), c.scan_ports).is_some();
        if admitted || calm(self.ports.len(), MAX_KEYS) {
            if let Some(h) = bounded(&mut self.ports, (src, dst), d, hll_weight) {
                h.add(dport as u64 | (proto as u64) << 16);
            }
        }
        let admitted = g.admit(1, &(src, dport), c.scan_hosts).is_some();
        if admitted || calm(self.hosts.len(), MAX_KEYS) {
            if let Some(h) = bounded(&mut self.hosts, (src, dport), d, hll_weight) {
                h.add(dst as u64 ^ (dst >> 64) as u64);
            }
        }
        if proto == 6 && syn {
            let est = g.admit(2, &(dst, dport), c.syn_flood as f64);
            if est.is_some() || calm(self.syns.len(), MAX_KEYS) {
                if let Some((n, h)) = bounded(&mut self.syns, (dst, dport), d, |v| v.0) {
                    *n = (*n + 1).max(est.unwrap_or(0));
                    h.add(src as u64 ^ (src >> 64) as u64);
                }
            }
        }
        if proto == 6 && AUTH_PORTS.contains(&dport) {
            let est = g.admit(3, &(src, dst, dport), c.brute_force as f64);
            if est.is_some() || calm(self.conns.len(), MAX_KEYS) {
                if let Some(n) = bounded(&mut self.conns, (src, dst, dport), d, |v| *v) {
                    *n = (*n + 1).max(est.unwrap_or(0));
                }
            }
        }
    }

    /// A DNS query for `name` from `src`: its subdomain under the base domain (the last two
    /// labels) is counted.
    pub fn dns_query(&mut self, src: u128, name: &[u8], qtype: u16) {
        let name = name.strip_suffix(b".").unwrap_or(name);
        let mut dots = name.iter().enumerate().rev().filter(|(_, &b)| b == b'.').map(|(i, _)| i);
        let (Some(_), Some(cut)) = (dots.next(), dots.next()) else { return };
        let (sub, base) = (&name[..cut], &name[cut + 1..]);
        let hash = |b: &[u8]| {
            b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                (h ^ x.to_ascii_lowercase() as u64).wrapping_mul(0x100_0000_01b3)
            })
        };
        let key = (src, hash(base));
        let d = &mut self.dropped;
        let threshold = self.cfg.dns_subdomains.min(self.cfg.dns_txt as f64);
        if self.gate.admit(4, &key, threshold).is_none() && self.dns.len() >= MAX_KEYS / 2 {
            return;
        }
        if let Some((h, b, txt)) = bounded(&mut self.dns, key, d, |v| hll_weight(&v.0) + v.2) {
            h.add(hash(sub));
            *txt += (qtype == 16) as u64;
            if b.is_empty() {
                *b = String::from_utf8_lossy(base).to_ascii_lowercase();
            }
        }
    }

    /// A fresh sketch for `window`, judged with `cfg`.
    pub fn start(&mut self, window: u64, cfg: SketchConfig) {
        let workers = self.workers;
        let mut gate = std::mem::take(&mut self.gate);
        gate.new_window();
        *self = WindowSketch { window, cfg, workers, started: true, gate, ..WindowSketch::default() };
    }

    fn merge(&mut self, o: WindowSketch) {
        for (k, v) in o.ports {
            self.ports.entry(k).or_default().merge(&v);
        }
        for (k, v) in o.hosts {
            self.hosts.entry(k).or_default().merge(&v);
        }
        for (k, (n, h)) in o.syns {
            let e = self.syns.entry(k).or_default();
            e.0 += n;
            e.1.merge(&h);
        }
        for (k, n) in o.conns {
            *self.conns.entry(k).or_default() += n;
        }
        for (k, (h, b, txt)) in o.dns {
            let e = self.dns.entry(k).or_default();
            e.0.merge(&h);
            e.2 += txt;
            if e.1.is_empty() {
                e.1 = b;
            }
        }
        self.starts.extend(o.starts);
        self.dropped += o.dropped;
    }
}

/// Thresholds per window (`[behaviour]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SketchConfig {
    pub enabled: bool,
    pub window_secs: u64,
    /// Distinct ports of one destination probed by one source.
    pub scan_ports: f64,
    /// Distinct destinations probed on one port by one source.
    pub scan_hosts: f64,
    /// SYNs to one destination port, and their distinct sources.
    pub syn_flood: u64,
    pub syn_flood_sources: f64,
    /// Connections from one source to one authentication service.
    pub brute_force: u64,
    /// Distinct subdomains of one base domain queried by one source, or TXT queries for it.
    pub dns_subdomains: f64,
    pub dns_txt: u64,
    /// Beaconing: at least this many connections from one source to one destination port,
    /// their intervals at least `beacon_min_interval_secs` apart on average and varying by at
    /// most `beacon_max_jitter` (standard deviation over mean).
    pub beacon_min_flows: usize,
    pub beacon_min_interval_secs: f64,
    pub beacon_max_jitter: f64,
}

impl Default for SketchConfig {
    fn default() -> Self {
        SketchConfig {
            enabled: true,
            window_secs: 60,
            scan_ports: 100.0,
            scan_hosts: 100.0,
            syn_flood: 1000,
            syn_flood_sources: 100.0,
            brute_force: 20,
            dns_subdomains: 100.0,
            dns_txt: 200,
            beacon_min_flows: 8,
            beacon_min_interval_secs: 0.5,
            beacon_max_jitter: 0.1,
        }
    }
}

/// What a merged window showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Spanning,
    pub window: u64,
    pub src: Option<u128>,
    pub dst: Option<u128>,
    pub port: Option<u16>,
    /// The count that crossed the threshold (distinct ports, hosts, sources, subdomains, SYNs,
    /// connections).
    pub count: u64,
    pub domain: Option<String>,
}

/// The behaviours judged on merged sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spanning {
    VerticalScan,
    HorizontalScan,
    SynFlood,
    BruteForce,
    DnsTunnel,
    Beacon,
}

impl Spanning {
    pub fn sid(self) -> u32 {
        9_200_101 + self as u32
    }
    pub fn msg(self) -> &'static str {
        match self {
            Spanning::VerticalScan => "spinewatch BEHAVIOUR port scan: many ports of one host",
            Spanning::HorizontalScan => "spinewatch BEHAVIOUR port scan: one port on many hosts",
            Spanning::SynFlood => "spinewatch BEHAVIOUR SYN flood: many SYNs from many sources to one service",
            Spanning::BruteForce => "spinewatch BEHAVIOUR brute force: many connections to an authentication service",
            Spanning::DnsTunnel => "spinewatch BEHAVIOUR DNS tunnelling: many unique subdomains of one domain",
            Spanning::Beacon => "spinewatch BEHAVIOUR beaconing: connections to one destination at regular intervals",
        }
    }
    pub fn mitre(self) -> (&'static str, &'static str) {
        match self {
            Spanning::VerticalScan | Spanning::HorizontalScan => ("T1046", "Network Service Discovery"),
            Spanning::SynFlood => ("T1499.002", "Endpoint Denial of Service: Service Exhaustion Flood"),
            Spanning::BruteForce => ("T1110", "Brute Force"),
            Spanning::DnsTunnel => ("T1071.004", "Application Layer Protocol: DNS"),
            Spanning::Beacon => ("T1071", "Application Layer Protocol"),
        }
    }
    pub fn category(self) -> &'static str {
        match self {
            Spanning::VerticalScan | Spanning::HorizontalScan => "Detection of a Network Scan",
            Spanning::SynFlood => "Detection of a Denial of Service Attack",
            Spanning::BruteForce => "Attempted Administrator Privilege Gain",
            Spanning::DnsTunnel | Spanning::Beacon => "Potentially Bad Traffic",
        }
    }
}

/// A finding's identity: (kind, window, source, destination, port).
type Reported = (u8, u64, Option<u128>, Option<u128>, Option<u16>);

/// Windows the aggregator holds open waiting for a worker that lags behind; past it the oldest
/// is judged without it (counted in [`Aggregator::judged_early`]).
pub const MAX_PENDING_WINDOWS: usize = 32;

/// Merges the workers' sketches window by window and judges a window once every worker has
/// moved past it (each worker hands over every window it leaves, even an empty one, and its
/// last at the end of its input), so that a detection is judged once on the evidence of every
/// worker, whatever their number and however far apart their clocks are.
#[derive(Debug)]
pub struct Aggregator {
    cfg: SketchConfig,
    workers: usize,
    pending: HashMap<u64, WindowSketch>,
    /// Per worker: the latest window it has left, and whether its input is done.
    left: Vec<Option<u64>>,
    finished: Vec<bool>,
    /// Every window below this one has been judged.
    judged_below: u64,
    /// What was reported, per window (a late sketch of a window judged early adds to it
    /// without repeating an alert).
    reported: std::collections::HashSet<Reported>,
    /// Flow start times per (source, destination, port) over windows (the last
    /// [`MAX_STARTS`]), and the keys already reported as beacons.
    history: HashMap<(u128, u128, u16), Vec<u64>>,
    beacons: std::collections::HashSet<(u128, u128, u16)>,
    /// The window in which the full history was last purged of stopped keys.
    purged_in: Option<u64>,
    /// Keys lost to full maps, over the run.
    pub dropped: u64,
    /// Windows judged before every worker had handed its part over (a worker lagging more than
    /// [`MAX_PENDING_WINDOWS`] windows), and sketches that came after their window was judged.
    pub judged_early: u64,
    pub late: u64,
}

impl Aggregator {
    pub fn new(cfg: SketchConfig, workers: usize) -> Self {
        let workers = workers.max(1);
        Aggregator {
            cfg,
            workers,
            pending: HashMap::default(),
            left: vec![None; workers],
            finished: vec![false; workers],
            judged_below: 0,
            reported: Default::default(),
            history: HashMap::default(),
            beacons: Default::default(),
            purged_in: None,
            dropped: 0,
            judged_early: 0,
            late: 0,
        }
    }

    /// Worker `worker`'s sketch of a window it has left (or its last, `s.last`); the findings
    /// of the windows now complete.
    pub fn add(&mut self, worker: usize, s: WindowSketch) -> Vec<Finding> {
        let worker = worker.min(self.workers - 1);
        let w = s.window;
        if s.last {
            self.finished[worker] = true;
        } else {
            self.left[worker] = Some(self.left[worker].map_or(w, |l| l.max(w)));
        }
        let mut out = Vec::new();
        if !s.is_empty() || s.dropped > 0 {
            if w < self.judged_below {
                // Its window was judged without it: judged again with what it adds.
                self.late += 1;
                out.extend(self.judge(s));
            } else {
                let e = self.pending.entry(w).or_insert_with(|| WindowSketch { window: w, ..WindowSketch::default() });
                e.merge(s);
            }
        }
        // The windows every worker has left (or all of them once every input is done).
        let frontier = (0..self.workers)
            .filter(|&i| !self.finished[i])
            .map(|i| self.left[i])
            .try_fold(u64::MAX, |m, l| l.map(|l| m.min(l)));
        // Judged: the windows up to the frontier, then the oldest others past the bound.
        let mut keys: Vec<u64> = self.pending.keys().copied().collect();
        keys.sort_unstable();
        let complete = keys.iter().take_while(|&&k| frontier.is_some_and(|f| k <= f)).count();
        let over = (keys.len() - complete).saturating_sub(MAX_PENDING_WINDOWS);
        self.judged_early += over as u64;
        for &k in &keys[..complete + over] {
            if let Some(m) = self.pending.remove(&k) {
                out.extend(self.judge(m));
            }
            self.judged_below = self.judged_below.max(k + 1);
        }
        if let Some(f) = frontier {
            self.judged_below = self.judged_below.max(f.saturating_add(1));
        }
        // What was reported for windows long judged is not needed any more.
        if self.reported.len() > 4 * MAX_KEYS {
            let keep = self.judged_below.saturating_sub(MAX_PENDING_WINDOWS as u64);
            self.reported.retain(|r| r.1 >= keep);
        }
        out
    }

    /// When window `w` ends (microseconds), the alerts' timestamp.
    pub fn window_end(&self, w: u64) -> u64 {
        (w + 1) * self.cfg.window_secs.max(1) * 1_000_000
    }

    /// From the first sketch's settings.
    pub fn for_sketch(s: &WindowSketch) -> Aggregator {
        Aggregator::new(s.cfg, s.workers)
    }

    /// The windows still waiting for a worker (at the end of the run).
    pub fn finish(&mut self) -> Vec<Finding> {
        let mut ws: Vec<u64> = self.pending.keys().copied().collect();
        ws.sort_unstable();
        let mut out = Vec::new();
        for w in ws {
            if let Some(m) = self.pending.remove(&w) {
                out.extend(self.judge(m));
            }
        }
        out
    }

    fn judge(&mut self, m: WindowSketch) -> Vec<Finding> {
        let c = &self.cfg;
        self.dropped += m.dropped;
        let w = m.window;
        let f = |kind, src, dst, port, count: f64, domain| Finding {
            kind,
            window: w,
            src,
            dst,
            port,
            count: count.round() as u64,
            domain,
        };
        let mut out = Vec::new();
        for ((s, d), h) in &m.ports {
            let n = h.count();
            if n >= c.scan_ports {
                out.push(f(Spanning::VerticalScan, Some(*s), Some(*d), None, n, None));
            }
        }
        for ((s, p), h) in &m.hosts {
            let n = h.count();
            if n >= c.scan_hosts {
                out.push(f(Spanning::HorizontalScan, Some(*s), None, Some(*p), n, None));
            }
        }
        for ((d, p), (n, h)) in &m.syns {
            if *n >= c.syn_flood && h.count() >= c.syn_flood_sources {
                out.push(f(Spanning::SynFlood, None, Some(*d), Some(*p), *n as f64, None));
            }
        }
        for ((s, d, p), n) in &m.conns {
            if *n >= c.brute_force {
                out.push(f(Spanning::BruteForce, Some(*s), Some(*d), Some(*p), *n as f64, None));
            }
        }
        for ((s, _), (h, base, txt)) in &m.dns {
            let n = h.count();
            if n >= c.dns_subdomains || *txt >= c.dns_txt {
                out.push(f(Spanning::DnsTunnel, Some(*s), None, Some(53), n, Some(base.clone())));
            }
        }
        let mut by_key: HashMap<(u128, u128, u16), Vec<u64>> = HashMap::default();
        for (k, t) in m.starts {
            let v = by_key.entry(k).or_default();
            if v.len() < MAX_STARTS {
                v.push(t);
            }
        }
        for (k, v) in by_key {
            if self.beacons.contains(&k) {
                continue;
            }
            // Under pressure (half full), a key new to the history needs two starts in this
            // window to take a place: a one-off flow cannot become a beacon's evidence alone.
            if v.len() < 2 && self.history.len() >= MAX_KEYS * 2 && !self.history.contains_key(&k) {
                continue;
            }
            if self.history.len() >= MAX_KEYS * 4 && !self.history.contains_key(&k) {
                // Full: once per window, forget the keys that stopped (a key seen once, two
                // windows ago; others after eight), so the detector recovers after a burst.
                if self.purged_in != Some(w) {
                    self.purged_in = Some(w);
                    let win = c.window_secs.max(1) * 1_000_000;
                    let now = w * win;
                    self.history.retain(|_, v| {
                        let horizon = if v.len() <= 1 { 2 } else { 8 } * win;
                        v.last().is_some_and(|&t| t + horizon >= now)
                    });
                }
                if self.history.len() >= MAX_KEYS * 4 {
                    self.dropped += 1;
                    continue;
                }
            }
            let h = self.history.entry(k).or_default();
            h.extend(v);
            h.sort_unstable();
            h.dedup();
            if h.len() > MAX_STARTS {
                h.drain(..h.len() - MAX_STARTS);
            }
            if h.len() < c.beacon_min_flows.max(3) {
                continue;
            }
            let gaps: Vec<f64> = h.windows(2).map(|p| (p[1] - p[0]) as f64 / 1e6).collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
            if mean >= c.beacon_min_interval_secs && var.sqrt() / mean <= c.beacon_max_jitter {
                let n = h.len() as f64;
                self.beacons.insert(k);
                out.push(f(Spanning::Beacon, Some(k.0), Some(k.1), Some(k.2), n, None));
            }
        }
        // Deterministic order (maps iterate in any order); once per window and key.
        out.sort_by_key(|a| (a.kind as u8, a.src, a.dst, a.port));
        out.retain(|a| self.reported.insert((a.kind as u8, a.window, a.src, a.dst, a.port)));
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn hll_counts_within_its_error() {
        for n in [10u64, 100, 1000, 20_000] {
            let mut h = Hll::default();
            for i in 0..n {
                h.add(i * 7919);
            }
            let e = h.count();
            assert!((e - n as f64).abs() / (n as f64) < 0.35, "{n}: {e}");
        }
        let (mut a, mut b) = (Hll::default(), Hll::default());
        (0..500).for_each(|i| a.add(i));
        (250..750).for_each(|i| b.add(i));
        a.merge(&b);
        assert!((a.count() - 750.0).abs() < 750.0 * 0.35);
    }

    #[test]
    fn a_scan_split_over_workers_is_found_once_merged() {
        let cfg = SketchConfig { scan_ports: 100.0, ..SketchConfig::default() };
        let mut agg = Aggregator::new(cfg, 2);
        let (mut w0, mut w1) = (WindowSketch::default(), WindowSketch::default());
        // 160 ports, half on each worker: neither alone crosses 100.
        for p in 1..=160u16 {
            let w = if p % 2 == 0 { &mut w0 } else { &mut w1 };
            w.new_flow(1, 2, p, 6, true, p as u64);
        }
        assert!(Aggregator::new(cfg, 1).add(0, w0.clone()).is_empty(), "one worker's half is below the threshold");
        assert!(agg.add(0, w0).is_empty(), "waits for the other worker");
        let f = agg.add(1, w1);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].kind, f[0].src, f[0].dst), (Spanning::VerticalScan, Some(1), Some(2)));
        assert!(agg.finish().is_empty());
    }

    #[test]
    fn horizontal_scans_floods_and_beacons() {
        let cfg = SketchConfig::default();
        let mut s = WindowSketch { cfg, ..WindowSketch::default() };
        // One source, port 445, 150 hosts; a flood of 1500 SYNs from 300 sources; a beacon
        // every 30 s (±1%) and a client hitting one server at random times.
        for h in 0..150u128 {
            s.new_flow(7, 1000 + h, 445, 6, true, 0);
        }
        for i in 0..1500u128 {
            s.new_flow(5000 + i % 300, 9, 443, 6, true, 0);
        }
        for i in 0..10u64 {
            let jitter = [3, -2, 1, 0, -3, 2, -1, 3, 0, -2][i as usize] * 100_000;
            s.new_flow(11, 12, 8443, 6, true, i * 30_000_000 + (1_000_000 + jitter) as u64);
            s.new_flow(21, 22, 8443, 6, true, [1, 3, 4, 10, 11, 19, 30, 31, 40, 57][i as usize] * 1_000_000);
        }
        let f = Aggregator::new(cfg, 1).add(0, s);
        let kinds: Vec<(Spanning, Option<u128>)> = f.iter().map(|x| (x.kind, x.src.or(x.dst))).collect();
        assert_eq!(
            kinds,
            [(Spanning::HorizontalScan, Some(7)), (Spanning::SynFlood, Some(9)), (Spanning::Beacon, Some(11))],
            "{f:?}"
        );
    }

    #[test]
    fn dns_subdomains_and_bounds() {
        let mut s = WindowSketch::default();
        for i in 0..300 {
            s.dns_query(9, format!("x{i:04}abcdef.t.exfil.example.").as_bytes(), 1);
        }
        s.dns_query(9, b"localhost", 1);
        let f = Aggregator::new(SketchConfig::default(), 1).add(0, s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].domain.as_deref(), Some("exfil.example"));
        // TXT volume alone (few distinct names).
        let mut s = WindowSketch::default();
        for i in 0..250 {
            s.dns_query(9, format!("q{}.txt.example", i % 5).as_bytes(), 16);
        }
        let f = Aggregator::new(SketchConfig::default(), 1).add(0, s);
        assert_eq!((f.len(), f[0].domain.as_deref()), (1, Some("txt.example")));
        // One-off flows from many sources: once a map is half full, the gate admits heavy keys
        // only.
        let mut s = WindowSketch::default();
        for i in 0..(MAX_KEYS as u128 + 10) {
            s.new_flow(i, 1, 80, 6, false, 0);
        }
        assert!(s.ports.len() == MAX_KEYS / 2 && s.dropped == 0, "{} {}", s.ports.len(), s.dropped);
        // Heavy keys past the bound.
        let mut s = WindowSketch::default();
        for i in 0..(MAX_KEYS as u128 + 10) {
            for p in 0..13 {
                s.new_flow(i, 1, 80 + p, 6, false, 0);
            }
        }
        // A full map drops its lighter half (here all keys weigh alike), and the newest come in.
        assert!(s.ports.len() <= MAX_KEYS / 2 + 10 && s.ports.len() > 10, "{}", s.ports.len());
        assert!(s.ports.contains_key(&(MAX_KEYS as u128 + 9, 1)));
    }

    /// A burst of background flows (far more keys than the maps hold) around a port scan, a
    /// brute force, a DNS tunnel and a beacon: every one is seen, in the burst's window and
    /// after it.
    #[test]
    fn attacks_are_seen_through_a_burst() {
        let cfg = SketchConfig::default();
        let mut agg = Aggregator::new(cfg, 1);
        let mut found = Vec::new();
        let mut s = WindowSketch::default();
        for w in 0..4u64 {
            s.start(w, cfg);
            let t0 = w * 60_000_000;
            // 200 000 background flows in the first two windows: each a new pair.
            if w < 2 {
                for i in 0..200_000u128 {
                    s.new_flow(1 << 40 | i, 2 << 40 | (i * 7 % 5000), 443, 6, true, t0 + i as u64 * 300);
                    if i % 4 == 0 {
                        s.dns_query(1 << 40 | i, format!("h{i}.corp{}.example", i % 3000).as_bytes(), 1);
                    }
                }
            }
            for p in 0..300u16 {
                s.new_flow(7, 8, 1000 + p, 6, true, t0 + 1_000_000 + p as u64 * 1000);
            }
            for i in 0..30u64 {
                s.new_flow(17, 18, 22, 6, true, t0 + 2_000_000 + i * 1000);
            }
            for i in 0..150 {
                s.dns_query(27, format!("x{i:05}{w}aaaa.t.tunnel.example").as_bytes(), 16);
            }
            for i in 0..6u64 {
                s.new_flow(37, 38, 8080, 6, true, t0 + i * 10_000_000);
            }
            let done = WindowSketch { gate: Gate::default(), ..s.clone() };
            found.extend(agg.add(0, done).into_iter().map(|f| (f.window, f.kind, f.src)));
        }
        found.extend(agg.finish().into_iter().map(|f| (f.window, f.kind, f.src)));
        for w in 0..3 {
            for (kind, src) in [(Spanning::VerticalScan, 7), (Spanning::BruteForce, 17), (Spanning::DnsTunnel, 27)] {
                assert!(found.contains(&(w, kind, Some(src))), "window {w}: {kind:?} missing from {found:?}");
            }
        }
        assert!(found.iter().any(|f| f.1 == Spanning::Beacon && f.2 == Some(37)), "{found:?}");
        assert!(!found.iter().any(|f| f.2.is_some_and(|s| s >> 40 == 1)), "no background source alerts");
    }
}
