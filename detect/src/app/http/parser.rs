//! HTTP/1.x message heads (RFC 9112), zero-copy over a complete head (start line through the
//! empty line). The state machine in `state.rs` finds the end of the head and bounds its size.

/// Request methods recognised at the start of a stream (protocol identification) and after a gap
/// (resynchronisation).
pub const METHODS: [&[u8]; 9] =
    [b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ", b"PATCH ", b"TRACE "];

/// Whether `data` starts like a request (`Some(true)`), cannot be one (`Some(false)`), or is too
/// short to tell (`None`).
pub fn probe_request(data: &[u8]) -> Option<bool> {
    let mut undecided = false;
    for m in METHODS {
        let n = m.len().min(data.len());
        if data[..n] == m[..n] {
            if n == m.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

/// The same for a response ("HTTP/1.").
pub fn probe_response(data: &[u8]) -> Option<bool> {
    crate::app::probe_prefix(data, b"HTTP/1.")
}

/// Finds the end of a head in `buf`: the index just past "\r\n\r\n" (or "\n\n").
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\n', &buf[i..]) {
        let at = i + p;
        let rest = &buf[at + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        if rest.len() < 2 && (rest.is_empty() || rest[0] == b'\r') {
            return None;
        }
        i = at + 1;
    }
    None
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

/// The lines of a head, without their line ends; the empty last line is not yielded.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).take_while(|l| !l.is_empty())
}

/// A parsed head: the start line's three parts and the header fields we use.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Head<'a> {
    /// Request: method, target, version. Response: version, status code text, reason.
    pub start: [&'a [u8]; 3],
    pub host: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    pub content_range: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub authorization: Option<&'a [u8]>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    /// A Content-Length we could not read (the body is then read to the close, or chunked).
    pub bad_length: bool,
    pub headers: u32,
}

/// Parses a complete head (as delimited by [`head_end`]). Returns `None` when the start line
/// is not HTTP.
pub fn parse_head(head: &[u8], request: bool) -> Option<Head<'_>> {
    let mut it = lines(head);
    let start = it.next()?;
    let mut parts = start.splitn(3, |&b| b == b' ');
    let a = parts.next()?;
    let b = parts.next().unwrap_or(b"");
    let c = parts.next().unwrap_or(b"");
    if request {
        if a.is_empty() || !a.iter().all(|x| x.is_ascii_uppercase() || *x == b'-' || *x == b'_') {
            return None;
        }
    } else if !a.starts_with(b"HTTP/") {
        return None;
    }
    let mut h = Head { start: [a, b, c], ..Head::default() };
    for line in it {
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = trim(&line[..colon]);
        let value = trim(&line[colon + 1..]);
        h.headers += 1;
        if name.eq_ignore_ascii_case(b"host") {
            h.host.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            h.user_agent.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"referer") {
            h.referer.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-type") {
            h.content_type.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-range") {
            h.content_range.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"location") {
            h.location.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"authorization") {
            h.authorization.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value).ok().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) => h.content_length = Some(n),
                None => h.bad_length = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            && value.len() >= 7
            && value[value.len() - 7..].eq_ignore_ascii_case(b"chunked")
        {
            h.chunked = true;
        }
    }
    Some(h)
}

/// The status code of a response head (0 when it does not read as one).
pub fn status_code(code: &[u8]) -> u16 {
    if code.len() == 3 && code.iter().all(u8::is_ascii_digit) {
        code.iter().fold(0u16, |a, d| a * 10 + (d - b'0') as u16)
    } else {
        0
    }
}

/// The media type of a Content-Type value: parameters dropped, lower-cased (as libhtp gives it
/// to Suricata), into `out`.
pub fn media_type(value: &[u8], out: &mut Vec<u8>) {
    let v = trim(value.split(|&b| b == b';').next().unwrap_or(b""));
    out.extend(v.iter().map(u8::to_ascii_lowercase));
}

/// A Content-Range value `bytes START-END/SIZE` (SIZE may be `*`): (start, end, size).
pub fn content_range(value: &[u8]) -> Option<(u64, u64, Option<u64>)> {
    let v = std::str::from_utf8(value).ok()?.trim();
    let v = v.strip_prefix("bytes")?.trim_start();
    let (range, size) = v.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let size = if size.trim() == "*" { None } else { Some(size.trim().parse().ok()?) };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, size))
}

/// Parses a chunk-size line's hex number (extensions after ';' ignored).
pub fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = trim(line);
    let hex = line.split(|&b| b == b';').next()?;
    let hex = trim(hex);
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &d in hex {
        n = n * 16 + (d as char).to_digit(16)? as u64;
    }
    Some(n)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_parse_request_and_response_heads() {
        let req = b"GET /a?b=1 HTTP/1.1\r\nHost: www.example.com:8080\r\nUser-Agent:  curl/8.5.0 \r\nReferer: http://x/\r\nContent-Length: 12\r\n\r\nbody";
        let end = head_end(req).unwrap();
        assert_eq!(&req[end..], b"body");
        let h = parse_head(&req[..end], true).unwrap();
        assert_eq!(h.start, [&b"GET"[..], b"/a?b=1", b"HTTP/1.1"]);
        assert_eq!(h.host, Some(&b"www.example.com:8080"[..]));
        assert_eq!(h.user_agent, Some(&b"curl/8.5.0"[..]));
        assert_eq!((h.content_length, h.chunked, h.headers), (Some(12), false, 4));
        let resp = b"HTTP/1.1 404 Not Found\nContent-Type: text/html\nTransfer-Encoding: chunked\n\n";
        let end = head_end(resp).unwrap();
        assert_eq!(end, resp.len());
        let h = parse_head(resp, false).unwrap();
        assert_eq!((status_code(h.start[1]), h.chunked, h.content_type), (404, true, Some(&b"text/html"[..])));
        assert!(parse_head(b"\x16\x03\x01 x\r\n\r\n", true).is_none());
    }

    #[test]
    fn test_head_end_across_splits_and_probes() {
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r"), None);
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.0\r\n\r\n"), Some(18));
        assert_eq!(probe_request(b"GE"), None);
        assert_eq!(probe_request(b"GET /"), Some(true));
        assert_eq!(probe_request(b"\x16\x03"), Some(false));
        assert_eq!(probe_response(b"HTTP/1.1 200"), Some(true));
        assert_eq!(probe_response(b"HTT"), None);
        assert_eq!(chunk_size(b"1a;ext=1\r"), Some(26));
        assert_eq!(chunk_size(b"zz"), None);
        assert_eq!(content_range(b"bytes 0-9/100"), Some((0, 9, Some(100))));
        assert_eq!(content_range(b"bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(content_range(b"items 1-2/3"), None);
        let mut m = Vec::new();
        media_type(b"Text/HTML ; charset=UTF-8", &mut m);
        assert_eq!(m, b"text/html");
    }
}
