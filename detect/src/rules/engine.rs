//! The compiled rule set ([`RuleSet`]: immutable, shared read-only by the workers) and the
//! per-worker matcher ([`Matcher`]: candidate marks, flowbits; thresholded matches go out as
//! candidates, decided across workers by [`super::threshold`]).
//!
//! Each rule is prefiltered on one content (its `fast_pattern`, else its longest), by an
//! Aho-Corasick automaton per buffer; only the rules whose pattern occurs (and those with no
//! content at all) are verified in full. Rules on app-layer buffers are inspected on
//! transactions (a DNS query, an HTTP transaction, a TLS handshake, SSH banners), the others
//! on every packet.

use super::addr::Cidr;
use super::*;
use crate::app::{AppEvent, AppProto, Inspect};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;

/// Buffers × {plain, dot-prefixed}; the packet payload's prefilters come after them
/// ([`PayloadGroups`]).
const N_BUF: usize = Buf::COUNT;
const N_PRE: usize = N_BUF * 2;

/// Most steps one verification may take (content retries after relative failures), as
/// Suricata's inspection recursion limit.
const MAX_STEPS: u32 = 3000;

/// A literal multi-pattern scanner the binary may supply (Hyperscan) in place of the built-in
/// Aho-Corasick. Pattern ids are indexes into the list it was built from; a pattern may be
/// reported more than once.
pub trait LiteralScanner: Send + Sync + std::fmt::Debug {
    /// Per-worker working memory for this scanner.
    fn new_scratch(&self) -> Option<Scratch>;
    fn scan(&self, scratch: &mut Scratch, data: &[u8], hit: &mut dyn FnMut(u32));
}

/// Builds a [`LiteralScanner`] over case-insensitive literal patterns (None: use
/// Aho-Corasick).
pub type ScannerFactory = dyn Fn(&[Vec<u8>]) -> Option<Box<dyn LiteralScanner>> + Send + Sync;

/// A scanner's working memory (whatever its type), owned by one worker.
pub struct Scratch(pub Box<dyn std::any::Any + Send>);

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scratch")
    }
}

#[derive(Debug, Default)]
struct Prefilter {
    ac: Option<AhoCorasick>,
    ext: Option<Box<dyn LiteralScanner>>,
    /// Pattern id → the rules it is the fast pattern of.
    pat_rules: Vec<Vec<u32>>,
}

/// Which prefilter a packet's payload is scanned with: rule groups, as Suricata's. Payload
/// rules are split by the direction they allow and their protocol class, and for TCP and UDP
/// by the server's port (a to-server packet's destination port, a to-client one's source
/// port) when they name a few ports: a packet is scanned for the patterns of the rules of its
/// port and of the rules of any port only. ET Open's SMB, FTP, Oracle... rules stay out of an
/// HTTP flow's scans, and its UDP and ICMP rules out of every TCP packet's.
///
/// A packet is scanned once: a port with rules of its own has a prefilter with the wide
/// rules and its own (a second scan per packet cost as much as the smaller database saved).
/// Those copies of the wide database take time to compile (some 100 ms each for ET Open's
/// thousand patterns), so only the ports with the most rules of their own get one
/// ([`OWN_GROUP_MIN`], [`OWN_GROUPS_MAX`]); the rules of the others go to the wide group.
#[derive(Debug, Default)]
struct PayloadGroups {
    /// [to server, to client][protocol class ([`class`])].
    by: [[PortGroups; 4]; 2],
}

#[derive(Debug, Default)]
struct PortGroups {
    /// The prefilter of the rules of any port (None: no payload rule here at all).
    wide: Option<u32>,
    /// The ports with a group of their own, sorted, with its prefilter.
    ports: Vec<(u16, u32)>,
}

impl PayloadGroups {
    /// The prefilter for a packet's payload, if any payload rule may apply to it.
    #[inline]
    fn prefilter(&self, h: &Hdr) -> Option<u32> {
        let g = &self.by[!h.to_server as usize][class(h.proto)];
        let port = if h.to_server { h.dport } else { h.sport };
        match g.ports.binary_search_by_key(&port, |e| e.0) {
            Ok(i) => Some(g.ports[i].1),
            Err(_) => g.wide,
        }
    }
}

/// A port's rules get a group of their own from this many rules ...
const OWN_GROUP_MIN: usize = 24;
/// ... for this many ports at most (the ones with the most rules) per direction and protocol.
const OWN_GROUPS_MAX: usize = 8;

/// The payload rules (pattern, rule) of one direction and protocol class while the set is
/// compiled: those of any port, and those of each port named.
#[derive(Debug, Default, Clone)]
struct GroupRules {
    wide: Patterns,
    ports: std::collections::BTreeMap<u16, Patterns>,
}

/// (pattern, rule) pairs a prefilter is compiled from.
type Patterns = Vec<(Vec<u8>, u32)>;

/// The protocol classes a rule's header allows ([`class`]).
fn classes(r: &Rule) -> Vec<usize> {
    match (r.proto.ip_protos(), r.ip_proto) {
        // `ip_proto:N` narrows an `ip` rule to N's class.
        (None, Some(Num::Eq(n))) if n < 256 => vec![class(n as u8)],
        (Some(p), _) => {
            let mut c: Vec<usize> = p.iter().map(|&x| class(x)).collect();
            c.dedup();
            c
        }
        (None, _) => (0..4).collect(),
    }
}

/// The server ports a payload rule is grouped under in direction `to_server` (the ones a
/// packet's server port must be among), or None: any port.
fn group_ports(r: &Rule, to_server: bool, class: usize) -> Option<Vec<u16>> {
    // Only TCP's and UDP's (classes 0 and 1) have ports.
    if class > 1 {
        return None;
    }
    let (server, client) = if to_server { (&r.dport, &r.sport) } else { (&r.sport, &r.dport) };
    let mut v = few_ports(server)?;
    if r.bidirectional {
        // Either end may be the server.
        v.extend(few_ports(client)?);
    }
    Some(v)
}

/// A flowbit operation with its name as a small id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bit {
    Set(u16),
    Unset(u16),
    Toggle(u16),
    IsSet(Vec<u16>),
    IsNotSet(Vec<u16>),
}

/// Why a parsed rule did not compile (counted with the load report's reasons).
pub fn compile_check(r: &Rule) -> Result<(), Reject> {
    let app_bufs = r.bufs.iter().any(|b| b.buf.app().is_some());
    if app_bufs && r.bufs.iter().any(|b| b.buf == Buf::PAYLOAD) {
        return Err(Reject {
            reason: "payload and app-layer buffers in one rule".into(),
            detail: format!("sid {}", r.sid),
        });
    }
    Ok(())
}

/// Protocol classes for [`HeaderIndex`]: TCP, UDP, ICMP, the rest.
fn class(proto: u8) -> usize {
    match proto {
        6 => 0,
        17 => 1,
        1 | 58 => 2,
        _ => 3,
    }
}

/// Packet rules without a content, indexed by what narrows them most: an address list (IP
/// reputation rules name hundreds of hosts), else a short port list, else their protocol.
#[derive(Debug, Default)]
struct HeaderIndex {
    /// Rules by the blocks of their (narrow) address lists.
    by_addr: super::addr::IntervalIndex,
    /// [protocol class][port] → rules (only ports some rule names).
    by_port: Vec<Vec<Vec<u32>>>,
    rest: [Vec<u32>; 4],
}

/// The ports of a short positive list (≤ 64 ports), else None.
fn few_ports(p: &PortMatch) -> Option<Vec<u16>> {
    if p.any_pos {
        return None;
    }
    let n: u32 = p.pos.iter().map(|&(a, b)| (b - a) as u32 + 1).sum();
    (n <= 64).then(|| p.pos.iter().flat_map(|&(a, b)| a..=b).collect())
}

