//! Behavioural detectors: what signatures miss, on by default, each mapped to its MITRE ATT&CK
//! technique. This part holds the ones a worker decides alone (a transaction, a packet or a
//! flow has all it needs): cleartext credentials, attacks on web applications, exfiltration.
//! (Scans, floods, brute force, DNS tunnelling and beaconing span flows on every core: they
//! need the per-window sketches and their aggregator, not built yet.)

use crate::app::http::Tx;

/// The detectors, each an alert signature (gid 1, sid 9200000 + n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// An HTTP request with `Authorization: Basic` (credentials readable on the wire).
    CleartextHttpBasic,
    /// An FTP `PASS` command (or a Telnet session's login prompt answered) in the clear.
    CleartextFtp,
    /// A request from a known scanner or exploit tool (its User-Agent).
    WebScannerUserAgent,
    /// A URI climbing out of the web root (`../`, encoded or not) or naming system files.
    WebPathTraversal,
    /// A URI shaped like SQL injection (`' or 1=1`, `union select`, `sleep(`...).
    WebSqlInjection,
    /// A flow that sent far more than it received to an address outside $HOME_NET.
    Exfiltration,
    /// A Telnet server asking for a password: the login that follows is in the clear.
    CleartextTelnet,
}

impl Behaviour {
    pub const ALL: [Behaviour; 7] = [
        Behaviour::CleartextHttpBasic,
        Behaviour::CleartextFtp,
        Behaviour::WebScannerUserAgent,
        Behaviour::WebPathTraversal,
        Behaviour::WebSqlInjection,
        Behaviour::Exfiltration,
        Behaviour::CleartextTelnet,
    ];

    pub fn sid(self) -> u32 {
        9_200_001 + self as u32
    }

    pub fn msg(self) -> &'static str {
        match self {
            Behaviour::CleartextHttpBasic => "spinewatch BEHAVIOUR cleartext credentials: HTTP Basic authorization",
            Behaviour::CleartextFtp => "spinewatch BEHAVIOUR cleartext credentials: FTP password",
            Behaviour::WebScannerUserAgent => "spinewatch BEHAVIOUR web scanner or exploit tool user agent",
            Behaviour::WebPathTraversal => "spinewatch BEHAVIOUR web path traversal / local file inclusion",
            Behaviour::WebSqlInjection => "spinewatch BEHAVIOUR SQL injection in a URI",
            Behaviour::Exfiltration => "spinewatch BEHAVIOUR possible exfiltration: outbound far above inbound",
            Behaviour::CleartextTelnet => "spinewatch BEHAVIOUR cleartext credentials: Telnet login",
        }
    }

    /// (technique id, technique name), for the alert's metadata.
    pub fn mitre(self) -> (&'static str, &'static str) {
        match self {
            Behaviour::CleartextHttpBasic | Behaviour::CleartextFtp | Behaviour::CleartextTelnet => {
                ("T1552", "Unsecured Credentials")
            }
            Behaviour::WebScannerUserAgent => ("T1595.002", "Active Scanning: Vulnerability Scanning"),
            Behaviour::WebPathTraversal | Behaviour::WebSqlInjection => ("T1190", "Exploit Public-Facing Application"),
            Behaviour::Exfiltration => ("T1048", "Exfiltration Over Alternative Protocol"),
        }
    }

    pub fn classtype(self) -> &'static str {
        match self {
            Behaviour::CleartextHttpBasic | Behaviour::CleartextFtp | Behaviour::CleartextTelnet => "policy-violation",
            Behaviour::WebScannerUserAgent => "web-application-activity",
            Behaviour::WebPathTraversal | Behaviour::WebSqlInjection => "web-application-attack",
            Behaviour::Exfiltration => "bad-unknown",
        }
    }
}

/// `[behaviour]` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BehaviourConfig {
    pub enabled: bool,
    /// The detectors judged on every worker's merged evidence (scans, floods, brute force,
    /// DNS tunnelling).
    pub spanning: super::sketch::SketchConfig,
    /// Exfiltration: the least bytes a flow sends out, and how many times what it received.
    pub exfil_min_bytes: u64,
    pub exfil_ratio: f64,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        BehaviourConfig {
            enabled: true,
            spanning: super::sketch::SketchConfig::default(),
            exfil_min_bytes: 10 << 20,
            exfil_ratio: 10.0,
        }
    }
}

impl BehaviourConfig {
    /// The settings of the detectors judged on merged evidence, when they are on.
    #[inline]
    pub fn spanning(&self) -> Option<&super::sketch::SketchConfig> {
        (self.enabled && self.spanning.enabled).then_some(&self.spanning)
    }
}

/// User-Agent fragments of scanners and exploit tools (lower case).
const SCANNER_UAS: &[&[u8]] = &[
    b"sqlmap",
    b"nikto",
    b"nmap scripting engine",
    b"masscan",
    b"zgrab",
    b"nuclei",
    b"wpscan",
    b"dirbuster",
    b"gobuster",
    b"acunetix",
    b"nessus",
    b"openvas",
    b"w3af",
    b"havij",
    b"fimap",
    b"hydra",
    b"jaeles",
    b"ffuf",
    b"feroxbuster",
    b"commix",
];

