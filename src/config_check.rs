//! Every problem of a configuration file in one pass, each with its line and key path: the TOML
//! syntax (where the parser stops), then every key that does not deserialize (each key of each
//! table tried on its own, so one bad value does not hide the next), then the checks of
//! [`Config::validate`] on what did load; and, for `check-config`, the files and directories the
//! configuration names and the machine it would run on ([`environment`]).
//!
//! Messages speak of keys and values: serde's Rust type names (`usize`, `u32`, `struct
//! CaptureConfig`) are put in words.

use super::config::Config;
use serde::Deserialize;
use std::path::Path;

/// One problem: the line it is on (1-based, when known) and what is wrong, key path first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub text: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// The line (1-based) of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Serde's words for types, as a user of the file would say them.
fn in_words(msg: &str) -> String {
    let mut m = msg.trim_end().replace('\n', " ");
    for (rust, words) in [
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number up to 4294967295"),
        ("expected u16", "expected a whole number up to 65535"),
        ("expected u8", "expected a whole number up to 255"),
        ("expected i64", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: integer", "invalid type: number"),
        ("invalid type: floating point", "invalid type: number"),
    ] {
        m = m.replace(rust, words);
    }
    // `expected struct CaptureConfig` and the like: a table.
    while let Some(i) = m.find("expected struct ") {
        let end = m[i + 16..].find(|c: char| !c.is_alphanumeric() && c != '_').map_or(m.len(), |e| i + 16 + e);
        m.replace_range(i..end, "expected a table");
    }
    m
}

/// Where a key path (`capture.ports[1].cores`) is written: the line of its deepest key found.
fn line_of_path(doc: &toml_edit::ImDocument<&str>, text: &str, path: &str) -> Option<usize> {
    let mut item = doc.as_item();
    let mut line = None;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let table = item.as_table_like()?;
        let (k, next) = table.get_key_value(key)?;
        if let Some(span) = k.span() {
            line = Some(line_at(text, span.start));
        }
        item = next;
        if let Some(i) = index {
            match item {
                toml_edit::Item::ArrayOfTables(a) => {
                    let t = a.get(i)?;
                    if let Some(span) = t.span() {
                        line = Some(line_at(text, span.start));
                    }
                    return line.or(Some(1)).map(|l| {
                        // The deeper keys of an array-of-tables element.
                        let rest = path.split_once(&format!("{part}.")).map(|(_, r)| r);
                        rest.and_then(|r| {
                            let sub = t.get(r.split(['.', '[']).next()?)?;
                            sub.span().map(|s| line_at(text, s.start))
                        })
                        .unwrap_or(l)
                    });
                }
                toml_edit::Item::Value(toml_edit::Value::Array(a)) => {
                    if let Some(span) = a.get(i).and_then(|v| v.span()) {
                        line = Some(line_at(text, span.start));
                    }
                    return line;
                }
                _ => return line,
            }
        }
    }
    line
}

fn one(table: toml::Table) -> Result<Config, String> {
    Config::deserialize(toml::Value::Table(table)).map_err(|e| in_words(e.message()))
}

/// `{outer: {inner: v}}`, or `{outer: v}` without `inner`.
fn only(outer: &str, inner: Option<(&str, toml::Value)>, v: Option<toml::Value>) -> toml::Table {
    let mut t = toml::Table::new();
    let value = match inner {
        Some((k, iv)) => {
            let mut sub = toml::Table::new();
            sub.insert(k.to_string(), iv);
            toml::Value::Table(sub)
        }
        None => v.expect("a value when there is no inner key"),
    };
    t.insert(outer.to_string(), value);
    t
}

