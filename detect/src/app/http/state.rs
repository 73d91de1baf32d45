//! HTTP/1.x transactions: requests paired with responses in order (pipelining), bodies by
//! Content-Length, chunked encoding or connection close, heads bounded in size, resync after gaps.

use super::parser::{
    chunk_size, content_range, head_end, media_type, parse_head, probe_request, probe_response, status_code, Head,
};
use crate::app::stream::Chunk;
use crate::app::{AppEvent, Emit};
use std::collections::VecDeque;

/// HTTP limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request or response head (start line and header fields), bytes.
    pub max_head: usize,
    /// Requests waiting for their responses per flow (pipelining); past it the oldest is logged
    /// without its response.
    pub max_pending: usize,
    /// Keep each transaction's raw request and response heads (for the rules' header buffers).
    pub keep_heads: bool,
    /// Bytes of each request and response body kept (de-chunked) for the rules' body buffers;
    /// 0 keeps none (bodies are then skipped unseen).
    pub body_limit: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { max_head: 16 << 10, max_pending: 32, keep_heads: false, body_limit: 0 }
    }
}

/// HTTP counters (per worker).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCounters {
    pub requests: u64,
    pub responses: u64,
    /// Heads over the size limit.
    pub head_too_long: u64,
    /// Start lines or chunk sizes that did not parse.
    pub malformed: u64,
    /// Times a direction lost sync (a gap inside a head, a malformed message) and looked for the
    /// next message start.
    pub resyncs: u64,
    /// Transactions logged without their response (pipeline bound, end of flow).
    pub incomplete: u64,
}

use crate::app::Span;

/// One request/response pair.
#[derive(Debug, Default)]
pub struct Tx {
    pub tx_id: u64,
    store: Vec<u8>,
    method: Span,
    uri: Span,
    protocol: Span,
    host: Span,
    user_agent: Span,
    referer: Span,
    content_type: Span,
    content_range: Span,
    location: Span,
    /// Content-Range: start, end, size (`None` for `*`).
    pub range: Option<(u64, u64, Option<u64>)>,
    pub port: Option<u16>,
    pub status: u16,
    pub request_body_len: u64,
    pub response_body_len: u64,
    pub has_request: bool,
    pub has_response: bool,
    pub request_done: bool,
    pub response_done: bool,
    /// The request sent `Authorization: Basic` (credentials in the clear).
    auth_basic: bool,
    /// Raw heads and the first bytes of the bodies, when [`HttpLimits`] asks for them (for
    /// detection; not copied to the exporter).
    req_head: Vec<u8>,
    resp_head: Vec<u8>,
    req_body: Vec<u8>,
    resp_body: Vec<u8>,
}

impl Tx {
    fn put(&mut self, v: Option<&[u8]>) -> Span {
        match v {
            None => Span::default(),
            Some(v) => {
                let off = self.store.len() as u32;
                self.store.extend_from_slice(v);
                Span { off, len: v.len() as u32, set: true }
            }
        }
    }

    fn get(&self, s: Span) -> Option<&[u8]> {
        s.get(&self.store)
    }

    pub fn method(&self) -> Option<&[u8]> {
        self.get(self.method)
    }
    pub fn uri(&self) -> Option<&[u8]> {
        self.get(self.uri)
    }
    pub fn protocol(&self) -> Option<&[u8]> {
        self.get(self.protocol)
    }
    /// The Host header without its port, lower-cased (as Suricata's `hostname`).
    pub fn hostname(&self) -> Option<&[u8]> {
        self.get(self.host)
    }
    pub fn user_agent(&self) -> Option<&[u8]> {
        self.get(self.user_agent)
    }
    pub fn referer(&self) -> Option<&[u8]> {
        self.get(self.referer)
    }
    /// The media type, parameters dropped and lower-cased (Suricata's `http_content_type`).
    pub fn content_type(&self) -> Option<&[u8]> {
        self.get(self.content_type)
    }
    /// The raw Content-Range header.
    pub fn content_range(&self) -> Option<&[u8]> {
        self.get(self.content_range)
    }
    /// The Location header (Suricata's `redirect`).
    pub fn redirect(&self) -> Option<&[u8]> {
        self.get(self.location)
    }

