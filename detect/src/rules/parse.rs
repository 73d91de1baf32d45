//! The rule parser: one line of Suricata's rule language to a [`Rule`], or a [`Reject`] that
//! says why not (grouped by its `reason` in load reports, like Suricata's "rules failed").

use super::addr::{parse_addresses, parse_ports, Vars};
use super::*;
use crate::app::http::rules as hb;
use std::collections::HashMap;
use std::fmt;

/// Why a rule was not loaded: `reason` is the category a load report groups by, `detail`
/// the specifics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: String,
    pub detail: String,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.reason, self.detail)
        }
    }
}

fn rej(reason: impl Into<String>, detail: impl Into<String>) -> Reject {
    Reject { reason: reason.into(), detail: detail.into() }
}

fn syntax(detail: impl Into<String>) -> Reject {
    rej("syntax error", detail)
}

/// Classtypes from a `classification.config`: name → (description, priority).
pub type Classifications = HashMap<String, (String, u8)>;

/// Reads `config classification: name,description,priority` lines; returns the table and the
/// lines that did not parse (1-based line numbers).
pub fn parse_classifications(text: &str) -> (Classifications, Vec<usize>) {
    let mut c = Classifications::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some(rest) = l.strip_prefix("config classification:") else {
            bad.push(i + 1);
            continue;
        };
        let parts: Vec<&str> = rest.splitn(3, ',').map(str::trim).collect();
        match (parts.first(), parts.get(1), parts.get(2).and_then(|p| p.parse::<u8>().ok())) {
            (Some(n), Some(d), Some(p)) if !n.is_empty() => {
                c.insert(n.to_string(), (d.to_string(), p));
            }
            _ => bad.push(i + 1),
        }
    }
    (c, bad)
}

/// Splits a rule's header at whitespace outside brackets.
fn header_tokens(h: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = None;
    for (i, c) in h.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth <= 0 {
            if let Some(s) = start.take() {
                out.push(&h[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&h[s..]);
    }
    out
}

/// Splits the option block at unescaped `;` into (keyword, value) pairs. Values keep their
/// escapes (each keyword reads them its own way).
fn split_options(body: &str) -> Result<Vec<(String, Option<String>)>, Reject> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            // Suricata ends an option at any unescaped ';', quoted or not (a ';' in a content
            // or message is written '\;').
            ';' => {
                let opt = std::mem::take(&mut cur);
                let opt = opt.trim();
                if opt.is_empty() {
                    continue;
                }
                match opt.split_once(':') {
                    Some((k, v)) => out.push((k.trim().to_string(), Some(v.trim().to_string()))),
                    None => out.push((opt.to_string(), None)),
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        return Err(syntax(format!("option without its ';': {:?}", cur.trim())));
    }
    Ok(out)
}

/// A quoted string's inside, its escapes (`\"`, `\;`, `\\`) resolved.
fn unquote(v: &str) -> Result<String, Reject> {
    let v = v.trim();
    let inner = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .ok_or_else(|| syntax(format!("expected a quoted string, got {v:?}")))?;
    let mut out = String::with_capacity(inner.len());
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n) => out.push(n),
                None => return Err(syntax("string ends in a backslash")),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `content`'s value: optional `!`, a quoted string with `|41 42|` hex sections.
fn content_bytes(v: &str) -> Result<(Vec<u8>, bool), Reject> {
    let v = v.trim();
    let (neg, v) = match v.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, v),
    };
    let s = unquote(v)?;
    let mut out = Vec::with_capacity(s.len());
    let mut hex = false;
    let mut nib: Option<u8> = None;
    for c in s.bytes() {
        if c == b'|' {
            if nib.is_some() {
                return Err(syntax(format!("odd hex digits in content {v}")));
            }
            hex = !hex;
            continue;
        }
        if hex {
            if c == b' ' {
                continue;
            }
            let d = (c as char).to_digit(16).ok_or_else(|| syntax(format!("bad hex in content {v}")))? as u8;
            match nib.take() {
                Some(h) => out.push(h << 4 | d),
                None => nib = Some(d),
            }
        } else {
            out.push(c);
        }
    }
    if hex {
        return Err(syntax(format!("unclosed hex section in content {v}")));
    }
    if out.is_empty() {
        return Err(syntax("empty content"));
    }
    Ok((out, neg))
}

fn int<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, Reject> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        if let Ok(n) = u64::from_str_radix(h, 16) {
            if let Ok(t) = n.to_string().parse::<T>() {
                return Ok(t);
            }
        }
    }
    v.parse::<T>().map_err(|_| {
        if v.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            rej("byte_extract variables", format!("{what}:{v}"))
        } else {
            syntax(format!("bad number for {what}: {v:?}"))
        }
    })
}

/// Suricata's integer test syntax.
pub fn parse_num(v: &str, what: &str) -> Result<Num, Reject> {
    let v = v.trim();
    if let Some((a, b)) = v.split_once("<>") {
        let (a, b) = (int::<u64>(a, what)?, int::<u64>(b, what)?);
        if a >= b {
            return Err(syntax(format!("{what}: empty range {v}")));
        }
        return Ok(Num::Between(a, b));
    }
    for (p, f) in [
        ("<=", Num::Le as fn(u64) -> Num),
        (">=", Num::Ge),
        ("<", Num::Lt),
        (">", Num::Gt),
        ("!", Num::Ne),
        ("=", Num::Eq),
    ] {
        if let Some(r) = v.strip_prefix(p) {
            return Ok(f(int(r, what)?));
        }
    }
    if let Some((a, b)) = v.split_once('-') {
        if !a.is_empty() {
            let (a, b) = (int::<u64>(a, what)?, int::<u64>(b, what)?);
            if a >= b {
                return Err(syntax(format!("{what}: empty range {v}")));
            }
            return Ok(Num::Between(a, b));
        }
    }
    Ok(Num::Eq(int(v, what)?))
}

