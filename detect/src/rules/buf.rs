//! The buffers a content, pcre or size test inspects: the packet payload (buffer 0), then each
//! protocol's, declared in the protocol's directory with [`rule_buffers!`](crate::rule_buffers)
//! and numbered by the registry.

use crate::app::AppProto;

/// A rule buffer: its number among all buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Buf(u8);

/// What the rule language and the engine know of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufSpec {
    /// Its name in messages (the Suricata 5+ sticky-buffer name).
    pub name: &'static str,
    /// The keywords naming it: sticky buffers and content modifiers.
    pub keywords: &'static [&'static str],
    /// It exists only on the response side: a rule on it is inspected to the client. (Buffers
    /// of both sides, such as http.header, take the side from the rule's `flow` direction,
    /// else the request's.)
    pub to_client: bool,
    /// A name whose dot-prefixed contents (`content:".example.com"`) may match its start:
    /// the engine also puts it with a leading dot for such rules.
    pub dotted: bool,
    /// Multi-valued: one inspection per value (`tls.certs`), with only the rules on it.
    pub multi: bool,
}

impl BufSpec {
    pub const fn new(name: &'static str, keywords: &'static [&'static str]) -> Self {
        BufSpec { name, keywords, to_client: false, dotted: false, multi: false }
    }
    pub const fn to_client(self) -> Self {
        BufSpec { to_client: true, ..self }
    }
    pub const fn dotted(self) -> Self {
        BufSpec { dotted: true, ..self }
    }
    pub const fn multi(self) -> Self {
        BufSpec { multi: true, ..self }
    }
}

const PAYLOAD_SPEC: BufSpec = BufSpec::new("payload", &["pkt_data"]);

impl Buf {
    /// The packet's payload (or the reassembled stream, per `flow:only_stream/no_stream`).
    pub const PAYLOAD: Buf = Buf(0);
    /// How many buffers there are.
    pub const COUNT: usize = crate::app::BUF_COUNT;

    /// Buffer `i` of a protocol whose buffers start at `base` ([`rule_buffers!`](crate::rule_buffers)).
    pub const fn at(base: u8, i: u8) -> Buf {
        Buf(base + i)
    }

    /// Its number (an index into per-buffer tables).
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The application protocol whose transactions carry it, and its spec.
    fn find(self) -> (Option<AppProto>, &'static BufSpec) {
        if self.0 == 0 {
            return (None, &PAYLOAD_SPEC);
        }
        for p in AppProto::PROTOCOLS {
            let (specs, base) = p.buffers();
            if let Some(s) = self.0.checked_sub(base).and_then(|i| specs.get(i as usize)) {
                return (Some(p), s);
            }
        }
        unreachable!("buffer numbers come from the registry")
    }

    pub fn spec(self) -> &'static BufSpec {
        self.find().1
    }

    /// The sticky-buffer keyword (Suricata 5+ name) or content modifier naming a buffer.
    pub fn from_keyword(k: &str) -> Option<Buf> {
        if PAYLOAD_SPEC.keywords.contains(&k) {
            return Some(Buf::PAYLOAD);
        }
        AppProto::PROTOCOLS.iter().find_map(|p| {
            let (specs, base) = p.buffers();
            specs.iter().position(|s| s.keywords.contains(&k)).map(|i| Buf(base + i as u8))
        })
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The application protocol whose transactions carry this buffer (`None`: the payload).
    pub fn app(self) -> Option<AppProto> {
        self.find().0
    }

    /// See [`BufSpec::to_client`].
    pub fn to_client(self) -> bool {
        self.spec().to_client
    }
}

/// Declares a protocol's rule buffers, in the protocol's directory: `BUFFERS` (for its
/// [`Info::buffers`](crate::app::protocol::Info)) and a [`Buf`] constant per buffer.
///
/// ```ignore
/// crate::rule_buffers! { super::Dns;
///     QUERY = BufSpec::new("dns.query", &["dns.query", "dns_query"]).dotted();
/// }
/// ```
#[macro_export]
macro_rules! rule_buffers {
    ($P:ty; $($(#[$doc:meta])* $c:ident = $spec:expr;)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[repr(u8)]
        enum Idx {
            $($c,)*
        }
        /// The protocol's rule buffers, in the order of their constants.
        pub const BUFFERS: &[$crate::rules::BufSpec] = &[$($spec,)*];
        $($(#[$doc])* pub const $c: $crate::rules::Buf =
            $crate::rules::Buf::at(<$P as $crate::app::Registered>::BUF_BASE, Idx::$c as u8);)*
    };
}