    /// Makes this a copy of `o`, reusing this one's buffer (for handing a transaction to the
    /// exporter without allocating).
    pub fn copy_from(&mut self, o: &Tx) {
        self.store.clear();
        self.store.extend_from_slice(&o.store);
        self.tx_id = o.tx_id;
        self.method = o.method;
        self.uri = o.uri;
        self.protocol = o.protocol;
        self.host = o.host;
        self.user_agent = o.user_agent;
        self.referer = o.referer;
        self.content_type = o.content_type;
        self.content_range = o.content_range;
        self.location = o.location;
        self.range = o.range;
        self.port = o.port;
        self.status = o.status;
        self.request_body_len = o.request_body_len;
        self.response_body_len = o.response_body_len;
        self.has_request = o.has_request;
        self.has_response = o.has_response;
        self.request_done = o.request_done;
        self.response_done = o.response_done;
    }

    fn reset(&mut self, tx_id: u64) {
        let mut v = [
            std::mem::take(&mut self.store),
            std::mem::take(&mut self.req_head),
            std::mem::take(&mut self.resp_head),
            std::mem::take(&mut self.req_body),
            std::mem::take(&mut self.resp_body),
        ];
        v.iter_mut().for_each(Vec::clear);
        let [store, req_head, resp_head, req_body, resp_body] = v;
        *self = Tx { tx_id, store, req_head, resp_head, req_body, resp_body, ..Tx::default() };
    }

    /// Whether the request carried HTTP Basic credentials.
    pub fn has_auth_basic(&self) -> bool {
        self.auth_basic
    }

    /// The request head as received (start line and header fields), when kept.
    pub fn request_head(&self) -> &[u8] {
        &self.req_head
    }
    pub fn response_head(&self) -> &[u8] {
        &self.resp_head
    }
    /// The first bytes of the request body (de-chunked), when kept.
    pub fn request_body(&self) -> &[u8] {
        &self.req_body
    }
    pub fn response_body(&self) -> &[u8] {
        &self.resp_body
    }

    fn set_request(&mut self, h: &Head<'_>) {
        self.has_request = true;
        self.method = self.put(Some(h.start[0]));
        self.uri = self.put(Some(h.start[1]));
        self.protocol = self.put((!h.start[2].is_empty()).then_some(h.start[2]));
        if let Some(host) = h.host {
            // "name:port", "[v6]:port"
            let (name, port) = match host.iter().rposition(|&b| b == b':') {
                Some(i)
                    if !host[i + 1..].is_empty()
                        && host[i + 1..].iter().all(u8::is_ascii_digit)
                        && !host[..i].ends_with(b":") =>
                {
                    (&host[..i], std::str::from_utf8(&host[i + 1..]).ok().and_then(|p| p.parse().ok()))
                }
                _ => (host, None),
            };
            // As Suricata 7 (libhtp) has it: lower-cased when the header has no port, kept as
            // written when it has one (observed: "Host: C2.Example:80" logs "C2.Example").
            let off = self.store.len() as u32;
            if port.is_some() {
                self.store.extend_from_slice(name);
            } else {
                self.store.extend(name.iter().map(u8::to_ascii_lowercase));
            }
            self.host = Span { off, len: name.len() as u32, set: true };
            self.port = port;
        }
        self.user_agent = self.put(h.user_agent);
        self.referer = self.put(h.referer);
        self.auth_basic = h.authorization.is_some_and(|a| a.len() > 6 && a[..6].eq_ignore_ascii_case(b"basic "));
    }