fn parse_flags(v: &str) -> Result<FlagsTest, Reject> {
    let (main, ignore) = match v.split_once(',') {
        Some((m, i)) => (m.trim(), Some(i.trim())),
        None => (v.trim(), None),
    };
    let bits = |s: &str| -> Result<u8, Reject> {
        let mut f = 0u8;
        for c in s.chars() {
            f |= match c.to_ascii_uppercase() {
                'F' => 0x01,
                'S' => 0x02,
                'R' => 0x04,
                'P' => 0x08,
                'A' => 0x10,
                'U' => 0x20,
                'E' | '2' => 0x40,
                'C' | '1' => 0x80,
                '0' => 0,
                _ => return Err(syntax(format!("flags: unknown flag {c:?}"))),
            };
        }
        Ok(f)
    };
    let (mode, rest) = match main.chars().next() {
        Some('+') => (FlagsMode::All, &main[1..]),
        Some('*') => (FlagsMode::Any, &main[1..]),
        Some('!') => (FlagsMode::Not, &main[1..]),
        _ => (FlagsMode::Exact, main),
    };
    // The modifier may also follow the letters ("SA+").
    let (mode, rest) = match (mode, rest.chars().last()) {
        (FlagsMode::Exact, Some('+')) => (FlagsMode::All, &rest[..rest.len() - 1]),
        (FlagsMode::Exact, Some('*')) => (FlagsMode::Any, &rest[..rest.len() - 1]),
        (m, _) => (m, rest),
    };
    Ok(FlagsTest { flags: bits(rest)?, ignore: ignore.map(bits).transpose()?.unwrap_or(0), mode })
}

fn parse_flow(v: &str) -> Result<FlowOpts, Reject> {
    let mut f = FlowOpts::default();
    for o in v.split(',').map(str::trim) {
        match o {
            "established" => f.established = true,
            "not_established" => f.not_established = true,
            "stateless" => f.stateless = true,
            "to_server" | "from_client" => f.to_server = Some(true),
            "to_client" | "from_server" => f.to_server = Some(false),
            "only_stream" => f.only_stream = true,
            "no_stream" => f.no_stream = true,
            "only_frag" | "no_frag" => return Err(rej("unsupported option", format!("flow:{o}"))),
            _ => return Err(syntax(format!("flow: unknown option {o:?}"))),
        }
    }
    if f.established && f.not_established {
        return Err(syntax("flow: established and not_established"));
    }
    Ok(f)
}

fn parse_track(v: &str) -> Result<Track, Reject> {
    match v {
        "by_src" => Ok(Track::BySrc),
        "by_dst" => Ok(Track::ByDst),
        "by_rule" => Ok(Track::ByRule),
        "by_both" => Ok(Track::ByBoth),
        _ => Err(syntax(format!("unknown track {v:?}"))),
    }
}

fn parse_threshold(v: &str, filter: bool) -> Result<Threshold, Reject> {
    let mut kind = if filter { Some(ThresholdKind::DetectionFilter) } else { None };
    let (mut track, mut count, mut seconds) = (None, None, None);
    for part in v.split(',').map(str::trim) {
        let (k, val) = part.split_once(char::is_whitespace).map(|(k, v)| (k, v.trim())).unwrap_or((part, ""));
        match k {
            "type" if !filter => {
                kind = Some(match val {
                    "limit" => ThresholdKind::Limit,
                    "threshold" => ThresholdKind::Threshold,
                    "both" => ThresholdKind::Both,
                    _ => return Err(syntax(format!("threshold: unknown type {val:?}"))),
                })
            }
            "track" => {
                let t = parse_track(val)?;
                if filter && matches!(t, Track::ByRule | Track::ByBoth) {
                    // As Suricata 7, which refuses the rule.
                    return Err(syntax(format!("detection_filter: track {val} (by_src or by_dst only)")));
                }
                track = Some(t)
            }
            "count" => count = Some(int::<u32>(val, "count")?),
            "seconds" => seconds = Some(int::<u32>(val, "seconds")?),
            _ => return Err(syntax(format!("threshold: unknown part {part:?}"))),
        }
    }
    match (kind, track, count, seconds) {
        (Some(kind), Some(track), Some(count), Some(seconds)) => Ok(Threshold { kind, track, count, seconds }),
        _ => Err(syntax(format!("incomplete threshold/detection_filter {v:?}"))),
    }
}

fn parse_flowbits(v: &str, r: &mut Rule) -> Result<(), Reject> {
    let (op, name) = match v.split_once(',') {
        Some((o, n)) => (o.trim(), Some(n.trim())),
        None => (v.trim(), None),
    };
    let one = |n: Option<&str>| -> Result<String, Reject> {
        match n {
            Some(n) if !n.is_empty() && !n.contains(['|', '&']) => Ok(n.to_string()),
            Some(n) if !n.is_empty() => Err(rej("unsupported option", format!("flowbits:{op},{n} (combined names)"))),
            _ => Err(syntax(format!("flowbits:{op} without a name"))),
        }
    };
    match op {
        "noalert" => r.noalert = true,
        "set" => r.flowbits.push(FlowbitOp::Set(one(name)?)),
        "unset" => r.flowbits.push(FlowbitOp::Unset(one(name)?)),
        "toggle" => r.flowbits.push(FlowbitOp::Toggle(one(name)?)),
        "isset" | "isnotset" => {
            let n = name.filter(|n| !n.is_empty()).ok_or_else(|| syntax(format!("flowbits:{op} without a name")))?;
            if op == "isset" && n.contains('&') && !n.contains('|') {
                // a&b: each must be set.
                for part in n.split('&') {
                    r.flowbits.push(FlowbitOp::IsSet(vec![part.trim().to_string()]));
                }
            } else if n.contains('&') {
                return Err(rej("unsupported option", format!("flowbits:{op},{n} (combined names)")));
            } else {
                let names: Vec<String> = n.split('|').map(|x| x.trim().to_string()).collect();
                if op == "isset" {
                    r.flowbits.push(FlowbitOp::IsSet(names));
                } else {
                    r.flowbits.push(FlowbitOp::IsNotSet(names));
                }
            }
        }
        _ => return Err(syntax(format!("flowbits: unknown operation {op:?}"))),
    }
    Ok(())
}

