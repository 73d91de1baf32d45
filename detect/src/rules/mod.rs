//! Suricata-language signatures: the rule model ([`Rule`]), the parser ([`parse`]) and the
//! address/port lists ([`addr`]). A rule that needs what this sensor does not have is
//! rejected with a reason ([`Reject`]), never half-loaded.

pub mod addr;
pub mod behave;
pub mod engine;
pub mod ioc;
pub mod load;
pub mod parse;
pub mod sketch;
pub mod threshold;

pub use addr::{IpMatch, PortMatch, Vars};
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
    Http,
    Dns,
    Tls,
    Ssh,
}

impl Proto {
    /// The IP protocol numbers the rule can match (`None`: any).
    pub fn ip_protos(self) -> Option<&'static [u8]> {
        match self {
            Proto::Ip => None,
            Proto::Tcp | Proto::TcpPkt | Proto::TcpStream | Proto::Http | Proto::Tls | Proto::Ssh => Some(&[6]),
            Proto::Udp => Some(&[17]),
            Proto::Icmp => Some(&[1, 58]),
            Proto::Dns => Some(&[6, 17]),
        }
    }

    /// The application protocol the header names, if any.
    pub fn app(self) -> Option<crate::app::AppProto> {
        use crate::app::AppProto as A;
        match self {
            Proto::Http => Some(A::Http),
            Proto::Dns => Some(A::Dns),
            Proto::Tls => Some(A::Tls),
            Proto::Ssh => Some(A::Ssh),
            _ => None,
        }
    }
}

/// The buffer a content, pcre or size test inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buf {
    /// The packet's payload (or the reassembled stream, per `flow:only_stream/no_stream`).
    Payload,
    DnsQuery,
    HttpUri,
    HttpUriRaw,
    HttpMethod,
    HttpHost,
    HttpHostRaw,
    HttpUserAgent,
    HttpStatCode,
    HttpHeader,
    HttpCookie,
    HttpRequestBody,
    /// The HTTP response body (`file.data` / `file_data`).
    FileData,
    TlsSni,
    TlsCertSubject,
    TlsCertIssuer,
    Ja3Hash,
    Ja3sHash,
    SshSoftware,
    HttpHeaderNames,
    HttpHeaderRaw,
    HttpContentType,
    HttpContentLen,
    HttpRequestLine,
    HttpResponseLine,
    HttpStart,
    HttpReferer,
    HttpLocation,
    HttpAccept,
    HttpAcceptEnc,
    HttpAcceptLang,
    HttpConnection,
    HttpServer,
    HttpProtocol,
    HttpStatMsg,
    /// Each certificate of the server's chain (DER), one at a time.
    TlsCerts,
}

