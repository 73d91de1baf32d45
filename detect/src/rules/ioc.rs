//! Threat-intelligence indicators (IOCs): IP addresses and CIDRs, domains (exact, or a whole
//! subtree with a leading `*.` or `.`), JA3/JA3S hashes and JA4 fingerprints, from plain lists
//! (one per line) or CSV files (`indicator[,type[,description]]`). Matched per flow (its two
//! addresses, when it starts) and per transaction (DNS queries, HTTP Host, TLS SNI, JA3/JA4).

use super::addr::{addr_u128, Cidr};
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IocKind {
    Ip,
    Domain,
    Ja3,
    Ja3s,
    Ja4,
}

impl IocKind {
    pub fn name(self) -> &'static str {
        match self {
            IocKind::Ip => "ip",
            IocKind::Domain => "domain",
            IocKind::Ja3 => "ja3",
            IocKind::Ja3s => "ja3s",
            IocKind::Ja4 => "ja4",
        }
    }

    /// The signature id an IOC match of this kind alerts with (gid 1, in a range no public
    /// rule set uses).
    pub fn sid(self) -> u32 {
        9_100_001 + self as u32
    }
}

/// One indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ioc {
    pub kind: IocKind,
    /// As written (lower-cased for domains and hashes).
    pub value: String,
    /// The file it came from.
    pub source: String,
    pub description: String,
}

/// An indicator file's problems, per line (the rest still loads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IocReport {
    pub loaded: usize,
    /// (source, line, why)
    pub rejected: Vec<(String, usize, String)>,
}

/// The indicators, indexed for matching.
#[derive(Debug, Default)]
pub struct IocSet {
    pub entries: Vec<Ioc>,
    ips: super::addr::IntervalIndex,
    domains: HashMap<Vec<u8>, u32>,
    /// Domain subtrees: "evil.example" matches it and every name under it.
    suffixes: HashMap<Vec<u8>, u32>,
    hashes: HashMap<(IocKind, Vec<u8>), u32>,
}

/// A CSV line's fields: commas split them except inside double quotes ("" is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut it = line.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '"' if quoted && it.peek() == Some(&'"') => {
                it.next();
                out.last_mut().unwrap_or(&mut String::new()).push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().unwrap_or(&mut String::new()).push(c),
        }
    }
    out.iter_mut().for_each(|f| *f = f.trim().to_string());
    out
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// JA4's shape: t13d1516h2_8daaf6152771_e5627efa2ab1 (q for QUIC, d for DTLS).
fn is_ja4(s: &str) -> bool {
    let p: Vec<&str> = s.split('_').collect();
    p.len() == 3
        && p[0].len() == 10
        && matches!(p[0].as_bytes()[0], b't' | b'q' | b'd')
        && p[1].len() == 12
        && p[2].len() == 12
        && p[1].bytes().chain(p[2].bytes()).all(|b| b.is_ascii_hexdigit())
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        // (an address is not a domain: the top label has a letter)
        && s.rsplit('.').next().is_some_and(|t| t.bytes().any(|b| b.is_ascii_alphabetic()))
}

impl IocSet {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push(&mut self, i: Ioc) -> u32 {
        self.entries.push(i);
        (self.entries.len() - 1) as u32
    }

