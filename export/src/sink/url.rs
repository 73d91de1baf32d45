//! Sink addresses, as `--export URL` and `[[export.sinks]] url` give them:
//!
//! | URL | sink |
//! |---|---|
//! | `-`, `stdout:` | EVE lines on stdout |
//! | `file:///PATH`, or a plain path | EVE lines appended to PATH (`rotate_bytes`, `rotate_secs`, `fsync=never\|rotate\|always`) |
//! | `syslog+udp://HOST[:514]`, `syslog+tcp://HOST[:514]`, `syslog+tls://HOST[:6514]` | RFC 5424 (`format=eve\|cef`, `facility=local5`; TLS: `ca`, `cert`, `key`, `server_name`) |
//! | `syslog+relp://HOST[:2514]`, `syslog+relp+tls://HOST[:2514]` | RFC 5424 over RELP: each message acknowledged by the collector (rsyslog's imrelp); the same options |
//! | `ipfix+udp://HOST[:4739]`, `ipfix+tcp://HOST[:4739]` | IPFIX flow records (`domain=N`, the observation domain) |
//! | `redis://HOST[:6379]/KEY` | EVE JSON pushed to a list (`mode=list`, RPUSH) or a stream (`mode=stream`, XADD) |
//!
//! Any sink also takes `name`, `queue_bytes` and `spool_bytes`.
//!
//! The registry: each sink's file declares its schemes ([`Scheme`]: options and URL parser) and
//! has one entry in [`super::SINKS`]; the target a parser makes ([`Endpoint`]) opens the
//! sink's transport. This file holds no sink's name: adding a sink is its file and its entry.

use super::Transport;
use std::any::Any;
use std::io;
use std::sync::Arc;

/// What a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// EVE JSON lines.
    Eve,
    /// RFC 5424 messages carrying EVE JSON (`cef`: carrying CEF), with their facility.
    Syslog { facility: u8, cef: bool },
    /// IPFIX data records (flow records only).
    Ipfix,
}

/// Where a sink writes: what its scheme's parser made of the URL. Each sink's file implements
/// it for its own target type.
pub trait Endpoint: std::fmt::Debug + Send + Sync + Any {
    /// Opens the sink's transport (a file is opened at once, so a path that cannot be written
    /// fails the start, not the run).
    fn open(&self, sink: &str) -> io::Result<Box<dyn Transport>>;
    /// A local output: a replay waits for it rather than spooling.
    fn is_local(&self) -> bool {
        false
    }
    /// The sink's name when the URL gives none (else `scheme:host`).
    fn default_name(&self) -> Option<String> {
        None
    }
    /// The local file it writes, if any (`check-config` checks that it can be written).
    fn local_path(&self) -> Option<&std::path::Path> {
        None
    }
    fn as_any(&self) -> &dyn Any;
}

/// A sink's target (shared: a spec is cloned into the export thread).
#[derive(Debug, Clone)]
pub struct Target(pub Arc<dyn Endpoint>);

impl Target {
    /// The target as its sink's own type (tests, and callers that know the scheme).
    pub fn get<T: Endpoint>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }
}

impl PartialEq for Target {
    fn eq(&self, o: &Target) -> bool {
        format!("{:?}", self.0) == format!("{:?}", o.0)
    }
}
impl Eq for Target {}

/// A sink as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    pub name: String,
    pub target: Target,
    pub format: Format,
    pub queue_bytes: Option<usize>,
    pub spool_bytes: Option<u64>,
    /// The collector and format the records are for: the canonical scheme, the address and
    /// path, and the options other than the queue's and the spool's (sorted), without
    /// credentials. Records spooled for one identity are never sent to another.
    pub identity: String,
}

impl SinkSpec {
    /// Local outputs: a replay waits for them rather than spooling.
    pub fn is_local(&self) -> bool {
        self.target.0.is_local()
    }
}

/// A scheme's URL parser: the scheme, where the URL points and its query, to the target and the
/// format.
pub type ParseFn = fn(scheme: &str, loc: &Location, q: &mut Query) -> Result<(Target, Format), String>;

/// Where a sink URL points. Network URLs are parsed by the `url` crate (userinfo, IPv6
/// literals, ports, percent-encoding); `file`, `stdout` and `null` are paths, not URLs with a
/// host, and are read as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The host (an IPv6 literal in brackets); empty for paths.
    pub host: String,
    pub port: Option<u16>,
    /// The path: a network URL's, percent-decoded, `/` first; a file sink's whole path.
    pub path: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl Location {
    /// `host:port`, the scheme's default port when the URL gives none.
    pub fn addr(&self, default_port: u16) -> Result<String, String> {
        if self.host.is_empty() {
            return Err("no host".into());
        }
        Ok(format!("{}:{}", self.host, self.port.unwrap_or(default_port)))
    }
}