fn num_format(opts: &[&str]) -> NumFormat {
    if opts.contains(&"string") {
        let base = if opts.contains(&"hex") {
            16
        } else if opts.contains(&"oct") {
            8
        } else {
            10
        };
        NumFormat::String(base)
    } else if opts.contains(&"little") {
        NumFormat::Binary(Endian::Little)
    } else {
        NumFormat::Binary(Endian::Big)
    }
}

fn check_byte_opts(what: &str, opts: &[&str], extra: &[&str]) -> Result<(), Reject> {
    for o in opts {
        let k = o.split_whitespace().next().unwrap_or("");
        if k == "dce" {
            return Err(rej("unsupported option", format!("{what}: dce")));
        }
        if !["relative", "big", "little", "string", "hex", "dec", "oct", "bitmask"].contains(&k) && !extra.contains(&k)
        {
            return Err(syntax(format!("{what}: unknown option {o:?}")));
        }
    }
    Ok(())
}

fn bitmask(opts: &[&str]) -> Result<Option<u64>, Reject> {
    opts.iter().find_map(|o| o.strip_prefix("bitmask")).map(|m| int::<u64>(m.trim(), "bitmask")).transpose()
}

fn parse_byte_test(v: &str) -> Result<ByteTest, Reject> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 4 {
        return Err(syntax(format!("byte_test needs 4 arguments: {v:?}")));
    }
    let nbytes = int::<u8>(parts[0], "byte_test")?;
    let (negated, op) = match parts[1].strip_prefix('!') {
        Some(o) => (true, o.trim()),
        None => (false, parts[1]),
    };
    let op = match op {
        "<" => ByteOp::Lt,
        ">" => ByteOp::Gt,
        "<=" => ByteOp::Le,
        ">=" => ByteOp::Ge,
        "=" => ByteOp::Eq,
        "&" => ByteOp::And,
        "^" => ByteOp::Or,
        _ => return Err(syntax(format!("byte_test: unknown operator {op:?}"))),
    };
    let value = int::<u64>(parts[2], "byte_test")?;
    let offset = int::<i32>(parts[3], "byte_test")?;
    let opts = &parts[4..];
    check_byte_opts("byte_test", opts, &[])?;
    let format = num_format(opts);
    // 0 bytes with `string`: the digits that are there (as Suricata reads it).
    if matches!(format, NumFormat::Binary(_)) && !matches!(nbytes, 1..=8) || nbytes > 20 {
        return Err(syntax(format!("byte_test: {nbytes} bytes")));
    }
    Ok(ByteTest {
        nbytes,
        op,
        negated,
        value,
        offset,
        relative: opts.contains(&"relative"),
        format,
        bitmask: bitmask(opts)?,
    })
}

fn parse_byte_jump(v: &str) -> Result<ByteJump, Reject> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.len() < 2 {
        return Err(syntax(format!("byte_jump needs 2 arguments: {v:?}")));
    }
    let nbytes = int::<u8>(parts[0], "byte_jump")?;
    let offset = int::<i32>(parts[1], "byte_jump")?;
    let opts = &parts[2..];
    check_byte_opts("byte_jump", opts, &["multiplier", "align", "from_beginning", "from_end", "post_offset"])?;
    let arg = |k: &str| opts.iter().find_map(|o| o.strip_prefix(k)).map(str::trim);
    let format = num_format(opts);
    if matches!(format, NumFormat::Binary(_)) && !matches!(nbytes, 1..=8) || nbytes == 0 || nbytes > 10 {
        return Err(syntax(format!("byte_jump: {nbytes} bytes")));
    }
    Ok(ByteJump {
        nbytes,
        offset,
        relative: opts.contains(&"relative"),
        format,
        multiplier: arg("multiplier").map(|m| int::<u32>(m, "multiplier")).transpose()?.unwrap_or(1),
        align: opts.contains(&"align"),
        from_beginning: opts.contains(&"from_beginning"),
        from_end: opts.contains(&"from_end"),
        post_offset: arg("post_offset").map(|m| int::<i32>(m, "post_offset")).transpose()?.unwrap_or(0),
        bitmask: bitmask(opts)?,
    })
}

