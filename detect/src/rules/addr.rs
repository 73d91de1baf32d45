//! Address and port lists of Suricata rules: `any`, CIDRs, ranges, `[..]` groups, `!`
//! negation at any depth, and `$VARIABLES` from the configuration.

use std::collections::HashMap;
use std::net::IpAddr;

/// One CIDR block, in the 128-bit space (IPv4 as IPv4-mapped IPv6, `::ffff:a.b.c.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: u128,
    /// Prefix length in the 128-bit space.
    pub len: u8,
}

impl Cidr {
    /// The first and last address of the block.
    pub fn range(&self) -> (u128, u128) {
        if self.len == 0 {
            return (0, u128::MAX);
        }
        let mask = u128::MAX << (128 - self.len as u32);
        (self.addr & mask, (self.addr & mask) | !mask)
    }

    #[inline]
    pub fn contains(&self, a: u128) -> bool {
        if self.len == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - self.len as u32);
        (a & mask) == (self.addr & mask)
    }
}

/// An address as the flow table keeps it: IPv4 mapped into IPv6.
pub fn addr_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => 0xffff_0000_0000 | u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The flow table's raw address (the address bytes in a `u128`'s native byte order, IPv4 in
/// the first four) as [`addr_u128`] gives it.
#[inline]
pub fn from_raw(raw: u128, v6: bool) -> u128 {
    let b = raw.to_ne_bytes();
    if v6 {
        u128::from_be_bytes(b)
    } else {
        0xffff_0000_0000 | u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u128
    }
}

/// What an address list matches: any of `pos` (all addresses when `pos` is empty and
/// `any_pos`), and none of `neg`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct IpMatch {
    pub pos: Vec<Cidr>,
    pub neg: Vec<Cidr>,
    /// True when the list had no positive item (`any`, or only negations).
    pub any_pos: bool,
    /// `pos` and `neg` as sorted, merged ranges (reputation lists run to hundreds of entries:
    /// a binary search rather than a scan).
    pos_ranges: Vec<(u128, u128)>,
    neg_ranges: Vec<(u128, u128)>,
}

fn ranges(c: &[Cidr]) -> Vec<(u128, u128)> {
    let mut v: Vec<(u128, u128)> = c.iter().map(Cidr::range).collect();
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[inline]
fn in_ranges(r: &[(u128, u128)], a: u128) -> bool {
    let i = r.partition_point(|x| x.0 <= a);
    i > 0 && a <= r[i - 1].1
}

impl IpMatch {
    pub fn any() -> Self {
        IpMatch { any_pos: true, ..IpMatch::default() }
    }

    fn finish(mut self) -> Self {
        self.pos_ranges = ranges(&self.pos);
        self.neg_ranges = ranges(&self.neg);
        self
    }

    pub fn is_any(&self) -> bool {
        self.any_pos && self.neg.is_empty()
    }

    #[inline]
    pub fn matches(&self, a: u128) -> bool {
        (self.any_pos || in_ranges(&self.pos_ranges, a)) && !in_ranges(&self.neg_ranges, a)
    }
}

/// What a port list matches: inclusive ranges, with negations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMatch {
    pub pos: Vec<(u16, u16)>,
    pub neg: Vec<(u16, u16)>,
    pub any_pos: bool,
}

impl PortMatch {
    pub fn any() -> Self {
        PortMatch { pos: Vec::new(), neg: Vec::new(), any_pos: true }
    }

    pub fn is_any(&self) -> bool {
        self.any_pos && self.neg.is_empty()
    }

    #[inline]
    pub fn matches(&self, p: u16) -> bool {
        (self.any_pos || self.pos.iter().any(|&(a, b)| a <= p && p <= b))
            && !self.neg.iter().any(|&(a, b)| a <= p && p <= b)
    }
}

/// Which ids' address blocks hold an address: the address space cut at every block's ends,
/// each interval with the ids covering it (one binary search per lookup). Used for rules with
/// host lists (IP reputation) and for indicator lists.
#[derive(Debug, Default, Clone)]
pub struct IntervalIndex {
    blocks: Vec<((u128, u128), u32)>,
    starts: Vec<u128>,
    lists: Vec<Vec<u32>>,
}

impl IntervalIndex {
    /// Adds the inclusive block `[lo, hi]` for `id` (before [`IntervalIndex::build`]).
    pub fn add(&mut self, (lo, hi): (u128, u128), id: u32) {
        self.blocks.push(((lo, hi), id));
    }