/// One URL scheme of a sink, declared in the sink's file and listed in
/// [`super::SINKS`]: its options (the URL's query keys and the `[[export.sinks]]` table's keys
/// are the same) and its parser.
pub struct Scheme {
    pub name: &'static str,
    /// Other names of the same scheme (`syslog` for `syslog+udp`).
    pub aliases: &'static [&'static str],
    /// The options it takes besides [`COMMON`].
    pub options: &'static [&'static str],
    /// The URL's location and options to the target.
    pub parse: ParseFn,
    /// It takes a user and password from the URL (others refuse them rather than ignore them).
    pub userinfo: bool,
}

/// A sink URL's query options; each one read is marked, so one that no parser read is an error.
pub struct Query {
    kv: Vec<(String, String)>,
    used: Vec<bool>,
}

impl Query {
    pub fn get(&mut self, k: &str) -> Option<String> {
        let i = self.kv.iter().position(|(k2, _)| k2 == k)?;
        self.used[i] = true;
        Some(self.kv[i].1.clone())
    }

    /// A numeric option.
    pub fn num(&mut self, k: &str) -> Result<Option<u64>, String> {
        self.get(k).map(|v| v.parse::<u64>().map_err(|_| format!("{k}: not a number: {v:?}"))).transpose()
    }
}

pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            // On bytes: what follows a '%' may be any character.
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Options every sink takes.
const COMMON: &[&str] = &["name", "queue_bytes", "spool_bytes"];
/// Options that do not change where the records go nor how they read: not in a sink's
/// identity (a renamed certificate file keeps the spool).
const NOT_IDENTITY: &[&str] = &["ca", "cert", "key", "rotate_bytes", "rotate_secs", "rotate_name", "fsync"];

/// Every scheme of every sink, in [`super::SINKS`] order.
pub fn schemes() -> impl Iterator<Item = &'static Scheme> {
    super::SINKS.iter().flat_map(|s| s.iter())
}

fn scheme(name: &str) -> Option<&'static Scheme> {
    schemes().find(|s| s.name == name || s.aliases.contains(&name))
}

/// The options a scheme takes (with [`COMMON`]); None for an unknown scheme.
pub fn options_of(name: &str) -> Option<Vec<&'static str>> {
    let s = scheme(name)?;
    Some(COMMON.iter().chain(s.options.iter()).copied().collect())
}

/// A sink URL's scheme and the rest, query included (`-`, `stdout:` and `null:` have no `://`;
/// a bare path is a file).
pub fn split_scheme(url: &str) -> (&str, &str) {
    let base = url.split('?').next().unwrap_or(url);
    match url.split_once("://") {
        Some((s, r)) if base.contains("://") => (s, r),
        _ if base == "-" || base == "stdout:" => ("stdout", &url[base.len()..]),
        _ if base == "null:" => ("null", &url[base.len()..]),
        _ => ("file", url),
    }
}