impl HeaderIndex {
    fn add(&mut self, r: &Rule, i: u32) {
        let classes = classes(r);
        // Only lists of public addresses (host lists, IP reputation feeds such as Spamhaus
        // DROP) index a rule by address: a list reaching into private space ($HOME_NET's
        // RFC 1918 ranges) would make it a candidate for most packets.
        let private: [Cidr; 5] = [
            Cidr { addr: 0xffff_0a00_0000, len: 96 + 8 },
            Cidr { addr: 0xffff_ac10_0000, len: 96 + 12 },
            Cidr { addr: 0xffff_c0a8_0000, len: 96 + 16 },
            Cidr { addr: 0xfc00 << 112, len: 7 },
            Cidr { addr: 0xfe80 << 112, len: 10 },
        ];
        let overlaps = |a: &Cidr, b: &Cidr| {
            let (x, y) = (a.range(), b.range());
            x.0 <= y.1 && y.0 <= x.1
        };
        let narrow = |m: &IpMatch| {
            !m.any_pos
                && !m.pos.is_empty()
                && m.pos.iter().all(|c| c.len >= 8 + if c.addr >> 32 == 0xffff { 96 } else { 0 })
                && !m.pos.iter().any(|c| private.iter().any(|p| overlaps(c, p)))
        };
        for m in [&r.src, &r.dst] {
            if narrow(m) {
                for c in &m.pos {
                    self.by_addr.add(c.range(), i);
                }
                return;
            }
        }
        let ports = few_ports(&r.dport).or_else(|| few_ports(&r.sport));
        if let (Some(ports), false) = (&ports, classes.contains(&2) || classes.contains(&3)) {
            if self.by_port.is_empty() {
                self.by_port = vec![Vec::new(); 4];
            }
            for &c in &classes {
                if self.by_port[c].is_empty() {
                    self.by_port[c] = vec![Vec::new(); 65536];
                }
                for &p in ports {
                    self.by_port[c][p as usize].push(i);
                }
            }
            return;
        }
        for c in classes {
            self.rest[c].push(i);
        }
    }
}

/// The rule set, compiled once.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// The rules, then one pseudo-rule per IOC kind (their alerts' signature; never matched
    /// as rules).
    pub rules: Vec<Rule>,
    pub iocs: super::ioc::IocSet,
    /// Which scanner the prefilters use ("aho-corasick" or the supplied one's name).
    pub scanner: &'static str,
    /// Index of the first IOC pseudo-rule.
    ioc_rules: usize,
    /// The behavioural detectors' settings, and the index of their first pseudo-rule.
    pub behave: super::behave::BehaviourConfig,
    behave_rules: usize,
    /// $HOME_NET (inside vs outside, for the behaviours).
    pub home: IpMatch,
    pre: Vec<Prefilter>,
    payload: PayloadGroups,
    /// Packet rules without a content to prefilter on.
    pkt_index: HeaderIndex,
    /// Transaction rules without a content, per app protocol.
    tx_always: [Vec<u32>; 6],
    /// Whether each rule is inspected on transactions.
    on_tx: Vec<bool>,
    /// Transaction rules: inspected in the response direction (a to_client buffer or flow
    /// option), which decides which end is the header's source.
    to_client: Vec<bool>,
    bits: Vec<Vec<Bit>>,
    pub flowbit_names: Vec<String>,
    /// Each rule's app protocol (from its header or buffers).
    apps: Vec<Option<AppProto>>,
    /// Rules reading `tls.certs` (the only ones run on each certificate).
    cert_rules: Vec<bool>,
    /// The distinct address lists, and each rule's (source, destination) list.
    ip_sets: Vec<IpMatch>,
    ip_lists: Vec<(u32, u32)>,
    /// Buffers some rule wants dot-prefixed.
    dotted: Vec<bool>,
}

fn fast_content(r: &Rule) -> Option<(Buf, bool, &Content)> {
    let mut best: Option<(Buf, bool, &Content)> = None;
    for g in &r.bufs {
        for t in &g.tests {
            if let Test::Content(c) = t {
                if c.negated {
                    continue;
                }
                if c.fast_pattern {
                    return Some((g.buf, g.dotprefix, c));
                }
                if best.is_none_or(|b| c.pattern.len() > b.2.pattern.len()) {
                    best = Some((g.buf, g.dotprefix, c));
                }
            }
        }
    }
    best
}

