//! Pure-Rust pcap and pcapng reading and pcap writing; no libpcap, no DPDK.
//!
//! The reader reuses one buffer: [`PcapReader::next_packet`] allocates nothing once the buffer
//! has grown to the largest record. Classic pcap in both byte orders with micro- or nanosecond
//! timestamps, and pcapng (section header, interface description with `if_tsresol`, enhanced and
//! simple packet blocks; other blocks skipped) are read. Ethernet, and NULL/LOOP, raw IP and Linux
//! SLL/SLL2 rewritten as Ethernet frames (the original length kept for byte counts); any other
//! link type is a clear error naming it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The largest record we accept; larger ones mean a corrupt file.
pub const MAX_RECORD: usize = 256 * 1024;
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The input name that stands for standard input.
pub const STDIN: &str = "-";

/// The bytes of the files named (standard input and unreadable paths count 0): a progress
/// line's total.
pub fn total_bytes(paths: &[PathBuf]) -> u64 {
    paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{path}: not a pcap or pcapng file (magic {magic:#010x})")]
    BadMagic { path: PathBuf, magic: u32 },
    #[error("{path}: link type {linktype} is not supported (Ethernet 1, NULL 0, LOOP 108, raw IP 101/12/228/229, Linux SLL 113 and SLL2 276 are)")]
    LinkType { path: PathBuf, linktype: u32 },
    #[error("{path}: corrupt record at byte {offset}: {what}")]
    Corrupt { path: PathBuf, offset: u64, what: &'static str },
    /// The file ends inside a record (a capture cut short: tcpdump killed mid-write, a copy
    /// that did not finish): every whole packet before it was read.
    #[error("{path}: the file ends inside a record at byte {offset} (a capture cut short); the whole packets before it were read")]
    Truncated { path: PathBuf, offset: u64 },
}

/// One packet read from a capture; `data` borrows the reader's buffer.
#[derive(Debug)]
pub struct Record<'a> {
    /// Microseconds since the epoch.
    pub ts: u64,
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()`).
    pub orig_len: u32,
    /// Bytes captured, as in the file (before a non-Ethernet link header was rewritten): what
    /// the frame counts on its flow, as Suricata counts it.
    pub cap_len: u32,
}

enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link: u32,
    },
    /// Per interface of the current section, in order of description.
    PcapNg {
        big_endian: bool,
        ifaces: Vec<Iface>,
    },
}

/// A pcapng interface: what its packet blocks' timestamps and frames mean.
#[derive(Clone, Copy)]
struct Iface {
    /// Timestamp units per second (`if_tsresol`: 10^-n or 2^-n seconds; microseconds without it).
    units: u64,
    link: u32,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
}

/// Link types read besides Ethernet: their frames are handed out as Ethernet frames (the link
/// header replaced by a 14-byte one with the right EtherType), and `orig_len` stays the original
/// length, so byte counts are those of the capture (as Suricata counts them).
fn link_supported(link: u32) -> bool {
    matches!(link, LINKTYPE_ETHERNET | 0 | 108 | 101 | 12 | 14 | 228 | 229 | 113 | 276)
}

/// The destination MAC of a frame rewritten from another link type (a locally administered
/// address no NIC has); its source MAC's last byte is the original link header's length. It
/// travels with the frame through a split file and DPDK's net_pcap, so every path counts the
/// bytes the capture had ([`counted_len`]), as Suricata counts them.
pub const REWRITTEN_MAC: [u8; 6] = [0x02, b's', b'w', b'l', b'n', b'k'];

/// The length a frame counts for: its length in the capture it came from. For a frame
/// [`to_ethernet`] rewrote (marked with [`REWRITTEN_MAC`]), the original link header's length
/// instead of the 14 bytes of Ethernet.
#[inline]
pub fn counted_len(frame: &[u8], len: u32) -> u32 {
    match frame.get(..12) {
        Some(h) if h[..6] == REWRITTEN_MAC => (len + h[11] as u32).saturating_sub(14),
        _ => len,
    }
}

/// Rewrites a non-Ethernet frame as Ethernet into `out`; `false` when the frame is not IP (or
/// too short), which the caller hands out as it is (counted as not IP or a decode error).
fn to_ethernet(link: u32, frame: &[u8], out: &mut Vec<u8>) -> bool {
    let ipv = |b: &[u8]| match b.first().map(|x| x >> 4) {
        Some(4) => Some(0x0800u16),
        Some(6) => Some(0x86dd),
        _ => None,
    };
    let (ethertype, hdr) = match link {
        0 | 108 if frame.len() >= 4 => {
            let raw = [frame[0], frame[1], frame[2], frame[3]];
            // NULL is host order, LOOP network order: take whichever gives a small family.
            let le = u32::from_le_bytes(raw);
            let fam = if le > 0xffff { u32::from_be_bytes(raw) } else { le };
            match fam {
                2 => (0x0800, 4),
                24 | 28 | 30 => (0x86dd, 4),
                _ => return false,
            }
        }
        101 | 12 | 14 | 228 | 229 => match ipv(frame) {
            Some(et) => (et, 0),
            None => return false,
        },
        113 if frame.len() >= 16 => (u16::from_be_bytes([frame[14], frame[15]]), 16),
        276 if frame.len() >= 20 => (u16::from_be_bytes([frame[0], frame[1]]), 20),
        _ => return false,
    };
    out.clear();
    out.extend_from_slice(&REWRITTEN_MAC);
    out.extend_from_slice(&[0, 0, 0, 0, 0, hdr as u8]);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(&frame[hdr..]);
    true
}

pub struct PcapReader {
    path: PathBuf,
    r: BufReader<Box<dyn Read + Send>>,
    fmt: Format,
    buf: Vec<u8>,
    /// A non-Ethernet frame rewritten as Ethernet.
    conv: Vec<u8>,
    offset: u64,
}

fn u32_at(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u16_at(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

impl PcapReader {
    /// Opens a capture file, or standard input for `-` (`tcpdump -w - | spinewatch replay -`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PcapError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |error| PcapError::Io { path: path.clone(), error };
        let f: Box<dyn Read + Send> = if path.as_os_str() == STDIN {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(&path).map_err(io_err)?)
        };
        let mut r = BufReader::with_capacity(1 << 20, f);
        let mut hdr = [0u8; 4];
        r.read_exact(&mut hdr).map_err(io_err)?;
        let magic = u32::from_le_bytes(hdr);
        let mut me = PcapReader {
            path: path.clone(),
            r,
            fmt: Format::Pcap { big_endian: false, nanos: false, link: LINKTYPE_ETHERNET },
            buf: Vec::new(),
            conv: Vec::new(),
            offset: 4,
        };
        match magic {
            0xa1b2c3d4 | 0xa1b23c4d | 0xd4c3b2a1 | 0x4d3cb2a1 => {
                let big = matches!(magic, 0xd4c3b2a1 | 0x4d3cb2a1);
                let nanos = matches!(magic, 0xa1b23c4d | 0x4d3cb2a1);
                let mut rest = [0u8; 20];
                me.read_exact(&mut rest)?;
                let linktype = u32_at(&rest[16..], big) & 0x0fff_ffff;
                if !link_supported(linktype) {
                    return Err(PcapError::LinkType { path, linktype });
                }
                me.fmt = Format::Pcap { big_endian: big, nanos, link: linktype };
            }
            0x0a0d0d0a => {
                me.fmt = Format::PcapNg { big_endian: false, ifaces: Vec::new() };
                me.read_shb_rest()?;
            }
            _ => return Err(PcapError::BadMagic { path, magic }),
        }
        Ok(me)
    }

    fn read_exact(&mut self, b: &mut [u8]) -> Result<(), PcapError> {
        self.r.read_exact(b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                PcapError::Truncated { path: self.path.clone(), offset: self.offset }
            } else {
                PcapError::Io { path: self.path.clone(), error: e }
            }
        })?;
        self.offset += b.len() as u64;
        Ok(())
    }

    /// Reads exactly `b.len()` bytes, or returns Ok(false) at a clean end of file.
    fn read_or_eof(&mut self, b: &mut [u8]) -> Result<bool, PcapError> {
        let mut got = 0;
        while got < b.len() {
            match self.r.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(PcapError::Truncated { path: self.path.clone(), offset: self.offset }),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PcapError::Io { path: self.path.clone(), error: e }),
            }
        }
        self.offset += b.len() as u64;
        Ok(true)
    }

    fn corrupt(&self, what: &'static str) -> PcapError {
        PcapError::Corrupt { path: self.path.clone(), offset: self.offset, what }
    }

    /// After the SHB block type: length, byte-order magic, the rest of the block.
    fn read_shb_rest(&mut self) -> Result<(), PcapError> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        self.read_shb_after_len(len)
    }

    /// The section header block from its byte-order magic on; `len` holds its length bytes.
    /// A new section resets the byte order and the interfaces.
    fn read_shb_after_len(&mut self, len: [u8; 4]) -> Result<(), PcapError> {
        let mut m = [0u8; 4];
        self.read_exact(&mut m)?;
        let big = match u32::from_le_bytes(m) {
            0x1a2b3c4d => false,
            0x4d3c2b1a => true,
            _ => return Err(self.corrupt("bad pcapng byte-order magic")),
        };
        let len = u32_at(&len, big) as usize;
        if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
            return Err(self.corrupt("bad section header length"));
        }
        let mut rest = vec![0u8; len - 12];
        self.read_exact(&mut rest)?;
        self.fmt = Format::PcapNg { big_endian: big, ifaces: Vec::new() };
        Ok(())
    }

    /// The next packet, or `None` at the end of the file.
    /// The next packet; a file cut inside a record ends there (`None`), with a warning and its
    /// note in `notes`: its whole packets are what it holds. Other corruption is the error.
    pub fn next_whole(&mut self, notes: &mut Vec<String>) -> Result<Option<Record<'_>>, PcapError> {
        match self.next_packet() {
            Err(e @ PcapError::Truncated { .. }) => {
                tracing::warn!("{e}");
                notes.push(e.to_string());
                Ok(None)
            }
            other => other,
        }
    }

    /// Bytes read so far (for a progress line).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn next_packet(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        match self.fmt {
            Format::Pcap { big_endian, nanos, link } => {
                let mut h = [0u8; 16];
                if !self.read_or_eof(&mut h)? {
                    return Ok(None);
                }
                let sec = u32_at(&h[0..], big_endian) as u64;
                let frac = u32_at(&h[4..], big_endian) as u64;
                let caplen = u32_at(&h[8..], big_endian) as usize;
                let orig_len = u32_at(&h[12..], big_endian);
                if caplen > MAX_RECORD {
                    return Err(self.corrupt("captured length larger than 256 KiB"));
                }
                let ts = sec * 1_000_000 + if nanos { frac / 1000 } else { frac };
                let mut buf = std::mem::take(&mut self.buf);
                buf.resize(caplen, 0);
                let r = self.read_exact(&mut buf);
                self.buf = buf;
                r?;
                let orig_len = orig_len.max(caplen as u32);
                if link != LINKTYPE_ETHERNET && to_ethernet(link, &self.buf, &mut self.conv) {
                    return Ok(Some(Record { ts, data: &self.conv, orig_len, cap_len: caplen as u32 }));
                }
                Ok(Some(Record { ts, data: &self.buf, orig_len, cap_len: caplen as u32 }))
            }
            Format::PcapNg { .. } => self.next_pcapng(),
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        loop {
            let big = match &self.fmt {
                Format::PcapNg { big_endian, .. } => *big_endian,
                _ => unreachable!("pcapng reader on a pcap file"),
            };
            let mut h = [0u8; 8];
            if !self.read_or_eof(&mut h)? {
                return Ok(None);
            }
            if u32::from_le_bytes([h[0], h[1], h[2], h[3]]) == 0x0a0d0d0a {
                self.read_shb_after_len([h[4], h[5], h[6], h[7]])?;
                continue;
            }
            let btype = u32_at(&h[0..], big);
            let blen = u32_at(&h[4..], big) as usize;
            if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_RECORD + 64 {
                return Err(self.corrupt("bad pcapng block length"));
            }
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(blen - 8, 0);
            let r = self.read_exact(&mut buf);
            self.buf = buf;
            r?;
            let body_len = blen - 12; // without the trailing length
            match btype {
                1 => {
                    // Interface description: linktype, reserved, snaplen, options.
                    if body_len < 8 {
                        return Err(self.corrupt("short interface description block"));
                    }
                    let linktype = u16_at(&self.buf, big) as u32;
                    if !link_supported(linktype) {
                        return Err(PcapError::LinkType { path: self.path.clone(), linktype });
                    }
                    let mut units_per_sec = 1_000_000u64;
                    let mut offset_secs = 0i64;
                    let mut o = 8;
                    while o + 4 <= body_len {
                        let code = u16_at(&self.buf[o..], big);
                        let olen = u16_at(&self.buf[o + 2..], big) as usize;
                        if code == 0 || o + 4 + olen > body_len {
                            break;
                        }
                        if code == 9 && olen >= 1 {
                            let v = self.buf[o + 4];
                            let exp = (v & 0x7f) as u32;
                            units_per_sec = if v & 0x80 != 0 { 2u64.checked_pow(exp) } else { 10u64.checked_pow(exp) }
                                .unwrap_or(1_000_000);
                        }
                        if code == 14 && olen == 8 {
                            let mut v = [0u8; 8];
                            v.copy_from_slice(&self.buf[o + 4..o + 12]);
                            offset_secs = if big { i64::from_be_bytes(v) } else { i64::from_le_bytes(v) };
                        }
                        o += 4 + olen.div_ceil(4) * 4;
                    }
                    if let Format::PcapNg { ifaces, .. } = &mut self.fmt {
                        ifaces.push(Iface { units: units_per_sec.max(1), link: linktype, offset_secs });
                    }
                }
                6 => {
                    if body_len < 20 {
                        return Err(self.corrupt("short enhanced packet block"));
                    }
                    let iface = u32_at(&self.buf[0..], big) as usize;
                    let ts_raw = ((u32_at(&self.buf[4..], big) as u64) << 32) | u32_at(&self.buf[8..], big) as u64;
                    let caplen = u32_at(&self.buf[12..], big) as usize;
                    let orig_len = u32_at(&self.buf[16..], big);
                    if 20 + caplen > body_len {
                        return Err(self.corrupt("enhanced packet block shorter than its captured length"));
                    }
                    let Iface { units, link, offset_secs } = match &self.fmt {
                        Format::PcapNg { ifaces, .. } => ifaces.get(iface).copied(),
                        _ => None,
                    }
                    .ok_or_else(|| self.corrupt("packet block names an undeclared interface"))?;
                    let ts =
                        if units == 1_000_000 { ts_raw } else { (ts_raw as u128 * 1_000_000 / units as u128) as u64 };
                    let ts = ts.saturating_add_signed(offset_secs.saturating_mul(1_000_000));
                    let orig_len = orig_len.max(caplen as u32);
                    if link != LINKTYPE_ETHERNET && to_ethernet(link, &self.buf[20..20 + caplen], &mut self.conv) {
                        return Ok(Some(Record { ts, data: &self.conv, orig_len, cap_len: caplen as u32 }));
                    }
                    return Ok(Some(Record { ts, data: &self.buf[20..20 + caplen], orig_len, cap_len: caplen as u32 }));
                }
                3 => {
                    if body_len < 4 {
                        return Err(self.corrupt("short simple packet block"));
                    }
                    let orig_len = u32_at(&self.buf[0..], big);
                    let caplen = (orig_len as usize).min(body_len - 4);
                    let link = match &self.fmt {
                        Format::PcapNg { ifaces, .. } => ifaces.first().map_or(LINKTYPE_ETHERNET, |i| i.link),
                        _ => LINKTYPE_ETHERNET,
                    };
                    if link != LINKTYPE_ETHERNET && to_ethernet(link, &self.buf[4..4 + caplen], &mut self.conv) {
                        return Ok(Some(Record { ts: 0, data: &self.conv, orig_len, cap_len: caplen as u32 }));
                    }
                    return Ok(Some(Record {
                        ts: 0,
                        data: &self.buf[4..4 + caplen],
                        orig_len,
                        cap_len: caplen as u32,
                    }));
                }
                _ => {} // statistics, name resolution, custom...: skipped
            }
        }
    }
}

/// Writes a classic little-endian, microsecond pcap with Ethernet link type.
pub struct PcapWriter<W: Write> {
    w: W,
}

impl PcapWriter<BufWriter<File>> {
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        PcapWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?))
    }
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&(MAX_RECORD as u32).to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    pub fn write(&mut self, ts_us: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(data)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_roundtrip_pcap() {
        let dir = std::env::temp_dir().join(format!("sw-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pcap");
        let mut w = PcapWriter::create(&p).unwrap();
        w.write(1_700_000_000_123_456, &[1, 2, 3], 60).unwrap();
        w.write(1_700_000_001_000_000, &[4; 100], 100).unwrap();
        w.finish().unwrap();
        let mut r = PcapReader::open(&p).unwrap();
        let a = r.next_packet().unwrap().unwrap();
        assert_eq!((a.ts, a.data, a.orig_len), (1_700_000_000_123_456, &[1u8, 2, 3][..], 60));
        let b = r.next_packet().unwrap().unwrap();
        assert_eq!((b.ts, b.data.len()), (1_700_000_001_000_000, 100));
        assert!(r.next_packet().unwrap().is_none());
        // truncated inside the second record
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
        let mut r = PcapReader::open(&p).unwrap();
        r.next_packet().unwrap();
        assert!(matches!(r.next_packet(), Err(PcapError::Truncated { .. })));
        std::fs::write(&p, b"hello world, not a capture").unwrap();
        assert!(matches!(PcapReader::open(&p), Err(PcapError::BadMagic { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn test_other_link_types_become_ethernet() {
        let dir = std::env::temp_dir().join(format!("sw-pcap-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ip4 = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let mut ip6 = vec![0x60u8, 0, 0, 0, 0, 0, 59, 64];
        ip6.extend_from_slice(&[0; 32]);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip4);
        let cases: [(u32, Vec<u8>, u16); 4] = [
            (101, ip4.to_vec(), 0x0800),
            (0, [&[2u8, 0, 0, 0][..], &ip4].concat(), 0x0800),
            (0, [&[30u8, 0, 0, 0][..], &ip6].concat(), 0x86dd),
            (113, sll, 0x0800),
        ];
        for (i, (link, frame, et)) in cases.iter().enumerate() {
            let p = dir.join(format!("l{i}.pcap"));
            let mut f = Vec::new();
            f.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
            f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
            f.extend_from_slice(&link.to_le_bytes());
            f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            f.extend_from_slice(frame);
            std::fs::write(&p, &f).unwrap();
            let mut r = PcapReader::open(&p).unwrap();
            let rec = r.next_packet().unwrap().unwrap();
            assert_eq!(u16::from_be_bytes([rec.data[12], rec.data[13]]), *et, "link {link}");
            assert_eq!(rec.orig_len as usize, frame.len(), "byte counts stay the capture's");
            assert_eq!(rec.data[0] >> 4, 0);
            assert_eq!(rec.data[14] >> 4, if *et == 0x0800 { 4 } else { 6 });
        }
        let p = dir.join("bad.pcap");
        let mut f = 0xa1b2c3d4u32.to_le_bytes().to_vec();
        f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 127, 0, 0, 0]);
        std::fs::write(&p, &f).unwrap();
        let e = PcapReader::open(&p).err().unwrap().to_string();
        assert!(e.contains("link type 127 is not supported"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn test_pcapng() {
        // SHB, IDB (Ethernet, tsresol 10^-9), EPB with 5 bytes, a custom block, EPB.
        let mut f = Vec::new();
        // A block in either byte order: type, length, the body padded to 4, length again.
        let block_in = |big: bool, f: &mut Vec<u8>, t: u32, body: &[u8]| {
            let len = (12 + body.len().div_ceil(4) * 4) as u32;
            let word = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            f.extend_from_slice(&word(t));
            f.extend_from_slice(&word(len));
            f.extend_from_slice(body);
            f.resize(f.len() + (len as usize - 12 - body.len()), 0);
            f.extend_from_slice(&word(len));
        };
        let block = |f: &mut Vec<u8>, t: u32, body: &[u8]| block_in(false, f, t, body);
        // A section header block: byte-order magic, version 1.0, section length unknown.
        let section = |big: bool, f: &mut Vec<u8>| {
            let mut shb = if big { 0x1a2b3c4du32.to_be_bytes() } else { 0x1a2b3c4du32.to_le_bytes() }.to_vec();
            shb.extend_from_slice(if big { &[0, 1, 0, 0] } else { &[1, 0, 0, 0] });
            shb.extend_from_slice(&[0xff; 8]);
            block_in(big, f, 0x0a0d0d0a, &shb);
        };
        section(false, &mut f);
        let mut idb = vec![1, 0, 0, 0, 0, 0, 4, 0];
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        block(&mut f, 1, &idb);
        // An enhanced packet block's body: interface 0, the timestamp in the interface's units,
        // captured and original lengths, the frame.
        let epb_body = |big: bool, ts: u64, orig_len: u32, frame: &[u8]| {
            let word = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut b = Vec::new();
            for w in [0, (ts >> 32) as u32, ts as u32, frame.len() as u32, orig_len] {
                b.extend_from_slice(&word(w));
            }
            b.extend_from_slice(frame);
            b
        };
        let ts_ns: u64 = 1_700_000_000_000_001_000;
        let epb = epb_body(false, ts_ns, 64, &[9, 8, 7, 6, 5]);
        block(&mut f, 6, &epb);
        block(&mut f, 0xbad, &[1, 2, 3, 4]);
        block(&mut f, 6, &epb);
        // A second section, big-endian, its own interface: raw IP, units of 2^-20 s, offset +100 s.
        let block_be = |f: &mut Vec<u8>, t: u32, body: &[u8]| block_in(true, f, t, body);
        section(true, &mut f);
        let mut idb = vec![0, 101, 0, 0, 0, 0, 0, 0];
        idb.extend_from_slice(&[0, 9, 0, 1, 0x80 | 20, 0, 0, 0]);
        idb.extend_from_slice(&[0, 14, 0, 8]);
        idb.extend_from_slice(&100i64.to_be_bytes());
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block_be(&mut f, 1, &idb);
        let ts_units: u64 = 1_700_000_000 << 20 | 1 << 19; // 1 700 000 000.5 s
        let ip = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let epb = epb_body(true, ts_units, 20, &ip);
        block_be(&mut f, 6, &epb);
        let whole = f.len();
        block_be(&mut f, 6, &epb);
        f.truncate(whole + 30); // a capture cut inside its last block
        let dir = std::env::temp_dir().join(format!("sw-pcapng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.pcapng");
        std::fs::write(&p, &f).unwrap();
        let mut r = PcapReader::open(&p).unwrap();
        for _ in 0..2 {
            let a = r.next_packet().unwrap().unwrap();
            assert_eq!((a.ts, a.data, a.orig_len), (1_700_000_000_000_001, &[9u8, 8, 7, 6, 5][..], 64));
        }
        let b = r.next_packet().unwrap().unwrap();
        assert_eq!(b.ts, 1_700_000_100_500_000, "2^-20 s units and if_tsoffset");
        assert_eq!((&b.data[12..14], &b.data[14..], b.cap_len), (&[0x08u8, 0][..], &ip[..], 20));
        match r.next_packet() {
            Err(PcapError::Truncated { offset, .. }) => assert_eq!(offset, whole as u64 + 8),
            other => panic!("a cut block must be reported, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