/// Parses and checks `text` (from `path`): the configuration, or every problem found.
pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map(|s| line_at(text, s.start));
            return Err(vec![Problem {
                line,
                text: format!("TOML syntax: {} (nothing after a syntax error is checked)", in_words(e.message())),
            }]);
        }
    };
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| line_at(text, s.start));
            return Err(vec![Problem { line, text: format!("TOML: {}", in_words(e.message())) }]);
        }
    };
    let mut problems = Vec::new();
    let mut good = toml::Table::new();
    for (k, v) in &table {
        let whole = match one(only(k, None, Some(v.clone()))) {
            Ok(_) => {
                good.insert(k.clone(), v.clone());
                continue;
            }
            Err(e) => e,
        };
        // An unknown table (or a value where a table is due): said of the key itself.
        if let Err(e) = one(only(k, None, Some(toml::Value::Table(toml::Table::new())))) {
            problems.push(Problem { line: line_of_path(&doc, text, k), text: format!("{k}: {e}") });
            continue;
        }
        let Some(sub) = v.as_table() else {
            problems.push(Problem { line: line_of_path(&doc, text, k), text: format!("{k}: {whole}") });
            continue;
        };
        // Each key of the table on its own.
        let mut kept = toml::Table::new();
        let mut found = false;
        for (sk, sv) in sub {
            let Err(e) = one(only(k, Some((sk, sv.clone())), None)) else {
                kept.insert(sk.clone(), sv.clone());
                continue;
            };
            found = true;
            // An array of tables: each element on its own.
            let mut in_elements = false;
            if let Some(arr) = sv.as_array().filter(|a| a.iter().all(|x| x.is_table())) {
                let try_el = |el: &toml::Value| one(only(k, Some((sk, toml::Value::Array(vec![el.clone()]))), None));
                for (i, el) in arr.iter().enumerate() {
                    let Err(e) = try_el(el) else { continue };
                    in_elements = true;
                    // Which key of the element: the parser's span in the element written out alone.
                    let fields = el.as_table().expect("checked above");
                    let alone = only(k, Some((sk, toml::Value::Array(vec![el.clone()]))), None);
                    let culprit = toml::to_string(&alone).ok().and_then(|t| {
                        let span = toml::from_str::<Config>(&t).err()?.span()?;
                        let line = t[..span.start].rsplit('\n').next().unwrap_or("");
                        let key = line.split('=').next()?.trim().to_string();
                        fields.contains_key(&key).then_some(key)
                    });
                    let path = match culprit {
                        Some(ek) => format!("{k}.{sk}[{i}].{ek}"),
                        None => format!("{k}.{sk}[{i}]"),
                    };
                    problems.push(Problem { line: line_of_path(&doc, text, &path), text: format!("{path}: {e}") });
                }
            }
            if !in_elements {
                let path = format!("{k}.{sk}");
                problems.push(Problem { line: line_of_path(&doc, text, &path), text: format!("{path}: {e}") });
            }
        }
        if !found {
            // The table is wrong as a whole (not any one key).
            problems.push(Problem { line: line_of_path(&doc, text, k), text: format!("{k}: {whole}") });
        }
        good.insert(k.clone(), toml::Value::Table(kept));
    }
    // What loaded, checked as a whole (the bad keys left at their defaults).
    match one(good) {
        Ok(cfg) => {
            for p in cfg.validate() {
                let path = p.split(':').next().unwrap_or("");
                problems.push(Problem { line: line_of_path(&doc, text, path), text: p });
            }
            if problems.is_empty() {
                return Ok(cfg);
            }
        }
        Err(e) if problems.is_empty() => problems.push(Problem { line: None, text: e }),
        Err(_) => {}
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(problems)
}

/// A directory a file will be written in (or the directory itself when `is_dir`): it exists or
/// can be made, and a file can be created in it. Creates nothing that stays.
fn writable(path: &Path, is_dir: bool) -> Result<(), String> {
    let dir = if is_dir { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let dir = if dir.as_os_str().is_empty() { std::path::PathBuf::from(".") } else { dir };
    // The nearest directory that exists: the rest would be created.
    let mut d = dir.as_path();
    while !d.exists() {
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => {
                d = Path::new(".");
                break;
            }
        }
    }
    if !d.is_dir() {
        return Err(format!("{} is not a directory", d.display()));
    }
    let probe = d.join(format!(".spinewatch-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().create_new(true).write(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("cannot write in {}: {e}", d.display())),
    }
}

fn readable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path).map(|_| ()).map_err(|e| format!("{}: {e}", path.display())),
        Ok(_) => std::fs::File::open(path).map(|_| ()).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Reserved hugepages (`HugePages_Total` in /proc/meminfo), None when it cannot be read.
pub fn hugepages_reserved() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = m.lines().find(|l| l.starts_with("HugePages_Total:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Why `dpdk.hugepages = true` cannot work on this machine, and what to do (EAL itself says
/// "Permission denied", even to root), if so.
pub fn hugepage_problem() -> Option<String> {
    let fix = "or set dpdk.hugepages = false with dpdk.memory_mb (slower; for tests and virtual devices)";
    if hugepages_reserved() == Some(0) {
        return Some(format!(
            "dpdk.hugepages = true but this machine has no hugepages reserved (HugePages_Total is 0 in /proc/meminfo): \
             reserve some (e.g. `echo 2048 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`, hugetlbfs mounted \
             on /dev/hugepages) {fix}"
        ));
    }
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    (!mounts.lines().any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))).then(|| {
        format!("dpdk.hugepages = true but no hugetlbfs is mounted (`mount -t hugetlbfs nodev /dev/hugepages`) {fix}")
    })
}

