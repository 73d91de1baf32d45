//! EVE JSON into Redis, as Suricata's redis output: a list (`RPUSH key event...`) or a stream
//! (`XADD key * event JSON`), pipelined a chunk at a time. Redis answers every command, so a
//! chunk counts as sent only once every reply came back without an error.

use super::net::Conn;
use super::url::{Endpoint, Format, Location, Query, Scheme, Target};
use super::{Chunk, Transport};
use std::io::{self, Write};

/// `redis://HOST[:6379]/KEY`: a list (`mode=list`, RPUSH) or a stream (`mode=stream`, XADD).
pub const SCHEMES: &[Scheme] = &[Scheme { name: "redis", aliases: &[], options: &["mode"], parse, userinfo: false }];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    List,
    Stream,
}

/// A Redis sink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub addr: String,
    pub key: String,
    pub mode: RedisMode,
}

fn parse(_scheme: &str, loc: &Location, q: &mut Query) -> Result<(Target, Format), String> {
    let key = loc.path.trim_start_matches('/');
    let key = if key.is_empty() { "spinewatch".to_string() } else { key.to_string() };
    let mode = match q.get("mode").as_deref() {
        None | Some("list") => RedisMode::List,
        Some("stream") => RedisMode::Stream,
        Some(o) => return Err(format!("mode: {o:?} (list or stream)")),
    };
    let t = RedisTarget { addr: loc.addr(6379)?, key, mode };
    Ok((Target(std::sync::Arc::new(t)), Format::Eve))
}

impl Endpoint for RedisTarget {
    fn open(&self, _sink: &str) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(RedisTransport::new(&self.addr, &self.key, self.mode)))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Events per RPUSH.
const PER_PUSH: usize = 512;

pub struct RedisTransport {
    addr: String,
    key: String,
    mode: RedisMode,
    conn: Option<Conn>,
    buf: Vec<u8>,
    rx: Vec<u8>,
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "${}\r\n", b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

impl RedisTransport {
    pub fn new(addr: &str, key: &str, mode: RedisMode) -> RedisTransport {
        RedisTransport { addr: addr.into(), key: key.into(), mode, conn: None, buf: Vec::new(), rx: Vec::new() }
    }

    /// Reads `n` replies; the first error reply is the error.
    fn replies(&mut self, mut n: usize) -> io::Result<()> {
        let c = self.conn.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        self.rx.clear();
        let mut at = 0;
        let mut tmp = [0u8; 16 << 10];
        let mut err = None;
        while n > 0 {
            match parse_reply(&self.rx[at..]) {
                Some((used, e)) => {
                    at += used;
                    n -= 1;
                    if err.is_none() {
                        err = e;
                    }
                    continue;
                }
                None => {
                    let k = c.read(&mut tmp)?;
                    if k == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection"));
                    }
                    self.rx.drain(..at);
                    at = 0;
                    self.rx.extend_from_slice(&tmp[..k]);
                }
            }
        }
        match err {
            Some(e) => Err(io::Error::other(format!("redis: {e}"))),
            None => Ok(()),
        }
    }
}

/// One reply at the start of `b`: its length and its error text if it is an error; None if
/// incomplete.
fn parse_reply(b: &[u8]) -> Option<(usize, Option<String>)> {
    let eol = b.windows(2).position(|w| w == b"\r\n")?;
    if eol == 0 {
        return Some((2, Some("an empty reply line".into())));
    }
    let line = &b[1..eol];
    match b.first()? {
        b'-' => Some((eol + 2, Some(String::from_utf8_lossy(line).into_owned()))),
        b'+' | b':' => Some((eol + 2, None)),
        b'$' => {
            let n: i64 = std::str::from_utf8(line).ok()?.parse().ok()?;
            if n < 0 {
                return Some((eol + 2, None));
            }
            let end = eol + 2 + n as usize + 2;
            (b.len() >= end).then_some((end, None))
        }
        _ => Some((eol + 2, Some(format!("unexpected reply {:?}", String::from_utf8_lossy(line))))),
    }
}

impl Transport for RedisTransport {
    fn connect(&mut self) -> io::Result<()> {
        let mut c = Conn::tcp(&self.addr)?;
        c.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        self.conn = Some(c);
        self.replies(1)
    }

    fn send(&mut self, c: &Chunk) -> io::Result<()> {
        self.buf.clear();
        let mut commands = 0;
        let msgs: Vec<&[u8]> = c.messages().map(|m| m.strip_suffix(b"\n").unwrap_or(m)).collect();
        match self.mode {
            RedisMode::List => {
                for part in msgs.chunks(PER_PUSH) {
                    let _ = write!(self.buf, "*{}\r\n", part.len() + 2);
                    bulk(&mut self.buf, b"RPUSH");
                    bulk(&mut self.buf, self.key.as_bytes());
                    for m in part {
                        bulk(&mut self.buf, m);
                    }
                    commands += 1;
                }
            }
            RedisMode::Stream => {
                for m in &msgs {
                    self.buf.extend_from_slice(b"*5\r\n");
                    bulk(&mut self.buf, b"XADD");
                    bulk(&mut self.buf, self.key.as_bytes());
                    bulk(&mut self.buf, b"*");
                    bulk(&mut self.buf, b"event");
                    bulk(&mut self.buf, m);
                    commands += 1;
                }
            }
        }
        let conn = self.conn.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        conn.write_all(&self.buf)?;
        conn.flush()?;
        self.replies(commands)
    }

    fn disconnect(&mut self) {
        if let Some(mut c) = self.conn.take() {
            c.shutdown();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"+PONG\r\n"), Some((7, None)));
        assert_eq!(parse_reply(b":12\r\n:1"), Some((5, None)));
        assert_eq!(parse_reply(b"$15\r\n1700000000000-0\r\n"), Some((22, None)));
        assert_eq!(parse_reply(b"$15\r\n1700000000000-"), None);
        assert_eq!(parse_reply(b"-WRONGTYPE x\r\n").unwrap().1.as_deref(), Some("WRONGTYPE x"));
        assert!(parse_reply(b"\r\n+OK\r\n").unwrap().1.is_some());
    }
}
