//! JSON lines to a file (appended to, never truncated; rotated by size and by time) or to
//! stdout.
//!
//! A file that cannot be written (a full or failing disk) is retried like a network peer: the
//! sink's queue holds what comes meanwhile (dropped, counted, once it is full), writing resumes
//! when the disk takes it, and a chunk cut by the error is cut off the file again, so no line is
//! torn or written twice. [`request_reopen`] (SIGHUP, after logrotate moved the files) makes
//! every file sink close its file and open its path again.

use super::url::{Endpoint, Format, Location, Query, Scheme, Target};
use super::{Chunk, Transport};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

/// Requests to reopen the output files, counted: each file sink compares the count with the one
/// it opened its file at.
static REOPEN: AtomicU64 = AtomicU64::new(0);

/// Asks every file sink to close its file and open its path again at its next write or tick
/// (within about 100 ms). Async-signal-safe: one atomic add.
pub fn request_reopen() {
    REOPEN.fetch_add(1, Relaxed);
}

/// How many reopens were requested so far (a file opened at an older count is reopened).
pub fn reopen_requests() -> u64 {
    REOPEN.load(Relaxed)
}

/// `file:///PATH` (or a plain path), `-` / `stdout:`, and `null:` (formatted and discarded: benchmarks).
pub const SCHEMES: &[Scheme] = &[
    Scheme {
        name: "file",
        aliases: &[],
        options: &["rotate_bytes", "rotate_secs", "rotate_name", "fsync"],
        parse,
        userinfo: false,
    },
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
            let rotate_name = match q.get("rotate_name") {
                None => RotateName::default(),
                Some(v) => RotateName::parse(&v)?,
            };
            let opts = FileOptions {
                rotate_bytes: q.num("rotate_bytes")?.unwrap_or(0),
                rotate_secs: q.num("rotate_secs")?.unwrap_or(0),
                rotate_name,
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
                let mut f = FileTransport::new(Some(path.clone()), opts.clone());
                Transport::connect(&mut f)
                    .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
                Box::new(f)
            }
        })
    }

    fn is_local(&self) -> bool {
        true
    }

    fn local_path(&self) -> Option<&std::path::Path> {
        match self {
            FileTarget::File { path, .. } => Some(path),
            _ => None,
        }
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

/// The name a rotated file gets: a pattern of `{stem}` (the path without its extension),
/// `{time}` (`YYYYMMDDTHHMMSS`, UTC) and `{ext}` (the extension with its dot, or nothing).
/// The default, `{stem}.{time}{ext}`, keeps the extension (`eve.20261207T032654.json`) so that
/// log shippers' `*.json` globs take rotated files; `{stem}{ext}.{time}` is the old name. A
/// name already taken gets `.1`, `.2`... (before a final extension, else at the end): no file
/// is ever overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateName {
    pattern: String,
}

impl Default for RotateName {
    fn default() -> Self {
        RotateName { pattern: "{stem}.{time}{ext}".into() }
    }
}

impl RotateName {
    /// Checks a pattern: only the three fields, and `{time}` in it (else every rotation would
    /// need a counter).
    pub fn parse(p: &str) -> Result<RotateName, String> {
        let mut rest = p;
        while let Some(i) = rest.find('{') {
            let end = rest[i..].find('}').ok_or_else(|| format!("rotate_name {p:?}: '{{' without '}}'"))?;
            let field = &rest[i + 1..i + end];
            if !matches!(field, "stem" | "time" | "ext") {
                return Err(format!("rotate_name {p:?}: unknown field {{{field}}} ({{stem}}, {{time}} or {{ext}})"));
            }
            rest = &rest[i + end + 1..];
        }
        if !p.contains("{time}") {
            return Err(format!("rotate_name {p:?}: needs {{time}}"));
        }
        if p.contains('/') {
            return Err(format!("rotate_name {p:?}: a name, not a path (rotated files stay beside the file)"));
        }
        Ok(RotateName { pattern: p.into() })
    }

    /// The rotated name of `path` at `time`, with `n` > 0 for the n-th name when taken.
    pub fn render(&self, path: &Path, time: &str, n: u32) -> PathBuf {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let (stem, ext) = match file.rfind('.') {
            Some(i) if i > 0 => (&file[..i], &file[i..]),
            _ => (&file[..], ""),
        };
        let counter = if n > 0 { format!(".{n}") } else { String::new() };
        let mut name = self.pattern.replace("{stem}", stem).replace("{time}", time);
        name = if self.pattern.ends_with("{ext}") {
            name.replace("{ext}", &format!("{counter}{ext}"))
        } else {
            name.replace("{ext}", ext) + &counter
        };
        path.with_file_name(name)
    }
}