/// `pcre:"/re/flags"` → the compiled regex, and the buffer a flag names.
fn parse_pcre(v: &str) -> Result<(Pcre, Option<Buf>), Reject> {
    let v = v.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, v),
    };
    let inner = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .ok_or_else(|| syntax(format!("pcre: expected a quoted /re/: {v}")))?;
    // Only \" and \; are the rule language's escapes here; everything else is the regex's.
    let inner = inner.replace("\\\"", "\"").replace("\\;", ";");
    let body = inner.strip_prefix('/').ok_or_else(|| syntax(format!("pcre: expected /re/flags: {inner}")))?;
    let end = body.rfind('/').ok_or_else(|| syntax(format!("pcre: expected /re/flags: {inner}")))?;
    let (re, flags) = (&body[..end], &body[end + 1..]);
    let mut inline = String::from("(?");
    let (mut relative, mut buf, mut anchored) = (false, None, false);
    for f in flags.chars() {
        match f {
            'i' => inline.push('i'),
            's' => inline.push('s'),
            'm' => inline.push('m'),
            'x' => inline.push('x'),
            'G' => inline.push('U'),
            'A' => anchored = true,
            'R' => relative = true,
            'E' | 'B' | 'O' => {}
            'U' => buf = Some(hb::URI),
            'I' => buf = Some(hb::URI_RAW),
            'P' => buf = Some(hb::REQUEST_BODY),
            'Q' => buf = Some(hb::FILE_DATA),
            'H' => buf = Some(hb::HEADER),
            'M' => buf = Some(hb::METHOD),
            'C' => buf = Some(hb::COOKIE),
            'S' => buf = Some(hb::STAT_CODE),
            'V' => buf = Some(hb::USER_AGENT),
            'W' => buf = Some(hb::HOST),
            'D' => buf = Some(hb::HEADER_RAW),
            'Y' => buf = Some(hb::STAT_MSG),
            'Z' => buf = Some(hb::HOST_RAW),
            'K' => return Err(rej("unsupported buffer", format!("pcre flag {f}"))),
            _ => return Err(syntax(format!("pcre: unknown flag {f:?}"))),
        }
    }
    // Bytes, not UTF-8: \xff is the byte, \w ASCII (as PCRE without its UTF flag).
    inline.push_str("-u)");
    let pattern = if anchored { format!("{inline}^(?:{re})") } else { format!("{inline}{re}") };
    let compiled = regex::bytes::RegexBuilder::new(&pattern).size_limit(4 << 20).build().map_err(|e| {
        let m = e.to_string();
        let what = if m.contains("look-around") {
            "look-around"
        } else if m.contains("backreference") {
            "backreference"
        } else if m.contains("size limit") {
            "too large"
        } else if m.contains("unrecognized escape") {
            "an escape the regex crate does not know"
        } else if m.contains("unrecognized flag") || m.contains("repetition operator") {
            "a PCRE-only construct (atomic group, possessive quantifier, or similar)"
        } else {
            "other"
        };
        rej(format!("pcre: {what}"), format!("/{re}/{flags}"))
    })?;
    Ok((Pcre { re: compiled, negated, relative, source: format!("/{re}/{flags}") }, buf))
}

/// Content modifiers (old-style buffer names after a `content`).
fn modifier_buf(k: &str) -> Option<Buf> {
    match k {
        "http_uri" | "http_raw_uri" | "http_method" | "http_host" | "http_raw_host" | "http_user_agent"
        | "http_stat_code" | "http_stat_msg" | "http_header" | "http_raw_header" | "http_cookie"
        | "http_client_body" | "http_server_body" | "http_content_type" | "http_header_names" => Buf::from_keyword(k),
        _ => None,
    }
}

/// Keywords this sensor knows of but does not implement: rejected with this reason.
const UNSUPPORTED: &[&str] = &[
    "byte_extract",
    "byte_math",
    "xbits",
    "flowint",
    "stream_size",
    "base64_decode",
    "base64_data",
    "asn1",
    "tag",
    "app-layer-event",
    "app-layer-protocol",
    "ftpbounce",
    "ssh_proto",
    "ssh.proto",
    "ja3.string",
    "tls.version",
    "tls.cert_serial",
    "tls_cert_serial",
    "tls.cert_fingerprint",
    "tls_cert_notbefore",
    "tls_cert_notafter",
    "tls_cert_expired",
    "tls_cert_valid",
    "ssl_state",
    "ssl_version",
    "tls.store",
    "http.cookie.raw",
    "http_raw_cookie",
    "filemagic",
    "filename",
    "fileext",
    "filestore",
    "filemd5",
    "filesha256",
    "filesize",
    "file.name",
    "file.magic",
    "lua",
    "luajit",
    "replace",
    "window",
    "seq",
    "ack",
    "id",
    "fragbits",
    "fragoffset",
    "tos",
    "ipopts",
    "sameip",
    "icmp_seq",
    "rpc",
    "dnp3_func",
    "dce_iface",
    "dce_opnum",
    "dce_stub_data",
    "uricontent",
    "to_lowercase",
    "to_uppercase",
    "strip_whitespace",
    "compress_whitespace",
    "url_decode",
    "xor",
    "pcrexform",
    "to_md5",
    "to_sha1",
    "to_sha256",
    "header_lowercase",
    "strip_pseudo_headers",
    "dns.opcode",
    "dns.answer.name",
    "dns.query.name",
    "entropy",
    "config",
    "prefilter",
    "requires",
    "datarep",
    "dataset",
    "iprep",
    "geoip",
    "bypass",
    "transforms",
];

