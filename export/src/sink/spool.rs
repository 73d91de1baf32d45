//! A sink's on-disk spool: chunks its peer could not take yet, kept in order in segment files
//! and read back oldest first once the peer is back.
//!
//! A segment file (`NNNNNNNNNNNN.spool`) is a run of entries, each
//! `magic u32 | records u32 | messages u32 | bytes u32 | message ends (u32 each) | bytes`,
//! all little-endian. Segments are closed at [`SEGMENT_BYTES`]; when the spool is over its
//! size, the oldest segment goes (its records counted as dropped). Segments left by an earlier
//! run are found at open and replayed first; an entry that does not read back (a torn write
//! at a crash) ends its segment, its records counted as dropped. At an orderly close the read
//! position in the oldest segment is kept beside it (`NNNNNNNNNNNN.read`), so what was sent is
//! not sent again by the next run.
//!
//! A spool belongs to one collector: its directory's name carries a hash of the sink's
//! identity (scheme, address, format), and a `collector` file in it names that identity, so
//! what was spooled for one collector is never sent to another. Segments older than the
//! spool's maximum age (their last write) are dropped, counted as expired.

use super::Chunk;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const MAGIC: u32 = 0x5357_5350; // "SWSP"
/// The file in a spool directory naming the collector its records are for.
pub const COLLECTOR_FILE: &str = "collector";
/// Segment ids start here, so that [`Spool::prepend`] has room below.
const FIRST_ID: u64 = 1_000_000_000;
/// A segment is closed once it holds this much.
pub const SEGMENT_BYTES: u64 = 8 << 20;
/// The longest entry read back (a chunk is far smaller; anything longer is corruption).
const MAX_ENTRY: u64 = 256 << 20;

#[derive(Debug)]
struct Segment {
    id: u64,
    path: PathBuf,
    /// Bytes written.
    bytes: u64,
    /// Entries and records not yet read back.
    entries: u64,
    records: u64,
    /// Where the next entry to read starts.
    read_at: u64,
    /// When it was last written.
    written: SystemTime,
}

/// Where the spool's oldest unread entry is: [`Spool::advance`] takes it as proof that the
/// entry was the one sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolPos {
    segment: u64,
    offset: u64,
}

/// One sink's spool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Segments last written longer ago than this are dropped (None: kept until sent or
    /// pushed out by the size).
    max_age: Option<Duration>,
    segments: VecDeque<Segment>,
    /// The newest segment's file, open for appending.
    writer: Option<BufWriter<File>>,
    /// The oldest segment's file, open for reading.
    reader: Option<(u64, File)>,
    /// Bytes in every segment file.
    total_bytes: u64,
}

/// What reading the spool back found.
#[derive(Debug)]
pub enum Peek {
    Entry(SpoolPos, Chunk),
    Empty,
}

impl Spool {
    /// Opens (creating it if needed) the spool directory of the collector `identity`, taking
    /// in every segment an earlier run left. Returns the spool and the records it already
    /// holds.
    pub fn open(dir: &Path, identity: &str, max_bytes: u64, max_age: Option<Duration>) -> io::Result<(Spool, u64)> {
        fs::create_dir_all(dir)?;
        let id_file = dir.join(COLLECTOR_FILE);
        match fs::read_to_string(&id_file) {
            Ok(t) if t.trim_end() != identity => {
                return Err(io::Error::other(format!(
                    "{} belongs to the collector {:?}, not {identity:?}",
                    dir.display(),
                    t.trim_end()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::write(&id_file, format!("{identity}\n"))?,
            Err(e) => return Err(e),
        }
        let mut found = Vec::new();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".spool")).and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push((id, e.path()));
        }
        found.sort();
        let mut s = Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(SEGMENT_BYTES),
            max_age,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            total_bytes: 0,
        };
        let mut records = 0;
        for (id, path) in found {
            let read_at = fs::read_to_string(path.with_extension("read")).ok().and_then(|t| t.trim().parse().ok());
            let _ = fs::remove_file(path.with_extension("read"));
            let (bytes, entries, recs, read_at) = scan(&path, read_at.unwrap_or(0))?;
            if entries == 0 {
                let _ = fs::remove_file(&path);
                continue;
            }
            let written = fs::metadata(&path)?.modified().unwrap_or_else(|_| SystemTime::now());
            s.total_bytes += bytes;
            records += recs;
            s.segments.push_back(Segment { id, path, bytes, entries, records: recs, read_at, written });
        }
        Ok((s, records))
    }

