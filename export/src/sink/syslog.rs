//! Syslog (RFC 5424) over UDP (RFC 5426: one message per datagram), TCP (RFC 6587
//! octet-counting framing: `LEN SP MSG`) and TLS (RFC 5425, the same framing).
//!
//! A message is `<PRI>1 TIMESTAMP HOSTNAME spinewatch PID MSGID - PAYLOAD`, with MSGID the
//! EVE event type (`flow`, `alert`, `dns`...), TIMESTAMP when the exporter wrote it (the
//! payload carries the event's own time), and PAYLOAD the EVE JSON object or a CEF line.
//! Severity: alerts warning (4), everything else informational (6); the facility is the
//! sink's (default local5, as Suricata's syslog output).

use super::net::{connect_udp, tls_setup, Conn, TlsOptions};
use super::url::{Endpoint, Format, Location, Query, Scheme, Target};
use super::{Chunk, Transport};
use std::io::{self, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;

/// The most a UDP message may carry (the rest is cut; RFC 5426 allows the transport's maximum).
pub const UDP_MAX: usize = 65_000;

pub const SEV_WARNING: u8 = 4;
pub const SEV_INFO: u8 = 6;

/// What every message's header repeats.
#[derive(Debug, Clone)]
pub struct Header {
    pub facility: u8,
    pub hostname: String,
    pub pid: u32,
}

impl Header {
    pub fn new(facility: u8) -> Header {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| "-".into());
        Header { facility, hostname, pid: std::process::id() }
    }

    /// Appends the header of one message; `ts` is the RFC 3339 time (microseconds, UTC).
    pub fn write(&self, out: &mut Vec<u8>, severity: u8, msgid: &str, ts: &[u8]) {
        let pri = self.facility as u16 * 8 + severity as u16;
        let _ = write!(out, "<{pri}>1 ");
        out.extend_from_slice(ts);
        let _ = write!(out, " {} spinewatch {} {msgid} - ", self.hostname, self.pid);
    }
}

/// RFC 3339 with microseconds and `Z`, as RFC 5424 wants it.
pub fn timestamp(us: u64) -> Vec<u8> {
    let mut t = Vec::with_capacity(32);
    crate::eve::write_timestamp(&mut t, us);
    // "...ss.uuuuuu+0000" → "...ss.uuuuuuZ"
    t.truncate(t.len() - 5);
    t.push(b'Z');
    t
}

/// Facility names (RFC 5424 table 1) → numbers.
pub fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// RFC 5424 over UDP, TCP, TLS, RELP and RELP over TLS (`format=eve|cef`, `facility=local5`;
/// TLS: `ca`, `cert`, `key`, `server_name`).
pub const SCHEMES: &[Scheme] = &[
    Scheme { name: "syslog+udp", aliases: &["syslog"], options: PLAIN, parse, userinfo: false },
    Scheme { name: "syslog+tcp", aliases: &[], options: PLAIN, parse, userinfo: false },
    Scheme { name: "syslog+tls", aliases: &[], options: WITH_TLS, parse, userinfo: false },
    Scheme { name: "syslog+relp", aliases: &[], options: PLAIN, parse, userinfo: false },
    Scheme { name: "syslog+relp+tls", aliases: &[], options: WITH_TLS, parse, userinfo: false },
];
const PLAIN: &[&str] = &["facility", "format"];
const WITH_TLS: &[&str] = &["facility", "format", "ca", "cert", "key", "server_name"];

/// A syslog sink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    pub addr: String,
    pub proto: Proto,
}

fn parse(scheme: &str, loc: &Location, q: &mut Query) -> Result<(Target, Format), String> {
    let port = match scheme {
        "syslog+tls" => 6514,
        "syslog+relp" | "syslog+relp+tls" => 2514,
        _ => 514,
    };
    let addr = loc.addr(port)?;
    let mut tls = || TlsOptions {
        ca: q.get("ca").map(PathBuf::from),
        cert: q.get("cert").map(PathBuf::from),
        key: q.get("key").map(PathBuf::from),
        server_name: q.get("server_name"),
    };
    let proto = match scheme {
        "syslog+tcp" => Proto::Tcp,
        "syslog+tls" => Proto::Tls(tls()),
        "syslog+relp" => Proto::Relp(None),
        "syslog+relp+tls" => Proto::Relp(Some(tls())),
        _ => Proto::Udp,
    };
    let facility = match q.get("facility") {
        None => 21,
        Some(f) => {
            facility(&f).ok_or_else(|| format!("facility: {f:?} (kern, user, daemon, auth, syslog, local0..local7)"))?
        }
    };
    let cef = match q.get("format").as_deref() {
        None | Some("eve") | Some("json") => false,
        Some("cef") => true,
        Some(o) => return Err(format!("format: {o:?} (eve or cef)")),
    };
    Ok((Target(Arc::new(SyslogTarget { addr, proto })), Format::Syslog { facility, cef }))
}