/// Parses one rule line. Comments and blank lines are the caller's to skip.
pub fn parse_rule(line: &str, vars: &Vars, classes: &Classifications) -> Result<Rule, Reject> {
    let line = line.trim();
    let open = line.find('(').ok_or_else(|| syntax("no option block '('"))?;
    let body = line[open + 1..].trim_end();
    let body = body.strip_suffix(')').ok_or_else(|| syntax("option block does not end with ')'"))?;
    let h = header_tokens(&line[..open]);
    if h.len() != 7 {
        return Err(syntax(format!("header has {} fields, not 7: {:?}", h.len(), &line[..open].trim())));
    }
    let action = match h[0] {
        // An IDS sensor drops and rejects nothing: as Suricata in IDS mode, these rules alert
        // (EVE `action: "allowed"`), so a suricata-update set with drop.conf applied still fires.
        "alert" | "drop" | "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Alert,
        "pass" => Action::Pass,
        a => return Err(syntax(format!("unknown action {a:?}"))),
    };
    let proto = match h[1].to_ascii_lowercase().as_str() {
        "ip" | "pkthdr" => Proto::Ip,
        "tcp" => Proto::Tcp,
        "tcp-pkt" => Proto::TcpPkt,
        "tcp-stream" => Proto::TcpStream,
        "udp" => Proto::Udp,
        "icmp" | "icmpv4" | "icmpv6" => Proto::Icmp,
        p => match crate::app::AppProto::from_rule_name(p) {
            Some(a) => Proto::App(a),
            None => return Err(rej("unsupported protocol", p)),
        },
    };
    let addr = |s: &str| parse_addresses(s, vars).map_err(|e| rej("bad address", e));
    let port = |s: &str| parse_ports(s, vars).map_err(|e| rej("bad port", e));
    let bidirectional = match h[4] {
        "->" => false,
        "<>" => true,
        "<-" => return Err(syntax("'<-' is not a direction (use '->' with the ends swapped)")),
        d => return Err(syntax(format!("unknown direction {d:?}"))),
    };
    let mut r = Rule {
        action,
        proto,
        src: addr(h[2])?,
        sport: port(h[3])?,
        dst: addr(h[5])?,
        dport: port(h[6])?,
        bidirectional,
        msg: String::new(),
        sid: 0,
        rev: 0,
        gid: 1,
        classtype: None,
        priority: 0,
        category: String::new(),
        references: Vec::new(),
        metadata: Vec::new(),
        target: None,
        flow: FlowOpts::default(),
        flags: None,
        itype: None,
        icode: None,
        icmp_id: None,
        ttl: None,
        ip_proto: None,
        dsize: None,
        urilen: None,
        bufs: Vec::new(),
        flowbits: Vec::new(),
        noalert: false,
        threshold: None,
        detection_filter: None,
        suppress: Vec::new(),
    };
    if proto == Proto::Icmp && !(r.sport.is_any() && r.dport.is_any()) {
        return Err(syntax("ports in an ICMP rule"));
    }
    // Tests in rule order, each with its buffer; the last content for modifiers.
    // (buffer, dot-prefixed, test): a transform after tests on a buffer starts another
    // instance of it (as Suricata 7 makes a new buffer for a new transform list).
    let mut tests: Vec<(Buf, bool, Test)> = Vec::new();
    let mut sticky = Buf::PAYLOAD;
    let mut sticky_dot = false;
    let mut dot_pending = false;
    let mut last_content: Option<usize> = None;
    let mut has_sid = false;
    let mut priority: Option<u8> = None;
    let opts = split_options(body)?;
    for (k, v) in &opts {
        let k = k.as_str();
        let val = || v.as_deref().ok_or_else(|| syntax(format!("{k} needs a value")));
        let content = |tests: &mut Vec<(Buf, bool, Test)>, last: Option<usize>| -> Result<usize, Reject> {
            match last {
                Some(i) if matches!(tests[i].2, Test::Content(_)) => Ok(i),
                _ => Err(syntax(format!("{k} without a content before it"))),
            }
        };
        match k {
            "msg" => r.msg = unquote(val()?)?,
            "sid" => {
                r.sid = int(val()?, "sid")?;
                has_sid = true;
            }
            "rev" => r.rev = int(val()?, "rev")?,
            "gid" => r.gid = int(val()?, "gid")?,
            "priority" => priority = Some(int(val()?, "priority")?),
            "classtype" => {
                let c = val()?.trim().to_string();
                if !classes.contains_key(&c) {
                    return Err(rej("unknown classtype", c));
                }
                r.classtype = Some(c);
            }
            "reference" => r.references.push(val()?.trim().to_string()),
            "metadata" => {
                for kv in val()?.split(',') {
                    let kv = kv.trim();
                    if let Some((a, b)) = kv.split_once(char::is_whitespace) {
                        r.metadata.push((a.trim().to_string(), b.trim().to_string()));
                    } else if !kv.is_empty() {
                        r.metadata.push((kv.to_string(), String::new()));
                    }
                }
            }
            "target" => {
                r.target = Some(match val()?.trim() {
                    "src_ip" => Target::SrcIp,
                    "dest_ip" => Target::DestIp,
                    t => return Err(syntax(format!("target: {t:?}"))),
                })
            }
            "flow" => r.flow = parse_flow(val()?)?,
            "flags" => r.flags = Some(parse_flags(val()?)?),
            "itype" => r.itype = Some(parse_num(val()?, k)?),
            "icode" => r.icode = Some(parse_num(val()?, k)?),
            "icmp_id" => r.icmp_id = Some(int(val()?, k)?),
            "ttl" => r.ttl = Some(parse_num(val()?, k)?),
            "ip_proto" => {
                let p = val()?.trim();
                let name = p.trim_start_matches(['!', '<', '>', '=']);
                let num = match name.to_ascii_lowercase().as_str() {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "igmp" => Some(2),
                    "gre" => Some(47),
                    "esp" => Some(50),
                    "ah" => Some(51),
                    "ipv6-icmp" | "icmpv6" => Some(58),
                    "sctp" => Some(132),
                    "pim" => Some(103),
                    _ => None,
                };
                let text = match num {
                    Some(n) => format!("{}{n}", &p[..p.len() - name.len()]),
                    None => p.to_string(),
                };
                r.ip_proto = Some(parse_num(&text, k)?);
            }
            "dsize" => r.dsize = Some(parse_num(val()?, k)?),
            "urilen" => {
                let v = val()?;
                let (n, mode) = match v.split_once(',') {
                    Some((n, m)) => (n, m.trim()),
                    None => (v, "norm"),
                };
                if mode != "norm" && mode != "raw" {
                    return Err(syntax(format!("urilen: {mode:?}")));
                }
                r.urilen = Some(parse_num(n, k)?);
            }
            "content" => {
                let (pattern, negated) = content_bytes(val()?)?;
                tests.push((sticky, sticky_dot, Test::Content(Content { pattern, negated, ..Content::default() })));
                dot_pending = false;
                last_content = Some(tests.len() - 1);
            }
            "nocase" | "rawbytes" | "fast_pattern" | "startswith" | "endswith" | "offset" | "depth" | "distance"
            | "within" => {
                let i = content(&mut tests, last_content)?;
                let Test::Content(c) = &mut tests[i].2 else { unreachable!() };
                match k {
                    "nocase" => c.nocase = true,
                    "rawbytes" => {}
                    "fast_pattern" => c.fast_pattern = true,
                    "startswith" => c.startswith = true,
                    "endswith" => c.endswith = true,
                    "offset" => c.offset = Some(int(val()?, k)?),
                    "depth" => c.depth = Some(int(val()?, k)?),
                    "distance" => c.distance = Some(int(val()?, k)?),
                    _ => c.within = Some(int(val()?, k)?),
                }
            }
            "pcre" => {
                let (p, b) = parse_pcre(val()?)?;
                tests.push((b.unwrap_or(sticky), b.is_none() && sticky_dot, Test::Pcre(p)));
                dot_pending = false;
            }
            "isdataat" => {
                let v = val()?;
                let parts: Vec<&str> = v.split(',').map(str::trim).collect();
                let (negated, n) = match parts[0].strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, parts[0]),
                };
                let relative = parts[1..].contains(&"relative");
                if let Some(o) = parts[1..].iter().find(|o| **o != "relative" && **o != "rawbytes") {
                    return Err(syntax(format!("isdataat: unknown option {o:?}")));
                }
                tests.push((sticky, sticky_dot, Test::IsDataAt { n: int(n, k)?, negated, relative }));
            }
            "byte_test" => tests.push((sticky, sticky_dot, Test::ByteTest(parse_byte_test(val()?)?))),
            "byte_jump" => tests.push((sticky, sticky_dot, Test::ByteJump(parse_byte_jump(val()?)?))),
            "bsize" => tests.push((sticky, sticky_dot, Test::Bsize(parse_num(val()?, k)?))),
            "dotprefix" => {
                if sticky == Buf::PAYLOAD {
                    return Err(syntax("dotprefix without a sticky buffer before it"));
                }
                sticky_dot = true;
                dot_pending = true;
                last_content = None;
            }
            "flowbits" => parse_flowbits(val()?, &mut r)?,
            "noalert" => r.noalert = true,
            "threshold" => r.threshold = Some(parse_threshold(val()?, false)?),
            "detection_filter" => r.detection_filter = Some(parse_threshold(val()?, true)?),
            _ => {
                if let Some(b) = modifier_buf(k) {
                    let i = content(&mut tests, last_content)?;
                    tests[i].0 = b;
                    tests[i].1 = false;
                } else if let Some(b) = Buf::from_keyword(k) {
                    if v.is_some() {
                        return Err(syntax(format!("{k} takes no value")));
                    }
                    sticky = b;
                    sticky_dot = false;
                    last_content = None;
                } else if UNSUPPORTED.contains(&k) {
                    return Err(rej("unsupported keyword", k));
                } else {
                    return Err(rej("unknown keyword", k));
                }
            }
        }
    }
    if !has_sid {
        return Err(syntax("no sid"));
    }
    if r.threshold.is_some() && r.detection_filter.is_some() {
        // As Suricata: one or the other.
        return Err(syntax("threshold and detection_filter in one rule"));
    }
    if r.msg.is_empty() {
        r.msg = format!("sid {}", r.sid);
    }
    let class = r.classtype.as_ref().and_then(|c| classes.get(c));
    r.category = class.map(|c| c.0.clone()).unwrap_or_default();
    r.priority = priority.or(class.map(|c| c.1)).unwrap_or(3);
    // Group the tests by buffer instance, keeping their order within each.
    for (b, dot, t) in tests {
        match r.bufs.iter_mut().find(|g| g.buf == b && g.dotprefix == dot) {
            Some(g) => g.tests.push(t),
            None => r.bufs.push(BufTests { buf: b, dotprefix: dot, tests: vec![t] }),
        }
    }
    for b in &r.bufs {
        check_buffer(&r, b)?;
    }
    if dot_pending {
        return Err(syntax("dotprefix with no test after it"));
    }
    check_header(&r)?;
    Ok(r)
}