    fn set_response(&mut self, h: &Head<'_>) {
        self.has_response = true;
        self.status = status_code(h.start[1]);
        if !self.protocol.set {
            self.protocol = self.put(Some(h.start[0]));
        }
        if let Some(ct) = h.content_type {
            let off = self.store.len() as u32;
            media_type(ct, &mut self.store);
            self.content_type = Span { off, len: self.store.len() as u32 - off, set: true };
        }
        self.content_range = self.put(h.content_range);
        self.range = h.content_range.and_then(content_range);
        self.location = self.put(h.location);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
    UntilClose,
    /// Lost sync: waiting for a chunk that starts a message.
    Resync,
    /// Given up (protocol switch).
    Stopped,
}

#[derive(Debug, Default)]
#[repr(C)]
struct Dir {
    phase: Phase,
    /// Body bytes of the current message not yet added to its transaction (added when the
    /// message ends, so a body segment touches only this).
    body: u64,
    /// Body bytes of the current message kept so far (up to `HttpLimits::body_limit`).
    kept: usize,
    buf: Vec<u8>,
}

/// Per-flow HTTP state (`repr(C)`: the per-direction state first).
#[derive(Debug, Default)]
#[repr(C)]
pub struct HttpState {
    dirs: [Dir; 2],
    /// Transactions in order; the front is the oldest not yet logged.
    txs: VecDeque<Tx>,
    spare: Vec<Tx>,
    next_tx_id: u64,
}

impl HttpState {
    fn new_tx(&mut self) -> Tx {
        let mut t = self.spare.pop().unwrap_or_default();
        t.reset(self.next_tx_id);
        self.next_tx_id += 1;
        t
    }

    /// Logs the finished transactions at the front.
    fn emit_done(&mut self, emit: &mut Emit<'_>) {
        while self.txs.front().is_some_and(|t| t.response_done && (t.request_done || !t.has_request)) {
            let t = self.txs.pop_front().unwrap_or_default();
            emit(&AppEvent::Http(&t));
            self.spare.push(t);
        }
    }

    /// The flow ended: every transaction left is logged as it is.
    pub fn finish(&mut self, c: &mut HttpCounters, emit: &mut Emit<'_>) {
        self.flush_body(0);
        self.flush_body(1);
        if self.dirs[1].phase == Phase::UntilClose {
            if let Some(t) = self.txs.iter_mut().find(|t| t.has_response && !t.response_done) {
                t.response_done = true;
            }
        }
        while let Some(t) = self.txs.pop_front() {
            if !t.response_done {
                c.incomplete += 1;
            }
            emit(&AppEvent::Http(&t));
            self.spare.push(t);
        }
    }

    /// Stream bytes of direction `dir` (0 to server). Returns how many of the next bytes of
    /// that direction it does not need to see (a body of known length, or one read to the
    /// close): the stream then only counts them ([`Chunk::Skipped`]).
    pub fn input(
        &mut self,
        dir: usize,
        chunk: Chunk<'_>,
        lim: &HttpLimits,
        c: &mut HttpCounters,
        emit: &mut Emit<'_>,
    ) -> u64 {
        match chunk {
            Chunk::Data(d) => self.data(dir, d, lim, c, emit),
            Chunk::Gap(n) => self.gap(dir, n as u64, c),
            Chunk::Skipped(n) => self.skipped(dir, n, c, emit),
        }
        if self.dirs[dir].kept < lim.body_limit {
            // Still keeping this body's first bytes: see them.
            return 0;
        }
        match self.dirs[dir].phase {
            Phase::Length(r) | Phase::ChunkData(r) => r,
            Phase::UntilClose => u64::MAX,
            _ => 0,
        }
    }

    /// Body bytes that passed unseen.
    fn skipped(&mut self, dir: usize, n: u64, c: &mut HttpCounters, emit: &mut Emit<'_>) {
        match self.dirs[dir].phase {
            Phase::Length(r) => {
                let k = n.min(r);
                self.body(dir, k);
                if k == r {
                    self.message_done(dir, emit);
                } else {
                    self.dirs[dir].phase = Phase::Length(r - k);
                }
            }
            Phase::ChunkData(r) => {
                let k = n.min(r);
                self.body(dir, k);
                self.dirs[dir].phase = if k == r { Phase::ChunkEnd } else { Phase::ChunkData(r - k) };
            }
            Phase::UntilClose => self.body(dir, n),
            // Not asked for: bytes this parser did not read are a gap to it.
            _ => self.gap(dir, n, c),
        }
    }