impl Endpoint for SyslogTarget {
    fn open(&self, sink: &str) -> io::Result<Box<dyn Transport>> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("sink {sink}: {e}"));
        Ok(match &self.proto {
            Proto::Relp(tls) => Box::new(super::relp::RelpTransport::new(&self.addr, tls.as_ref()).map_err(named)?),
            p => Box::new(SyslogTransport::new(&self.addr, p.clone()).map_err(named)?),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// How syslog reaches the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
    Tls(TlsOptions),
    /// RELP ([`super::relp`]), plain or over TLS.
    Relp(Option<TlsOptions>),
}

pub struct SyslogTransport {
    addr: String,
    proto: Proto,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    udp: Option<UdpSocket>,
    conn: Option<Conn>,
    buf: Vec<u8>,
    /// UDP messages cut to [`UDP_MAX`].
    pub truncated: u64,
}

impl SyslogTransport {
    /// Reads the TLS files now, so a bad one fails the start.
    pub fn new(addr: &str, proto: Proto) -> io::Result<SyslogTransport> {
        let tls = match &proto {
            Proto::Tls(o) => Some(tls_setup(addr, o)?),
            _ => None,
        };
        Ok(SyslogTransport {
            addr: addr.to_string(),
            proto,
            tls,
            udp: None,
            conn: None,
            buf: Vec::with_capacity(1 << 20),
            truncated: 0,
        })
    }
}

impl Transport for SyslogTransport {
    fn connect(&mut self) -> io::Result<()> {
        match &self.proto {
            Proto::Udp => self.udp = Some(connect_udp(&self.addr)?),
            Proto::Tcp => self.conn = Some(Conn::tcp(&self.addr)?),
            Proto::Tls(_) => {
                let (cfg, name) = self.tls.as_ref().expect("set up in new");
                self.conn = Some(Conn::tls(&self.addr, cfg, name)?);
            }
            Proto::Relp(_) => unreachable!("RELP has its own transport"),
        }
        Ok(())
    }

    fn send(&mut self, c: &Chunk) -> io::Result<()> {
        if let Some(u) = &self.udp {
            for m in c.messages() {
                let m = if m.len() > UDP_MAX {
                    self.truncated += 1;
                    &m[..UDP_MAX]
                } else {
                    m
                };
                u.send(m)?;
            }
            return Ok(());
        }
        let conn = self.conn.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        self.buf.clear();
        for m in c.messages() {
            let _ = write!(self.buf, "{} ", m.len());
            self.buf.extend_from_slice(m);
        }
        conn.send_all(&self.buf)
    }

    fn disconnect(&mut self) {
        if let Some(mut c) = self.conn.take() {
            c.shutdown();
        }
        self.udp = None;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn header_as_rfc5424() {
        let h = Header { facility: 21, hostname: "sensor1".into(), pid: 42 };
        let mut o = Vec::new();
        h.write(&mut o, SEV_WARNING, "alert", &timestamp(1_700_000_000_010_000));
        assert_eq!(String::from_utf8(o).unwrap(), "<172>1 2023-11-14T22:13:20.010000Z sensor1 spinewatch 42 alert - ");
    }

    #[test]
    fn octet_counting_over_tcp() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut t = SyslogTransport::new(&addr, Proto::Tcp).unwrap();
        t.connect().unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut c = Chunk::default();
        for m in ["<134>1 - - - - - - a b", "<134>1 - - - - - - héllo"] {
            c.data.extend_from_slice(m.as_bytes());
            c.end_message();
        }
        t.send(&c).unwrap();
        t.finish().unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut s, &mut got).unwrap();
        assert_eq!(got, "22 <134>1 - - - - - - a b25 <134>1 - - - - - - héllo");
        // The peer gone: the next send fails instead of writing into the void.
        let mut t = SyslogTransport::new(&addr, Proto::Tcp).unwrap();
        t.connect().unwrap();
        let (s, _) = l.accept().unwrap();
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(t.send(&c).is_err());
    }
}