impl RuleSet {
    /// Compiles `rules` (already checked by [`compile_check`]). Pass rules go first, then the
    /// rules that set flowbits (as Suricata orders them: a pass rule silences the others, and a
    /// packet that sets a bit and one that checks it are seen in that order); the rest keep
    /// their load order.
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        Self::new_with(rules, None)
    }

    /// [`RuleSet::new`] with the prefilters built by `scanner` where it can.
    pub fn new_with(mut rules: Vec<Rule>, scanner: Option<&ScannerFactory>) -> RuleSet {
        let sets = |r: &Rule| {
            r.flowbits.iter().any(|b| matches!(b, FlowbitOp::Set(_) | FlowbitOp::Unset(_) | FlowbitOp::Toggle(_)))
        };
        // Pass rules first (Suricata's action order), then flowbit setters.
        rules.sort_by_key(|r| (r.action != Action::Pass, !sets(r)));
        let mut pats: Vec<Patterns> = vec![Vec::new(); N_PRE];
        let mut groups: [[GroupRules; 4]; 2] = Default::default();
        let mut s = RuleSet {
            scanner: "aho-corasick",
            pre: (0..N_PRE).map(|_| Prefilter::default()).collect(),
            dotted: vec![false; N_BUF],
            ..RuleSet::default()
        };
        let mut names: HashMap<String, u16> = HashMap::new();
        let id = |n: &str, names: &mut HashMap<String, u16>, list: &mut Vec<String>| -> u16 {
            if let Some(&i) = names.get(n) {
                return i;
            }
            let i = list.len() as u16;
            list.push(n.to_string());
            names.insert(n.to_string(), i);
            i
        };
        let mut seen: HashMap<IpMatch, u32> = HashMap::new();
        let mut intern = |m: &IpMatch, sets: &mut Vec<IpMatch>| -> u32 {
            *seen.entry(m.clone()).or_insert_with(|| {
                sets.push(m.clone());
                (sets.len() - 1) as u32
            })
        };
        for r in &rules {
            let a = intern(&r.src, &mut s.ip_sets);
            let b = intern(&r.dst, &mut s.ip_sets);
            s.ip_lists.push((a, b));
            s.apps.push(r.app());
            s.cert_rules.push(r.bufs.iter().any(|g| g.buf.spec().multi));
        }
        for (i, r) in rules.iter().enumerate() {
            let i = i as u32;
            let tx = r.bufs.iter().any(|b| b.buf.app().is_some());
            s.on_tx.push(tx);
            s.to_client.push(r.flow.to_server == Some(false) || r.bufs.iter().any(|b| b.buf.to_client()));
            for g in &r.bufs {
                if g.dotprefix {
                    s.dotted[g.buf.index()] = true;
                }
            }
            match fast_content(r) {
                // Packet payload patterns go to the groups of each direction and protocol class
                // the rule allows, under its ports (a packet is scanned by its group's only).
                Some((Buf::PAYLOAD, _, c)) => {
                    let rule_classes = classes(r);
                    for (d, to_server) in [(0, true), (1, false)] {
                        if r.flow.to_server == Some(!to_server) {
                            continue;
                        }
                        for &k in &rule_classes {
                            let g = &mut groups[d][k];
                            match group_ports(r, to_server, k) {
                                Some(ports) => {
                                    for p in ports {
                                        g.ports.entry(p).or_default().push((c.pattern.clone(), i));
                                    }
                                }
                                None => g.wide.push((c.pattern.clone(), i)),
                            }
                        }
                    }
                }
                Some((b, dot, c)) => pats[b.index() * 2 + dot as usize].push((c.pattern.clone(), i)),
                None if tx => {
                    let a = r.app().unwrap_or(AppProto::Unknown);
                    s.tx_always[a as usize].push(i);
                }
                None => s.pkt_index.add(r, i),
            }
            let mut bits = Vec::new();
            for op in &r.flowbits {
                let mut one = |n: &String| id(n, &mut names, &mut s.flowbit_names);
                bits.push(match op {
                    FlowbitOp::Set(n) => Bit::Set(one(n)),
                    FlowbitOp::Unset(n) => Bit::Unset(one(n)),
                    FlowbitOp::Toggle(n) => Bit::Toggle(one(n)),
                    FlowbitOp::IsSet(v) => Bit::IsSet(v.iter().map(&mut one).collect()),
                    FlowbitOp::IsNotSet(v) => Bit::IsNotSet(v.iter().map(&mut one).collect()),
                });
            }
            s.bits.push(bits);
        }
        for (k, list) in pats.into_iter().enumerate() {
            s.pre[k] = s.compile_prefilter(list, scanner);
        }
        for (d, by_class) in groups.into_iter().enumerate() {
            for (k, g) in by_class.into_iter().enumerate() {
                s.payload.by[d][k] = s.compile_group(g, scanner);
            }
        }
        s.pkt_index.by_addr.build();
        s.ioc_rules = rules.len();
        s.rules = rules;
        s
    }

    /// The rules, the indicators (built already) and the behavioural detectors.
    pub fn with_iocs(rules: Vec<Rule>, iocs: super::ioc::IocSet) -> RuleSet {
        Self::full(
            rules,
            iocs,
            super::behave::BehaviourConfig { enabled: false, ..Default::default() },
            &Vars::default(),
            None,
        )
    }

    /// The rules, the indicators (built already), and the behavioural detectors with their
    /// settings ($HOME_NET from `vars`).
    pub fn full(
        rules: Vec<Rule>,
        iocs: super::ioc::IocSet,
        behave: super::behave::BehaviourConfig,
        vars: &Vars,
        scanner: Option<&ScannerFactory>,
    ) -> RuleSet {
        use super::ioc::IocKind;
        let mut s = RuleSet::new_with(rules, scanner);
        s.home = super::addr::parse_addresses("$HOME_NET", vars).unwrap_or_default();
        s.behave = behave;
        s.behave_rules = s.ioc_rules + 5;
        let classes = super::parse_classifications(super::DEFAULT_CLASSIFICATION).0;
        if !iocs.is_empty() {
            for k in [IocKind::Ip, IocKind::Domain, IocKind::Ja3, IocKind::Ja3s, IocKind::Ja4] {
                let text = format!(
                    "alert ip any any -> any any (msg:\"spinewatch IOC {} match\"; sid:{}; rev:1; priority:1; metadata:ioc_type {};)",
                    k.name(),
                    k.sid(),
                    k.name()
                );
                if let Ok(mut r) = super::parse_rule(&text, &Vars::default(), &Default::default()) {
                    r.category = "Known indicator of compromise (threat intelligence)".into();
                    s.rules.push(r);
                }
            }
        }
        // IOC pseudo-rules are always there (5 of them), so the behaviours' come after.
        while s.rules.len() < s.behave_rules {
            let filler = format!("alert ip any any -> any any (msg:\"unused\"; sid:{};)", 9_100_100 + s.rules.len());
            if let Ok(r) = super::parse_rule(&filler, &Vars::default(), &Default::default()) {
                s.rules.push(r);
            }
        }
        for b in super::behave::Behaviour::ALL {
            let (tid, tname) = b.mitre();
            let text = format!(
                "alert ip any any -> any any (msg:\"{}\"; classtype:{}; sid:{}; rev:1; metadata:mitre_technique_id {}, mitre_technique_name {};)",
                b.msg(),
                b.classtype(),
                b.sid(),
                tid,
                tname.replace(',', "")
            );
            match super::parse_rule(&text, &Vars::default(), &classes) {
                Ok(r) => s.rules.push(r),
                Err(e) => debug_assert!(false, "behaviour rule {text}: {e}"),
            }
        }
        s.iocs = iocs;
        s
    }

    /// Whether no rule was loaded (indicators and behaviours aside).
    pub fn is_empty_of_rules(&self) -> bool {
        self.ioc_rules == 0
    }

    /// The pseudo-rule a behaviour alerts with.
    pub fn behaviour_rule(&self, b: super::behave::Behaviour) -> u32 {
        (self.behave_rules + b as usize) as u32
    }

    /// One prefilter over `list` (pattern, rule); a default (empty) one without patterns.
    fn compile_prefilter(&mut self, list: Patterns, scanner: Option<&ScannerFactory>) -> Prefilter {
        if list.is_empty() {
            return Prefilter::default();
        }
        // One automaton entry per distinct pattern (case folded: candidates are verified).
        let mut uniq: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut pat_rules: Vec<Vec<u32>> = Vec::new();
        for (p, r) in list {
            let lp = p.to_ascii_lowercase();
            let j = *uniq.entry(lp.clone()).or_insert_with(|| {
                patterns.push(lp);
                pat_rules.push(Vec::new());
                patterns.len() - 1
            });
            pat_rules[j].push(r);
        }
        if let Some(ext) = scanner.and_then(|f| f(&patterns)) {
            self.scanner = "hyperscan";
            return Prefilter { ac: None, ext: Some(ext), pat_rules };
        }
        // A DFA when it fits (the fastest scan), else the library's choice.
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&patterns)
            .or_else(|_| {
                AhoCorasickBuilder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).build(&patterns)
            })
            .ok();
        Prefilter { ac, ext: None, pat_rules }
    }

    /// The prefilters of one direction and protocol class: one for the rules of any port (and
    /// of the ports without a group of their own), one per port group. Appended to `pre`.
    fn compile_group(&mut self, g: GroupRules, scanner: Option<&ScannerFactory>) -> PortGroups {
        let mut out = PortGroups::default();
        // Ports naming the same rules are one group (139 and 445, ...).
        let mut sets: Vec<(Vec<u32>, Patterns, Vec<u16>)> = Vec::new();
        for (port, list) in g.ports {
            let mut rules: Vec<u32> = list.iter().map(|e| e.1).collect();
            rules.sort_unstable();
            rules.dedup();
            match sets.iter_mut().find(|s| s.0 == rules) {
                Some(s) => s.2.push(port),
                None => sets.push((rules, list, vec![port])),
            }
        }
        // The most rules first (ties: the lowest port); beyond the few that get a group,
        // they join the wide rules.
        sets.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.2[0].cmp(&b.2[0])));
        let own = sets.iter().take(OWN_GROUPS_MAX).take_while(|s| s.0.len() >= OWN_GROUP_MIN).count();
        let mut wide = g.wide;
        for (_, list, _) in sets.drain(own..) {
            wide.extend(list);
        }
        if wide.is_empty() && sets.is_empty() {
            return out;
        }
        for (_, list, ports) in sets {
            let mut all = wide.clone();
            all.extend(list);
            let p = self.compile_prefilter(all, scanner);
            self.pre.push(p);
            out.ports.extend(ports.into_iter().map(|p| (p, (self.pre.len() - 1) as u32)));
        }
        out.ports.sort_unstable();
        if !wide.is_empty() {
            let p = self.compile_prefilter(wide, scanner);
            out.wide = Some(self.pre.len() as u32);
            self.pre.push(p);
        }
        out
    }

    /// The rules loaded (the IOC pseudo-rules left out).
    pub fn len(&self) -> usize {
        self.ioc_rules
    }

    pub fn is_empty(&self) -> bool {
        self.ioc_rules == 0 && self.iocs.is_empty() && !self.behave.enabled
    }

    /// The pseudo-rule IOC matches of `kind` alert with.
    pub fn ioc_rule(&self, kind: super::ioc::IocKind) -> u32 {
        (self.ioc_rules + kind as usize) as u32
    }
}

/// The header fields of what is inspected (a packet, or a transaction seen from one side).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hdr {
    /// Canonical addresses ([`super::addr::addr_u128`]) of the packet's source and destination.
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// From the flow's initiator.
    pub to_server: bool,
    pub established: bool,
    pub app: AppProto,
    pub tcp_flags: u8,
    pub ttl: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub is_icmp: bool,
}

impl Hdr {
    /// The same, seen from the other end.
    pub fn reversed(&self) -> Hdr {
        Hdr { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport, to_server: !self.to_server, ..*self }
    }
}