    pub fn build(&mut self) {
        let mut cuts: Vec<u128> = Vec::with_capacity(self.blocks.len() * 2);
        for &((a, b), _) in &self.blocks {
            cuts.push(a);
            if b != u128::MAX {
                cuts.push(b + 1);
            }
        }
        cuts.sort_unstable();
        cuts.dedup();
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); cuts.len()];
        for &((a, b), id) in &self.blocks {
            let first = cuts.partition_point(|&x| x < a);
            for (k, &start) in cuts.iter().enumerate().skip(first) {
                if start > b {
                    break;
                }
                if lists[k].last() != Some(&id) {
                    lists[k].push(id);
                }
            }
        }
        self.starts = cuts;
        self.lists = lists;
        self.blocks = Vec::new();
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The ids whose blocks hold `a`.
    #[inline]
    pub fn get(&self, a: u128) -> &[u32] {
        let i = self.starts.partition_point(|&x| x <= a);
        if i == 0 {
            return &[];
        }
        &self.lists[i - 1]
    }
}

/// Address and port variables (`$HOME_NET`, `$HTTP_PORTS`...), as their unparsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    pub address: HashMap<String, String>,
    pub port: HashMap<String, String>,
}

impl Default for Vars {
    /// Suricata 7's defaults (its shipped suricata.yaml).
    fn default() -> Self {
        let mut address = HashMap::new();
        address.insert("HOME_NET".into(), "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]".into());
        address.insert("EXTERNAL_NET".into(), "!$HOME_NET".into());
        for v in [
            "HTTP_SERVERS",
            "SMTP_SERVERS",
            "SQL_SERVERS",
            "DNS_SERVERS",
            "TELNET_SERVERS",
            "AIM_SERVERS",
            "DC_SERVERS",
            "DNP3_SERVER",
            "DNP3_CLIENT",
            "MODBUS_CLIENT",
            "MODBUS_SERVER",
            "ENIP_CLIENT",
            "ENIP_SERVER",
        ] {
            address.insert(v.into(), "$HOME_NET".into());
        }
        let mut port = HashMap::new();
        for (k, v) in [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
        ] {
            port.insert(k.into(), v.into());
        }
        Vars { address, port }
    }
}

/// Variables nest at most this deep (a variable defined through itself is an error, not a
/// stack overflow).
const MAX_DEPTH: usize = 16;

/// Splits a `[a,b,[c,d]]` group's inside at its top-level commas.
fn split_group(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced brackets in {s:?}"));
                }
            }
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced brackets in {s:?}"));
    }
    out.push(s[start..].trim());
    Ok(out)
}

/// Walks a list: `leaf` gets each non-group, non-variable item with its negation parity.
fn walk(
    s: &str,
    neg: bool,
    vars: &HashMap<String, String>,
    depth: usize,
    leaf: &mut dyn FnMut(&str, bool) -> Result<(), String>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("variables nest deeper than {MAX_DEPTH} (a loop?)"));
    }
    let s = s.trim();
    if s.is_empty() {
        return Err("empty address or port item".into());
    }
    if let Some(rest) = s.strip_prefix('!') {
        return walk(rest, !neg, vars, depth + 1, leaf);
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| format!("unbalanced brackets in {s:?}"))?;
        for item in split_group(inner)? {
            walk(item, neg, vars, depth + 1, leaf)?;
        }
        return Ok(());
    }
    if let Some(name) = s.strip_prefix('$') {
        let v = vars.get(name).ok_or_else(|| format!("undefined variable ${name}"))?;
        return walk(v, neg, vars, depth + 1, leaf);
    }
    leaf(s, neg)
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = a.parse().map_err(|_| format!("bad address {s:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len {
        Some(l) => {
            if let Ok(n) = l.parse::<u8>() {
                n
            } else if let (true, Ok(std::net::IpAddr::V4(m))) = (ip.is_ipv4(), l.parse::<IpAddr>()) {
                // A dotted netmask (255.255.255.0).
                let m = u32::from(m);
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(format!("bad netmask in {s:?}"));
                }
                m.leading_ones() as u8
            } else {
                return Err(format!("bad prefix length in {s:?}"));
            }
        }
        None => max,
    };
    if len > max {
        return Err(format!("prefix length over {max} in {s:?}"));
    }
    let len = if ip.is_ipv4() { len + 96 } else { len };
    Ok(Cidr { addr: addr_u128(ip), len })
}

/// A list's items split by sign, after `any` and negation at any depth: (positives,
/// negatives, whether it matches everything but the negatives).
fn collect<T>(
    s: &str,
    vars: &HashMap<String, String>,
    what: &str,
    mut leaf: impl FnMut(&str) -> Result<T, String>,
) -> Result<(Vec<T>, Vec<T>, bool), String> {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    let (mut any_pos, mut any_neg) = (false, false);
    walk(s, false, vars, 0, &mut |item, negated| {
        if item.eq_ignore_ascii_case("any") {
            if negated {
                any_neg = true;
            } else {
                any_pos = true;
            }
            return Ok(());
        }
        let v = leaf(item)?;
        if negated {
            neg.push(v);
        } else {
            pos.push(v);
        }
        Ok(())
    })?;
    if any_neg {
        return Err(format!("{s:?} matches no {what} (!any)"));
    }
    // Only negations: everything but them.
    let any = any_pos || pos.is_empty();
    if any {
        pos.clear();
    }
    Ok((pos, neg, any))
}

