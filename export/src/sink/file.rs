//! JSON lines to a file (appended to, never truncated; rotated by size and by time) or to
//! stdout.

use super::url::{Endpoint, Format, Location, Query, Scheme, Target};
use super::{Chunk, Transport};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// `file:///PATH` (or a plain path), `-` / `stdout:`, and `null:` (formatted and discarded: benchmarks).
pub const SCHEMES: &[Scheme] = &[
    Scheme { name: "file", aliases: &[], options: &["rotate_bytes", "rotate_secs", "fsync"], parse, userinfo: false },
    Scheme { name: "stdout", aliases: &[], options: &[], parse, userinfo: false },
    Scheme { name: "null", aliases: &[], options: &[], parse, userinfo: false },
];

/// A file sink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileTarget {
    Stdout,
    Null,
    File { path: PathBuf, opts: FileOptions },
}

fn parse(scheme: &str, loc: &Location, q: &mut Query) -> Result<(Target, Format), String> {
    let t = match scheme {
        "stdout" => FileTarget::Stdout,
        "null" => FileTarget::Null,
        _ => {
            if loc.path.is_empty() {
                return Err("file: no path".into());
            }
            let fsync = match q.get("fsync") {
                None => Fsync::Never,
                Some(v) => Fsync::parse(&v).ok_or_else(|| format!("fsync: {v:?} (never, rotate or always)"))?,
            };
            let opts = FileOptions {
                rotate_bytes: q.num("rotate_bytes")?.unwrap_or(0),
                rotate_secs: q.num("rotate_secs")?.unwrap_or(0),
                fsync,
            };
            FileTarget::File { path: PathBuf::from(&loc.path), opts }
        }
    };
    Ok((Target(std::sync::Arc::new(t)), Format::Eve))
}

impl Endpoint for FileTarget {
    fn open(&self, _sink: &str) -> io::Result<Box<dyn Transport>> {
        Ok(match self {
            FileTarget::Stdout => Box::new(FileTransport::new(None, Default::default())),
            FileTarget::Null => Box::new(NullTransport),
            FileTarget::File { path, opts } => {
                // Opened now too, so a path that cannot be written fails the start, not the run.
                let mut f = FileTransport::new(Some(path.clone()), *opts);
                Transport::connect(&mut f)
                    .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
                Box::new(f)
            }
        })
    }

    fn is_local(&self) -> bool {
        true
    }

    fn default_name(&self) -> Option<String> {
        Some(match self {
            FileTarget::Stdout => "stdout".into(),
            FileTarget::Null => "null".into(),
            FileTarget::File { path, .. } => format!("file:{}", path.display()),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// When the file is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Left to the kernel.
    #[default]
    Never,
    /// When a file is rotated or closed.
    Rotate,
    /// After every chunk (at most a batch of records lost at a power cut).
    Always,
}

impl Fsync {
    pub fn parse(s: &str) -> Option<Fsync> {
        Some(match s {
            "never" => Fsync::Never,
            "rotate" => Fsync::Rotate,
            "always" => Fsync::Always,
            _ => return None,
        })
    }
}

/// Rotation and sync settings of a file sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// Rotate once the file holds this many bytes (0: never).
    pub rotate_bytes: u64,
    /// Rotate a file this old (0: never).
    pub rotate_secs: u64,
    pub fsync: Fsync,
}

/// A JSON-lines file, or stdout when `path` is None.
pub struct FileTransport {
    path: Option<PathBuf>,
    opts: FileOptions,
    file: Option<File>,
    size: u64,
    opened: Instant,
    /// Files rotated so far (the test and the summary read it).
    pub rotations: u64,
}

impl FileTransport {
    pub fn new(path: Option<PathBuf>, opts: FileOptions) -> FileTransport {
        FileTransport { path, opts, file: None, size: 0, opened: Instant::now(), rotations: 0 }
    }

    fn rotate(&mut self) -> io::Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        if let Some(f) = self.file.take() {
            if self.opts.fsync != Fsync::Never {
                f.sync_data()?;
            }
        }
        // PATH.YYYYMMDDTHHMMSS, then .1, .2... if taken: never over an existing file.
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let mut ts = Vec::new();
        crate::eve::write_timestamp(&mut ts, now.as_micros() as u64);
        let stamp: String = ts.iter().take(19).filter(|c| c.is_ascii_alphanumeric()).map(|&c| c as char).collect();
        let base = format!("{}.{stamp}", path.display());
        let mut to = PathBuf::from(&base);
        let mut n = 0;
        while to.exists() {
            n += 1;
            to = PathBuf::from(format!("{base}.{n}"));
        }
        std::fs::rename(&path, &to)?;
        self.rotations += 1;
        self.connect()
    }
}

impl Transport for FileTransport {
    fn connect(&mut self) -> io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        self.size = f.metadata()?.len();
        self.file = Some(f);
        self.opened = Instant::now();
        Ok(())
    }