    fn data(&mut self, dir: usize, mut data: &[u8], lim: &HttpLimits, c: &mut HttpCounters, emit: &mut Emit<'_>) {
        while !data.is_empty() {
            let phase = self.dirs[dir].phase;
            match phase {
                Phase::Stopped => return,
                Phase::Resync => {
                    let ok = if dir == 0 { probe_request(data) } else { probe_response(data) };
                    if ok == Some(false) {
                        return;
                    }
                    self.dirs[dir].phase = Phase::Head;
                }
                Phase::Head => {
                    if self.dirs[dir].buf.is_empty() {
                        // Blank lines between messages.
                        let skip = data.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                        data = &data[skip..];
                        if data.is_empty() {
                            return;
                        }
                        if dir == 1 && probe_response(data) == Some(false) {
                            // No status line: an HTTP/0.9-style response, its body until the
                            // connection closes (as libhtp reads it).
                            self.headless_response(c);
                            continue;
                        }
                        if let Some(end) = head_end(data) {
                            if end > lim.max_head {
                                c.head_too_long += 1;
                                self.lose_sync(dir, c);
                                return;
                            }
                            self.on_head(dir, &data[..end], c, lim, emit);
                            data = &data[end..];
                            continue;
                        }
                    }
                    // Accumulate (bounded) until the head is complete.
                    let buf = &mut self.dirs[dir].buf;
                    let old = buf.len();
                    let room = lim.max_head.saturating_sub(old);
                    let take = data.len().min(room);
                    buf.extend_from_slice(&data[..take]);
                    let from = old.saturating_sub(3);
                    match head_end(&buf[from..]) {
                        Some(e) => {
                            let end = from + e;
                            let head = std::mem::take(&mut self.dirs[dir].buf);
                            self.on_head(dir, &head[..end], c, lim, emit);
                            let mut head = head;
                            head.clear();
                            if self.dirs[dir].buf.capacity() == 0 {
                                self.dirs[dir].buf = head;
                            }
                            data = &data[end - old..];
                        }
                        None if take < data.len() || buf.len() >= lim.max_head => {
                            c.head_too_long += 1;
                            self.lose_sync(dir, c);
                            return;
                        }
                        None => return,
                    }
                }
                Phase::Length(n) => {
                    let take = (data.len() as u64).min(n);
                    self.keep_body(dir, &data[..take as usize], lim);
                    self.body(dir, take);
                    data = &data[take as usize..];
                    if take == n {
                        self.message_done(dir, emit);
                    } else {
                        self.dirs[dir].phase = Phase::Length(n - take);
                    }
                }
                Phase::UntilClose => {
                    self.keep_body(dir, data, lim);
                    self.body(dir, data.len() as u64);
                    return;
                }
                Phase::ChunkData(n) => {
                    let take = (data.len() as u64).min(n);
                    self.keep_body(dir, &data[..take as usize], lim);
                    self.body(dir, take);
                    data = &data[take as usize..];
                    self.dirs[dir].phase = if take == n { Phase::ChunkEnd } else { Phase::ChunkData(n - take) };
                }
                Phase::ChunkSize | Phase::ChunkEnd | Phase::Trailer => {
                    let Some(nl) = memchr::memchr(b'\n', data) else {
                        let buf = &mut self.dirs[dir].buf;
                        if buf.len() + data.len() > 1024 {
                            c.malformed += 1;
                            self.lose_sync(dir, c);
                        } else {
                            buf.extend_from_slice(data);
                        }
                        return;
                    };
                    // The framing counts in the message length, as libhtp counts it (all but the
                    // last empty line).
                    let framing = (self.dirs[dir].buf.len() + nl + 1) as u64;
                    let line_owned;
                    let line: &[u8] = if self.dirs[dir].buf.is_empty() {
                        &data[..nl]
                    } else {
                        self.dirs[dir].buf.extend_from_slice(&data[..nl]);
                        line_owned = std::mem::take(&mut self.dirs[dir].buf);
                        &line_owned
                    };
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let next = match phase {
                        Phase::ChunkEnd => Some(Phase::ChunkSize),
                        Phase::Trailer if line.is_empty() => None,
                        Phase::Trailer => Some(Phase::Trailer),
                        _ => match chunk_size(line) {
                            Some(0) => Some(Phase::Trailer),
                            Some(n) => Some(Phase::ChunkData(n)),
                            None => {
                                c.malformed += 1;
                                self.dirs[dir].buf.clear();
                                self.lose_sync(dir, c);
                                return;
                            }
                        },
                    };
                    self.dirs[dir].buf.clear();
                    data = &data[nl + 1..];
                    match next {
                        Some(p) => {
                            self.body(dir, framing);
                            self.dirs[dir].phase = p
                        }
                        None => self.message_done(dir, emit),
                    }
                }
            }
        }
    }