/// What the sensor does not keep yet, and rules that cannot match as written.
fn check_buffer(r: &Rule, g: &BufTests) -> Result<(), Reject> {
    if g.buf == hb::HOST {
        // Suricata refuses these: its http.host is meant to be lower case.
        for t in &g.tests {
            if let Test::Content(c) = t {
                if !c.nocase && c.pattern.iter().any(u8::is_ascii_uppercase) {
                    return Err(rej(
                        "http.host content with upper case (Suricata rejects it too)",
                        format!("sid {}", r.sid),
                    ));
                }
            }
        }
    }
    if let (Some(a), Some(b)) = (r.proto.app(), g.buf.app()) {
        if a != b {
            return Err(syntax(format!("{} in a {:?} rule", g.buf.name(), r.proto)));
        }
    }
    if let Some(b) = r.bufs.iter().filter_map(|x| x.buf.app()).find(|a| Some(*a) != g.buf.app()) {
        if g.buf.app().is_some() {
            return Err(syntax(format!("buffers of {b:?} and {:?} in one rule", g.buf.app())));
        }
    }
    for t in &g.tests {
        if let Test::Content(c) = t {
            if c.startswith && (c.offset.is_some() || c.depth.is_some() || c.is_relative()) {
                return Err(syntax("startswith with offset/depth/distance/within"));
            }
            if let Some(d) = c.depth {
                if (d as usize) < c.pattern.len() {
                    return Err(syntax("depth shorter than the content"));
                }
            }
            if let Some(w) = c.within {
                if (w as usize) < c.pattern.len() {
                    return Err(syntax("within shorter than the content"));
                }
            }
        }
    }
    Ok(())
}