    /// Flushes, and keeps the read position of the oldest segment for the next run.
    pub fn close(&mut self) -> io::Result<()> {
        self.finish_writer()?;
        self.reader = None;
        if let Some(s) = self.segments.front() {
            if s.read_at > 0 {
                fs::write(s.path.with_extension("read"), s.read_at.to_string())?;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Records held.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Appends a chunk, written through to the file. Returns the records of the oldest segments
    /// removed to stay within the spool's size (dropped). On an error nothing of the chunk stays
    /// (the file is cut back to its last whole entry) and the next append starts a new segment.
    pub fn append(&mut self, c: &Chunk) -> io::Result<u64> {
        let need_new = match self.segments.back() {
            None => true,
            Some(s) => s.bytes >= SEGMENT_BYTES || self.writer.is_none(),
        };
        if need_new {
            self.finish_writer()?;
            let id = self.segments.back().map_or(FIRST_ID, |s| s.id + 1);
            let path = self.dir.join(format!("{id:012}.spool"));
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            let at = f.metadata()?.len();
            self.writer = Some(BufWriter::with_capacity(1 << 16, f));
            let written = SystemTime::now();
            self.segments.push_back(Segment { id, path, bytes: at, entries: 0, records: 0, read_at: at, written });
        }
        let head = entry_head(c);
        let w = self.writer.as_mut().expect("a writer was just opened");
        let written = w.write_all(&head).and_then(|_| w.write_all(&c.data)).and_then(|_| w.flush());
        let seg = self.segments.back_mut().expect("a segment is open");
        if let Err(e) = written {
            if let Some(w) = self.writer.take() {
                let (f, _) = w.into_parts();
                let _ = f.set_len(seg.bytes);
            }
            return Err(e);
        }
        let n = (head.len() + c.data.len()) as u64;
        seg.bytes += n;
        seg.entries += 1;
        seg.records += c.records as u64;
        seg.written = SystemTime::now();
        self.total_bytes += n;
        Ok(self.trim())
    }

    /// Drops the oldest segments while the spool is over its size (never the one being
    /// written); returns their records.
    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.total_bytes > self.max_bytes && self.segments.len() > 1 {
            dropped += self.drop_oldest();
        }
        dropped
    }

    /// Puts chunks before everything spooled (older records: a sink's memory queue at the end
    /// of a run, which was due before its spool). Returns the records dropped to stay within
    /// the size.
    pub fn prepend(&mut self, chunks: &[std::sync::Arc<Chunk>]) -> io::Result<u64> {
        if chunks.is_empty() {
            return Ok(0);
        }
        if self.segments.is_empty() {
            let mut d = 0;
            for c in chunks {
                d += self.append(c)?;
            }
            return Ok(d);
        }
        let id = self.segments.front().map_or(FIRST_ID, |s| s.id).saturating_sub(1);
        let path = self.dir.join(format!("{id:012}.spool"));
        let mut w = BufWriter::new(OpenOptions::new().create_new(true).write(true).open(&path)?);
        let (mut bytes, mut records) = (0u64, 0u64);
        for c in chunks {
            let head = entry_head(c);
            if let Err(e) = w.write_all(&head).and_then(|_| w.write_all(&c.data)) {
                drop(w);
                let _ = fs::remove_file(&path);
                return Err(e);
            }
            bytes += (head.len() + c.data.len()) as u64;
            records += c.records as u64;
        }
        w.flush()?;
        // As old as the oldest it goes before (the records were due before them).
        let written = self.segments.front().map_or_else(SystemTime::now, |s| s.written);
        self.segments.push_front(Segment {
            id,
            path,
            bytes,
            entries: chunks.len() as u64,
            records,
            read_at: 0,
            written,
        });
        self.total_bytes += bytes;
        Ok(self.trim())
    }

    fn finish_writer(&mut self) -> io::Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
        }
        Ok(())
    }

