//! SSH (RFC 4253): the identification banner of each side (protocol and software version) and
//! the first KEXINIT, for HASSH / HASSHServer (Salesforce's fingerprint: the MD5 of the
//! key-exchange, encryption, MAC and compression lists). Banners are bounded at
//! [`MAX_BANNER`] bytes (RFC 4253 §4.2 allows 255), the KEXINIT packet at [`MAX_KEXINIT`].

pub mod cef;
pub mod eve;
pub mod rules;

use crate::app::stream::Chunk;
use crate::app::protocol::Info;
use crate::app::{hex_lower, AppEvent, Emit, Input, Protocol};
use md5::{Digest, Md5};

/// SSH, identified by a banner (`SSH-`) on any port; logged once both sides' banners and
/// KEXINITs were seen (then nothing is left to read) or with its flow.
#[derive(Debug)]
pub struct Ssh;

impl Protocol for Ssh {
    const INFO: Info = Info::new("ssh", &["ssh"], &[6]).buffers(rules::BUFFERS);
    type State = SshState;
    type Counters = SshCounters;
    /// A session's banners and KEXINITs.
    type Event<'a> = &'a SshState;
    type Owned = SshState;

    fn probe_tcp(_dir: usize, data: &[u8], _ports: (u16, u16)) -> Option<bool> {
        probe(data)
    }

    fn tcp_input(s: &mut SshState, i: Input<'_, '_, SshCounters>) -> u64 {
        s.input(i.dir, i.chunk, i.counters, i.emit);
        0
    }

    fn is_done(s: &SshState) -> bool {
        s.is_done()
    }

    fn finish(s: &mut SshState, _c: &mut SshCounters, emit: &mut Emit<'_>) {
        s.finish(emit)
    }

    fn add(a: &mut SshCounters, b: &SshCounters) {
        a.banners += b.banners;
        a.kexinits += b.kexinits;
        a.malformed += b.malformed;
    }

    fn anomalies(c: &SshCounters, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "ssh malformed {}", c.malformed);
    }

    crate::event_by_copy!(SshState);

    crate::records_by!(eve::write_ssh, cef::write_ssh, rules::inspect);
}

pub const MAX_BANNER: usize = 255;
pub const MAX_KEXINIT: usize = 32 << 10;
const MSG_KEXINIT: u8 = 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SshCounters {
    pub banners: u64,
    pub kexinits: u64,
    pub malformed: u64,
}

/// Whether `data` starts like an SSH banner.
pub fn probe(data: &[u8]) -> Option<bool> {
    crate::app::probe_prefix(data, b"SSH-")
}

/// Splits "SSH-2.0-OpenSSH_9.6 Debian" into ("2.0", "OpenSSH_9.6").
pub fn parse_banner(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"SSH-")?;
    let dash = memchr::memchr(b'-', rest)?;
    let proto = &rest[..dash];
    let sw = &rest[dash + 1..];
    let sw = &sw[..memchr::memchr(b' ', sw).unwrap_or(sw.len())];
    Some((proto, sw))
}

/// The name-lists of a KEXINIT payload (after the message byte and the cookie).
pub fn kexinit_lists(payload: &[u8]) -> Option<[&[u8]; 8]> {
    let mut r = crate::app::tls::parser::Reader::new(payload);
    if r.u8()? != MSG_KEXINIT {
        return None;
    }
    r.take(16)?;
    let mut out: [&[u8]; 8] = [&[]; 8];
    for o in out.iter_mut() {
        let n = r.u32()? as usize;
        *o = r.take(n)?;
    }
    Some(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Banner,
    Packet,
    Done,
}

#[derive(Debug, Default)]
struct Side {
    phase: Phase,
    buf: Vec<u8>,
    proto: Vec<u8>,
    software: Vec<u8>,
    has_banner: bool,
    hassh: Vec<u8>,
}

/// One side of an SSH session as logged.
#[derive(Debug, Clone, Copy)]
pub struct SshSide<'a> {
    pub proto_version: &'a [u8],
    pub software_version: &'a [u8],
    /// The HASSH string, when the KEXINIT was seen; [`SshSide::hassh_hash`] gives its MD5.
    pub hassh: Option<&'a [u8]>,
}