fn check_header(r: &Rule) -> Result<(), Reject> {
    let icmp_opts = r.itype.is_some() || r.icode.is_some() || r.icmp_id.is_some();
    if icmp_opts && !matches!(r.proto, Proto::Icmp | Proto::Ip) {
        return Err(syntax("itype/icode/icmp_id in a non-ICMP rule"));
    }
    if r.flags.is_some() && r.proto.ip_protos().is_some_and(|p| p != [6]) {
        return Err(syntax("flags in a non-TCP rule"));
    }
    if r.urilen.is_some() && r.app().is_some_and(|a| a != crate::app::AppProto::Http) {
        return Err(syntax("urilen in a non-HTTP rule"));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn classes() -> Classifications {
        parse_classifications(
            "# comment\nconfig classification: trojan-activity,A Network Trojan was detected,1\nconfig classification: misc-activity,Misc activity,3\nconfig classification: bad-unknown,Potentially Bad Traffic, 2\n",
        )
        .0
    }

    fn p(s: &str) -> Result<Rule, Reject> {
        parse_rule(s, &Vars::default(), &classes())
    }

    #[test]
    fn a_full_http_rule() {
        let r = p(r#"alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (msg:"ET TEST \"quoted\" \; semi"; flow:established,to_server; http.method; content:"POST"; http.uri; content:"/gate.php"; fast_pattern; nocase; content:"id="; distance:0; within:20; pcre:"/id=[0-9a-f]{16}$/Ri"; http.user_agent; content:"Mozilla|2f|4.0"; startswith; reference:url,example.com/x; classtype:trojan-activity; sid:2000001; rev:3; metadata:created_at 2020_01_01, signature_severity Major;)"#).unwrap();
        assert_eq!(r.msg, r#"ET TEST "quoted" ; semi"#);
        assert_eq!((r.sid, r.rev, r.gid, r.priority), (2000001, 3, 1, 1));
        assert_eq!(r.category, "A Network Trojan was detected");
        assert_eq!(r.flow, FlowOpts { established: true, to_server: Some(true), ..FlowOpts::default() });
        assert_eq!(r.bufs.iter().map(|b| b.buf).collect::<Vec<_>>(), [hb::METHOD, hb::URI, hb::USER_AGENT]);
        let Test::Content(c) = &r.bufs[1].tests[0] else { panic!() };
        assert!(c.fast_pattern && c.nocase && c.pattern == b"/gate.php");
        let Test::Content(c) = &r.bufs[1].tests[1] else { panic!() };
        assert_eq!((c.distance, c.within), (Some(0), Some(20)));
        let Test::Pcre(re) = &r.bufs[1].tests[2] else { panic!() };
        assert!(re.relative && re.re.is_match(b"ID=0123456789ABCDEF"));
        let Test::Content(c) = &r.bufs[2].tests[0] else { panic!() };
        assert!(c.startswith && c.pattern == b"Mozilla/4.0");
        assert_eq!(r.metadata[1], ("signature_severity".to_string(), "Major".to_string()));
        assert!(r.dport.matches(80) && !r.dport.matches(81));
        assert_eq!(r.app(), Some(crate::app::AppProto::Http));
    }

    #[test]
    fn old_style_modifiers_and_hex() {
        let r = p(r#"alert tcp any any -> any 80 (msg:"m"; content:"GET"; http_method; content:"|0d 0a|X-Evil|3a|"; content:"abc"; http_uri; sid:1;)"#).unwrap();
        assert_eq!(r.bufs.iter().map(|b| b.buf).collect::<Vec<_>>(), [hb::METHOD, Buf::PAYLOAD, hb::URI]);
        let Test::Content(c) = &r.bufs[1].tests[0] else { panic!() };
        assert_eq!(c.pattern, b"\r\nX-Evil:");
        assert_eq!(r.priority, 3);
    }

    #[test]
    fn packet_options() {
        let r = p(r#"alert tcp any any -> any any (msg:"syn"; flags:S,12; ttl:<5; dsize:0; sid:2;)"#).unwrap();
        let f = r.flags.unwrap();
        assert!(f.test(0x02) && f.test(0x02 | 0x80) && !f.test(0x12));
        assert!(r.ttl.unwrap().test(4) && !r.ttl.unwrap().test(5));
        let r = p(r#"alert icmp any any -> any any (msg:"i"; itype:8; icode:0; icmp_id:1234; sid:3;)"#).unwrap();
        assert_eq!((r.itype, r.icode, r.icmp_id), (Some(Num::Eq(8)), Some(Num::Eq(0)), Some(1234)));
        let r = p(r#"alert ip any any -> any any (msg:"p"; ip_proto:!TCP; sid:4;)"#).unwrap();
        assert!(r.ip_proto.unwrap().test(17) && !r.ip_proto.unwrap().test(6));
        let r = p(r#"alert tcp any any -> any any (msg:"d"; dsize:300<>400; flags:+PA; sid:5;)"#).unwrap();
        assert!(r.dsize.unwrap().test(301) && !r.dsize.unwrap().test(300) && !r.dsize.unwrap().test(400));
        assert!(r.flags.unwrap().test(0x18 | 0x01) && !r.flags.unwrap().test(0x10));
    }

    #[test]
    fn byte_tests_flowbits_thresholds() {
        let r = p(r#"alert udp any any -> any 53 (msg:"b"; content:"|01 00|"; offset:2; depth:2; byte_test:2,>,10,4,relative,little; byte_jump:1,0,relative,multiplier 2,post_offset -1; isdataat:!10,relative; flowbits:set,a; flowbits:isset,b|c; flowbits:noalert; threshold:type limit, track by_src, count 1, seconds 60; sid:6;)"#).unwrap();
        let t = &r.bufs[0].tests;
        assert!(matches!(
            t[1],
            Test::ByteTest(ByteTest {
                nbytes: 2,
                op: ByteOp::Gt,
                value: 10,
                offset: 4,
                relative: true,
                format: NumFormat::Binary(Endian::Little),
                ..
            })
        ));
        assert!(matches!(t[2], Test::ByteJump(ByteJump { multiplier: 2, post_offset: -1, relative: true, .. })));
        assert!(matches!(t[3], Test::IsDataAt { n: 10, negated: true, relative: true }));
        assert_eq!(r.flowbits, [FlowbitOp::Set("a".into()), FlowbitOp::IsSet(vec!["b".into(), "c".into()])]);
        assert!(r.noalert);
        assert_eq!(
            r.threshold,
            Some(Threshold { kind: ThresholdKind::Limit, track: Track::BySrc, count: 1, seconds: 60 })
        );
        let r =
            p(r#"alert udp any any -> any 53 (msg:"df"; detection_filter:track by_dst,count 5,seconds 10; sid:7;)"#)
                .unwrap();
        assert_eq!(r.detection_filter.unwrap().kind, ThresholdKind::DetectionFilter);
        let both = r#"alert udp any any -> any 53 (msg:"both"; threshold:type limit,track by_src,count 1,seconds 1; detection_filter:track by_dst,count 5,seconds 10; sid:8;)"#;
        assert_eq!(p(both).unwrap_err().detail, "threshold and detection_filter in one rule");
    }

    #[test]
    fn rejections_name_their_reason() {
        let reason = |s: &str| p(s).unwrap_err().reason;
        assert_eq!(reason(r#"alert smb any any -> any any (msg:"x"; sid:1;)"#), "unsupported protocol");
        // IDS mode: drop and reject rules alert, as in Suricata without IPS.
        for a in ["drop", "reject", "rejectboth"] {
            let r = p(&format!(r#"{a} tcp any any -> any any (msg:"x"; sid:1;)"#)).unwrap();
            assert_eq!(r.action, Action::Alert, "{a}");
        }
        assert_eq!(reason(r#"block tcp any any -> any any (msg:"x"; sid:1;)"#), "syntax error");
        assert_eq!(
            reason(r#"alert tcp any any -> any any (msg:"x"; content:"a"; pcre:"/(?<=a)b/"; sid:1;)"#),
            "pcre: look-around"
        );
        assert_eq!(reason(r#"alert tcp any any -> any any (msg:"x"; pcre:"/(a)\1/"; sid:1;)"#), "pcre: backreference");
        assert_eq!(
            reason(r#"alert tcp any any -> any any (msg:"x"; xbits:set,a,track ip_src; sid:1;)"#),
            "unsupported keyword"
        );
        assert_eq!(reason(r#"alert tcp any any -> any any (msg:"x"; frobnicate; sid:1;)"#), "unknown keyword");
        assert_eq!(reason(r#"alert tcp any any -> any any (msg:"x"; content:"a"; sid:1"#), "syntax error");
        assert_eq!(reason(r#"alert tcp any any -> any any (msg:"x"; classtype:nope; sid:1;)"#), "unknown classtype");
        assert_eq!(reason(r#"alert tcp any any -> any any (msg:"x"; nocase; sid:1;)"#), "syntax error");
        assert_eq!(
            reason(r#"alert tcp any any -> any any (msg:"x"; content:"a"; sid:1; content:"|4|";)"#),
            "syntax error"
        );
        assert_eq!(reason(r#"alert tcp $NOPE any -> any any (msg:"x"; sid:1;)"#), "bad address");
        assert_eq!(
            reason(r#"alert tcp any any -> any any (msg:"x"; content:"a"; distance:somevar; sid:1;)"#),
            "byte_extract variables"
        );
        assert_eq!(reason(r#"alert dns any any -> any any (msg:"x"; tls.sni; content:"a"; sid:1;)"#), "syntax error");
        assert_eq!(reason(r#"alert tcp any any -> any any (msg:"x"; content:"a";)"#), "syntax error");
    }

    #[test]
    fn dotprefix_bsize_and_classifications() {
        let r = p(r#"alert dns $HOME_NET any -> any any (msg:"d"; dns.query; dotprefix; content:".evil.example"; endswith; bsize:>10; sid:7;)"#).unwrap();
        assert!(r.bufs[0].dotprefix);
        assert!(matches!(r.bufs[0].tests[1], Test::Bsize(Num::Gt(10))));
        let (c, bad) = parse_classifications("config classification: a,b,1\nnonsense\nconfig classification: c,d\n");
        assert_eq!((c.len(), bad), (1, vec![2, 3]));
    }
}