    /// Drops the oldest segments last written longer ago than the maximum age; returns their
    /// unread records (expired).
    pub fn expire(&mut self) -> u64 {
        let Some(max) = self.max_age else { return 0 };
        let now = SystemTime::now();
        let mut expired = 0;
        while self.segments.front().is_some_and(|s| now.duration_since(s.written).is_ok_and(|age| age > max)) {
            expired += self.drop_oldest();
        }
        expired
    }

    /// Removes the oldest segment; returns its unread records.
    fn drop_oldest(&mut self) -> u64 {
        let Some(s) = self.segments.pop_front() else { return 0 };
        if self.segments.is_empty() {
            self.writer = None;
        }
        if self.reader.as_ref().is_some_and(|(id, _)| *id == s.id) {
            self.reader = None;
        }
        self.total_bytes = self.total_bytes.saturating_sub(s.bytes);
        let _ = fs::remove_file(&s.path);
        s.records
    }

    /// Reads the oldest entry without removing it. An entry that does not read back whole
    /// ends its segment: the segment's remaining records come back as the error's count.
    pub fn peek(&mut self) -> Result<Peek, (io::Error, u64)> {
        loop {
            let Some(seg) = self.segments.front() else { return Ok(Peek::Empty) };
            if seg.entries == 0 {
                // Read to its end: gone (the next append starts a new segment).
                self.drop_oldest();
                continue;
            }
            let seg = self.segments.front().expect("checked above");
            let (id, at) = (seg.id, seg.read_at);
            match self.read_entry(id, at) {
                Ok(c) => return Ok(Peek::Entry(SpoolPos { segment: id, offset: at }, c)),
                Err(e) => {
                    let lost = self.drop_oldest();
                    return Err((e, lost));
                }
            }
        }
    }

    fn read_entry(&mut self, id: u64, at: u64) -> io::Result<Chunk> {
        if self.reader.as_ref().is_none_or(|(rid, _)| *rid != id) {
            let path = &self.segments.front().expect("a segment to read").path;
            self.reader = Some((id, File::open(path)?));
        }
        let f = &mut self.reader.as_mut().expect("opened above").1;
        f.seek(SeekFrom::Start(at))?;
        read_chunk(f)
    }

    /// The entry at `pos` was sent: move past it. False if it is no longer there (its segment
    /// was dropped meanwhile, its records counted as dropped).
    pub fn advance(&mut self, pos: SpoolPos, records: u32, bytes: u64) -> bool {
        let Some(seg) = self.segments.front_mut() else { return false };
        if seg.id != pos.segment || seg.read_at != pos.offset {
            return false;
        }
        seg.read_at += bytes;
        seg.entries = seg.entries.saturating_sub(1);
        seg.records = seg.records.saturating_sub(records as u64);
        // Read to its end: gone, so an empty spool has no segment and the sink goes back to its
        // memory queue.
        if seg.entries == 0 {
            self.drop_oldest();
        }
        true
    }
}

fn entry_head(c: &Chunk) -> Vec<u8> {
    let mut head = Vec::with_capacity(16 + 4 * c.ends.len());
    for v in [MAGIC, c.records, c.ends.len() as u32, c.data.len() as u32] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    for e in &c.ends {
        head.extend_from_slice(&e.to_le_bytes());
    }
    head
}