/// One match to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index into [`RuleSet::rules`].
    pub rule: u32,
    /// The direction the rule matched in (from the flow's initiator): the alert's source is
    /// the client when true.
    pub to_server: bool,
    /// For an IOC match: the indicator (index into the set's `iocs.entries`).
    pub ioc: Option<u32>,
    /// A rule with a threshold or detection filter: what it is tracked by. Whether it alerts
    /// is decided across workers ([`super::threshold::Merger`]), not here.
    pub tracked: Option<super::threshold::TrackKey>,
}

/// Where a buffer (dot-prefixed or not) is in the matcher's arena, if the inspection has it.
type BufLookup = dyn Fn(&Matcher, Buf, bool, usize) -> Option<(usize, usize)>;

/// Per-worker matcher counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchCounters {
    /// Rules verified after the prefilter.
    pub candidates: u64,
    /// Rules that matched (before thresholds and noalert).
    pub matches: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Matches of thresholded rules handed over as candidates (the exporter decides them).
    pub tracked: u64,
    /// Matches dropped by a threshold.config `suppress`.
    pub suppressed: u64,
    /// Verifications cut at the step limit.
    pub step_limit: u64,
    /// Of the alerts, indicator (IOC) matches.
    pub ioc_matches: u64,
    /// Of the alerts, behavioural detections.
    pub behaviour: u64,
}

impl MatchCounters {
    pub fn add(&mut self, o: &MatchCounters) {
        self.candidates += o.candidates;
        self.matches += o.matches;
        self.alerts += o.alerts;
        self.tracked += o.tracked;
        self.suppressed += o.suppressed;
        self.step_limit += o.step_limit;
        self.ioc_matches += o.ioc_matches;
        self.behaviour += o.behaviour;
    }
}

/// A worker's matcher.
#[derive(Debug, Default)]
pub struct Matcher {
    /// Generation per rule: a rule is a candidate once per inspection.
    marks: Vec<u32>,
    gen: u32,
    cands: Vec<u32>,
    /// The buffers of the transaction being inspected, in one arena.
    arena: Vec<u8>,
    spans: Vec<Option<(u32, u32)>>,
    /// Flowbits per flow (by flow table slot).
    flowbits: HashMap<u32, Vec<u16>>,
    /// Address-list results of the current inspection: per distinct list, for its two
    /// addresses (the first `memo_x`), 0 unknown / 1 no / 2 yes.
    ip_memo: Vec<u8>,
    ip_memo_gen: Vec<u32>,
    memo_gen_now: u32,
    memo_x: u128,
    /// This worker's behaviour evidence for the current window.
    sketch: Option<Box<super::sketch::WindowSketch>>,
    /// Working memory of supplied scanners, per prefilter; pattern ids of one scan.
    scratches: Vec<Option<Scratch>>,
    ids: Vec<u32>,
    /// Inspecting one certificate of a chain: only `tls.certs` rules.
    certs_view: bool,
    pub counters: MatchCounters,
}

/// The number a byte_test or byte_jump reads: `nbytes` at `offset` (from the previous match when
/// `relative`), masked and shifted down by `bitmask` as Suricata does. Returns it with the
/// position it was read at; `None` when that lies outside the buffer.
fn read_field(
    buf: &[u8],
    prev: usize,
    relative: bool,
    offset: i32,
    nbytes: u8,
    format: NumFormat,
    bitmask: Option<u64>,
) -> Option<(u64, i64)> {
    let at = if relative { prev as i64 } else { 0 } + offset as i64;
    if at < 0 {
        return None;
    }
    let mut v = read_num(buf, at as usize, nbytes as usize, format)?;
    if let Some(m) = bitmask {
        v &= m;
        if m != 0 {
            v >>= m.trailing_zeros();
        }
    }
    Some((v, at))
}

/// Reads `n` bytes at `at` as a number.
fn read_num(buf: &[u8], at: usize, n: usize, f: NumFormat) -> Option<u64> {
    if n == 0 {
        // A string of whatever digits are there.
        let NumFormat::String(base) = f else { return None };
        let rest = buf.get(at..)?;
        let k = rest.iter().take(20).take_while(|c| (**c as char).is_digit(base)).count();
        return u64::from_str_radix(std::str::from_utf8(&rest[..k]).ok()?, base).ok();
    }
    let b = buf.get(at..at.checked_add(n)?)?;
    match f {
        NumFormat::Binary(e) => {
            let mut v = 0u64;
            match e {
                Endian::Big => b.iter().for_each(|&x| v = v << 8 | x as u64),
                Endian::Little => b.iter().rev().for_each(|&x| v = v << 8 | x as u64),
            }
            Some(v)
        }
        NumFormat::String(base) => {
            let s = std::str::from_utf8(b).ok()?;
            u64::from_str_radix(s.trim(), base).ok()
        }
    }
}

fn find(hay: &[u8], needle: &[u8], nocase: bool, from: usize) -> Option<usize> {
    if needle.len() > hay.len() || from > hay.len() - needle.len() {
        return None;
    }
    if nocase {
        hay[from..].windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| p + from)
    } else {
        memchr::memmem::find(&hay[from..], needle).map(|p| p + from)
    }
}

/// Verifies `tests` on `buf` from test `i`, the previous match ending at `prev`.
fn verify(tests: &[Test], i: usize, buf: &[u8], prev: usize, steps: &mut u32) -> bool {
    *steps += 1;
    if *steps > MAX_STEPS {
        return false;
    }
    let Some(t) = tests.get(i) else { return true };
    match t {
        Test::Content(c) => {
            let n = c.pattern.len();
            // The window [lo, hi) the match must lie in.
            let (mut lo, mut hi) = (0usize, buf.len());
            if c.is_relative() {
                let d = c.distance.unwrap_or(0) as i64;
                lo = (prev as i64 + d).max(0) as usize;
                if let Some(w) = c.within {
                    hi = hi.min(lo + w as usize);
                }
            } else {
                if let Some(o) = c.offset {
                    lo = o as usize;
                }
                if let Some(d) = c.depth {
                    hi = hi.min(lo + d as usize);
                }
            }
            if c.startswith {
                hi = hi.min(lo + n);
            }
            if lo > hi || hi - lo < n {
                return c.negated && verify(tests, i + 1, buf, prev, steps);
            }
            let win = &buf[..hi];
            if c.negated {
                let found = if c.endswith {
                    buf.len() == hi && win.len() >= lo + n && {
                        let tail = &win[win.len() - n..];
                        if c.nocase {
                            tail.eq_ignore_ascii_case(&c.pattern)
                        } else {
                            tail == c.pattern
                        }
                    }
                } else {
                    find(win, &c.pattern, c.nocase, lo).is_some()
                };
                return !found && verify(tests, i + 1, buf, prev, steps);
            }
            if c.endswith {
                if hi != buf.len() {
                    return false;
                }
                let at = hi - n;
                let tail = &buf[at..hi];
                let ok = if c.nocase { tail.eq_ignore_ascii_case(&c.pattern) } else { tail == c.pattern };
                return ok && verify(tests, i + 1, buf, hi, steps);
            }
            let mut from = lo;
            while let Some(at) = find(win, &c.pattern, c.nocase, from) {
                if verify(tests, i + 1, buf, at + n, steps) {
                    return true;
                }
                if *steps > MAX_STEPS {
                    return false;
                }
                from = at + 1;
            }
            false
        }
        Test::Pcre(p) => {
            // A relative pcre sees the buffer from the previous match on ('^' anchors there),
            // as Suricata hands PCRE that slice.
            let start = if p.relative { prev.min(buf.len()) } else { 0 };
            match p.re.find(&buf[start..]) {
                Some(m) if !p.negated => verify(tests, i + 1, buf, start + m.end(), steps),
                Some(_) => false,
                None => p.negated && verify(tests, i + 1, buf, prev, steps),
            }
        }
        Test::IsDataAt { n, negated, relative } => {
            // As Suricata: relative, the N bytes after the previous match are there; absolute,
            // there is a byte at offset N.
            let has = if *relative { prev + *n as usize <= buf.len() } else { (*n as usize) < buf.len() };
            has != *negated && verify(tests, i + 1, buf, prev, steps)
        }
        Test::ByteTest(b) => {
            let Some((v, _)) = read_field(buf, prev, b.relative, b.offset, b.nbytes, b.format, b.bitmask) else {
                return false;
            };
            let ok = match b.op {
                ByteOp::Lt => v < b.value,
                ByteOp::Gt => v > b.value,
                ByteOp::Le => v <= b.value,
                ByteOp::Ge => v >= b.value,
                ByteOp::Eq => v == b.value,
                ByteOp::And => v & b.value != 0,
                ByteOp::Or => v | b.value != 0 && v ^ b.value != 0,
            };
            ok != b.negated && verify(tests, i + 1, buf, prev, steps)
        }
        Test::ByteJump(j) => {
            let Some((v, at)) = read_field(buf, prev, j.relative, j.offset, j.nbytes, j.format, j.bitmask) else {
                return false;
            };
            let mut v = v.saturating_mul(j.multiplier as u64) as i64;
            if j.align && v % 4 != 0 {
                v += 4 - v % 4;
            }
            let from = if j.from_beginning {
                0
            } else if j.from_end {
                buf.len() as i64
            } else {
                at + j.nbytes as i64
            };
            let to = from + v + j.post_offset as i64;
            if to < 0 || to as usize > buf.len() {
                return false;
            }
            verify(tests, i + 1, buf, to as usize, steps)
        }
        Test::Bsize(n) => n.test(buf.len() as u64) && verify(tests, i + 1, buf, prev, steps),
    }
}

