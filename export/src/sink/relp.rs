//! Syslog over RELP, the Reliable Event Logging Protocol of rsyslog (librelp; rsyslog's
//! `imrelp`), plain or over TLS: every message is a transaction the collector answers once it
//! has taken it, so a message counts as delivered only on that answer. Over plain TCP or TLS
//! syslog, what the collector's kernel accepted but the collector never read (it was stopped)
//! is lost without anyone knowing; over RELP it is sent again.
//!
//! Frames are `TXNR SP COMMAND SP DATALEN [SP DATA] LF` (TXNR 1..999 999 999, then 1 again).
//! The session opens with `open` (offers `relp_version=0`, `commands=syslog`), which the
//! collector answers `rsp` `200 OK` with its own offers; each message is a `syslog` command
//! whose `rsp` is `200 OK` (taken) or `500 ...` (refused); `close` ends it, and the collector
//! may end it with `serverclose`. Up to [`WINDOW`] messages are in flight.
//!
//! A chunk whose sending fails part way resumes after the messages the collector answered: the
//! transport remembers how far a chunk went (by its content), and when the sink hands it the
//! same chunk again after reconnecting, it starts there. Before giving up on a broken
//! connection it reads the answers already on their way. Delivery is at least once, as RELP's:
//! a message the collector took but whose answer was lost with the connection is sent again,
//! and so is a chunk left to the next run (the collector did not come back in time), whole. A
//! message the collector refuses (`500`) fails the chunk, which resumes at that message after
//! reconnecting, as omrelp retries; what followed it in flight is sent again. An answer may take
//! [`ANSWER_WAIT`] (a collector with a full queue answers late).

use super::net::{tls_setup, Conn, TlsOptions};
use super::{Chunk, Transport};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages in flight before the answers are waited for (librelp's default window).
pub const WINDOW: usize = 128;
/// The largest TXNR; the next is 1.
const TXNR_MAX: u32 = 999_999_999;
/// The longest answer frame read (an `open` answer carries the collector's offers).
const MAX_ANSWER: usize = 64 << 10;
/// How long an answer may take: a collector whose queue is full answers late, and one taken
/// for dead too early gets what it had already read again (omrelp waits 90 s).
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// After the connection broke: how long the answers that were already on their way are read.
const LAST_ANSWERS_WAIT: Duration = Duration::from_secs(1);

const OFFERS: &str = concat!(
    "relp_version=0\nrelp_software=spinewatch,",
    env!("CARGO_PKG_VERSION"),
    ",https://github.com/spinewatch\ncommands=syslog"
);

pub struct RelpTransport {
    addr: String,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    conn: Option<Conn>,
    txnr: u32,
    out: Vec<u8>,
    rx: Vec<u8>,
    /// A chunk cut by a failure: its fingerprint and how many of its messages were answered.
    resume: Option<(u64, usize)>,
}

/// One frame read from the collector.
#[derive(Debug, PartialEq, Eq)]
struct Frame<'a> {
    txnr: u32,
    command: &'a [u8],
    data: &'a [u8],
}