/// The bytes an entry takes in a segment.
pub fn entry_bytes(c: &Chunk) -> u64 {
    16 + 4 * c.ends.len() as u64 + c.data.len() as u64
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_chunk(r: &mut impl Read) -> io::Result<Chunk> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("spool entry: {what}"));
    if read_u32(r)? != MAGIC {
        return Err(bad("bad magic"));
    }
    let records = read_u32(r)?;
    let n = read_u32(r)? as u64;
    let len = read_u32(r)? as u64;
    if len > MAX_ENTRY || n > len.max(1) {
        return Err(bad("implausible size"));
    }
    let mut ends = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let e = read_u32(r)?;
        if e as u64 > len || ends.last().is_some_and(|&l| e < l) {
            return Err(bad("message ends out of order"));
        }
        ends.push(e);
    }
    let mut data = vec![0u8; len as usize];
    r.read_exact(&mut data)?;
    Ok(Chunk { data, ends, records })
}

/// A segment's bytes, and its whole entries and records from `read_at` on (stopping at the
/// first entry that does not read back); the read position found (0 if `read_at` is not an
/// entry's start).
fn scan(path: &Path, read_at: u64) -> io::Result<(u64, u64, u64, u64)> {
    let mut f = io::BufReader::new(File::open(path)?);
    let (mut entries, mut records, mut bytes) = (0, 0, 0);
    let mut starts = Vec::new();
    while let Ok(c) = read_chunk(&mut f) {
        starts.push((bytes, c.records as u64));
        entries += 1;
        records += c.records as u64;
        bytes += entry_bytes(&c);
    }
    let mut read_at = if starts.iter().any(|&(b, _)| b == read_at) || read_at == bytes { read_at } else { 0 };
    for &(b, r) in &starts {
        if b < read_at {
            entries -= 1;
            records -= r;
        }
    }
    if entries == 0 {
        read_at = 0;
    }
    if bytes < fs::metadata(path)?.len() {
        // A torn tail: cut it so appends do not follow garbage.
        OpenOptions::new().write(true).open(path)?.set_len(bytes)?;
    }
    Ok((bytes, entries, records, read_at))
}

#[cfg(test)]
mod test {
    use super::*;