/// Rotation and sync settings of a file sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOptions {
    /// Rotate once the file holds this many bytes (0: never).
    pub rotate_bytes: u64,
    /// Rotate a file this old (0: never).
    pub rotate_secs: u64,
    pub rotate_name: RotateName,
    pub fsync: Fsync,
}

/// A JSON-lines file, or stdout when `path` is None.
pub struct FileTransport {
    path: Option<PathBuf>,
    opts: FileOptions,
    file: Option<File>,
    size: u64,
    opened: Instant,
    /// The reopen requests counted when the file was opened.
    reopen_seen: u64,
    /// Files rotated so far (the test and the summary read it).
    pub rotations: u64,
}

impl FileTransport {
    pub fn new(path: Option<PathBuf>, opts: FileOptions) -> FileTransport {
        FileTransport {
            path,
            opts,
            file: None,
            size: 0,
            opened: Instant::now(),
            reopen_seen: reopen_requests(),
            rotations: 0,
        }
    }

    /// Closes the file (synced first unless `fsync = never`).
    fn close(&mut self) -> io::Result<()> {
        match self.file.take() {
            Some(f) if self.opts.fsync != Fsync::Never => f.sync_data(),
            _ => Ok(()),
        }
    }

    /// Closes the file and opens its path again when a reopen was requested since it was
    /// opened (logrotate moved it: the new file is created).
    fn reopen_if_asked(&mut self) -> io::Result<()> {
        if self.path.is_none() || reopen_requests() == self.reopen_seen {
            return Ok(());
        }
        self.close()?;
        self.connect()
    }

    fn rotate(&mut self) -> io::Result<()> {
        let Some(path) = self.path.clone() else { return Ok(()) };
        self.close()?;
        // The rotated name, then .1, .2... if taken: never over an existing file.
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let mut ts = Vec::new();
        crate::eve::write_timestamp(&mut ts, now.as_micros() as u64);
        let stamp: String = ts.iter().take(19).filter(|c| c.is_ascii_alphanumeric()).map(|&c| c as char).collect();
        let mut n = 0;
        let mut to = self.opts.rotate_name.render(&path, &stamp, n);
        while to.exists() {
            n += 1;
            to = self.opts.rotate_name.render(&path, &stamp, n);
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
        self.reopen_seen = reopen_requests();
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
        self.reopen_if_asked()?;
        let rb = self.opts.rotate_bytes;
        if rb > 0 && self.size > 0 && self.size + c.data.len() as u64 > rb {
            self.rotate()?;
        }
        if self.file.is_none() {
            self.connect()?;
        }
        let f = self.file.as_mut().expect("opened above");
        let written =
            f.write_all(&c.data).and_then(|_| if self.opts.fsync == Fsync::Always { f.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            // Part of the chunk may be in the file: cut it off (the chunk is sent again whole),
            // and open the file again before the next try.
            let _ = f.set_len(self.size);
            self.file = None;
            return Err(e);
        }
        self.size += c.data.len() as u64;
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        self.reopen_if_asked()?;
        let rs = self.opts.rotate_secs;
        if rs > 0 && self.size > 0 && self.opened.elapsed() >= Duration::from_secs(rs) {
            self.rotate()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.close()
    }

    fn disconnect(&mut self) {
        self.file = None;
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
    fn rotated_names_keep_the_extension() {
        let p = Path::new("/var/log/spinewatch/eve.json");
        let d = RotateName::default();
        assert_eq!(d.render(p, "20261207T032654", 0), Path::new("/var/log/spinewatch/eve.20261207T032654.json"));
        assert_eq!(d.render(p, "20261207T032654", 2), Path::new("/var/log/spinewatch/eve.20261207T032654.2.json"));
        assert_eq!(d.render(Path::new("alerts"), "T", 0), Path::new("alerts.T"));
        let old = RotateName::parse("{stem}{ext}.{time}").unwrap();
        assert_eq!(old.render(p, "T1", 1), Path::new("/var/log/spinewatch/eve.json.T1.1"));
        assert!(RotateName::parse("{stem}.json").unwrap_err().contains("needs {time}"));
        assert!(RotateName::parse("{stem}.{date}").unwrap_err().contains("unknown field {date}"));
        assert!(RotateName::parse("../{time}").is_err());
        let f = super::super::url::parse("file:///tmp/e.json?rotate_name=%7Bstem%7D-%7Btime%7D%7Bext%7D").unwrap();
        let FileTarget::File { opts, .. } = f.target.0.as_any().downcast_ref::<FileTarget>().unwrap() else { panic!() };
        assert_eq!(opts.rotate_name.render(Path::new("/tmp/e.json"), "T", 0), Path::new("/tmp/e-T.json"));
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
        let names: Vec<String> =
            std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.iter().any(|n| n.starts_with("eve.2") && n.ends_with(".json")), "{names:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
