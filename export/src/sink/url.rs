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

use super::file::{FileOptions, Fsync};
use super::net::TlsOptions;
use super::syslog::{self, Proto};
use std::path::PathBuf;

/// What a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// EVE JSON lines.
    Eve,
    /// RFC 5424 messages carrying EVE JSON.
    SyslogEve,
    /// RFC 5424 messages carrying CEF.
    SyslogCef,
    /// IPFIX data records (flow records only).
    Ipfix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    List,
    Stream,
}

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    /// Formatted as EVE and discarded (benchmarks).
    Null,
    File {
        path: PathBuf,
        opts: FileOptions,
    },
    Syslog {
        addr: String,
        proto: Proto,
        facility: u8,
    },
    Ipfix {
        addr: String,
        tcp: bool,
        domain: u32,
    },
    Redis {
        addr: String,
        key: String,
        mode: RedisMode,
    },
}

/// A sink as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    pub name: String,
    pub target: Target,
    pub format: Format,
    pub queue_bytes: Option<usize>,
    pub spool_bytes: Option<u64>,
}

impl SinkSpec {
    /// Local outputs: a replay waits for them rather than spooling.
    pub fn is_local(&self) -> bool {
        matches!(self.target, Target::Stdout | Target::Null | Target::File { .. })
    }
}

fn pct_decode(s: &str) -> String {
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

/// `host[:port]` with the default port added; IPv6 in brackets.
fn host_port(s: &str, default: u16) -> Result<String, String> {
    if s.is_empty() {
        return Err("no host".into());
    }
    let has_port = if s.starts_with('[') { s.contains("]:") } else { s.contains(':') };
    if has_port {
        let (_, p) = s.rsplit_once(':').expect("checked");
        p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?;
        Ok(s.to_string())
    } else {
        Ok(format!("{s}:{default}"))
    }
}

/// Options every sink takes.
const COMMON: &[&str] = &["name", "queue_bytes", "spool_bytes"];

/// Every scheme and the options it takes besides [`COMMON`]: the one declaration of a sink's
/// options (the URL's query keys and the `[[export.sinks]]` table's keys are the same).
pub const SCHEMES: &[(&str, &[&str])] = &[
    ("file", &["rotate_bytes", "rotate_secs", "fsync"]),
    ("stdout", &[]),
    ("null", &[]),
    ("syslog+udp", &["facility", "format"]),
    ("syslog+tcp", &["facility", "format"]),
    ("syslog+tls", &["facility", "format", "ca", "cert", "key", "server_name"]),
    ("syslog+relp", &["facility", "format"]),
    ("syslog+relp+tls", &["facility", "format", "ca", "cert", "key", "server_name"]),
    ("ipfix+udp", &["domain"]),
    ("ipfix+tcp", &["domain"]),
    ("redis", &["mode"]),
];

/// The options a scheme takes (with [`COMMON`]); None for an unknown scheme. `syslog` and
/// `ipfix` alone are their UDP forms.
pub fn options_of(scheme: &str) -> Option<Vec<&'static str>> {
    let s = match scheme {
        "syslog" => "syslog+udp",
        "ipfix" => "ipfix+udp",
        s => s,
    };
    let (_, own) = SCHEMES.iter().find(|(n, _)| *n == s)?;
    Some(COMMON.iter().chain(own.iter()).copied().collect())
}

/// A sink URL's scheme and the rest (`-`, `stdout:` and `null:` have no `://`; a bare path is a
/// file).
pub fn split_scheme(url: &str) -> (&str, &str) {
    let base = url.split('?').next().unwrap_or(url);
    match base.split_once("://") {
        Some((s, r)) => (s, r),
        None if base == "-" || base == "stdout:" => ("stdout", ""),
        None if base == "null:" => ("null", ""),
        None => ("file", base),
    }
}