/// What [`environment`] found: problems (the run would fail) and warnings (about this machine,
/// which may not be the one the file is for, and inputs made later).
#[derive(Debug, Default)]
pub struct Environment {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// The files and directories the configuration names, and the machine. Problems: rule,
/// indicator, classification and threshold files not readable; output files, the stats file,
/// the spool or the alert captures' directory not writable. Warnings: AF_PACKET interfaces
/// absent, a net_pcap vdev's captures absent, no hugepages when asked for.
pub fn environment(cfg: &Config) -> Environment {
    let mut p = Vec::new();
    let mut w = Vec::new();
    for (i, f) in cfg.rules.files.iter().enumerate() {
        if let Err(e) = readable(f) {
            p.push(format!("rules.files[{i}]: {e}"));
        }
    }
    for (key, f) in [
        ("rules.classification_file", &cfg.rules.classification_file),
        ("rules.threshold_file", &cfg.rules.threshold_file),
    ] {
        if let Some(f) = f {
            if let Err(e) = readable(f) {
                p.push(format!("{key}: {e}"));
            }
        }
    }
    for (i, f) in cfg.ioc.files.iter().enumerate() {
        if let Err(e) = readable(f) {
            p.push(format!("ioc.files[{i}]: {e}"));
        }
    }
    let mut outputs: Vec<(String, String)> = Vec::new();
    if let Some(e) = cfg.export.eve.as_deref() {
        outputs.push(("export.eve".into(), e.to_string()));
    }
    for (i, s) in cfg.export.sinks.iter().enumerate() {
        outputs.push((format!("export.sinks[{i}].url"), s.url.clone()));
    }
    for (key, url) in outputs {
        if let Ok(spec) = export::sink::url::parse(&url) {
            if let Some(path) = spec.target.0.local_path() {
                if let Err(e) = writable(path, false) {
                    p.push(format!("{key}: {}: {e}", path.display()));
                }
            }
        }
    }
    if let Some(f) = &cfg.stats.file {
        if let Err(e) = writable(f, false) {
            p.push(format!("stats.file: {}: {e}", f.display()));
        }
    }
    if !cfg.export.spool_dir.is_empty() {
        if let Err(e) = writable(Path::new(&cfg.export.spool_dir), true) {
            p.push(format!("export.spool_dir: {e} (\"\" for no spool)"));
        }
    }
    if cfg.alert_capture.enabled {
        if let Err(e) = writable(&cfg.alert_capture.dir, true) {
            p.push(format!("alert_capture.dir: {e}"));
        }
    }
    for (i, ifname) in cfg.afpacket.interfaces.iter().enumerate() {
        if !Path::new("/sys/class/net").join(ifname).exists() {
            w.push(format!("afpacket.interfaces[{i}]: no interface {ifname:?} on this machine (ip link lists them)"));
        }
    }
    for (i, port) in cfg.capture.ports.iter().enumerate() {
        for opt in port.device.split(',').skip(1) {
            if let Some(f) = opt.strip_prefix("rx_pcap=") {
                if let Err(e) = readable(Path::new(f)) {
                    w.push(format!("capture.ports[{i}].device: rx_pcap {e}"));
                }
            }
        }
    }
    let wants_dpdk = !cfg.capture.ports.is_empty() && cfg.afpacket.interfaces.is_empty();
    if wants_dpdk && cfg.dpdk.hugepages {
        w.extend(hugepage_problem());
    }
    Environment { problems: p, warnings: w }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_with_its_line_and_in_words() {
        let text = "[capture]\nmempool_size = \"lots\"\nburst_size = 0\n\n[flow]\ncapacity = \"x\"\nbogus = 1\n\n[nope]\na = 1\n\n[[capture.ports]]\ndevice = \"net_null0\"\ncores = \"zero\"\n";
        let p = parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let all = shown.join("\n");
        assert!(
            all.contains(
                "line 2: capture.mempool_size: invalid value: string \"lots\", expected \"auto\" or a whole number"
            ),
            "{all}"
        );
        assert!(all.contains("line 6: flow.capacity: invalid type: string \"x\", expected a whole number"), "{all}");
        assert!(all.contains("line 7: flow.bogus: unknown field `bogus`"), "{all}");
        assert!(all.contains("line 9: nope: unknown field `nope`"), "{all}");
        assert!(
            all.contains("line 14: capture.ports[0].cores: invalid type: string \"zero\", expected an array"),
            "{all}"
        );
        assert!(
            all.contains("line 3: capture.burst_size: 0 is outside 1..="),
            "the checks of what loaded run too: {all}"
        );
        for rust in ["usize", "u32", "untagged", "struct ", "AutoOr"] {
            assert!(!all.contains(rust), "{rust} in {all}");
        }
    }

    #[test]
    fn a_syntax_error_is_one_problem_with_its_line() {
        let p = parse("[flow]\ncapacity = 10\n[export\n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(3), "{p:?}");
        assert!(p[0].text.starts_with("TOML syntax:"), "{p:?}");
    }

    #[test]
    fn a_good_file_loads() {
        let cfg = parse("[flow]\ncapacity = 1024\n").unwrap();
        assert_eq!(cfg.flow.capacity, 1024);
    }
}