    /// The transaction the next response belongs to: the oldest without one, or a new one (a
    /// response whose request was not seen).
    fn response_tx(&mut self) -> usize {
        match self.txs.iter().position(|t| !t.has_response) {
            Some(i) => i,
            None => {
                let t = self.new_tx();
                self.txs.push_back(t);
                self.txs.len() - 1
            }
        }
    }

    fn headless_response(&mut self, c: &mut HttpCounters) {
        c.responses += 1;
        let idx = self.response_tx();
        self.txs[idx].has_response = true;
        self.dirs[1].phase = Phase::UntilClose;
    }

    fn lose_sync(&mut self, dir: usize, c: &mut HttpCounters) {
        self.flush_body(dir);
        c.resyncs += 1;
        self.dirs[dir].buf.clear();
        self.dirs[dir].phase = Phase::Resync;
    }

    fn gap(&mut self, dir: usize, n: u64, c: &mut HttpCounters) {
        let d = &mut self.dirs[dir];
        match d.phase {
            Phase::Length(r) if n < r => d.phase = Phase::Length(r - n),
            Phase::ChunkData(r) if n < r => d.phase = Phase::ChunkData(r - n),
            Phase::Stopped | Phase::Resync => {}
            // A body read to the close ends at a gap (libhtp's length stops there too).
            Phase::UntilClose => self.lose_sync(dir, c),
            Phase::Head if d.buf.is_empty() => {
                // At a message boundary: the next bytes may start a message.
                c.resyncs += 1;
                d.phase = Phase::Resync;
            }
            _ => self.lose_sync(dir, c),
        }
        // Bytes lost are not counted in the body lengths: they give what was seen, as libhtp's.
    }

    /// Keeps body bytes of direction `dir`'s current message, up to the limit.
    #[inline]
    fn keep_body(&mut self, dir: usize, data: &[u8], lim: &HttpLimits) {
        let room = lim.body_limit.saturating_sub(self.dirs[dir].kept);
        if room == 0 || data.is_empty() {
            return;
        }
        let part = &data[..data.len().min(room)];
        let t = if dir == 0 {
            self.txs.iter_mut().rev().find(|t| t.has_request)
        } else {
            self.txs.iter_mut().find(|t| t.has_response && !t.response_done)
        };
        if let Some(t) = t {
            if dir == 0 { &mut t.req_body } else { &mut t.resp_body }.extend_from_slice(part);
        }
        self.dirs[dir].kept += part.len();
    }

    #[inline]
    fn body(&mut self, dir: usize, n: u64) {
        self.dirs[dir].body += n;
    }

    /// Adds a direction's pending body bytes to its transaction.
    fn flush_body(&mut self, dir: usize) {
        let n = std::mem::take(&mut self.dirs[dir].body);
        if n == 0 {
            return;
        }
        if dir == 0 {
            if let Some(t) = self.txs.iter_mut().rev().find(|t| t.has_request) {
                t.request_body_len += n;
            }
        } else if let Some(t) = self.txs.iter_mut().find(|t| t.has_response && !t.response_done) {
            t.response_body_len += n;
        }
    }