/// Parses an address list (`any`, `1.2.3.4`, `10.0.0.0/8`, `[..]`, `!..`, `$VAR`).
pub fn parse_addresses(s: &str, vars: &Vars) -> Result<IpMatch, String> {
    let (pos, neg, any_pos) = collect(s, &vars.address, "address", parse_cidr)?;
    Ok(IpMatch { pos, neg, any_pos, ..IpMatch::default() }.finish())
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.trim().parse::<u16>().map_err(|_| format!("bad port {s:?}"))
}

/// Parses a port list (`any`, `80`, `1024:`, `:1023`, `80:90`, `[..]`, `!..`, `$VAR`).
pub fn parse_ports(s: &str, vars: &Vars) -> Result<PortMatch, String> {
    let (pos, neg, any_pos) = collect(s, &vars.port, "port", |item| match item.split_once(':') {
        Some((a, b)) => {
            let lo = if a.trim().is_empty() { 0 } else { parse_port(a)? };
            let hi = if b.trim().is_empty() { u16::MAX } else { parse_port(b)? };
            if lo > hi {
                return Err(format!("empty port range {item:?}"));
            }
            Ok((lo, hi))
        }
        None => parse_port(item).map(|p| (p, p)),
    })?;
    Ok(PortMatch { pos, neg, any_pos })
}

#[cfg(test)]
mod test {
    use super::*;

    fn a(s: &str) -> u128 {
        addr_u128(s.parse().unwrap())
    }

    #[test]
    fn addresses_groups_negation_and_variables() {
        let vars = Vars::default();
        let home = parse_addresses("$HOME_NET", &vars).unwrap();
        assert!(home.matches(a("10.1.2.3")) && home.matches(a("192.168.9.9")) && !home.matches(a("8.8.8.8")));
        let ext = parse_addresses("$EXTERNAL_NET", &vars).unwrap();
        assert!(!ext.matches(a("10.1.2.3")) && ext.matches(a("8.8.8.8")) && ext.matches(a("2001:db8::1")));
        let m = parse_addresses("[10.0.0.0/8,!10.1.0.0/16,2001:db8::/32]", &vars).unwrap();
        assert!(m.matches(a("10.2.0.1")) && !m.matches(a("10.1.0.1")) && m.matches(a("2001:db8::5")));
        assert!(!m.matches(a("11.0.0.1")));
        let m = parse_addresses("![1.1.1.1,2.2.2.0/255.255.255.0]", &vars).unwrap();
        assert!(!m.matches(a("1.1.1.1")) && !m.matches(a("2.2.2.200")) && m.matches(a("3.3.3.3")));
        assert!(parse_addresses("any", &vars).unwrap().is_any());
        assert!(parse_addresses("$NOPE", &vars).unwrap_err().contains("undefined variable $NOPE"));
        assert!(parse_addresses("[1.1.1.1", &vars).is_err());
        assert!(parse_addresses("1.1.1.1/33", &vars).is_err());
        assert!(parse_addresses("!any", &vars).is_err());
        let mut looped = Vars::default();
        looped.address.insert("A".into(), "$B".into());
        looped.address.insert("B".into(), "[$A]".into());
        assert!(parse_addresses("$A", &looped).unwrap_err().contains("deeper"));
    }

    #[test]
    fn ports_ranges_negation_and_variables() {
        let vars = Vars::default();
        let m = parse_ports("[$HTTP_PORTS,8000:8100,!8080]", &vars).unwrap();
        assert!(m.matches(80) && m.matches(8000) && m.matches(8100) && !m.matches(8080) && !m.matches(443));
        let m = parse_ports("1024:", &vars).unwrap();
        assert!(m.matches(1024) && m.matches(65535) && !m.matches(1023));
        let m = parse_ports(":1023", &vars).unwrap();
        assert!(m.matches(0) && !m.matches(1024));
        let m = parse_ports("$SHELLCODE_PORTS", &vars).unwrap();
        assert!(!m.matches(80) && m.matches(81));
        let m = parse_ports("$FILE_DATA_PORTS", &vars).unwrap();
        assert!(m.matches(80) && m.matches(110) && m.matches(143) && !m.matches(25));
        assert!(parse_ports("70000", &vars).is_err());
        assert!(parse_ports("90:80", &vars).is_err());
    }
}