impl SshSide<'_> {
    /// The HASSH: the MD5 of the HASSH string, in lower-case hex. Computed when read (by the
    /// exporter), not on the packet path.
    pub fn hassh_hash(&self) -> Option<[u8; 32]> {
        self.hassh.map(|h| {
            let mut o = [0u8; 32];
            hex_lower(&mut o, &Md5::digest(h));
            o
        })
    }
}

/// Per-flow SSH state.
#[derive(Debug, Default)]
pub struct SshState {
    sides: [Side; 2],
    logged: bool,
}

impl SshState {
    /// Makes this a copy of `o`'s logged fields, reusing this one's buffers (for the exporter).
    pub fn copy_from(&mut self, o: &SshState) {
        for (a, b) in self.sides.iter_mut().zip(&o.sides) {
            a.phase = b.phase;
            a.has_banner = b.has_banner;
            a.buf.clear();
            for (x, y) in [(&mut a.proto, &b.proto), (&mut a.software, &b.software), (&mut a.hassh, &b.hassh)] {
                x.clear();
                x.extend_from_slice(y);
            }
        }
        self.logged = o.logged;
    }

    /// The client (0) or server (1) side, once its banner was seen.
    pub fn side(&self, dir: usize) -> Option<SshSide<'_>> {
        let s = &self.sides[dir];
        s.has_banner.then(|| SshSide {
            proto_version: &s.proto,
            software_version: &s.software,
            hassh: (!s.hassh.is_empty()).then_some(&s.hassh[..]),
        })
    }

    pub fn is_done(&self) -> bool {
        self.logged
    }

    fn maybe_log(&mut self, emit: &mut Emit<'_>) {
        if !self.logged && self.sides.iter().all(|s| s.phase == Phase::Done) {
            self.log(emit);
        }
    }

    fn log(&mut self, emit: &mut Emit<'_>) {
        if !self.logged && self.sides.iter().any(|s| s.has_banner) {
            emit(&AppEvent::Ssh(self));
        }
        self.logged = true;
    }

    pub fn finish(&mut self, emit: &mut Emit<'_>) {
        self.log(emit);
    }

    pub fn input(&mut self, dir: usize, chunk: Chunk<'_>, c: &mut SshCounters, emit: &mut Emit<'_>) {
        let mut data = match chunk {
            Chunk::Data(d) => d,
            // (Skipped bytes are never asked for by this parser: a gap if they came.)
            Chunk::Gap(_) | Chunk::Skipped(_) => {
                self.sides[dir].phase = Phase::Done;
                self.maybe_log(emit);
                return;
            }
        };
        while !data.is_empty() {
            let s = &mut self.sides[dir];
            match s.phase {
                Phase::Done => return,
                Phase::Banner => {
                    let nl = memchr::memchr(b'\n', data);
                    let take = nl.map_or(data.len(), |i| i + 1);
                    if s.buf.len() + take > MAX_BANNER + 2 {
                        c.malformed += 1;
                        s.phase = Phase::Done;
                        s.buf.clear();
                        continue;
                    }
                    s.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if nl.is_none() {
                        return;
                    }
                    let line = std::mem::take(&mut s.buf);
                    let l = line.strip_suffix(b"\n").unwrap_or(&line);
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    // RFC 4253 §4.2: other lines may precede the version line.
                    if let Some((proto, sw)) = parse_banner(l) {
                        c.banners += 1;
                        s.proto.extend_from_slice(proto);
                        s.software.extend_from_slice(sw);
                        s.has_banner = true;
                        s.phase = Phase::Packet;
                    }
                    s.buf = line;
                    s.buf.clear();
                }
                Phase::Packet => {
                    // uint32 packet_length, then that many bytes.
                    let take = if s.buf.len() < 4 {
                        (4 - s.buf.len()).min(data.len())
                    } else {
                        let len = u32::from_be_bytes([s.buf[0], s.buf[1], s.buf[2], s.buf[3]]) as usize;
                        if !(2..=MAX_KEXINIT).contains(&len) {
                            c.malformed += 1;
                            s.phase = Phase::Done;
                            s.buf.clear();
                            self.maybe_log(emit);
                            return;
                        }
                        (4 + len - s.buf.len()).min(data.len())
                    };
                    s.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if s.buf.len() >= 4 {
                        let len = u32::from_be_bytes([s.buf[0], s.buf[1], s.buf[2], s.buf[3]]) as usize;
                        if s.buf.len() == 4 + len && len >= 2 {
                            let pad = s.buf[4] as usize;
                            let payload = s.buf.get(5..(4 + len).saturating_sub(pad).max(5)).unwrap_or(&[]);
                            match kexinit_lists(payload) {
                                Some(l) => {
                                    c.kexinits += 1;
                                    // client: kex, enc c2s, mac c2s, comp c2s; server: the s2c lists
                                    let idx = if dir == 0 { [0, 2, 4, 6] } else { [0, 3, 5, 7] };
                                    // Built in the side's kept buffers: no allocation per flow.
                                    let h = &mut s.hassh;
                                    h.clear();
                                    for (i, &k) in idx.iter().enumerate() {
                                        if i > 0 {
                                            h.push(b';');
                                        }
                                        h.extend_from_slice(l[k]);
                                    }
                                }
                                None => c.malformed += 1,
                            }
                            s.buf.clear();
                            s.phase = Phase::Done;
                            self.maybe_log(emit);
                        }
                    }
                }
            }
        }
    }
}