/// Parses a sink URL (see the module's table).
pub fn parse(url: &str) -> Result<SinkSpec, String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut q: Vec<(String, String)> = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        q.push((pct_decode(k), pct_decode(v)));
    }
    let mut used = vec![false; q.len()];
    let mut get = |k: &str| -> Option<String> {
        let i = q.iter().position(|(k2, _)| k2 == k)?;
        used[i] = true;
        Some(q[i].1.clone())
    };
    let num = |k: &str, v: Option<String>| -> Result<Option<u64>, String> {
        v.map(|v| v.parse::<u64>().map_err(|_| format!("{k}: not a number: {v:?}"))).transpose()
    };
    let name = get("name");
    if name.as_deref() == Some("") {
        return Err("name: empty".into());
    }
    let queue_bytes = num("queue_bytes", get("queue_bytes"))?.map(|v| v as usize);
    let spool_bytes = num("spool_bytes", get("spool_bytes"))?;
    let (scheme, rest) = split_scheme(base);
    let format_of = |f: Option<String>, dflt: Format| -> Result<Format, String> {
        match f.as_deref() {
            None => Ok(dflt),
            Some("eve") | Some("json") => Ok(Format::SyslogEve),
            Some("cef") => Ok(Format::SyslogCef),
            Some(o) => Err(format!("format: {o:?} (eve or cef)")),
        }
    };
    let (target, format) = match scheme {
        "stdout" => (Target::Stdout, Format::Eve),
        "null" => (Target::Null, Format::Eve),
        "file" => {
            if rest.is_empty() {
                return Err("file: no path".into());
            }
            let fsync = match get("fsync") {
                None => Fsync::Never,
                Some(v) => Fsync::parse(&v).ok_or_else(|| format!("fsync: {v:?} (never, rotate or always)"))?,
            };
            let opts = FileOptions {
                rotate_bytes: num("rotate_bytes", get("rotate_bytes"))?.unwrap_or(0),
                rotate_secs: num("rotate_secs", get("rotate_secs"))?.unwrap_or(0),
                fsync,
            };
            (Target::File { path: PathBuf::from(pct_decode(rest)), opts }, Format::Eve)
        }
        "syslog+udp" | "syslog+tcp" | "syslog+tls" | "syslog" | "syslog+relp" | "syslog+relp+tls" => {
            let port = match scheme {
                "syslog+tls" => 6514,
                "syslog+relp" | "syslog+relp+tls" => 2514,
                _ => 514,
            };
            let addr = host_port(rest.trim_end_matches('/'), port)?;
            let mut tls = || TlsOptions {
                ca: get("ca").map(PathBuf::from),
                cert: get("cert").map(PathBuf::from),
                key: get("key").map(PathBuf::from),
                server_name: get("server_name"),
            };
            let proto = match scheme {
                "syslog+tcp" => Proto::Tcp,
                "syslog+tls" => Proto::Tls(tls()),
                "syslog+relp" => Proto::Relp(None),
                "syslog+relp+tls" => Proto::Relp(Some(tls())),
                _ => Proto::Udp,
            };
            let facility = match get("facility") {
                None => 21,
                Some(f) => syslog::facility(&f)
                    .ok_or_else(|| format!("facility: {f:?} (kern, user, daemon, auth, syslog, local0..local7)"))?,
            };
            (Target::Syslog { addr, proto, facility }, format_of(get("format"), Format::SyslogEve)?)
        }
        "ipfix+udp" | "ipfix+tcp" | "ipfix" => {
            let addr = host_port(rest.trim_end_matches('/'), 4739)?;
            let domain = num("domain", get("domain"))?.unwrap_or(1);
            let domain = u32::try_from(domain).map_err(|_| format!("domain: {domain} is over 2^32"))?;
            (Target::Ipfix { addr, tcp: scheme == "ipfix+tcp", domain }, Format::Ipfix)
        }
        "redis" => {
            let (hp, key) = rest.split_once('/').unwrap_or((rest, ""));
            let key = pct_decode(key);
            let key = if key.is_empty() { "spinewatch".to_string() } else { key };
            let mode = match get("mode").as_deref() {
                None | Some("list") => RedisMode::List,
                Some("stream") => RedisMode::Stream,
                Some(o) => return Err(format!("mode: {o:?} (list or stream)")),
            };
            (Target::Redis { addr: host_port(hp, 6379)?, key, mode }, Format::Eve)
        }
        s => {
            let all: Vec<&str> = SCHEMES.iter().map(|(n, _)| *n).collect();
            return Err(format!("unknown scheme {s:?} ({})", all.join(", ")));
        }
    };
    let takes = options_of(scheme).unwrap_or_default();
    debug_assert!(
        q.iter().zip(&used).all(|((k, _), u)| !u || takes.contains(&k.as_str())),
        "{scheme}: an option read is not declared"
    );
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!("unknown option {:?} for a {scheme} sink (it takes {})", q[i].0, takes.join(", ")));
    }
    let name = name.unwrap_or_else(|| match &target {
        Target::Stdout => "stdout".into(),
        Target::Null => "null".into(),
        Target::File { path, .. } => format!("file:{}", path.display()),
        _ => format!("{scheme}:{}", rest.split(['/', '?']).next().unwrap_or("")),
    });
    Ok(SinkSpec { name, target, format, queue_bytes, spool_bytes })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn urls() {
        let s = parse("syslog+tls://siem.example:6515?format=cef&ca=/etc/ca.pem&facility=local3").unwrap();
        assert_eq!(s.format, Format::SyslogCef);
        let Target::Syslog { addr, proto: Proto::Tls(t), facility: 19 } = s.target else { panic!("{s:?}") };
        assert_eq!(addr, "siem.example:6515");
        assert_eq!(t.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            parse("syslog+udp://10.0.0.1").unwrap().target,
            Target::Syslog { addr: "10.0.0.1:514".into(), proto: Proto::Udp, facility: 21 }
        );
        assert_eq!(
            parse("syslog+relp://10.0.0.1").unwrap().target,
            Target::Syslog { addr: "10.0.0.1:2514".into(), proto: Proto::Relp(None), facility: 21 }
        );
        let s = parse("syslog+relp+tls://siem.example?ca=/etc/ca.pem&format=cef").unwrap();
        assert_eq!(s.format, Format::SyslogCef);
        let Target::Syslog { addr, proto: Proto::Relp(Some(t)), .. } = s.target else { panic!("{s:?}") };
        assert_eq!((addr.as_str(), t.ca), ("siem.example:2514", Some(PathBuf::from("/etc/ca.pem"))));
        assert_eq!(
            parse("ipfix+tcp://[::1]?domain=7").unwrap().target,
            Target::Ipfix { addr: "[::1]:4739".into(), tcp: true, domain: 7 }
        );
        let r = parse("redis://127.0.0.1:6380/eve%3Aflows?mode=stream").unwrap();
        assert_eq!(
            r.target,
            Target::Redis { addr: "127.0.0.1:6380".into(), key: "eve:flows".into(), mode: RedisMode::Stream }
        );
        let f = parse("file:///var/log/eve.json?rotate_bytes=1000&fsync=rotate").unwrap();
        assert!(
            matches!(f.target, Target::File { ref path, opts } if path == &PathBuf::from("/var/log/eve.json") && opts.rotate_bytes == 1000 && opts.fsync == Fsync::Rotate)
        );
        assert_eq!(parse("out/eve.json").unwrap().name, "file:out/eve.json");
        assert_eq!(parse("-").unwrap().target, Target::Stdout);
        // A '%' before a character that is not a hex digit stays as it is (found by fuzzing).
        assert_eq!(parse("-?name=%Ӟ").unwrap().name, "%Ӟ");
        for bad in
            ["smtp://x", "syslog+tcp://h:99999", "file:///x?rotate=1", "syslog+udp://h?format=xml", "file://", "-?name"]
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
