//! Loading rule files: every line parsed, bad rules rejected and counted by reason, never
//! stopping at one (as Suricata's "N rules successfully loaded, M rules failed").

use super::parse::{parse_rule, Classifications, Reject};
use super::{Rule, Vars};
use std::collections::{BTreeMap, HashMap};

/// One rule that did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub source: String,
    /// 1-based line of the rule's first line.
    pub line: usize,
    pub reject: Reject,
}

/// What loading found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub files: usize,
    pub loaded: usize,
    pub rejected: usize,
    /// Rejections per reason group ([`Reject::group`]).
    pub reasons: BTreeMap<String, usize>,
    /// Every rejection, in file order.
    pub failures: Vec<Failure>,
}

impl LoadReport {
    /// The rejection reasons, most frequent first (ties by name).
    pub fn reasons_by_count(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = self.reasons.iter().map(|(k, &n)| (k.as_str(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

impl Reject {
    /// The key a load report counts this rejection under: the reason, with the keyword,
    /// protocol or buffer for the reasons where that is what an operator needs to know.
    pub fn group(&self) -> String {
        match self.reason.as_str() {
            "unsupported keyword" | "unknown keyword" | "unsupported protocol" | "buffer not kept yet" => {
                format!("{}: {}", self.reason, self.detail)
            }
            _ => self.reason.clone(),
        }
    }
}

/// The rules loaded so far (one set, in load order) and the sids seen.
#[derive(Debug, Default)]
pub struct Loader {
    pub rules: Vec<Rule>,
    pub report: LoadReport,
    by_sid: HashMap<(u32, u32), usize>,
}

impl Loader {
    fn reject(&mut self, source: &str, line: usize, reject: Reject) {
        self.report.rejected += 1;
        *self.report.reasons.entry(reject.group()).or_default() += 1;
        self.report.failures.push(Failure { source: source.to_string(), line, reject });
    }

    /// Parses every rule of a rules file's bytes: a line that is not UTF-8 is rejected with its
    /// number, and the rest load.
    pub fn add_bytes(&mut self, bytes: &[u8], source: &str, vars: &Vars, classes: &Classifications) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return self.add_text(text, source, vars, classes);
        }
        let mut text = String::with_capacity(bytes.len());
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            match std::str::from_utf8(line) {
                Ok(l) => text.push_str(l),
                Err(e) => {
                    let detail = format!("byte {} of the line", e.valid_up_to() + 1);
                    self.reject(source, i + 1, Reject { reason: "not UTF-8".into(), detail });
                }
            }
            text.push('\n');
        }
        self.add_text(&text, source, vars, classes);
    }

    /// Parses every rule of `text` (a rules file's contents; `source` names it in failures).
    /// Lines ending in `\` continue on the next; `#` lines and blank lines are skipped.
    pub fn add_text(&mut self, text: &str, source: &str, vars: &Vars, classes: &Classifications) {
        self.report.files += 1;
        let mut pending = String::new();
        let mut first = 0;
        for (i, raw) in text.lines().enumerate() {
            let l = raw.trim();
            if pending.is_empty() {
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                first = i + 1;
            }
            if let Some(cont) = l.strip_suffix('\\') {
                pending.push_str(cont);
                continue;
            }
            pending.push_str(l);
            let line = std::mem::take(&mut pending);
            self.add_line(&line, source, first, vars, classes);
        }
        if !pending.is_empty() {
            let line = std::mem::take(&mut pending);
            self.add_line(&line, source, first, vars, classes);
        }
    }

    fn add_line(&mut self, line: &str, source: &str, at: usize, vars: &Vars, classes: &Classifications) {
        match parse_rule(line, vars, classes).and_then(|r| super::compile_check(&r).map(|()| r)) {
            Ok(r) => {
                let key = (r.gid, r.sid);
                match self.by_sid.get(&key) {
                    // As Suricata: of two rules with one gid:sid, the higher rev stays.
                    Some(&i) if self.rules[i].rev >= r.rev => {
                        let d = format!("{}:{} rev {} (rev {} kept)", r.gid, r.sid, r.rev, self.rules[i].rev);
                        self.reject(source, at, Reject { reason: "duplicate sid".into(), detail: d });
                    }
                    Some(&i) => {
                        let d = format!("{}:{} rev {} (replaced by rev {})", r.gid, r.sid, self.rules[i].rev, r.rev);
                        self.rules[i] = r;
                        self.reject(source, at, Reject { reason: "duplicate sid".into(), detail: d });
                    }
                    None => {
                        self.by_sid.insert(key, self.rules.len());
                        self.rules.push(r);
                        self.report.loaded += 1;
                    }
                }
            }
            Err(e) => self.reject(source, at, e),
        }
    }
}

/// Suricata's classification.config (the one it ships, ET Open's classtypes included), used
/// when the configuration names no other.
pub const DEFAULT_CLASSIFICATION: &str = include_str!("classification.config");

#[cfg(test)]
mod test {
    use super::*;
    use crate::rules::parse_classifications;

    #[test]
    fn a_line_that_is_not_utf8_is_rejected_with_its_number() {
        let (classes, _) = parse_classifications(DEFAULT_CLASSIFICATION);
        let mut bytes = b"alert tcp any any -> any 80 (msg:\"one\"; content:\"a\"; sid:1;)\n".to_vec();
        bytes.extend_from_slice(b"alert tcp any any -> any 80 (msg:\"caf\xe9\"; sid:2;)\r\n");
        bytes.extend_from_slice(b"alert udp any any -> any 53 (msg:\"three\"; content:\"b\"; sid:3;)\n");
        let mut l = Loader::default();
        l.add_bytes(&bytes, "latin1.rules", &Vars::default(), &classes);
        assert_eq!((l.report.loaded, l.report.rejected, l.report.files), (2, 1, 1));
        let f = &l.report.failures[0];
        assert_eq!((f.source.as_str(), f.line, f.reject.reason.as_str()), ("latin1.rules", 2, "not UTF-8"));
        assert_eq!(f.reject.detail, "byte 38 of the line");
    }

    #[test]
    fn a_file_with_bad_rules_loads_the_rest() {
        let (classes, bad) = parse_classifications(DEFAULT_CLASSIFICATION);
        assert!(bad.is_empty() && classes.len() > 30);
        let text = "# a comment\n\nalert tcp any any -> any 80 (msg:\"one\"; content:\"a\"; \\\n  classtype:trojan-activity; sid:1; rev:1;)\nalert smb any any -> any any (msg:\"smb\"; sid:2;)\nalert tcp any any -> any any (msg:\"x\"; frob; sid:3;)\nalert tcp any any -> any any (msg:\"dup\"; sid:1; rev:1;)\nalert tcp any any -> any any (msg:\"newer\"; sid:1; rev:2;)\nalert udp any any -> any 53 (msg:\"two\"; content:\"b\"; sid:4;)\n";
        let mut l = Loader::default();
        l.add_text(text, "t.rules", &Vars::default(), &classes);
        assert_eq!((l.report.loaded, l.report.rejected), (2, 4));
        assert_eq!(l.rules.iter().map(|r| (r.sid, r.msg.as_str())).collect::<Vec<_>>(), [(1, "newer"), (4, "two")]);
        assert_eq!(l.rules[0].priority, 3, "rev 2 has no classtype");
        let reasons: Vec<(&str, usize)> = l.report.reasons.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(reasons, [("duplicate sid", 2), ("unknown keyword: frob", 1), ("unsupported protocol: smb", 1)]);
        assert_eq!((l.report.failures[0].source.as_str(), l.report.failures[0].line), ("t.rules", 5));
    }
}