    fn message_done(&mut self, dir: usize, emit: &mut Emit<'_>) {
        self.flush_body(dir);
        self.dirs[dir].phase = Phase::Head;
        if dir == 0 {
            if let Some(t) = self.txs.iter_mut().rev().find(|t| t.has_request) {
                t.request_done = true;
            }
        } else if let Some(t) = self.txs.iter_mut().find(|t| t.has_response && !t.response_done) {
            t.response_done = true;
        }
        self.emit_done(emit);
    }

    fn on_head(&mut self, dir: usize, head: &[u8], c: &mut HttpCounters, lim: &HttpLimits, emit: &mut Emit<'_>) {
        let Some(h) = parse_head(head, dir == 0) else {
            c.malformed += 1;
            self.lose_sync(dir, c);
            return;
        };
        let body = |h: &Head<'_>| {
            if h.chunked {
                Phase::ChunkSize
            } else {
                match h.content_length {
                    Some(0) => Phase::Head,
                    Some(n) => Phase::Length(n),
                    None => Phase::Head,
                }
            }
        };
        if dir == 0 {
            c.requests += 1;
            if self.txs.len() >= lim.max_pending {
                if let Some(t) = self.txs.pop_front() {
                    c.incomplete += 1;
                    emit(&AppEvent::Http(&t));
                    self.spare.push(t);
                }
            }
            let mut t = self.new_tx();
            t.set_request(&h);
            if lim.keep_heads {
                t.req_head.extend_from_slice(head);
            }
            self.dirs[0].kept = 0;
            let phase = body(&h);
            t.request_done = phase == Phase::Head;
            self.txs.push_back(t);
            self.dirs[0].phase = phase;
            return;
        }
        c.responses += 1;
        let status = status_code(h.start[1]);
        if (100..200).contains(&status) && status != 101 {
            // Informational: the real response follows.
            return;
        }
        let idx = self.response_tx();
        let head_request = self.txs[idx].method() == Some(b"HEAD");
        self.txs[idx].set_response(&h);
        if lim.keep_heads {
            self.txs[idx].resp_head.clear();
            self.txs[idx].resp_head.extend_from_slice(head);
        }
        self.dirs[1].kept = 0;
        let phase = if head_request || status == 204 || status == 304 || status == 101 {
            Phase::Head
        } else if h.chunked {
            Phase::ChunkSize
        } else if let Some(n) = h.content_length {
            if n == 0 {
                Phase::Head
            } else {
                Phase::Length(n)
            }
        } else {
            Phase::UntilClose
        };
        if phase == Phase::Head {
            self.txs[idx].response_done = true;
            self.emit_done(emit);
        }
        self.dirs[1].phase = phase;
        if status == 101 {
            // Switching protocols: what follows is not HTTP/1.
            self.dirs[0].phase = Phase::Stopped;
            self.dirs[1].phase = Phase::Stopped;
        }
    }
}

