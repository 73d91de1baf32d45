//! HTTP rule buffers: Suricata's sticky buffers and their content-modifier names, built from a
//! transaction's request and response.

use super::Tx;
use crate::app::Inspect;
use crate::rules::BufSpec;

crate::rule_buffers! { super::Http;
    URI = BufSpec::new("http.uri", &["http.uri", "http_uri"]).dotted();
    URI_RAW = BufSpec::new("http.uri.raw", &["http.uri.raw", "http_raw_uri"]).dotted();
    METHOD = BufSpec::new("http.method", &["http.method", "http_method"]);
    HOST = BufSpec::new("http.host", &["http.host", "http_host"]).dotted();
    HOST_RAW = BufSpec::new("http.host.raw", &["http.host.raw", "http_raw_host"]).dotted();
    USER_AGENT = BufSpec::new("http.user_agent", &["http.user_agent", "http_user_agent"]);
    STAT_CODE = BufSpec::new("http.stat_code", &["http.stat_code", "http_stat_code"]).to_client();
    HEADER = BufSpec::new("http.header", &["http.header", "http_header"]);
    COOKIE = BufSpec::new("http.cookie", &["http.cookie", "http_cookie"]);
    REQUEST_BODY = BufSpec::new("http.request_body", &["http.request_body", "http_client_body"]);
    /// The response body.
    FILE_DATA = BufSpec::new("file.data", &["file.data", "file_data", "http.response_body", "http_server_body"]).to_client();
    HEADER_NAMES = BufSpec::new("http.header_names", &["http.header_names", "http_header_names"]);
    HEADER_RAW = BufSpec::new("http.header.raw", &["http.header.raw", "http_raw_header"]);
    CONTENT_TYPE = BufSpec::new("http.content_type", &["http.content_type", "http_content_type"]);
    CONTENT_LEN = BufSpec::new("http.content_len", &["http.content_len", "http_content_len"]);
    REQUEST_LINE = BufSpec::new("http.request_line", &["http.request_line", "http_request_line"]);
    RESPONSE_LINE = BufSpec::new("http.response_line", &["http.response_line", "http_response_line"]).to_client();
    START = BufSpec::new("http.start", &["http.start", "http_start"]);
    REFERER = BufSpec::new("http.referer", &["http.referer", "http_referer"]);
    LOCATION = BufSpec::new("http.location", &["http.location"]).to_client();
    ACCEPT = BufSpec::new("http.accept", &["http.accept", "http_accept"]);
    ACCEPT_ENC = BufSpec::new("http.accept_enc", &["http.accept_enc", "http_accept_enc"]);
    ACCEPT_LANG = BufSpec::new("http.accept_lang", &["http.accept_lang", "http_accept_lang"]);
    CONNECTION = BufSpec::new("http.connection", &["http.connection", "http_connection"]);
    SERVER = BufSpec::new("http.server", &["http.server"]).to_client();
    PROTOCOL = BufSpec::new("http.protocol", &["http.protocol", "http_protocol"]);
    STAT_MSG = BufSpec::new("http.stat_msg", &["http.stat_msg", "http_stat_msg"]).to_client();
}

/// One inspection per transaction, with both sides' buffers.
pub fn inspect<I: Inspect>(t: &Tx, i: &mut I) {
    i.begin();
    if let Some(u) = t.uri() {
        i.put(URI, u);
        i.put(URI_RAW, u);
    }
    i.put_opt(METHOD, t.method());
    i.put_opt(HOST, t.hostname());
    i.put_opt(USER_AGENT, t.user_agent());
    if t.has_request {
        put_side(i, 0, t.request_head(), t.request_body());
    }
    if t.has_response {
        put_side(i, 1, t.response_head(), t.response_body());
    }
    if t.has_response {
        let mut code = [0u8; 3];
        let s = t.status.min(999);
        code[0] = b'0' + (s / 100) as u8;
        code[1] = b'0' + (s / 10 % 10) as u8;
        code[2] = b'0' + (s % 10) as u8;
        i.put(STAT_CODE, &code);
    }
    i.run(false);
}

/// The HTTP buffers of one side, from its raw head and kept body.
fn put_side<I: Inspect>(i: &mut I, side: usize, head: &[u8], body: &[u8]) {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(start) = lines.next() else { return };
    // (name, value) pairs, values trimmed; repeated names joined with ", " (as libhtp).
    let mut hdrs: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for l in lines {
        let Some(c) = l.iter().position(|&b| b == b':') else { continue };
        let name = trim(&l[..c]);
        let value = trim(&l[c + 1..]);
        match hdrs.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => {
                v.extend_from_slice(b", ");
                v.extend_from_slice(value);
            }
            None => hdrs.push((name, value.to_vec())),
        }
    }
    let get = |n: &str| hdrs.iter().find(|(h, _)| h.eq_ignore_ascii_case(n.as_bytes())).map(|(_, v)| v.as_slice());
    let cookie = if side == 0 { "cookie" } else { "set-cookie" };
    // http.header: "Name: value\r\n" for each but the cookie; http.start: the start line
    // and every header, then an empty line; http.header_names: "\r\nName\r\n...\r\n\r\n".
    let mut h = Vec::new();
    let mut st = start.to_vec();
    st.extend_from_slice(b"\r\n");
    let mut names = b"\r\n".to_vec();
    for (n, v) in &hdrs {
        let mut line = n.to_vec();
        line.extend_from_slice(b": ");
        line.extend_from_slice(v);
        line.extend_from_slice(b"\r\n");
        if !n.eq_ignore_ascii_case(cookie.as_bytes()) {
            h.extend_from_slice(&line);
        }
        st.extend_from_slice(&line);
        names.extend_from_slice(n);
        names.extend_from_slice(b"\r\n");
    }
    st.extend_from_slice(b"\r\n");
    names.extend_from_slice(b"\r\n");
    i.put_side(HEADER, side, &h);
    i.put_side(START, side, &st);
    i.put_side(HEADER_NAMES, side, &names);
    let raw = head.get(start.len()..).unwrap_or(&[]);
    let raw = raw.strip_prefix(b"\r\n").or_else(|| raw.strip_prefix(b"\n")).unwrap_or(raw);
    i.put_side(HEADER_RAW, side, raw);
    let mut parts = start.splitn(3, |&b| b == b' ');
    let (a, _b, c) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    if side == 0 {
        i.put_side(REQUEST_LINE, side, start);
        i.put_side(PROTOCOL, side, c);
        if let Some(v) = get("host") {
            i.put_side(HOST_RAW, side, v);
        }
        if !body.is_empty() {
            i.put_side(REQUEST_BODY, side, body);
        }
    } else {
        i.put_side(RESPONSE_LINE, side, start);
        i.put_side(PROTOCOL, side, a);
        i.put_side(STAT_MSG, side, c);
        if !body.is_empty() {
            i.put_side(FILE_DATA, side, body);
        }
    }
    for (b, n) in [
        (COOKIE, cookie),
        (CONTENT_TYPE, "content-type"),
        (CONTENT_LEN, "content-length"),
        (REFERER, "referer"),
        (LOCATION, "location"),
        (ACCEPT, "accept"),
        (ACCEPT_ENC, "accept-encoding"),
        (ACCEPT_LANG, "accept-language"),
        (CONNECTION, "connection"),
        (SERVER, "server"),
    ] {
        if let Some(v) = get(n) {
            i.put_side(b, side, v);
        }
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}