/// URI fragments of path traversal and local file inclusion (lower case, after one
/// percent-decoding pass).
const TRAVERSAL: &[&[u8]] = &[b"../", b"..\\", b"/etc/passwd", b"/etc/shadow", b"win.ini", b"boot.ini", b"/proc/self/"];

/// URI fragments of SQL injection (lower case, decoded, runs of spaces as one).
const SQLI: &[&[u8]] = &[
    b"' or '1'='1",
    b"' or 1=1",
    b"\" or 1=1",
    b" or 1=1--",
    b"union select",
    b"union all select",
    b"sleep(",
    b"benchmark(",
    b"waitfor delay",
    b"information_schema",
    b"xp_cmdshell",
    b"'--",
    b"extractvalue(",
    b"updatexml(",
];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// One percent-decoding pass ('+' as a space), lower case, runs of blanks as one space; at
/// most 8 KiB into `out`.
fn normalise(uri: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < uri.len() && out.len() < 8192 {
        let mut c = uri[i];
        if c == b'%' && i + 2 < uri.len() {
            let h = |x: u8| (x as char).to_digit(16);
            if let (Some(a), Some(b)) = (h(uri[i + 1]), h(uri[i + 2])) {
                c = (a * 16 + b) as u8;
                i += 2;
            }
        } else if c == b'+' {
            c = b' ';
        }
        let c = c.to_ascii_lowercase();
        let blank = c == b' ' || c == b'\t';
        if !(blank && out.last() == Some(&b' ')) {
            out.push(if blank { b' ' } else { c });
        }
        i += 1;
    }
}

/// The detectors that read an HTTP transaction: what fired.
pub fn http_tx(t: &Tx, scratch: &mut Vec<u8>, out: &mut dyn FnMut(Behaviour)) {
    if t.has_auth_basic() {
        out(Behaviour::CleartextHttpBasic);
    }
    if let Some(ua) = t.user_agent() {
        let mut lower = [0u8; 256];
        let n = ua.len().min(256);
        lower[..n].copy_from_slice(&ua[..n]);
        lower[..n].make_ascii_lowercase();
        if SCANNER_UAS.iter().any(|s| contains(&lower[..n], s)) {
            out(Behaviour::WebScannerUserAgent);
        }
    }
    if let Some(uri) = t.uri() {
        normalise(uri, scratch);
        if TRAVERSAL.iter().any(|s| contains(scratch, s)) {
            out(Behaviour::WebPathTraversal);
        }
        if SQLI.iter().any(|s| contains(scratch, s)) {
            out(Behaviour::WebSqlInjection);
        }
    }
}

/// A TCP payload to a server on port 21 (FTP control): a password sent in the clear.
pub fn ftp_payload(payload: &[u8]) -> bool {
    payload.len() > 5 && payload[..5].eq_ignore_ascii_case(b"PASS ")
}

/// A Telnet server's payload (from port 23): a password prompt.
pub fn telnet_prompt(payload: &[u8]) -> bool {
    payload.len() >= 9 && payload.windows(8).any(|w| w.eq_ignore_ascii_case(b"assword:"))
}

/// A flow's end: its bytes each way (from the initiator) and whether the responder is outside
/// $HOME_NET while the initiator is inside.
pub fn exfiltration(cfg: &BehaviourConfig, out_bytes: u64, in_bytes: u64, leaves_home: bool) -> bool {
    leaves_home && out_bytes >= cfg.exfil_min_bytes && out_bytes as f64 >= cfg.exfil_ratio * in_bytes.max(1) as f64
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn uri_shapes() {
        let mut s = Vec::new();
        normalise(b"/index.php?id=1%27%20OR%201=1--&x=%2E%2E%2F", &mut s);
        assert_eq!(s, b"/index.php?id=1' or 1=1--&x=../");
        assert!(SQLI.iter().any(|p| contains(&s, p)) && TRAVERSAL.iter().any(|p| contains(&s, p)));
        normalise(b"/search?q=union+++select", &mut s);
        assert_eq!(s, b"/search?q=union select");
        normalise(b"/docs/2024/report.pdf?page=..%", &mut s);
        assert!(!SQLI.iter().any(|p| contains(&s, p)) && !TRAVERSAL.iter().any(|p| contains(&s, p)), "{s:?}");
        assert!(ftp_payload(b"PASS hunter2\r\n") && !ftp_payload(b"USER admin\r\n"));
        let c = BehaviourConfig::default();
        assert!(exfiltration(&c, 50 << 20, 1 << 20, true));
        assert!(!exfiltration(&c, 50 << 20, 10 << 20, true), "ratio");
        assert!(!exfiltration(&c, 50 << 20, 1 << 20, false), "internal");
        assert!(!exfiltration(&c, 1 << 20, 0, true), "small");
    }
}