    fn chunk(tag: u8, n: usize) -> Chunk {
        let mut c = Chunk::default();
        for i in 0..n {
            c.data.extend_from_slice(&[tag, i as u8, b'\n']);
            c.ends.push(c.data.len() as u32);
        }
        c.records = n as u32;
        c
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sw-spool-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn in_order_and_across_a_restart() {
        let d = tmp("order");
        let (mut s, held) = Spool::open(&d, "t", 1 << 30, None).unwrap();
        assert_eq!(held, 0);
        for t in 0..5 {
            assert_eq!(s.append(&chunk(t, 3)).unwrap(), 0);
        }
        let Peek::Entry(pos, c) = s.peek().unwrap() else { panic!("empty") };
        assert_eq!(c.data[0], 0);
        s.advance(pos, c.records, entry_bytes(&c));
        s.close().unwrap();
        drop(s);
        // A new run finds the four left, the first one sent is not among them.
        let (mut s, held) = Spool::open(&d, "t", 1 << 30, None).unwrap();
        assert_eq!(held, 12);
        let mut tags = Vec::new();
        while let Peek::Entry(pos, c) = s.peek().unwrap() {
            tags.push(c.data[0]);
            assert_eq!(c.ends.len(), 3);
            s.advance(pos, c.records, entry_bytes(&c));
        }
        assert_eq!(tags, [1, 2, 3, 4]);
        assert!(s.is_empty());
        let left: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [COLLECTOR_FILE], "a spool read to its end leaves no segment");
        // And takes more after that.
        s.append(&chunk(9, 1)).unwrap();
        assert!(!s.is_empty());
        let Peek::Entry(pos, c) = s.peek().unwrap() else { panic!("empty") };
        assert_eq!(c.data[0], 9);
        s.advance(pos, c.records, entry_bytes(&c));
        assert!(s.is_empty());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn full_spool_drops_the_oldest_segment() {
        let d = tmp("full");
        let (mut s, _) = Spool::open(&d, "t", SEGMENT_BYTES * 2, None).unwrap();
        let big = Chunk { data: vec![b'x'; 1 << 20], ends: vec![1 << 20], records: 1 };
        let mut dropped = 0;
        for _ in 0..40 {
            dropped += s.append(&big).unwrap();
        }
        assert!(dropped > 0 && dropped < 40, "{dropped}");
        assert_eq!(s.records() + dropped, 40);
        assert!(s.bytes() <= SEGMENT_BYTES * 2 + (1 << 20) + 64, "{}", s.bytes());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn prepended_chunks_come_first_and_stay_first_across_a_restart() {
        let d = tmp("prepend");
        let (mut s, _) = Spool::open(&d, "t", 1 << 30, None).unwrap();
        s.append(&chunk(3, 1)).unwrap();
        s.append(&chunk(4, 1)).unwrap();
        s.prepend(&[std::sync::Arc::new(chunk(1, 1)), std::sync::Arc::new(chunk(2, 1))]).unwrap();
        s.close().unwrap();
        drop(s);
        let (mut s, held) = Spool::open(&d, "t", 1 << 30, None).unwrap();
        assert_eq!(held, 4);
        let mut tags = Vec::new();
        while let Peek::Entry(pos, c) = s.peek().unwrap() {
            tags.push(c.data[0]);
            assert!(s.advance(pos, c.records, entry_bytes(&c)));
        }
        assert_eq!(tags, [1, 2, 3, 4]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_entry_is_cut_at_open() {
        let d = tmp("torn");
        let (mut s, _) = Spool::open(&d, "t", 1 << 30, None).unwrap();
        s.append(&chunk(1, 2)).unwrap();
        s.append(&chunk(2, 2)).unwrap();
        drop(s);
        let p = d.join(format!("{FIRST_ID:012}.spool"));
        let len = fs::metadata(&p).unwrap().len();
        OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 3).unwrap();
        let (_, held) = Spool::open(&d, "t", 1 << 30, None).unwrap();
        assert_eq!(held, 2);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_spool_is_for_its_collector_only() {
        let d = tmp("identity");
        let (mut s, _) = Spool::open(&d, "syslog+tcp://a:514 eve", 1 << 30, None).unwrap();
        s.append(&chunk(1, 2)).unwrap();
        s.close().unwrap();
        drop(s);
        let e = Spool::open(&d, "syslog+tcp://b:514 eve", 1 << 30, None).unwrap_err();
        assert!(e.to_string().contains("belongs to the collector \"syslog+tcp://a:514 eve\""), "{e}");
        let (_, held) = Spool::open(&d, "syslog+tcp://a:514 eve", 1 << 30, None).unwrap();
        assert_eq!(held, 2);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn segments_past_the_maximum_age_expire() {
        let d = tmp("age");
        let day = Duration::from_secs(86_400);
        let (mut s, _) = Spool::open(&d, "t", 1 << 30, Some(day)).unwrap();
        s.append(&chunk(1, 2)).unwrap();
        s.close().unwrap();
        drop(s);
        // Last written two days ago.
        let p = d.join(format!("{FIRST_ID:012}.spool"));
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - 2 * day).unwrap();
        let (mut s, held) = Spool::open(&d, "t", 1 << 30, Some(day)).unwrap();
        assert_eq!(held, 2);
        s.append(&chunk(2, 3)).unwrap();
        assert_eq!(s.expire(), 2, "the old segment goes, counted");
        assert_eq!(s.records(), 3, "the new one stays");
        assert_eq!(s.expire(), 0);
        let (mut s, _) = Spool::open(&tmp("age2"), "t", 1 << 30, None).unwrap();
        s.append(&chunk(1, 1)).unwrap();
        assert_eq!(s.expire(), 0, "no maximum age, nothing expires");
        let _ = fs::remove_dir_all(&d);
        let _ = fs::remove_dir_all(tmp("age2"));
    }
}