/// Whether the header (addresses, ports, protocol, flow options, packet options) allows the
/// rule, for an inspection in direction `h.to_server`.
/// `ip(list, addr)`: whether the rule's source (list 0) or destination (list 1) address list
/// holds `addr` (memoised by the caller: rules share $HOME_NET and friends).
fn header_ok(
    r: &Rule,
    app: Option<AppProto>,
    h: &Hdr,
    payload_len: Option<usize>,
    ip: &mut dyn FnMut(usize, u128) -> bool,
) -> bool {
    if let Some(p) = r.proto.ip_protos() {
        if !p.contains(&h.proto) {
            return false;
        }
    }
    if let Some(a) = app {
        if a != h.app {
            return false;
        }
    }
    let fwd = r.sport.matches(h.sport) && r.dport.matches(h.dport) && ip(0, h.src) && ip(1, h.dst);
    let back = r.bidirectional && r.sport.matches(h.dport) && r.dport.matches(h.sport) && ip(0, h.dst) && ip(1, h.src);
    if !fwd && !back {
        return false;
    }
    let f = &r.flow;
    if (f.established && !h.established) || (f.not_established && h.established) {
        return false;
    }
    if f.to_server.is_some_and(|t| t != h.to_server) {
        return false;
    }
    if r.flags.is_some_and(|t| h.proto != 6 || !t.test(h.tcp_flags)) {
        return false;
    }
    if r.ttl.is_some_and(|t| !t.test(h.ttl as u64)) || r.ip_proto.is_some_and(|t| !t.test(h.proto as u64)) {
        return false;
    }
    if (r.itype.is_some() || r.icode.is_some() || r.icmp_id.is_some())
        && (!h.is_icmp
            || r.itype.is_some_and(|t| !t.test(h.icmp_type as u64))
            || r.icode.is_some_and(|t| !t.test(h.icmp_code as u64))
            || r.icmp_id.is_some_and(|t| t != h.icmp_id))
    {
        return false;
    }
    if let (Some(d), Some(n)) = (r.dsize, payload_len) {
        if !d.test(n as u64) {
            return false;
        }
    }
    true
}