impl crate::app::Reuse for SshState {
    fn reset(&mut self) {
        for s in &mut self.sides {
            s.phase = Phase::Banner;
            s.buf.clear();
            s.proto.clear();
            s.software.clear();
            s.hassh.clear();
            s.has_banner = false;
        }
        self.logged = false;
    }
    /// Frees buffers larger than `keep` bytes (between flows).
    fn trim(&mut self, keep: usize) {
        for s in &mut self.sides {
            crate::app::trim_vec(&mut s.buf, keep);
            crate::app::trim_vec(&mut s.hassh, keep);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn kexinit(lists: [&str; 10]) -> Vec<u8> {
        let mut p = vec![MSG_KEXINIT];
        p.extend_from_slice(&[0x11; 16]);
        for l in lists {
            p.extend_from_slice(&(l.len() as u32).to_be_bytes());
            p.extend_from_slice(l.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 0, 0, 0]);
        let pad = 4;
        let mut pkt = ((p.len() + 1 + pad) as u32).to_be_bytes().to_vec();
        pkt.push(pad as u8);
        pkt.extend_from_slice(&p);
        pkt.extend_from_slice(&[0; 4]);
        pkt
    }

    #[test]
    fn test_banners_and_hassh_split_anywhere() {
        let mut client = b"SSH-2.0-OpenSSH_9.6 Debian-1\r\n".to_vec();
        client.extend_from_slice(&kexinit([
            "curve25519-sha256",
            "ssh-ed25519",
            "aes128-ctr",
            "aes256-ctr",
            "hmac-sha2-256",
            "hmac-sha1",
            "none",
            "zlib",
            "",
            "",
        ]));
        let server = b"SSH-2.0-dropbear_2022.83\r\n";
        for step in [1, 3, 7, 1000] {
            let mut st = SshState::default();
            let mut c = SshCounters::default();
            let mut out = Vec::new();
            let mut emit = |e: &AppEvent<'_>| {
                if let AppEvent::Ssh(s) = e {
                    let cl = s.side(0).unwrap();
                    out.push(format!(
                        "{} {} {:?} {:?}",
                        String::from_utf8_lossy(cl.proto_version),
                        String::from_utf8_lossy(cl.software_version),
                        cl.hassh.map(|h| String::from_utf8_lossy(h).to_string()),
                        s.side(1).map(|s| String::from_utf8_lossy(s.software_version).to_string())
                    ));
                }
            };
            for ch in client.chunks(step) {
                st.input(0, Chunk::Data(ch), &mut c, &mut emit);
            }
            for ch in server.chunks(step) {
                st.input(1, Chunk::Data(ch), &mut c, &mut emit);
            }
            st.finish(&mut emit);
            assert_eq!(
                out,
                [r#"2.0 OpenSSH_9.6 Some("curve25519-sha256;aes128-ctr;hmac-sha2-256;none") Some("dropbear_2022.83")"#],
                "step {step}"
            );
            assert_eq!((c.banners, c.kexinits), (2, 1));
        }
    }

    #[test]
    fn test_long_banner_is_bounded() {
        let mut st = SshState::default();
        let mut c = SshCounters::default();
        let long = format!("SSH-2.0-{}\r\n", "x".repeat(400));
        st.input(0, Chunk::Data(long.as_bytes()), &mut c, &mut |_| {});
        assert_eq!(c.malformed, 1);
        assert!(st.side(0).is_none());
    }
}