    fn send(&mut self, c: &Chunk) -> io::Result<()> {
        if self.path.is_none() {
            let mut o = io::stdout().lock();
            o.write_all(&c.data)?;
            return o.flush();
        }
        let rb = self.opts.rotate_bytes;
        if rb > 0 && self.size > 0 && self.size + c.data.len() as u64 > rb {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.connect()?;
        }
        let f = self.file.as_mut().expect("opened above");
        f.write_all(&c.data)?;
        self.size += c.data.len() as u64;
        if self.opts.fsync == Fsync::Always {
            f.sync_data()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        let rs = self.opts.rotate_secs;
        if rs > 0 && self.size > 0 && self.opened.elapsed() >= Duration::from_secs(rs) {
            self.rotate()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            if self.opts.fsync != Fsync::Never {
                f.sync_data()?;
            }
        }
        Ok(())
    }

    /// A local file that cannot be written is not retried: its records are counted as lost
    /// and the run ends with an error.
    fn is_fatal(&self, _e: &io::Error) -> bool {
        true
    }
}

/// Takes everything, writes nothing (benchmarks: the formatting is paid, not the I/O).
pub struct NullTransport;

impl Transport for NullTransport {
    fn connect(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn send(&mut self, _: &Chunk) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn lines(n: usize, tag: &str) -> Chunk {
        let mut c = Chunk::default();
        for i in 0..n {
            c.data.extend_from_slice(format!("{{\"{tag}\":{i}}}\n").as_bytes());
            c.end_message();
        }
        c.records = n as u32;
        c
    }

    #[test]
    fn appends_and_rotates_by_size_without_overwriting() {
        let d = std::env::temp_dir().join(format!("sw-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("eve.json");
        std::fs::write(&p, "{\"old\":1}\n").unwrap();
        let mut t = FileTransport::new(Some(p.clone()), FileOptions { rotate_bytes: 100, ..Default::default() });
        t.connect().unwrap();
        for k in 0..10 {
            t.send(&lines(3, &format!("k{k}"))).unwrap();
        }
        t.finish().unwrap();
        let mut all = String::new();
        let mut names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for n in &names {
            let s = std::fs::read_to_string(n).unwrap();
            assert!(s.len() <= 100 || s.lines().count() <= 3, "{} is {} bytes", n.display(), s.len());
            all.push_str(&s);
        }
        assert_eq!(t.rotations, 3); // 10 bytes there, then 27 a chunk: 37, 64, 91 | 27.. | 27.. | 27
        assert_eq!(names.len() as u64, t.rotations + 1);
        // Nothing lost, the line that was there first kept.
        assert_eq!(all.lines().count(), 31);
        assert!(all.contains("{\"old\":1}"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rotates_by_time() {
        let d = std::env::temp_dir().join(format!("sw-file-time-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let p = d.join("eve.json");
        let mut t = FileTransport::new(
            Some(p.clone()),
            FileOptions { rotate_secs: 1, fsync: Fsync::Rotate, ..Default::default() },
        );
        t.connect().unwrap();
        t.tick().unwrap();
        assert_eq!(t.rotations, 0, "an empty file is not rotated");
        t.send(&lines(2, "a")).unwrap();
        t.tick().unwrap();
        assert_eq!(t.rotations, 0);
        std::thread::sleep(Duration::from_millis(1100));
        t.tick().unwrap();
        assert_eq!(t.rotations, 1);
        t.send(&lines(1, "b")).unwrap();
        t.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"b\":0}\n");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}