/// Parses a sink URL (see the module's table).
pub fn parse(url: &str) -> Result<SinkSpec, String> {
    let (scheme_name, rest) = split_scheme(url);
    let Some(sc) = scheme(scheme_name) else {
        let all: Vec<&str> = schemes().map(|s| s.name).collect();
        return Err(format!("unknown scheme {scheme_name:?} ({})", all.join(", ")));
    };
    let (loc, kv, shown) = if url.contains("://") && !matches!(scheme_name, "file") {
        let u = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            Some(h) => h.to_string(),
            None => String::new(),
        };
        let user = (!u.username().is_empty()).then(|| pct_decode(u.username()));
        let password = u.password().map(pct_decode);
        let shown = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let loc = Location { host, port: u.port(), path: pct_decode(u.path()), user, password };
        (loc, u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect::<Vec<_>>(), shown)
    } else {
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut kv = Vec::new();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            kv.push((pct_decode(k), pct_decode(v)));
        }
        (Location { path: pct_decode(base), ..Location::default() }, kv, String::new())
    };
    if !sc.userinfo && (loc.user.is_some() || loc.password.is_some()) {
        return Err(format!("a {scheme_name} sink takes no user or password"));
    }
    let mut q = Query { used: vec![false; kv.len()], kv };
    let name = q.get("name");
    if name.as_deref() == Some("") {
        return Err("name: empty".into());
    }
    let queue_bytes = q.num("queue_bytes")?.map(|v| v as usize);
    let spool_bytes = q.num("spool_bytes")?;
    let (target, format) = (sc.parse)(scheme_name, &loc, &mut q)?;
    let takes = options_of(scheme_name).unwrap_or_default();
    debug_assert!(
        q.kv.iter().zip(&q.used).all(|((k, _), u)| !u || takes.contains(&k.as_str())),
        "{scheme_name}: an option read is not declared"
    );
    if let Some(i) = q.used.iter().position(|u| !u) {
        return Err(format!("unknown option {:?} for a {scheme_name} sink (it takes {})", q.kv[i].0, takes.join(", ")));
    }
    let name = name.or_else(|| target.0.default_name()).unwrap_or_else(|| format!("{scheme_name}:{shown}"));
    let mut opts: Vec<String> =
        q.kv.iter()
            .filter(|(k, _)| !COMMON.contains(&k.as_str()) && !NOT_IDENTITY.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
    opts.sort();
    let identity = format!("{}://{shown}{} {format:?} {}", sc.name, loc.path, opts.join("&"));
    Ok(SinkSpec { name, target, format, queue_bytes, spool_bytes, identity: identity.trim_end().to_string() })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::sink::file::{FileTarget, Fsync};
    use crate::sink::ipfix::IpfixTarget;
    use crate::sink::redis::{RedisMode, RedisTarget};
    use crate::sink::syslog::{Proto, SyslogTarget};
    use std::path::PathBuf;

    #[test]
    fn urls() {
        let s = parse("syslog+tls://siem.example:6515?format=cef&ca=/etc/ca.pem&facility=local3").unwrap();
        assert_eq!(s.format, Format::Syslog { facility: 19, cef: true });
        let SyslogTarget { addr, proto: Proto::Tls(t) } = s.target.get::<SyslogTarget>().unwrap() else {
            panic!("{s:?}")
        };
        assert_eq!(addr, "siem.example:6515");
        assert_eq!(t.ca, Some(PathBuf::from("/etc/ca.pem")));
        let syslog = |u: &str| parse(u).unwrap().target.get::<SyslogTarget>().cloned().unwrap();
        assert_eq!(syslog("syslog+udp://10.0.0.1"), SyslogTarget { addr: "10.0.0.1:514".into(), proto: Proto::Udp });
        assert_eq!(parse("syslog+udp://10.0.0.1").unwrap().format, Format::Syslog { facility: 21, cef: false });
        assert_eq!(
            syslog("syslog+relp://10.0.0.1"),
            SyslogTarget { addr: "10.0.0.1:2514".into(), proto: Proto::Relp(None) }
        );
        let s = parse("syslog+relp+tls://siem.example?ca=/etc/ca.pem&format=cef").unwrap();
        assert_eq!(s.format, Format::Syslog { facility: 21, cef: true });
        let SyslogTarget { addr, proto: Proto::Relp(Some(t)) } = s.target.get::<SyslogTarget>().unwrap() else {
            panic!("{s:?}")
        };
        assert_eq!((addr.as_str(), &t.ca), ("siem.example:2514", &Some(PathBuf::from("/etc/ca.pem"))));
        assert_eq!(
            parse("ipfix+tcp://[::1]?domain=7").unwrap().target.get::<IpfixTarget>(),
            Some(&IpfixTarget { addr: "[::1]:4739".into(), tcp: true, domain: 7 })
        );
        let r = parse("redis://127.0.0.1:6380/eve%3Aflows?mode=stream").unwrap();
        assert_eq!(
            r.target.get::<RedisTarget>(),
            Some(&RedisTarget { addr: "127.0.0.1:6380".into(), key: "eve:flows".into(), mode: RedisMode::Stream })
        );
        let f = parse("file:///var/log/eve.json?rotate_bytes=1000&fsync=rotate").unwrap();
        let Some(FileTarget::File { path, opts }) = f.target.get::<FileTarget>() else { panic!("{f:?}") };
        assert!(
            path == &PathBuf::from("/var/log/eve.json") && opts.rotate_bytes == 1000 && opts.fsync == Fsync::Rotate
        );
        assert_eq!(parse("out/eve.json").unwrap().name, "file:out/eve.json");
        assert_eq!(parse("-").unwrap().target.get::<FileTarget>(), Some(&FileTarget::Stdout));
        // IPv6 literals, percent-encoded paths, and userinfo refused where a sink has no use for it.
        assert_eq!(syslog("syslog+tcp://[2001:db8::1]:6000").addr, "[2001:db8::1]:6000");
        assert_eq!(parse("syslog+udp://[2001:db8::1]").unwrap().name, "syslog+udp:[2001:db8::1]");
        assert!(parse("redis://user:secret@127.0.0.1/k").unwrap_err().contains("no user or password"));
        // A '%' before a character that is not a hex digit stays as it is (found by fuzzing).
        assert_eq!(parse("-?name=%Ӟ").unwrap().name, "%Ӟ");
        for bad in
            ["smtp://x", "syslog+tcp://h:99999", "file:///x?rotate=1", "syslog+udp://h?format=xml", "file://", "-?name"]
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