impl Matcher {
    fn begin(&mut self, set: &RuleSet) {
        if self.marks.len() != set.rules.len() {
            self.marks = vec![0; set.rules.len()];
            self.gen = 0;
        }
        self.gen = self.gen.wrapping_add(1);
        if self.gen == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.gen = 1;
        }
        self.cands.clear();
    }

    fn add(&mut self, r: u32) {
        let m = &mut self.marks[r as usize];
        if *m != self.gen {
            *m = self.gen;
            self.cands.push(r);
        }
    }

    fn prefilter(&mut self, set: &RuleSet, k: usize, data: &[u8]) {
        if let Some(ext) = &set.pre[k].ext {
            if self.scratches.len() != set.pre.len() {
                self.scratches = (0..set.pre.len()).map(|_| None).collect();
            }
            if self.scratches[k].is_none() {
                self.scratches[k] = ext.new_scratch();
            }
            let Some(sc) = self.scratches[k].as_mut() else { return };
            let mut ids = std::mem::take(&mut self.ids);
            ids.clear();
            ext.scan(sc, data, &mut |id| ids.push(id));
            for &id in &ids {
                for &r in &set.pre[k].pat_rules[id as usize] {
                    self.add(r);
                }
            }
            self.ids = ids;
            return;
        }
        let Some(ac) = &set.pre[k].ac else { return };
        for m in ac.find_overlapping_iter(data) {
            for &r in &set.pre[k].pat_rules[m.pattern().as_usize()] {
                self.add(r);
            }
        }
    }

    /// The current window's behaviour evidence (created with `cfg` on first use).
    pub fn sketch(&mut self, cfg: &super::sketch::SketchConfig) -> &mut super::sketch::WindowSketch {
        self.sketch.get_or_insert_with(|| Box::new(super::sketch::WindowSketch { cfg: *cfg, ..Default::default() }))
    }

    /// The evidence not handed over yet (at the end of the input).
    pub fn take_sketch(&mut self) -> Option<super::sketch::WindowSketch> {
        self.sketch.take().map(|b| *b).filter(|s| !s.is_empty())
    }

    /// A new rule set: flowbits and threshold trackers start over.
    pub fn reset_state(&mut self) {
        self.scratches.clear();
        self.flowbits.clear();
        self.marks.clear();
    }

    /// The flow (table slot `slot`) ended: its flowbits go.
    pub fn flow_ended(&mut self, slot: u32) {
        if !self.flowbits.is_empty() {
            self.flowbits.remove(&slot);
        }
    }

    /// Whether the flow has any alert-worthy state (for tests).
    pub fn flowbit_set(&self, slot: u32, bit: u16) -> bool {
        self.flowbits.get(&slot).is_some_and(|v| v.contains(&bit))
    }

    /// Flowbit conditions, then (on success) their effects.
    fn flowbits_ok(&mut self, set: &RuleSet, r: u32, slot: u32) -> bool {
        let bits = &set.bits[r as usize];
        if bits.is_empty() {
            return true;
        }
        let have = self.flowbits.get(&slot);
        let is = |b: u16| have.is_some_and(|v| v.contains(&b));
        for b in bits {
            match b {
                Bit::IsSet(v) if !v.iter().any(|&x| is(x)) => return false,
                Bit::IsNotSet(v) if v.iter().any(|&x| is(x)) => return false,
                _ => {}
            }
        }
        for b in bits {
            match *b {
                Bit::Set(x) => {
                    let v = self.flowbits.entry(slot).or_default();
                    if !v.contains(&x) {
                        v.push(x);
                    }
                }
                Bit::Unset(x) => {
                    if let Some(v) = self.flowbits.get_mut(&slot) {
                        v.retain(|&y| y != x);
                    }
                }
                Bit::Toggle(x) => {
                    let v = self.flowbits.entry(slot).or_default();
                    match v.iter().position(|&y| y == x) {
                        Some(p) => {
                            v.swap_remove(p);
                        }
                        None => v.push(x),
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Runs the candidates: header, tests, flowbits (thresholds: handed over). `bufs` gives a buffer's
    /// bytes (dot-prefixed when asked).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        set: &RuleSet,
        h: &Hdr,
        slot: u32,
        payload_len: Option<usize>,
        bufs: &BufLookup,
        out: &mut dyn FnMut(Hit),
    ) {
        self.cands.sort_unstable();
        let cands = std::mem::take(&mut self.cands);
        // A fresh memo of address-list results for this inspection's two addresses.
        if self.ip_memo_gen.len() != set.ip_sets.len() {
            self.ip_memo_gen = vec![0; set.ip_sets.len()];
            self.ip_memo = vec![0; 2 * set.ip_sets.len()];
        }
        self.memo_gen_now = self.memo_gen_now.wrapping_add(1).max(1);
        self.memo_x = h.src;
        for &ri in &cands {
            let r = &set.rules[ri as usize];
            let hh = if set.on_tx[ri as usize] && set.to_client[ri as usize] { h.reversed() } else { *h };
            self.counters.candidates += 1;
            let (ls, ld) = set.ip_lists[ri as usize];
            let (x, gen) = (self.memo_x, self.memo_gen_now);
            let (memo, memo_gen) = (&mut self.ip_memo, &mut self.ip_memo_gen);
            let mut ip = |which: usize, a: u128| -> bool {
                let k = if which == 0 { ls } else { ld } as usize;
                if memo_gen[k] != gen {
                    memo_gen[k] = gen;
                    memo[2 * k] = 0;
                    memo[2 * k + 1] = 0;
                }
                let slot = 2 * k + (a != x) as usize;
                match memo[slot] {
                    1 => false,
                    2 => true,
                    _ => {
                        let m = set.ip_sets[k].matches(a);
                        memo[slot] = 1 + m as u8;
                        m
                    }
                }
            };
            if !header_ok(r, set.apps[ri as usize], &hh, payload_len, &mut ip) {
                continue;
            }
            // The side of a transaction a rule reads: the response's when it is a to-client rule.
            let side = (set.on_tx[ri as usize] && set.to_client[ri as usize]) as usize;
            if let Some(u) = r.urilen {
                match bufs(self, crate::app::http::rules::URI, false, 0) {
                    Some((o, l)) if u.test(self.arena[o..o + l].len() as u64) => {}
                    _ => continue,
                }
            }
            let mut ok = true;
            for g in &r.bufs {
                let Some((o, l)) = bufs(self, g.buf, g.dotprefix, side) else {
                    ok = false;
                    break;
                };
                let mut steps = 0;
                let matched = verify(&g.tests, 0, &self.arena[o..o + l], 0, &mut steps);
                if steps > MAX_STEPS {
                    self.counters.step_limit += 1;
                }
                if !matched {
                    ok = false;
                    break;
                }
            }
            if !ok || !self.flowbits_ok(set, ri, slot) {
                continue;
            }
            self.counters.matches += 1;
            if r.action == Action::Pass {
                // A pass rule ends the inspection: no rule after it alerts on this packet or
                // transaction.
                break;
            }
            if r.noalert {
                continue;
            }
            if r.suppress.iter().any(|x| x.drops(hh.src, hh.dst)) {
                // A threshold.config `suppress`: no alert, no count towards a threshold.
                self.counters.suppressed += 1;
                continue;
            }
            let tracked = super::threshold::TrackKey::of(r, ri, hh.src, hh.dst);
            if tracked.is_some() {
                self.counters.tracked += 1;
            } else {
                self.counters.alerts += 1;
            }
            out(Hit { rule: ri, to_server: hh.to_server, ioc: None, tracked });
        }
        self.cands = cands;
    }

    /// A flow's first packet: its two addresses against the IP indicators.
    pub fn on_flow_start(&mut self, set: &RuleSet, h: &Hdr, out: &mut dyn FnMut(Hit)) {
        if !set.iocs.has_ips() {
            return;
        }
        let rule = set.ioc_rule(super::ioc::IocKind::Ip);
        for a in [h.src, h.dst] {
            for &id in set.iocs.ip(a) {
                self.counters.alerts += 1;
                self.counters.ioc_matches += 1;
                out(Hit { rule, to_server: h.to_server, ioc: Some(id), tracked: None });
            }
        }
    }

    /// An app-layer event against the domain and fingerprint indicators (DNS queries, HTTP
    /// Host, TLS SNI, JA3, JA3S, JA4).
    fn event_iocs(&mut self, set: &RuleSet, ev: &AppEvent<'_>, out: &mut dyn FnMut(Hit)) {
        use super::ioc::IocKind as K;
        let i = &set.iocs;
        let mut hit = |m: &mut Matcher, kind: K, id: Option<u32>| {
            if let Some(id) = id {
                m.counters.alerts += 1;
                m.counters.ioc_matches += 1;
                out(Hit { rule: set.ioc_rule(kind), to_server: kind != K::Ja3s, ioc: Some(id), tracked: None });
            }
        };
        let want = crate::app::Wanted { domains: i.has_domains(), hashes: i.has_hashes() };
        ev.indicators(want, &mut |kind, v| {
            let id = if kind == K::Domain { i.domain(v) } else { i.hash(kind, v) };
            hit(self, kind, id)
        });
    }

    /// Inspects one packet of flow `slot` (its payload may be empty). `no_addr_rules` says the
    /// flow's addresses index no rule (known from an earlier packet of the flow under this rule
    /// set: the lookups are skipped); it is set when the lookups find none.
    #[allow(clippy::too_many_arguments)]
    pub fn on_packet(
        &mut self,
        set: &RuleSet,
        h: &Hdr,
        payload: &[u8],
        slot: u32,
        no_addr_rules: &mut bool,
        out: &mut dyn FnMut(Hit),
    ) {
        if set.behave.enabled && h.proto == 6 && !payload.is_empty() {
            use super::behave::{ftp_payload, telnet_prompt, Behaviour as B};
            let fired = if h.to_server && h.dport == 21 && ftp_payload(payload) {
                Some((B::CleartextFtp, true))
            } else if !h.to_server && h.sport == 23 && telnet_prompt(payload) {
                Some((B::CleartextTelnet, false))
            } else {
                None
            };
            if let Some((b, to_server)) = fired {
                self.counters.alerts += 1;
                self.counters.behaviour += 1;
                out(Hit { rule: set.behaviour_rule(b), to_server, ioc: None, tracked: None });
            }
        }
        if set.ioc_rules == 0 {
            return;
        }
        self.begin(set);
        if let (false, Some(k)) = (payload.is_empty(), set.payload.prefilter(h)) {
            self.prefilter(set, k as usize, payload);
        }
        let ix = &set.pkt_index;
        if !ix.by_addr.is_empty() && !*no_addr_rules {
            let mut any = false;
            for a in [h.src, h.dst] {
                for &r in ix.by_addr.get(a) {
                    any = true;
                    self.add(r);
                }
            }
            *no_addr_rules = !any;
        }
        let c = class(h.proto);
        if let Some(ports) = ix.by_port.get(c).filter(|p| !p.is_empty()) {
            for p in [h.sport, h.dport] {
                for &r in &ports[p as usize] {
                    self.add(r);
                }
            }
        }
        for &r in &ix.rest[c] {
            self.add(r);
        }
        if self.cands.is_empty() {
            return;
        }
        // The payload goes in the arena so that every buffer is read the same way.
        self.arena.clear();
        self.arena.extend_from_slice(payload);
        let n = payload.len();
        let bufs = move |_: &Matcher, b: Buf, _dot: bool, _side: usize| (b == Buf::PAYLOAD).then_some((0, n));
        self.run(set, h, slot, Some(payload.len()), &bufs, out);
    }

    /// Puts a buffer of one side (0 request, 1 response) in the view, and its dot-prefixed
    /// form when a rule asks for it.
    fn put_side(&mut self, set: &RuleSet, b: Buf, side: usize, v: &[u8]) {
        let off = self.arena.len();
        self.arena.extend_from_slice(v);
        self.spans[(b.index() * 2) * 2 + side] = Some((off as u32, v.len() as u32));
        if set.dotted[b.index()] && b.spec().dotted {
            let off = self.arena.len();
            self.arena.push(b'.');
            self.arena.extend_from_slice(v);
            self.spans[(b.index() * 2 + 1) * 2 + side] = Some((off as u32, v.len() as u32 + 1));
        }
    }

    /// Puts a buffer that is the same whichever side a rule reads.
    fn put(&mut self, set: &RuleSet, b: Buf, v: &[u8]) {
        self.put_side(set, b, 0, v);
        for dot in 0..2 {
            let k = (b.index() * 2 + dot) * 2;
            self.spans[k + 1] = self.spans[k];
        }
    }

    /// Inspects one app-layer event of flow `slot`; `h` is oriented from the client.
    pub fn on_event(&mut self, set: &RuleSet, h: &Hdr, ev: &AppEvent<'_>, slot: u32, out: &mut dyn FnMut(Hit)) {
        if set.is_empty() {
            return;
        }
        if !set.iocs.is_empty() {
            self.event_iocs(set, ev, out);
        }
        if let (true, AppEvent::Http(t)) = (set.behave.enabled, ev) {
            let mut scratch = std::mem::take(&mut self.arena);
            let mut fired: [Option<super::behave::Behaviour>; super::behave::Behaviour::ALL.len()] =
                [None; super::behave::Behaviour::ALL.len()];
            let mut n = 0;
            super::behave::http_tx(t, &mut scratch, &mut |b| {
                if n < fired.len() {
                    fired[n] = Some(b);
                    n += 1;
                }
            });
            self.arena = scratch;
            for b in fired.into_iter().flatten() {
                self.counters.alerts += 1;
                self.counters.behaviour += 1;
                out(Hit { rule: set.behaviour_rule(b), to_server: true, ioc: None, tracked: None });
            }
        }
        if set.ioc_rules == 0 {
            return;
        }
        ev.inspect(&mut View { m: self, set, h, slot, out, app: ev.proto() });
    }

    fn view_begin(&mut self) {
        self.arena.clear();
        self.spans.clear();
        self.spans.resize(N_PRE * 2, None);
    }

    fn inspect_view(&mut self, set: &RuleSet, h: &Hdr, app: AppProto, slot: u32, out: &mut dyn FnMut(Hit)) {
        self.begin(set);
        for k in 0..N_PRE {
            if set.pre[k].ac.is_none() && set.pre[k].ext.is_none() {
                continue;
            }
            for side in 0..2 {
                let Some((o, l)) = self.spans[k * 2 + side] else { continue };
                if side == 1 && self.spans[k * 2] == Some((o, l)) {
                    continue;
                }
                let data = std::mem::take(&mut self.arena);
                self.prefilter(set, k, &data[o as usize..(o + l) as usize]);
                self.arena = data;
            }
        }
        for &r in &set.tx_always[app as usize] {
            self.add(r);
        }
        if self.cands.is_empty() {
            return;
        }
        let bufs = |m: &Matcher, b: Buf, dot: bool, side: usize| {
            m.spans
                .get((b.index() * 2 + dot as usize) * 2 + side)
                .copied()
                .flatten()
                .map(|(o, l)| (o as usize, l as usize))
        };
        // Transaction rules only (packet rules are not candidates here: their fast patterns
        // are in the payload prefilter).
        let certs_view = self.certs_view;
        self.cands.retain(|&r| set.on_tx[r as usize] && (!certs_view || set.cert_rules[r as usize]));
        let h = Hdr { app, ..*h };
        self.run(set, &h, slot, None, &bufs, out);
    }
}

/// The matcher as a protocol sees it while it inspects one event ([`Inspect`]).
struct View<'a> {
    m: &'a mut Matcher,
    set: &'a RuleSet,
    h: &'a Hdr,
    slot: u32,
    out: &'a mut dyn FnMut(Hit),
    app: AppProto,
}

impl Inspect for View<'_> {
    fn begin(&mut self) {
        self.m.view_begin();
    }

    fn put(&mut self, b: Buf, v: &[u8]) {
        self.m.put(self.set, b, v);
    }

    fn put_side(&mut self, b: Buf, side: usize, v: &[u8]) {
        self.m.put_side(self.set, b, side, v);
    }

    fn wants(&self, b: Buf) -> bool {
        let k = b.index() * 2;
        self.set.pre[k].ac.is_some()
            || self.set.pre[k].ext.is_some()
            || !self.set.tx_always[self.app as usize].is_empty()
    }

    fn run(&mut self, reversed: bool) {
        let h = if reversed { self.h.reversed() } else { *self.h };
        self.m.inspect_view(self.set, &h, self.app, self.slot, self.out);
    }

    fn run_each<'i>(&mut self, b: Buf, items: impl Iterator<Item = &'i [u8]>) {
        if !self.wants(b) {
            return;
        }
        self.m.certs_view = true;
        for v in items {
            self.m.view_begin();
            self.m.put(self.set, b, v);
            self.m.inspect_view(self.set, self.h, self.app, self.slot, self.out);
        }
        self.m.certs_view = false;
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::rules::test_set as set;

    fn hdr() -> Hdr {
        Hdr {
            src: crate::rules::addr::addr_u128("10.0.0.1".parse().unwrap()),
            dst: crate::rules::addr::addr_u128("8.8.8.8".parse().unwrap()),
            sport: 40000,
            dport: 80,
            proto: 6,
            to_server: true,
            established: true,
            tcp_flags: 0x18,
            ttl: 64,
            ..Hdr::default()
        }
    }

    fn hits(s: &RuleSet, h: &Hdr, payload: &[u8]) -> Vec<u32> {
        let mut m = Matcher::default();
        let mut v = Vec::new();
        m.on_packet(s, h, payload, 1, &mut false, &mut |x| v.push(s.rules[x.rule as usize].sid));
        v
    }

    #[test]
    fn payload_rule_groups_scan_a_packet_for_its_ports_rules_only() {
        // 30 rules on port 445 make a group of their own; one on 21 joins the wide rules.
        let mut text = String::new();
        for i in 0..30 {
            text += &format!("alert tcp any any -> any 445 (msg:\"smb{i}\"; content:\"smb{i}x\"; sid:{};)\n", 100 + i);
        }
        text += r#"alert tcp any any -> any 21 (msg:"ftp"; content:"USER x"; sid:1;)
alert tcp any any -> any any (msg:"any"; content:"evil"; sid:2;)
alert tcp any 80 -> any any (msg:"from 80"; flow:to_client; content:"evil"; sid:3;)
alert tcp any any <> any 8080 (msg:"bidir"; content:"evil"; sid:4;)
alert udp any any -> any any (msg:"udp"; content:"evil"; sid:5;)
alert ip any any -> any any (msg:"ip"; content:"evil"; sid:6;)
"#;
        let s = set(&text);
        let g = &s.payload.by[0][0];
        assert_eq!(g.ports.iter().map(|e| e.0).collect::<Vec<_>>(), [445], "one own group");
        assert!(g.wide.is_some() && s.payload.by[0][1].wide.is_some());
        let h = hdr();
        let sorted = |mut v: Vec<u32>| {
            v.sort();
            v
        };
        // Port 80, to the server: the wide rules (port 21's among them), never port 445's.
        assert_eq!(sorted(hits(&s, &h, b"evil smb0x")), [2, 6]);
        assert_eq!(hits(&s, &h, b"USER x"), [] as [u32; 0], "port 21's rule is verified and fails");
        let smb = Hdr { dport: 445, ..h };
        assert_eq!(sorted(hits(&s, &smb, b"evil smb0x smb29x")), [2, 6, 100, 129]);
        assert_eq!(hits(&s, &Hdr { dport: 21, ..h }, b"USER x"), [1]);
        // The to-client group is chosen by the source (server) port.
        let back = Hdr { to_server: false, ..h.reversed() };
        assert_eq!(sorted(hits(&s, &back, b"evil")), [2, 3, 6]);
        // `<>`: either end's port.
        assert_eq!(sorted(hits(&s, &Hdr { dport: 8080, ..h }, b"evil")), [2, 4, 6]);
        assert_eq!(sorted(hits(&s, &Hdr { sport: 8080, dport: 9, ..h }, b"evil")), [2, 4, 6]);
        assert_eq!(sorted(hits(&s, &Hdr { proto: 17, ..h }, b"evil")), [5, 6]);
        assert_eq!(sorted(hits(&s, &Hdr { proto: 1, is_icmp: true, ..h }, b"evil")), [6]);
    }

    #[test]
    fn content_windows_and_relative_matches() {
        let s = set(
            r#"alert tcp any any -> any any (msg:"a"; content:"GET "; depth:4; content:"/x"; distance:0; within:3; sid:1;)
alert tcp any any -> any any (msg:"b"; content:"abc"; offset:5; sid:2;)
alert tcp any any -> any any (msg:"c"; content:"GET"; content:!"evil"; sid:3;)
alert tcp any any -> any any (msg:"d"; content:"HTTP/1."; endswith; sid:4;)
alert tcp any any -> any any (msg:"e"; content:"GeT"; nocase; startswith; sid:5;)
alert tcp any any -> any any (msg:"f"; content:"A"; content:"B"; distance:1; within:1; sid:6;)
"#,
        );
        let h = hdr();
        assert_eq!(hits(&s, &h, b"GET /x HTTP/1."), [1, 3, 4, 5]);
        assert_eq!(hits(&s, &h, b"GET  /x"), [1, 3, 5], "/x ends at the window's end");
        assert_eq!(hits(&s, &h, b"GET   /x"), [3, 5], "/x ends past within");
        assert_eq!(hits(&s, &h, b"xxxxxabc GET evil"), [2]);
        assert_eq!(hits(&s, &h, b"abc"), Vec::<u32>::new(), "offset 5");
        // Backtracking: the first A fails its B, the second succeeds.
        assert_eq!(hits(&s, &h, b"AxxA_B"), [6]);
        assert_eq!(hits(&s, &h, b"AxxA__B"), Vec::<u32>::new());
    }

    #[test]
    fn header_flow_and_packet_options() {
        let s = set(
            r#"alert tcp $HOME_NET any -> $EXTERNAL_NET 80 (msg:"out"; flow:established,to_server; content:"x"; sid:1;)
alert tcp $EXTERNAL_NET 80 -> $HOME_NET any (msg:"in"; flow:to_client; content:"x"; sid:2;)
alert tcp any any <> any 80 (msg:"both"; content:"x"; sid:3;)
alert tcp any any -> any any (msg:"syn"; flags:S; sid:4;)
alert tcp any any -> any any (msg:"ttl"; ttl:<10; dsize:>2; sid:5;)
alert icmp any any -> any any (msg:"ping"; itype:8; icmp_id:7; sid:6;)
"#,
        );
        let h = hdr();
        assert_eq!(hits(&s, &h, b"x"), [1, 3]);
        assert_eq!(hits(&s, &h.reversed(), b"x"), [2, 3]);
        assert_eq!(hits(&s, &Hdr { tcp_flags: 0x02, ..h }, b""), [4]);
        assert_eq!(hits(&s, &Hdr { ttl: 5, ..h }, b"abc"), [5]);
        assert_eq!(hits(&s, &Hdr { ttl: 5, ..h }, b"ab"), Vec::<u32>::new());
        let icmp = Hdr { proto: 1, is_icmp: true, icmp_type: 8, icmp_id: 7, sport: 0, dport: 0, ..h };
        assert_eq!(hits(&s, &icmp, b"ping"), [6]);
        assert_eq!(hits(&s, &Hdr { icmp_id: 8, ..icmp }, b"ping"), Vec::<u32>::new());
    }

    #[test]
    fn pcre_byte_tests_and_isdataat() {
        let s = set(r#"alert tcp any any -> any any (msg:"p"; content:"id="; pcre:"/^[0-9]{3}\b/R"; sid:1;)
alert tcp any any -> any any (msg:"bt"; content:"|ff|"; byte_test:2,>,1000,0,relative; sid:2;)
alert tcp any any -> any any (msg:"bj"; content:"L"; byte_jump:1,0,relative; content:"END"; within:3; sid:3;)
alert tcp any any -> any any (msg:"ida"; content:"Z"; isdataat:!1,relative; sid:4;)
alert tcp any any -> any any (msg:"str"; content:"len="; byte_test:3,=,123,0,relative,string,dec; sid:5;)
"#);
        let h = hdr();
        assert_eq!(hits(&s, &h, b"id=123 "), [1]);
        assert_eq!(hits(&s, &h, b"id=1234"), Vec::<u32>::new());
        assert_eq!(hits(&s, &h, b"\xff\x04\x00"), [2]);
        assert_eq!(hits(&s, &h, b"\xff\x03\xe8"), Vec::<u32>::new());
        assert_eq!(hits(&s, &h, b"L\x02abEND"), [3]);
        assert_eq!(hits(&s, &h, b"L\x03abEND"), Vec::<u32>::new());
        assert_eq!(hits(&s, &h, b"aaZ"), [4]);
        assert_eq!(hits(&s, &h, b"aaZb"), Vec::<u32>::new());
        assert_eq!(hits(&s, &h, b"len=123"), [5]);
    }

    #[test]
    fn a_pass_rule_silences_the_others() {
        let s = set(r#"alert tcp any any -> any any (msg:"any get"; content:"GET "; sid:1;)
pass tcp any any -> any any (msg:"health checks"; content:"/healthz"; sid:2;)
"#);
        let h = hdr();
        assert_eq!(hits(&s, &h, b"GET /healthz HTTP/1.1"), Vec::<u32>::new());
        assert_eq!(hits(&s, &h, b"GET /admin HTTP/1.1"), [1]);
    }

    #[test]
    fn flowbits_and_thresholds() {
        let s = set(
            r#"alert tcp any any -> any any (msg:"login"; content:"USER"; flowbits:set,login; flowbits:noalert; sid:1;)
alert tcp any any -> any any (msg:"after"; content:"RETR"; flowbits:isset,login; sid:2;)
alert tcp any any -> any any (msg:"lim"; content:"L"; threshold:type limit,track by_src,count 2,seconds 60; sid:3;)
alert tcp any any -> any any (msg:"thr"; content:"Q"; threshold:type threshold,track by_src,count 3,seconds 60; sid:4;)
alert tcp any any -> any any (msg:"df"; content:"D"; detection_filter:track by_dst,count 2,seconds 60; sid:5;)
"#,
        );
        let h = hdr();
        let mut m = Matcher::default();
        let run = |p: &[u8], slot: u32, m: &mut Matcher| {
            let mut v = Vec::new();
            m.on_packet(&s, &h, p, slot, &mut false, &mut |x| v.push(s.rules[x.rule as usize].sid));
            v
        };
        assert_eq!(run(b"RETR", 1, &mut m), Vec::<u32>::new());
        assert_eq!(run(b"USER a", 1, &mut m), Vec::<u32>::new(), "noalert");
        assert_eq!(run(b"RETR", 1, &mut m), [2]);
        assert_eq!(run(b"RETR", 2, &mut m), Vec::<u32>::new(), "another flow");
        m.flow_ended(1);
        assert_eq!(run(b"RETR", 1, &mut m), Vec::<u32>::new(), "bits go with the flow");
        // Thresholded rules: every match goes out with its key, decided in one table.
        let mut t = super::super::threshold::Thresholds::default();
        let mut decided = |p: &[u8], n: usize, m: &mut Matcher| -> Vec<bool> {
            (0..n)
                .map(|_| {
                    let mut v = Vec::new();
                    m.on_packet(&s, &h, p, 3, &mut false, &mut |x| v.push(x));
                    assert_eq!(v.len(), 1);
                    let k = v[0].tracked.expect("a thresholded rule's match is a candidate");
                    t.decide(&s.rules[v[0].rule as usize], k, 1_000_000)
                })
                .collect()
        };
        assert_eq!(decided(b"L", 4, &mut m), [true, true, false, false]);
        assert_eq!(decided(b"Q", 6, &mut m), [false, false, true, false, false, true]);
        assert_eq!(decided(b"D", 4, &mut m), [false, false, true, true]);
        assert_eq!(m.counters.tracked, 4 + 6 + 4);
    }
}