impl Buf {
    /// The sticky-buffer keyword (Suricata 5+ name) or content modifier naming it.
    pub fn from_keyword(k: &str) -> Option<Buf> {
        Some(match k {
            "pkt_data" => Buf::Payload,
            "dns.query" | "dns_query" => Buf::DnsQuery,
            "http.uri" | "http_uri" => Buf::HttpUri,
            "http.uri.raw" | "http_raw_uri" => Buf::HttpUriRaw,
            "http.method" | "http_method" => Buf::HttpMethod,
            "http.host" | "http_host" => Buf::HttpHost,
            "http.host.raw" | "http_raw_host" => Buf::HttpHostRaw,
            "http.user_agent" | "http_user_agent" => Buf::HttpUserAgent,
            "http.stat_code" | "http_stat_code" => Buf::HttpStatCode,
            "http.header" | "http_header" => Buf::HttpHeader,
            "http.cookie" | "http_cookie" => Buf::HttpCookie,
            "http.request_body" | "http_client_body" => Buf::HttpRequestBody,
            "file.data" | "file_data" | "http.response_body" | "http_server_body" => Buf::FileData,
            "tls.sni" | "tls_sni" => Buf::TlsSni,
            "tls.cert_subject" | "tls_cert_subject" => Buf::TlsCertSubject,
            "tls.cert_issuer" | "tls_cert_issuer" => Buf::TlsCertIssuer,
            "ja3.hash" | "ja3_hash" => Buf::Ja3Hash,
            "ja3s.hash" | "ja3s_hash" => Buf::Ja3sHash,
            "ssh.software" | "ssh_software" => Buf::SshSoftware,
            "http.header_names" | "http_header_names" => Buf::HttpHeaderNames,
            "http.header.raw" | "http_raw_header" => Buf::HttpHeaderRaw,
            "http.content_type" | "http_content_type" => Buf::HttpContentType,
            "http.content_len" | "http_content_len" => Buf::HttpContentLen,
            "http.request_line" | "http_request_line" => Buf::HttpRequestLine,
            "http.response_line" | "http_response_line" => Buf::HttpResponseLine,
            "http.start" | "http_start" => Buf::HttpStart,
            "http.referer" | "http_referer" => Buf::HttpReferer,
            "http.location" => Buf::HttpLocation,
            "http.accept" | "http_accept" => Buf::HttpAccept,
            "http.accept_enc" | "http_accept_enc" => Buf::HttpAcceptEnc,
            "http.accept_lang" | "http_accept_lang" => Buf::HttpAcceptLang,
            "http.connection" | "http_connection" => Buf::HttpConnection,
            "http.server" => Buf::HttpServer,
            "http.protocol" | "http_protocol" => Buf::HttpProtocol,
            "http.stat_msg" | "http_stat_msg" => Buf::HttpStatMsg,
            "tls.certs" => Buf::TlsCerts,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Buf::Payload => "payload",
            Buf::DnsQuery => "dns.query",
            Buf::HttpUri => "http.uri",
            Buf::HttpUriRaw => "http.uri.raw",
            Buf::HttpMethod => "http.method",
            Buf::HttpHost => "http.host",
            Buf::HttpHostRaw => "http.host.raw",
            Buf::HttpUserAgent => "http.user_agent",
            Buf::HttpStatCode => "http.stat_code",
            Buf::HttpHeader => "http.header",
            Buf::HttpCookie => "http.cookie",
            Buf::HttpRequestBody => "http.request_body",
            Buf::FileData => "file.data",
            Buf::TlsSni => "tls.sni",
            Buf::TlsCertSubject => "tls.cert_subject",
            Buf::TlsCertIssuer => "tls.cert_issuer",
            Buf::Ja3Hash => "ja3.hash",
            Buf::Ja3sHash => "ja3s.hash",
            Buf::SshSoftware => "ssh.software",
            Buf::HttpHeaderNames => "http.header_names",
            Buf::HttpHeaderRaw => "http.header.raw",
            Buf::HttpContentType => "http.content_type",
            Buf::HttpContentLen => "http.content_len",
            Buf::HttpRequestLine => "http.request_line",
            Buf::HttpResponseLine => "http.response_line",
            Buf::HttpStart => "http.start",
            Buf::HttpReferer => "http.referer",
            Buf::HttpLocation => "http.location",
            Buf::HttpAccept => "http.accept",
            Buf::HttpAcceptEnc => "http.accept_enc",
            Buf::HttpAcceptLang => "http.accept_lang",
            Buf::HttpConnection => "http.connection",
            Buf::HttpServer => "http.server",
            Buf::HttpProtocol => "http.protocol",
            Buf::HttpStatMsg => "http.stat_msg",
            Buf::TlsCerts => "tls.certs",
        }
    }

    /// How many buffers there are.
    pub const COUNT: usize = Buf::TlsCerts as usize + 1;

    /// The application protocol whose transactions carry this buffer.
    pub fn app(self) -> Option<crate::app::AppProto> {
        use crate::app::AppProto as A;
        match self {
            Buf::Payload => None,
            Buf::DnsQuery => Some(A::Dns),
            Buf::TlsSni | Buf::TlsCertSubject | Buf::TlsCertIssuer | Buf::Ja3Hash | Buf::Ja3sHash | Buf::TlsCerts => {
                Some(A::Tls)
            }
            Buf::SshSoftware => Some(A::Ssh),
            _ => Some(A::Http),
        }
    }

    /// Whether the buffer exists only on the response side: a rule on it is inspected in the
    /// to-client direction. (Buffers of both sides, such as http.header, take the side from
    /// the rule's `flow` direction, else the request's.)
    pub fn to_client(self) -> bool {
        matches!(
            self,
            Buf::HttpStatCode
                | Buf::FileData
                | Buf::TlsCertSubject
                | Buf::TlsCertIssuer
                | Buf::Ja3sHash
                | Buf::HttpResponseLine
                | Buf::HttpLocation
                | Buf::HttpServer
                | Buf::HttpStatMsg
                | Buf::TlsCerts
        )
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