impl crate::app::Reuse for HttpState {
    fn reset(&mut self) {
        for d in &mut self.dirs {
            d.phase = Phase::Head;
            d.buf.clear();
            d.body = 0;
        }
        while let Some(t) = self.txs.pop_front() {
            self.spare.push(t);
        }
        self.next_tx_id = 0;
    }
    /// Frees buffers larger than `keep` bytes (between flows).
    fn trim(&mut self, keep: usize) {
        for d in &mut self.dirs {
            crate::app::trim_vec(&mut d.buf, keep);
        }
        for t in &mut self.spare {
            crate::app::trim_vec(&mut t.store, keep);
            crate::app::trim_vec(&mut t.req_head, keep);
            crate::app::trim_vec(&mut t.resp_head, keep);
            crate::app::trim_vec(&mut t.req_body, keep);
            crate::app::trim_vec(&mut t.resp_body, keep);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn run(segs: &[(usize, Chunk<'_>)]) -> (Vec<String>, HttpCounters) {
        let mut st = HttpState::default();
        let mut c = HttpCounters::default();
        let mut out = Vec::new();
        let lim = HttpLimits { max_head: 256, max_pending: 4, ..HttpLimits::default() };
        let mut emit = |e: &AppEvent<'_>| {
            if let AppEvent::Http(t) = e {
                let s = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).to_string()).unwrap_or_default();
                out.push(format!(
                    "{} {} {} {} host={} port={:?} ua={} ct={} {} req={} resp={}",
                    t.tx_id,
                    s(t.method()),
                    s(t.uri()),
                    s(t.protocol()),
                    s(t.hostname()),
                    t.port,
                    s(t.user_agent()),
                    s(t.content_type()),
                    t.status,
                    t.request_body_len,
                    t.response_body_len
                ));
            }
        };
        for (d, ch) in segs {
            st.input(*d, *ch, &lim, &mut c, &mut emit);
        }
        st.finish(&mut c, &mut emit);
        (out, c)
    }

    #[test]
    fn test_pipelined_split_mid_header_and_chunked() {
        let req = b"GET /a HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n2;x=y\r\nab\r\n0\r\nT: 1\r\n\r\n";
        let mut segs = Vec::new();
        // Requests split every 7 bytes (mid-header), responses every 5.
        for c in req.chunks(7) {
            segs.push((0, Chunk::Data(c)));
        }
        for c in resp.chunks(5) {
            segs.push((1, Chunk::Data(c)));
        }
        let (out, c) = run(&segs);
        assert_eq!(
            out,
            [
                "0 GET /a HTTP/1.1 host=Example.COM port=Some(8080) ua=t ct=text/plain 200 req=0 resp=3",
                "1 POST /b HTTP/1.1 host=x port=None ua= ct= 201 req=5 resp=29",
            ]
        );
        assert_eq!((c.requests, c.responses, c.incomplete, c.malformed), (2, 3, 0, 0));
    }

    #[test]
    fn test_head_limit_gap_resync_and_until_close() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(300));
        let (out, c) = run(&[
            (0, Chunk::Data(big.as_bytes())),
            (0, Chunk::Data(b"GET /ok HTTP/1.0\r\n\r\n")),
            (1, Chunk::Data(b"HTTP/1.0 200 OK\r\n\r\nbody")),
            (1, Chunk::Gap(10)),
            (1, Chunk::Data(b"more")),
        ]);
        // The body read to the close stops at the gap (what follows is not counted).
        assert_eq!(out, ["0 GET /ok HTTP/1.0 host= port=None ua= ct= 200 req=0 resp=4"]);
        assert_eq!((c.head_too_long, c.resyncs), (1, 2));
        // A gap inside a head: resync at the next request line.
        let (out, c) = run(&[
            (0, Chunk::Data(b"GET /lost HTTP/1.1\r\nHo")),
            (0, Chunk::Gap(40)),
            (0, Chunk::Data(b"st: x\r\n\r\n")),
            (0, Chunk::Data(b"HEAD /h HTTP/1.1\r\n\r\n")),
            (1, Chunk::Data(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")),
        ]);
        assert_eq!(out, ["0 HEAD /h HTTP/1.1 host= port=None ua= ct= 200 req=0 resp=0"]);
        assert_eq!(c.resyncs, 1);
    }

    #[test]
    fn test_pipeline_bound_and_response_without_request() {
        let mut segs = Vec::new();
        for _ in 0..6 {
            segs.push((0, Chunk::Data(&b"GET / HTTP/1.1\r\n\r\n"[..])));
        }
        let (out, c) = run(&segs);
        assert_eq!(out.len(), 6);
        assert_eq!(c.incomplete, 6);
        let (out, _) = run(&[(1, Chunk::Data(b"HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n"))]);
        assert_eq!(out, ["0   HTTP/1.1 host= port=None ua= ct= 404 req=0 resp=0"]);
    }
}