/// The frame at the start of `b` and its length; Ok(None) when incomplete.
fn parse_frame(b: &[u8]) -> Result<Option<(Frame<'_>, usize)>, String> {
    let mut at = 0;
    // A header field and the byte that ended it (SP or LF).
    let mut next = |max: usize| -> Result<Option<(&[u8], u8)>, String> {
        let rest = &b[at..];
        match rest.iter().take(max + 1).position(|&c| c == b' ' || c == b'\n') {
            Some(i) => {
                at += i + 1;
                Ok(Some((&rest[..i], rest[i])))
            }
            None if rest.len() > max => Err(format!("a RELP header field longer than {max} bytes")),
            None => Ok(None),
        }
    };
    let num = |f: &[u8], what: &str| -> Result<usize, String> {
        std::str::from_utf8(f)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad RELP {what} {:?}", String::from_utf8_lossy(f)))
    };
    let Some((txnr, sep)) = next(9)? else { return Ok(None) };
    let txnr = num(txnr, "transaction number")? as u32;
    if sep != b' ' {
        return Err("a RELP frame without its command".into());
    }
    let Some((command, sep)) = next(32)? else { return Ok(None) };
    if command.is_empty() || !command.iter().all(u8::is_ascii_alphabetic) || sep != b' ' {
        return Err(format!("bad RELP command {:?}", String::from_utf8_lossy(command)));
    }
    let Some((len, sep)) = next(9)? else { return Ok(None) };
    let len = num(len, "data length")?;
    if len > MAX_ANSWER {
        return Err(format!("a RELP frame of {len} bytes"));
    }
    if sep == b'\n' {
        if len != 0 {
            return Err("a RELP frame without its data".into());
        }
        return Ok(Some((Frame { txnr, command, data: &[] }, at)));
    }
    if b.len() < at + len + 1 {
        return Ok(None);
    }
    if b[at + len] != b'\n' {
        return Err("a RELP frame without its trailer".into());
    }
    Ok(Some((Frame { txnr, command, data: &b[at..at + len] }, at + len + 1)))
}

/// What identifies a chunk's content (FNV-1a over its bytes and message ends).
fn fingerprint(c: &Chunk) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&(c.data.len() as u64).to_le_bytes());
    eat(&(c.ends.len() as u64).to_le_bytes());
    eat(&c.data);
    h
}

/// An answer's refusal: None when its status is `200`, else its status line.
fn refusal(data: &[u8]) -> Option<String> {
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    (!line.starts_with(b"200")).then(|| String::from_utf8_lossy(line).into_owned())
}