    /// Reads one indicator file (plain list or CSV); a line that is no indicator is reported
    /// and skipped.
    pub fn add_text(&mut self, text: &str, source: &str, report: &mut IocReport) {
        let mut first = true;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let header_allowed = std::mem::replace(&mut first, false);
            let cols = csv_fields(line);
            let (value, kind_col, desc) = (
                cols[0].as_str(),
                cols.get(1).map_or("", String::as_str),
                cols.get(2..).map(|d| d.join(",")).unwrap_or_default(),
            );
            if header_allowed && matches!(value.to_ascii_lowercase().as_str(), "indicator" | "ioc" | "value") {
                continue; // a CSV header: the first line that is not a comment
            }
            match self.add_one(value, kind_col, source, &desc) {
                Ok(()) => report.loaded += 1,
                Err(e) => report.rejected.push((source.to_string(), n + 1, e)),
            }
        }
    }

    fn add_one(&mut self, value: &str, kind: &str, source: &str, desc: &str) -> Result<(), String> {
        let kind = kind.to_ascii_lowercase();
        let lower = value.to_ascii_lowercase();
        let ioc = |kind, value: String| Ioc { kind, value, source: source.to_string(), description: desc.to_string() };
        // An explicit type column wins; else the value's shape says what it is.
        let as_ip = || -> Option<Cidr> {
            let (a, len) = match value.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
                None => (value, None),
            };
            let ip: IpAddr = a.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = len.unwrap_or(max);
            (len <= max).then(|| Cidr { addr: addr_u128(ip), len: if ip.is_ipv4() { len + 96 } else { len } })
        };
        match kind.as_str() {
            "" | "ip" | "ipv4" | "ipv6" | "cidr" | "ip-dst" | "ip-src" if as_ip().is_some() => {
                let c = as_ip().unwrap_or(Cidr { addr: 0, len: 128 });
                let id = self.push(ioc(IocKind::Ip, value.to_string()));
                self.ips.add(c.range(), id);
                Ok(())
            }
            "" | "ja3" | "ja3s" | "md5" if is_hex32(&lower) => {
                let k = if kind == "ja3s" { IocKind::Ja3s } else { IocKind::Ja3 };
                let id = self.push(ioc(k, lower.clone()));
                self.hashes.insert((k, lower.into_bytes()), id);
                Ok(())
            }
            "" | "ja4" if is_ja4(&lower) => {
                let id = self.push(ioc(IocKind::Ja4, lower.clone()));
                self.hashes.insert((IocKind::Ja4, lower.into_bytes()), id);
                Ok(())
            }
            "" | "domain" | "hostname" | "fqdn" | "domain-suffix" => {
                let (suffix, name) = match lower.strip_prefix("*.").or_else(|| lower.strip_prefix('.')) {
                    Some(n) => (true, n),
                    None => (kind == "domain-suffix", lower.as_str()),
                };
                let name = name.trim_end_matches('.');
                if !is_domain(name) {
                    return Err(format!("{value:?} is not an IP address, CIDR, domain, JA3 or JA4"));
                }
                let id = self.push(ioc(IocKind::Domain, lower.clone()));
                if suffix {
                    self.suffixes.insert(name.as_bytes().to_vec(), id);
                } else {
                    self.domains.insert(name.as_bytes().to_vec(), id);
                }
                Ok(())
            }
            k => Err(format!("{value:?} does not read as type {k:?}")),
        }
    }

    /// Builds the address index (after the files are read).
    pub fn build(&mut self) {
        self.ips.build();
    }

    /// The indicators an address (canonical, as [`addr_u128`]) falls in.
    #[inline]
    pub fn ip(&self, a: u128) -> &[u32] {
        self.ips.get(a)
    }

    pub fn has_ips(&self) -> bool {
        !self.ips.is_empty()
    }

    pub fn has_domains(&self) -> bool {
        !self.domains.is_empty() || !self.suffixes.is_empty()
    }

    pub fn has_hashes(&self) -> bool {
        !self.hashes.is_empty()
    }

    /// The indicator a name matches (exact first, then the nearest listed parent domain).
    pub fn domain(&self, name: &[u8]) -> Option<u32> {
        if name.len() > 253 {
            return None;
        }
        let mut buf = [0u8; 253];
        let n = name.strip_suffix(b".").unwrap_or(name);
        let lower = &mut buf[..n.len()];
        lower.copy_from_slice(n);
        lower.make_ascii_lowercase();
        if let Some(&id) = self.domains.get(&lower[..]) {
            return Some(id);
        }
        if self.suffixes.is_empty() {
            return None;
        }
        let mut at = 0;
        loop {
            if let Some(&id) = self.suffixes.get(&lower[at..]) {
                return Some(id);
            }
            match lower[at..].iter().position(|&b| b == b'.') {
                Some(p) => at += p + 1,
                None => return None,
            }
        }
    }

    /// The indicator a JA3/JA3S hash (lower-case hex) or a JA4 matches.
    pub fn hash(&self, kind: IocKind, v: &[u8]) -> Option<u32> {
        // (A small key built on the stack would avoid the Vec; hashes are per handshake.)
        self.hashes.get(&(kind, v.to_ascii_lowercase())).copied()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn plain_and_csv_lists_every_kind() {
        let mut s = IocSet::default();
        let mut r = IocReport::default();
        s.add_text(
            "# feed\n203.0.113.7\n198.51.100.0/24\n2001:db8::/32\nEvil.Example\n*.bad.example\n.worse.example\n0123456789abcdef0123456789ABCDEF\nt13d1516h2_8daaf6152771_e5627efa2ab1\nnot an indicator\n",
            "plain.txt",
            &mut r,
        );
        s.add_text("indicator,type,description\nfedcba9876543210fedcba9876543210,ja3s,cobalt strike\nc2.example,domain,\"c2, known\"\n10.0.0.1,domain,x\n", "feed.csv", &mut r);
        // A MISP-style export: comments first, then a quoted header, quoted fields with commas
        // and doubled quotes.
        s.add_text(
            "# exported\n\"indicator\",\"type\",\"comment\"\n\"203.0.113.9\" , \"ip-dst\",\"a \"\"quoted\"\" note, with comma\"\n",
            "misp.csv",
            &mut r,
        );
        s.build();
        let e = &s.entries[s.ip(addr_u128("203.0.113.9".parse().unwrap()))[0] as usize];
        assert_eq!((e.value.as_str(), e.description.as_str()), ("203.0.113.9", "a \"quoted\" note, with comma"));
        r.loaded -= 1;
        assert_eq!(r.loaded, 10);
        assert_eq!(r.rejected.len(), 2, "{:?}", r.rejected);
        assert_eq!((r.rejected[0].1, r.rejected[1].1), (10, 4));
        let a = |x: &str| addr_u128(x.parse().unwrap());
        assert_eq!(s.ip(a("203.0.113.7")).len(), 1);
        assert_eq!(s.ip(a("198.51.100.200")).len(), 1);
        assert!(s.ip(a("198.51.101.1")).is_empty() && s.ip(a("203.0.113.8")).is_empty());
        assert_eq!(s.ip(a("2001:db8::9")).len(), 1);
        let dom = |n: &str| s.domain(n.as_bytes()).map(|i| s.entries[i as usize].value.clone());
        assert_eq!(dom("evil.example"), Some("evil.example".into()));
        assert_eq!(dom("www.evil.example"), None, "exact only");
        assert_eq!(dom("BAD.example."), Some("*.bad.example".into()));
        assert_eq!(dom("a.b.worse.example"), Some(".worse.example".into()));
        assert_eq!(dom("notbad.example"), None);
        assert_eq!(dom("C2.EXAMPLE"), Some("c2.example".into()));
        assert_eq!(s.entries[s.domain(b"c2.example").unwrap() as usize].description, "c2, known");
        assert!(s.hash(IocKind::Ja3, b"0123456789ABCDEF0123456789abcdef").is_some());
        assert!(s.hash(IocKind::Ja3s, b"fedcba9876543210fedcba9876543210").is_some());
        assert!(s.hash(IocKind::Ja3, b"fedcba9876543210fedcba9876543210").is_none());
        assert!(s.hash(IocKind::Ja4, b"t13d1516h2_8daaf6152771_e5627efa2ab1").is_some());
    }
}
