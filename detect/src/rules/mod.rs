//! Suricata-language signatures: the rule model ([`Rule`]), the parser ([`parse`]) and the
//! address/port lists ([`addr`]). A rule that needs what this sensor does not have is
//! rejected with a reason ([`Reject`]), never half-loaded.

pub mod addr;
pub mod behave;
pub mod buf;
pub mod engine;
pub mod ioc;
pub mod load;
pub mod parse;
pub mod sketch;
pub mod threshold;

pub use addr::{IpMatch, PortMatch, Vars};
pub use buf::{Buf, BufSpec};
pub use engine::{compile_check, Hdr, Hit, MatchCounters, Matcher, RuleSet};
pub use load::{Failure, LoadReport, Loader, DEFAULT_CLASSIFICATION};
pub use parse::{parse_classifications, parse_rule, Classifications, Reject};

/// The rule set of `text` with the default classifications and no variables (tests: every rule
/// must load).
#[cfg(test)]
pub(crate) fn test_set(text: &str) -> RuleSet {
    let (classes, _) = parse_classifications(DEFAULT_CLASSIFICATION);
    let mut l = Loader::default();
    l.add_text(text, "t", &Vars::default(), &classes);
    assert_eq!(l.report.rejected, 0, "{:?}", l.report.failures);
    RuleSet::new(l.rules)
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Alert,
    /// Stops inspection of the packet (or transaction) for every rule after it.
    Pass,
}

/// The rule header's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Tcp,
    /// `tcp-pkt`: packets only, never the reassembled stream.
    TcpPkt,
    /// `tcp-stream`: the reassembled stream only.
    TcpStream,
    Udp,
    Icmp,
    /// An application protocol (`http`, `dns`...: the registry's rule names).
    App(crate::app::AppProto),
}

impl Proto {
    /// The IP protocol numbers the rule can match (`None`: any).
    pub fn ip_protos(self) -> Option<&'static [u8]> {
        match self {
            Proto::Ip => None,
            Proto::Tcp | Proto::TcpPkt | Proto::TcpStream => Some(&[6]),
            Proto::Udp => Some(&[17]),
            Proto::Icmp => Some(&[1, 58]),
            Proto::App(a) => Some(a.ip_protos()),
        }
    }

    /// The application protocol the header names, if any.
    pub fn app(self) -> Option<crate::app::AppProto> {
        match self {
            Proto::App(a) => Some(a),
            Proto::Ip | Proto::Tcp | Proto::TcpPkt | Proto::TcpStream | Proto::Udp | Proto::Icmp => None,
        }
    }
}

/// A numeric test (`dsize`, `ttl`, `itype`, `bsize`...): Suricata's `N`, `<N`, `>N`, `<=N`,
/// `>=N`, `!N`, and `A<>B` (exclusive) or `A-B` (inclusive, `ttl`'s form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Num {
    Eq(u64),
    Ne(u64),
    Lt(u64),
    Le(u64),
    Gt(u64),
    Ge(u64),
    /// Strictly between.
    Between(u64, u64),
    /// Inclusive range.
    Range(u64, u64),
}

impl Num {
    #[inline]
    pub fn test(self, v: u64) -> bool {
        match self {
            Num::Eq(n) => v == n,
            Num::Ne(n) => v != n,
            Num::Lt(n) => v < n,
            Num::Le(n) => v <= n,
            Num::Gt(n) => v > n,
            Num::Ge(n) => v >= n,
            Num::Between(a, b) => a < v && v < b,
            Num::Range(a, b) => a <= v && v <= b,
        }
    }
}

/// `content`, with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub nocase: bool,
    pub negated: bool,
    pub offset: Option<u32>,
    pub depth: Option<u32>,
    pub distance: Option<i32>,
    pub within: Option<u32>,
    pub startswith: bool,
    pub endswith: bool,
    pub fast_pattern: bool,
}

impl Content {
    /// Relative to the previous match in its buffer.
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }
}

/// Endianness of `byte_test` / `byte_jump` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Big,
    Little,
}