fn broken(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl RelpTransport {
    /// Reads the TLS files now, so a bad one fails the start.
    pub fn new(addr: &str, tls: Option<&TlsOptions>) -> io::Result<RelpTransport> {
        Ok(RelpTransport {
            addr: addr.to_string(),
            tls: tls.map(|o| tls_setup(addr, o)).transpose()?,
            conn: None,
            txnr: 1,
            out: Vec::with_capacity(1 << 20),
            rx: Vec::new(),
            resume: None,
        })
    }

    fn next_txnr(&mut self) -> u32 {
        let t = self.txnr;
        self.txnr = if t >= TXNR_MAX { 1 } else { t + 1 };
        t
    }

    fn frame(out: &mut Vec<u8>, txnr: u32, command: &str, data: &[u8]) {
        let _ = write!(out, "{txnr} {command} {}", data.len());
        if !data.is_empty() {
            out.push(b' ');
            out.extend_from_slice(data);
        }
        out.push(b'\n');
    }

    /// Reads until one whole frame is buffered, for at most `wait`; calls `f` on it and drops
    /// it.
    fn read_frame<T>(&mut self, wait: Duration, f: impl FnOnce(&Frame<'_>) -> io::Result<T>) -> io::Result<T> {
        let mut tmp = [0u8; 16 << 10];
        let t0 = Instant::now();
        loop {
            if let Some((fr, used)) = parse_frame(&self.rx).map_err(broken)? {
                if fr.command == b"serverclose" {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the collector closed the session"));
                }
                let r = f(&fr);
                self.rx.drain(..used);
                return r;
            }
            let left = wait.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the RELP collector did not answer in time"));
            }
            let c = self.conn.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            c.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let k = c.read(&mut tmp)?;
            if k == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the collector closed the connection"));
            }
            self.rx.extend_from_slice(&tmp[..k]);
        }
    }

    /// Reads the answer to transaction `txnr`: Ok(Ok(())) for 200, Ok(Err(reason)) for a
    /// refusal.
    fn answer(&mut self, txnr: u32, wait: Duration) -> io::Result<Result<(), String>> {
        self.read_frame(wait, |fr| {
            if fr.command != b"rsp" {
                return Err(broken(format!("RELP: {:?} where an answer was due", String::from_utf8_lossy(fr.command))));
            }
            if fr.txnr != txnr {
                return Err(broken(format!("RELP: the answer to {} where {txnr}'s was due", fr.txnr)));
            }
            Ok(refusal(fr.data).map_or(Ok(()), Err))
        })
    }

    fn write_out(&mut self) -> io::Result<()> {
        let c = self.conn.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        c.write_all(&self.out)?;
        c.flush()?;
        self.out.clear();
        Ok(())
    }

    /// Sends messages `from..` of `c`; on failure, the messages answered so far (counted from
    /// the chunk's start) go with the error. The answers that were on their way when the
    /// connection broke are read first: a collector that stops answers what it took, then
    /// closes. A message the collector refuses (`500`) is a failure too: the chunk resumes at
    /// it after reconnecting (as omrelp does), so nothing refused counts as sent.
    fn send_from(&mut self, c: &Chunk, from: usize) -> Result<(), (io::Error, usize)> {
        // (txnr, message index) in flight, oldest first; answers come in order.
        let mut flight: VecDeque<(u32, usize)> = VecDeque::with_capacity(WINDOW);
        let Err(e) = self.send_window(c, from, &mut flight) else { return Ok(()) };
        // (Not after a protocol error, nor a refusal: the refused message stays first.)
        if !matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::Other) {
            while let Some(&(t, _)) = flight.front() {
                match self.answer(t, LAST_ANSWERS_WAIT) {
                    Ok(Ok(())) => {
                        flight.pop_front();
                    }
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
        let done = flight.front().map_or(c.ends.len(), |f| f.1);
        Err((e, done))
    }

    fn send_window(&mut self, c: &Chunk, from: usize, flight: &mut VecDeque<(u32, usize)>) -> io::Result<()> {
        self.out.clear();
        for (i, m) in c.messages().enumerate().skip(from) {
            let t = self.next_txnr();
            Self::frame(&mut self.out, t, "syslog", m);
            flight.push_back((t, i));
            if flight.len() >= WINDOW {
                self.write_out()?;
                while flight.len() > WINDOW / 2 {
                    self.take_answer(flight)?;
                }
            }
        }
        self.write_out()?;
        while !flight.is_empty() {
            self.take_answer(flight)?;
        }
        Ok(())
    }

    /// Reads the answer to the oldest message in flight; a refusal is an error (the message
    /// stays in flight).
    fn take_answer(&mut self, flight: &mut VecDeque<(u32, usize)>) -> io::Result<()> {
        let (t, _) = flight[0];
        if let Err(why) = self.answer(t, ANSWER_WAIT)? {
            return Err(io::Error::other(format!("the RELP collector refused a message: {why}")));
        }
        flight.pop_front();
        Ok(())
    }

    fn open_session(&mut self) -> io::Result<()> {
        self.rx.clear();
        self.conn = Some(match &self.tls {
            Some((cfg, name)) => Conn::tls(&self.addr, cfg, name)?,
            None => Conn::tcp(&self.addr)?,
        });
        self.txnr = 1;
        let t = self.next_txnr();
        self.out.clear();
        Self::frame(&mut self.out, t, "open", OFFERS.as_bytes());
        self.write_out()?;
        let offers = self.read_frame(ANSWER_WAIT, |fr| {
            if fr.command != b"rsp" || fr.txnr != t {
                return Err(broken("RELP: no answer to open".into()));
            }
            Ok(fr.data.to_vec())
        })?;
        if let Some(why) = refusal(&offers) {
            return Err(broken(format!("RELP: the collector refused the session: {why}")));
        }
        let syslog = offers
            .split(|&b| b == b'\n')
            .skip(1)
            .any(|l| l.strip_prefix(b"commands=").is_some_and(|c| c.split(|&b| b == b',').any(|c| c == b"syslog")));
        if !syslog {
            return Err(broken("RELP: the collector does not take the syslog command".into()));
        }
        Ok(())
    }
}

impl Transport for RelpTransport {
    fn connect(&mut self) -> io::Result<()> {
        let r = self.open_session();
        if r.is_err() {
            self.disconnect();
        }
        r
    }

    fn send(&mut self, c: &Chunk) -> io::Result<()> {
        let from = match self.resume.take() {
            Some((fp, k)) if fp == fingerprint(c) => k,
            _ => 0,
        };
        match self.send_from(c, from) {
            Ok(()) => Ok(()),
            Err((e, done)) => {
                if done > 0 {
                    self.resume = Some((fingerprint(c), done));
                }
                Err(e)
            }
        }
    }

    fn disconnect(&mut self) {
        if let Some(mut c) = self.conn.take() {
            c.shutdown();
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.conn.is_some() {
            let t = self.next_txnr();
            self.out.clear();
            Self::frame(&mut self.out, t, "close", b"");
            // The answer is a courtesy: everything was answered already.
            if self.write_out().is_ok() {
                let _ = self.answer(t, LAST_ANSWERS_WAIT);
            }
        }
        self.disconnect();
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn frames() {
        let (f, n) = parse_frame(b"2 rsp 6 200 OK\n3 rsp").unwrap().unwrap();
        assert_eq!((f.txnr, f.command, f.data, n), (2, &b"rsp"[..], &b"200 OK"[..], 15));
        let (f, n) = parse_frame(b"0 serverclose 0\n").unwrap().unwrap();
        assert_eq!((f.txnr, f.command, f.data, n), (0, &b"serverclose"[..], &b""[..], 16));
        assert_eq!(parse_frame(b"2 rsp 6 200 O").unwrap(), None);
        assert_eq!(parse_frame(b"2 rs").unwrap(), None);
        assert_eq!(parse_frame(b"").unwrap(), None);
        assert!(parse_frame(b"x rsp 6 200 OK\n").is_err());
        assert!(parse_frame(b"2 rsp 6 200 OKX").is_err());
        assert!(parse_frame(b"2 rsp 6\n").is_err());
        assert!(parse_frame(b"12345678901 rsp 0\n").is_err());
        assert!(parse_frame(b"1 rsp 99999999 ").is_err());
        let mut o = Vec::new();
        RelpTransport::frame(&mut o, 7, "syslog", b"<134>1 - - - - - - a");
        assert_eq!(o, b"7 syslog 20 <134>1 - - - - - - a\n");
        o.clear();
        RelpTransport::frame(&mut o, 8, "close", b"");
        assert_eq!(o, b"8 close 0\n");
    }

    #[test]
    fn any_bytes_from_the_collector_are_an_answer_an_error_or_not_yet() {
        let good = b"1 rsp 40 200 OK\nrelp_version=0\ncommands=syslog\n2 rsp 6 200 OK\n0 serverclose 0\n";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for cut in 0..=good.len() {
            let _ = parse_frame(&good[..cut]);
            for _ in 0..200 {
                let mut b = good[..cut].to_vec();
                for _ in 0..3 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if !b.is_empty() {
                        let i = (x % b.len() as u64) as usize;
                        b[i] = (x >> 32) as u8;
                    }
                }
                if let Ok(Some((_, used))) = parse_frame(&b) {
                    assert!(used <= b.len());
                }
            }
        }
    }

    /// A collector that answers `open` and then the first `take` messages, and drops the
    /// connection at the next one; the second connection answers everything. Returns the
    /// messages it took.
    fn collector(l: TcpListener, take: usize) -> std::thread::JoinHandle<Vec<String>> {
        collector_with(l, take, false)
    }

    /// [`collector`], answering the message after the first `take` with a refusal (`500`) when
    /// `refuse`, before it stops.
    fn collector_with(l: TcpListener, take: usize, refuse: bool) -> std::thread::JoinHandle<Vec<String>> {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            for conn in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut rx = Vec::new();
                let mut tmp = [0u8; 4096];
                'frames: loop {
                    let (txnr, cmd, data, used) = loop {
                        if let Some((f, used)) = parse_frame(&rx).unwrap() {
                            break (f.txnr, f.command.to_vec(), f.data.to_vec(), used);
                        }
                        let k = s.read(&mut tmp).unwrap();
                        if k == 0 {
                            break 'frames;
                        }
                        rx.extend_from_slice(&tmp[..k]);
                    };
                    rx.drain(..used);
                    match &cmd[..] {
                        b"open" => {
                            let a = "200 OK\nrelp_version=0\ncommands=syslog";
                            writeln!(s, "{txnr} rsp {} {a}", a.len()).unwrap();
                        }
                        b"syslog" => {
                            if conn == 0 && got.len() == take {
                                if refuse {
                                    writeln!(s, "{txnr} rsp 9 500 full!").unwrap();
                                }
                                // Stops as a collector does: what it answered goes out,
                                // then its end of the connection closes.
                                s.shutdown(std::net::Shutdown::Write).unwrap();
                                while s.read(&mut tmp).is_ok_and(|k| k > 0) {}
                                break;
                            }
                            got.push(String::from_utf8(data).unwrap());
                            writeln!(s, "{txnr} rsp 6 200 OK").unwrap();
                        }
                        b"close" => {
                            writeln!(s, "{txnr} rsp 0").unwrap();
                            return got;
                        }
                        c => panic!("{c:?}"),
                    }
                }
            }
            got
        })
    }

    fn chunk(n: usize) -> Chunk {
        let mut c = Chunk::default();
        for i in 0..n {
            c.data.extend_from_slice(format!("<134>1 - - - - - - message {i}").as_bytes());
            c.end_message();
            c.records += 1;
        }
        c
    }

    /// Sends a chunk of `n` messages to [`collector_with`]`(take, refuse)`: the first attempt
    /// fails, the second (after reconnecting) goes through. Returns the first attempt's error,
    /// what the collector took and the chunk's messages.
    fn send_across_a_break(n: usize, take: usize, refuse: bool) -> (io::Error, Vec<String>, Vec<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = collector_with(l, take, refuse);
        let mut t = RelpTransport::new(&addr, None).unwrap();
        let c = chunk(n);
        t.connect().unwrap();
        let e = t.send(&c).unwrap_err();
        t.disconnect();
        t.connect().unwrap();
        t.send(&c).unwrap();
        t.finish().unwrap();
        let want = c.messages().map(|m| String::from_utf8(m.to_vec()).unwrap()).collect();
        (e, h.join().unwrap(), want)
    }

    #[test]
    fn a_chunk_cut_by_the_collector_resumes_after_what_it_answered() {
        let (_, got, want) = send_across_a_break(1000, 300, false);
        assert_eq!(got, want, "every message once, in order");
    }

    #[test]
    fn a_refused_message_is_sent_again_not_counted_as_sent() {
        let (e, got, want) = send_across_a_break(100, 40, true);
        assert!(e.to_string().contains("refused a message: 500 full!"), "{e}");
        assert_eq!(got, want);
    }

    #[test]
    fn a_collector_that_does_not_answer_open_fails_the_connect() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 256];
            let _ = s.read(&mut b).unwrap();
            s.write_all(b"1 rsp 10 500 no way\n").unwrap();
        });
        let mut t = RelpTransport::new(&addr, None).unwrap();
        let e = t.connect().unwrap_err();
        assert!(e.to_string().contains("refused the session: 500 no way"), "{e}");
        assert!(t.conn.is_none());
        h.join().unwrap();
    }

    #[test]
    fn another_chunk_after_a_failure_is_sent_whole() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = collector(l, 10);
        let mut t = RelpTransport::new(&addr, None).unwrap();
        t.connect().unwrap();
        assert!(t.send(&chunk(20)).is_err());
        t.disconnect();
        t.connect().unwrap();
        let other = chunk(15);
        t.send(&other).unwrap();
        t.finish().unwrap();
        let got = h.join().unwrap();
        assert_eq!(got.len(), 25);
        assert_eq!(got[10], "<134>1 - - - - - - message 0");
    }
}