/// How `byte_test` / `byte_jump` read their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumFormat {
    Binary(Endian),
    /// ASCII digits in this base (10, 16 or 8).
    String(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteTest {
    pub nbytes: u8,
    pub op: ByteOp,
    pub negated: bool,
    pub value: u64,
    pub offset: i32,
    pub relative: bool,
    pub format: NumFormat,
    pub bitmask: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOp {
    Lt,
    Gt,
    Le,
    Ge,
    Eq,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteJump {
    pub nbytes: u8,
    pub offset: i32,
    pub relative: bool,
    pub format: NumFormat,
    pub multiplier: u32,
    pub align: bool,
    pub from_beginning: bool,
    pub from_end: bool,
    pub post_offset: i32,
    pub bitmask: Option<u64>,
}

/// A compiled `pcre`.
#[derive(Debug, Clone)]
pub struct Pcre {
    pub re: regex::bytes::Regex,
    pub negated: bool,
    /// `R`: matched from the end of the previous match.
    pub relative: bool,
    /// The pattern as written (for messages and equality).
    pub source: String,
}

impl PartialEq for Pcre {
    fn eq(&self, o: &Pcre) -> bool {
        self.source == o.source && self.negated == o.negated && self.relative == o.relative
    }
}

/// One test of a rule's body, in rule order, on its buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Content(Content),
    Pcre(Pcre),
    /// `isdataat:[!]N[,relative]`.
    IsDataAt {
        n: u32,
        negated: bool,
        relative: bool,
    },
    ByteTest(ByteTest),
    ByteJump(ByteJump),
    /// `bsize`: the buffer's length.
    Bsize(Num),
}

/// A buffer's tests, with the transforms applied to it first.
#[derive(Debug, Clone, PartialEq)]
pub struct BufTests {
    pub buf: Buf,
    /// `dotprefix`: a '.' is put before the buffer.
    pub dotprefix: bool,
    pub tests: Vec<Test>,
}

/// `flow:` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowOpts {
    pub established: bool,
    pub not_established: bool,
    /// Some(true): to_server / from_client; Some(false): to_client / from_server.
    pub to_server: Option<bool>,
    pub stateless: bool,
    pub only_stream: bool,
    pub no_stream: bool,
}

/// `flags:` as Suricata reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagsTest {
    /// The flags named.
    pub flags: u8,
    /// Flags ignored (the second argument).
    pub ignore: u8,
    pub mode: FlagsMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsMode {
    /// Exactly these (outside `ignore`).
    Exact,
    /// `+`: these and maybe others.
    All,
    /// `*`: any of these.
    Any,
    /// `!`: none of these.
    Not,
}

impl FlagsTest {
    #[inline]
    pub fn test(&self, f: u8) -> bool {
        let f = f & !self.ignore;
        match self.mode {
            FlagsMode::Exact => f == self.flags,
            FlagsMode::All => f & self.flags == self.flags,
            FlagsMode::Any => f & self.flags != 0,
            FlagsMode::Not => f & self.flags == 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowbitOp {
    Set(String),
    Unset(String),
    Toggle(String),
    /// Any of the names (`a|b`).
    IsSet(Vec<String>),
    /// None of the names.
    IsNotSet(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
    ByBoth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    /// `detection_filter`: alert on every match after the first `count` in the window.
    DetectionFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    SrcIp,
    DestIp,
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub action: Action,
    pub proto: Proto,
    pub src: IpMatch,
    pub sport: PortMatch,
    pub dst: IpMatch,
    pub dport: PortMatch,
    /// `<>`: either direction.
    pub bidirectional: bool,
    pub msg: String,
    pub sid: u32,
    pub rev: u32,
    pub gid: u32,
    pub classtype: Option<String>,
    /// From `priority`, else the classtype's, else 3.
    pub priority: u8,
    /// The classtype's description (the EVE alert's `category`).
    pub category: String,
    pub references: Vec<String>,
    /// `metadata` as key/value pairs.
    pub metadata: Vec<(String, String)>,
    pub target: Option<Target>,
    pub flow: FlowOpts,
    pub flags: Option<FlagsTest>,
    pub itype: Option<Num>,
    pub icode: Option<Num>,
    pub icmp_id: Option<u16>,
    pub ttl: Option<Num>,
    pub ip_proto: Option<Num>,
    pub dsize: Option<Num>,
    /// `urilen` on the normalized URI.
    pub urilen: Option<Num>,
    /// Per-buffer tests in rule order (a buffer named twice is two groups).
    pub bufs: Vec<BufTests>,
    pub flowbits: Vec<FlowbitOp>,
    /// `flowbits:noalert` or `noalert`.
    pub noalert: bool,
    pub threshold: Option<Threshold>,
    pub detection_filter: Option<Threshold>,
    /// `suppress` entries of a threshold.config ([`threshold::apply_config`]).
    pub suppress: Vec<threshold::Suppress>,
}

impl Rule {
    /// The application protocol the rule needs (from its header or its buffers).
    pub fn app(&self) -> Option<crate::app::AppProto> {
        self.proto.app().or_else(|| self.bufs.iter().find_map(|b| b.buf.app()))
    }
}
