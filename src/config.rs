//! The TOML configuration: one serde struct per table, unknown keys refused, every field with
//! its unit and default. [`Config::load`] parses; [`Config::validate`] lists every problem
//! with its key path, e.g. `capture.ports[1].cores: core 3 listed twice`.
//!
//! ```toml
//! [capture]
//! burst_size = 32
//! [[capture.ports]]
//! device = "0000:3b:00.0"
//! cores = [2, 3, 4, 5]
//! [flow]
//! capacity = 1048576
//! [export]
//! eve = "/var/log/spinewatch/eve.json"
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A count that may be `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOr {
    N(u32),
    #[default]
    Auto,
}

impl<'de> Deserialize<'de> for AutoOr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AutoOr;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"auto\" or a whole number from 0 to 4294967295")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<AutoOr, E> {
                u32::try_from(n).map(AutoOr::N).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<AutoOr, E> {
                u32::try_from(n).map(AutoOr::N).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(n), &self))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AutoOr, E> {
                match s {
                    "auto" => Ok(AutoOr::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(s), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl AutoOr {
    pub fn value(self) -> Option<u32> {
        match self {
            AutoOr::N(n) => Some(n),
            AutoOr::Auto => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureConfig,
    pub dpdk: DpdkConfig,
    pub flow: FlowTableConfig,
    pub app: AppTable,
    pub defrag: DefragTable,
    pub export: ExportTable,
    pub stats: StatsConfig,
    pub metrics: MetricsConfig,
    pub afpacket: AfPacketTable,
    pub alert_capture: AlertCaptureTable,
    pub rules: RulesTable,
    pub ioc: IocTable,
    pub behaviour: BehaviourTable,
    /// The compiled rule set (loaded by the binary from `rules` and `--rules`, not read from
    /// the file).
    #[serde(skip)]
    pub compiled_rules: detect::flow::SharedRules,
}

/// `[capture]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Packets per RX burst (1..=512). Default 32.
    pub burst_size: usize,
    /// Mbufs in the pool, or "auto" (every RX descriptor + bursts + caches, rounded up to
    /// 2^n - 1). Default "auto".
    pub mempool_size: AutoOr,
    /// Per-lcore mempool cache, in mbufs (≤ 512). Default 256.
    pub mempool_cache: u32,
    /// Bytes of data room per mbuf, headroom (128) included. Default 2176 (2048 + headroom).
    /// Frames longer than the data room arrive in several segments; only the first is decoded
    /// (its headers), so keep it above the MTU plus 128 (e.g. 9728 for jumbo frames).
    pub mbuf_data_room: u16,
    /// Port MTU in bytes (e.g. 9000 on a jumbo-frame spine); default: the driver's.
    pub mtu: Option<u32>,
    /// Workers for `replay` (file or DPDK); `run` takes its workers from `ports[].cores`.
    /// Default: the number of cores.
    pub workers: Option<usize>,
    /// Cores for replay workers (worker i → cores[i]); default 0..workers.
    pub cores: Option<Vec<usize>>,
    /// The ports `run` captures from.
    pub ports: Vec<PortConfig>,
    /// How packets spread over workers: "flow" (the NIC's symmetric RSS on the 5-tuple,
    /// fragments by addresses, a reassembled datagram handed to its flow's worker) or
    /// "addresses" (RSS on the address pair only: a flow and its fragments always together,
    /// every flow between two hosts on one worker). The file source and a replay's split files
    /// spread the same way. Default "flow".
    pub rss: RssMode,
    /// Only the packets this filter takes (libpcap's language, as tcpdump's and Suricata's
    /// `bpf-filter`), on every source; `--bpf` overrides it. The rest are counted as filtered
    /// and go no further. Default: none.
    pub bpf: Option<String>,
}

/// `capture.rss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RssMode {
    #[default]
    Flow,
    Addresses,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            burst_size: 32,
            mempool_size: AutoOr::default(),
            mempool_cache: 256,
            mbuf_data_room: 2176,
            mtu: None,
            workers: None,
            cores: None,
            bpf: None,
            ports: Vec::new(),
            rss: RssMode::Flow,
        }
    }
}

/// `[[capture.ports]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// A PCI address (`0000:3b:00.0`, allowed with EAL `-a`) or a vdev string
    /// (`net_pcap0,rx_pcap=/tmp/a.pcap`, passed as `--vdev`).
    pub device: String,
    /// One core per RX queue: queue i is polled by the worker on `cores[i]`. Several ports may
    /// share a core: that worker then polls one queue of each.
    pub cores: Vec<usize>,
    /// RX descriptors per queue, or "auto" (the device maximum, at most 4096). Default "auto".
    #[serde(default)]
    pub rx_descriptors: AutoOr,
}

impl PortConfig {
    /// A vdev unless the part before the first comma is a PCI address (`[DDDD:]BB:DD.F`); a
    /// PCI device may carry driver arguments after a comma (`0000:3b:00.0,rxq_cqe_comp_en=1`).
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    pub fn is_vdev(&self) -> bool {
        !is_pci_address(self.port_name())
    }

    /// The name DPDK gives the port: the vdev name before its first comma, or the PCI address.
    pub fn port_name(&self) -> &str {
        self.device.split(',').next().unwrap_or(&self.device)
    }
}

#[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
fn is_pci_address(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let (bus, devfn) = match parts.as_slice() {
        [dom, bus, devfn] if hex(dom, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    match devfn.split_once('.') {
        Some((dev, f)) => hex(bus, 2) && hex(dev, 2) && f.len() == 1 && f.chars().all(|c| ('0'..='7').contains(&c)),
        None => false,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_device_kinds() {
        let p = |d: &str| PortConfig { device: d.into(), cores: vec![0], rx_descriptors: AutoOr::default() };
        assert!(!p("0000:3b:00.0").is_vdev());
        assert!(!p("3b:00.1").is_vdev());
        assert!(!p("0000:3b:00.0,rxq_cqe_comp_en=1").is_vdev());
        assert_eq!(p("0000:3b:00.0,rxq_cqe_comp_en=1").port_name(), "0000:3b:00.0");
        assert!(p("net_pcap0,rx_pcap=/tmp/a.pcap").is_vdev());
        assert!(p("net_null0").is_vdev());
        assert_eq!(p("net_pcap0,rx_pcap=/tmp/a.pcap").port_name(), "net_pcap0");
    }
}

/// `[dpdk]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpdkConfig {
    /// Extra EAL arguments, e.g. `["-m", "2048", "--no-huge"]`. Default none.
    pub eal_args: Vec<String>,
    /// EAL `--file-prefix`, so several DPDK processes can share a machine. Default
    /// "spinewatch".
    pub file_prefix: String,
    /// Use hugepages. Default true; false adds `--no-huge` and needs `memory_mb`.
    pub hugepages: bool,
    /// EAL memory (`-m`) in MiB; 0 lets EAL decide (hugepages only). Default 0.
    pub memory_mb: u32,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig { eal_args: Vec::new(), file_prefix: "spinewatch".into(), hugepages: true, memory_mb: 0 }
    }
}

/// Timeouts of one protocol, seconds; a key left out keeps that protocol's default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutTable {
    pub new: Option<u32>,
    pub established: Option<u32>,
    pub closed: Option<u32>,
}

impl TimeoutTable {
    fn over(self, d: detect::Timeouts) -> detect::Timeouts {
        detect::Timeouts {
            new: self.new.unwrap_or(d.new),
            established: self.established.unwrap_or(d.established),
            closed: self.closed.unwrap_or(d.closed),
        }
    }
}

/// `[flow.timeouts]`: Suricata 7's defaults.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// Default new 60, established 600, closed 60.
    pub tcp: TimeoutTable,
    /// Default new 30, established 300.
    pub udp: TimeoutTable,
    /// Default new 30, established 300.
    pub icmp: TimeoutTable,
    /// Other IP protocols. Default new 30, established 300, closed 0.
    pub default: TimeoutTable,
}

/// `[flow]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowTableConfig {
    /// Flows per worker, preallocated (about 200 bytes each). Default 262144.
    pub capacity: usize,
    /// Seconds after which a live flow writes an interim record (its packets and bytes since
    /// the previous record); 0 turns it off. Default 1800.
    pub active_timeout: u32,
    /// The most flows one worker expires per burst. Default 64.
    pub expire_per_burst: usize,
    pub timeouts: TimeoutsConfig,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            capacity: 262_144,
            active_timeout: 1800,
            expire_per_burst: 64,
            timeouts: TimeoutsConfig::default(),
        }
    }
}

/// `[app]`: protocol identification, TCP reassembly and the DNS / HTTP / TLS / SSH parsers.
///
/// ```toml
/// [app]
/// enabled = true
/// max_sessions = 65536          # app-layer sessions per worker
/// stream_depth = 1048576        # bytes parsed per direction (Suricata's stream.reassembly.depth); 0 = all
/// ooo_per_flow = 65536          # out-of-order bytes buffered per direction
/// ooo_per_worker = 67108864     # out-of-order bytes buffered per worker
/// http_max_head = 16384         # bytes of one HTTP request or response head
/// http_max_pending = 32         # pipelined requests waiting for responses, per flow
/// http_body_limit = 16384       # body bytes kept per request and response, for rules
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppTable {
    /// Parse application protocols (off: flow records only). Default true.
    pub enabled: bool,
    /// App-layer sessions per worker; flows beyond it are counted (`no_session`) and not
    /// parsed. Default 65536.
    pub max_sessions: usize,
    /// Bytes delivered to the parsers per direction; 0 = unlimited. Default 1 MiB.
    pub stream_depth: u32,
    /// Out-of-order bytes buffered per direction of a flow. Default 64 KiB.
    pub ooo_per_flow: usize,
    /// Out-of-order bytes buffered per worker. Default 64 MiB.
    pub ooo_per_worker: usize,
    /// Largest HTTP head (start line and header fields), bytes. Default 16 KiB.
    pub http_max_head: usize,
    /// HTTP requests waiting for their responses per flow. Default 32.
    pub http_max_pending: usize,
    /// Bytes of each HTTP request and response body kept for the rules' body buffers
    /// (http.request_body, file.data), when rules are loaded. Default 16 KiB.
    pub http_body_limit: usize,
}

impl Default for AppTable {
    fn default() -> Self {
        let d = detect::AppConfig::default();
        AppTable {
            enabled: d.enabled,
            max_sessions: d.max_sessions,
            stream_depth: d.stream.depth,
            ooo_per_flow: d.stream.ooo_per_stream,
            ooo_per_worker: d.stream.ooo_total,
            http_max_head: d.http.max_head,
            http_max_pending: d.http.max_pending,
            http_body_limit: 16 << 10,
        }
    }
}

/// `[defrag]`: IPv4/IPv6 reassembly (BSD overlap policy, as Suricata's default).
///
/// ```toml
/// [defrag]
/// enabled = true
/// max_datagrams = 4096     # datagrams in reassembly per worker
/// max_bytes = 33554432     # fragment bytes buffered per worker
/// timeout = 60             # seconds a datagram may take (Suricata's defrag.timeout)
/// handoff_ring = 256       # datagrams in flight from one worker to another (their flow's)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefragTable {
    /// Reassemble fragments (off: fragments are only counted). Default true.
    pub enabled: bool,
    /// Datagrams in reassembly per worker; past it the oldest is dropped (counted). Default 4096.
    pub max_datagrams: usize,
    /// Fragment bytes buffered per worker; past it the oldest datagram is dropped. Default 32 MiB.
    pub max_bytes: usize,
    /// Seconds a datagram may take to complete. Default 60.
    pub timeout: u32,
    /// Slots of the ring from each worker to each other, for reassembled datagrams whose flow
    /// the other worker owns; past it they are dropped, counted. Default 256.
    pub handoff_ring: usize,
}

impl Default for DefragTable {
    fn default() -> Self {
        let d = detect::defrag::DefragConfig::default();
        DefragTable {
            enabled: d.enabled,
            max_datagrams: d.max_datagrams,
            max_bytes: d.max_bytes,
            timeout: d.timeout,
            handoff_ring: d.handoff_ring,
        }
    }
}

/// `[export]`
///
/// ```toml
/// [export]
/// eve = "/var/log/spinewatch/eve.json"        # or "-" (stdout), or "none"
/// spool_dir = "/var/spool/spinewatch"
/// [[export.sinks]]
/// url = "syslog+tls://siem.example:6514?format=cef"
/// ca = "/etc/spinewatch/siem-ca.pem"
/// [[export.sinks]]
/// url = "ipfix+udp://collector.example:4739"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportTable {
    /// Where EVE JSON lines go: a file path (appended to, never truncated), "-" for stdout or
    /// "none". Default: stdout when no other sink is configured (here or with `--export`).
    pub eve: Option<String>,
    /// More sinks (`[[export.sinks]]`), on top of `--export URL`.
    pub sinks: Vec<SinkTable>,
    /// Where network sinks spool while their peer is slow or down (a directory per sink,
    /// created when first needed); "" for no spool. Default "/var/spool/spinewatch".
    pub spool_dir: String,
    /// Bytes each sink's spool may hold; past it the oldest records go (counted). Default 1 GiB.
    pub spool_bytes: u64,
    /// Seconds a record may wait in a spool; older ones are dropped, counted as expired (a SIEM
    /// back after a week rarely wants last week's flows first). 0: no limit. Default 604800
    /// (7 days). A spool belongs to its sink's collector (scheme, address, format): records
    /// spooled for one are never sent to another.
    pub spool_max_age_secs: u64,
    /// Bytes of records each sink holds in memory before it spools. Default 64 MiB.
    pub queue_bytes: usize,
    /// Seconds a sink whose peer is down keeps trying at the end of a run before it leaves the
    /// rest in its spool. Default 10.
    pub drain_timeout_secs: u64,
    /// Records per batch. Default 256.
    pub batch_size: usize,
    /// Milliseconds after which a partly filled batch is sent. Default 100.
    pub batch_max_age_ms: u64,
    /// Batches in flight per worker. Default 64.
    pub channel_capacity: usize,
    /// Full batches a worker holds while the exporter is behind, before dropping (counted).
    /// Default 64.
    pub max_backlog_batches: usize,
    /// Threads formatting records (EVE, syslog, CEF, IPFIX); 0 picks one per four workers, at
    /// most four. With more than one, whole batches are formatted in parallel and written in the
    /// order one thread would write them. Default 0.
    pub format_threads: usize,
    /// EVE records (flow, app-layer events, alerts) carry `community_id`, the Community ID v1
    /// flow hash that Zeek, Suricata, Arkime and Elastic compute alike: the pivot between their
    /// records and ours. Default false (Suricata's default: its `community-id: false`).
    pub community_id: bool,
    /// The Community ID seed (0 to 65535), the same on every tool that should agree. Default 0.
    pub community_id_seed: u16,
}

/// `[[export.sinks]]`: a URL (as `--export` takes), and its options as keys rather than in
/// the URL's query, if preferred. The options are the URL's query keys
/// (each sink file's `SCHEMES`, listed in `export::sink::SINKS`, declares them per scheme): the table passes them through and
/// the URL parser refuses what its scheme does not take.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SinkTable {
    pub url: String,
    #[serde(flatten)]
    pub options: std::collections::BTreeMap<String, toml::Value>,
}

impl SinkTable {
    /// The URL with the table's keys added to its query; a key whose value is not a string,
    /// an integer or a boolean is an error naming it.
    pub fn full_url(&self) -> Result<String, String> {
        let mut q: Vec<String> = Vec::new();
        for (k, v) in &self.options {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "{k}: an option is a string, an integer or a boolean, not {}",
                        other.type_str()
                    ))
                }
            };
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'&' | b'=' | b'%' | b'?' | b'#' | b' ' => format!("%{b:02X}"),
                    _ => (b as char).to_string(),
                })
                .collect();
            q.push(format!("{k}={enc}"));
        }
        if q.is_empty() {
            return Ok(self.url.clone());
        }
        let sep = if self.url.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}{}", self.url, q.join("&")))
    }
}

impl Default for ExportTable {
    fn default() -> Self {
        let d = export::ExportConfig::default();
        ExportTable {
            eve: None,
            sinks: Vec::new(),
            spool_dir: "/var/spool/spinewatch".into(),
            spool_bytes: d.sinks.spool_bytes,
            spool_max_age_secs: d.sinks.spool_max_age_secs,
            queue_bytes: d.sinks.queue_bytes,
            drain_timeout_secs: d.sinks.drain_timeout_secs,
            batch_size: d.batch_size,
            batch_max_age_ms: d.batch_max_age_ms,
            channel_capacity: d.channel_capacity,
            max_backlog_batches: d.max_backlog_batches,
            format_threads: d.format_threads,
            community_id: false,
            community_id_seed: 0,
        }
    }
}

/// `[rules]`: Suricata-language signatures.
///
/// ```toml
/// [rules]
/// files = ["/etc/spinewatch/local.rules"]   # on top of --rules FILE (repeatable)
/// classification_file = "/etc/spinewatch/classification.config"   # default: Suricata's
/// threshold_file = "/etc/spinewatch/threshold.config"   # Suricata's threshold-file format
/// [rules.address_vars]
/// HOME_NET = "[10.0.0.0/8,192.168.0.0/16]"  # Suricata's defaults for the rest
/// [rules.port_vars]
/// HTTP_PORTS = "[80,8080]"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesTable {
    /// Rule files loaded at start (and at a reload).
    pub files: Vec<PathBuf>,
    /// classtype → description and priority; default: Suricata's own file (built in).
    pub classification_file: Option<PathBuf>,
    /// threshold.config: `threshold` / `event_filter` / `suppress` entries over the rules.
    pub threshold_file: Option<PathBuf>,
    /// Address variables ($HOME_NET...), over Suricata's defaults.
    pub address_vars: std::collections::BTreeMap<String, String>,
    /// Port variables ($HTTP_PORTS...), over Suricata's defaults.
    pub port_vars: std::collections::BTreeMap<String, String>,
    /// The rules' multi-pattern prefilter: "auto" (Hyperscan when this build has it, else
    /// Aho-Corasick), "hyperscan" or "aho-corasick". Default "auto".
    pub prefilter: String,
}

impl Default for RulesTable {
    fn default() -> Self {
        RulesTable {
            files: Vec::new(),
            classification_file: None,
            threshold_file: None,
            address_vars: Default::default(),
            port_vars: Default::default(),
            prefilter: "auto".into(),
        }
    }
}

impl RulesTable {
    /// Suricata's default variables with this table's on top.
    pub fn vars(&self) -> detect::rules::Vars {
        let mut v = detect::rules::Vars::default();
        for (k, x) in &self.address_vars {
            v.address.insert(k.clone(), x.clone());
        }
        for (k, x) in &self.port_vars {
            v.port.insert(k.clone(), x.clone());
        }
        v
    }
}

/// `[ioc]`: threat-intelligence indicators.
///
/// ```toml
/// [ioc]
/// files = ["/etc/spinewatch/feeds/c2.csv"]   # on top of --ioc FILE (repeatable)
/// ```
/// A file is a plain list (one indicator per line, `#` comments) or CSV
/// (`indicator[,type[,description]]`): IPv4/IPv6 addresses and CIDRs, domains (`*.example.com`
/// or `.example.com` for the whole subtree), JA3/JA3S hashes, JA4 fingerprints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IocTable {
    pub files: Vec<PathBuf>,
}

/// `[behaviour]`: the behavioural detectors (on by default).
///
/// ```toml
/// [behaviour]
/// enabled = true
/// exfil_min_bytes = 10485760   # a flow sending at least this much out of $HOME_NET...
/// exfil_ratio = 10.0           # ...and this many times what it received
/// window_secs = 60             # evidence windows of the detectors below, merged over workers
/// scan_ports = 100             # distinct ports of one host probed by one source
/// scan_hosts = 100             # distinct hosts probed on one port by one source
/// syn_flood = 1000             # SYNs to one service...
/// syn_flood_sources = 100      # ...from at least this many sources
/// brute_force = 20             # connections from one source to one auth service (SSH, RDP, SMB, FTP, Telnet, VNC, MSSQL)
/// dns_subdomains = 100         # distinct subdomains of one domain queried by one source
/// dns_txt = 200                # or this many TXT queries for one domain
/// beacon_min_flows = 8         # beaconing: this many connections to one destination port...
/// beacon_min_interval_secs = 0.5   # ...at least this far apart on average...
/// beacon_max_jitter = 0.1      # ...varying by at most this (standard deviation / mean)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourTable {
    pub enabled: bool,
    pub exfil_min_bytes: u64,
    pub exfil_ratio: f64,
    /// Seconds of each evidence window of the detectors judged on every worker's merged
    /// evidence; their thresholds per window follow.
    pub window_secs: u64,
    pub scan_ports: u32,
    pub scan_hosts: u32,
    pub syn_flood: u64,
    pub syn_flood_sources: u32,
    pub brute_force: u64,
    pub dns_subdomains: u32,
    pub dns_txt: u64,
    pub beacon_min_flows: usize,
    pub beacon_min_interval_secs: f64,
    pub beacon_max_jitter: f64,
}

impl Default for BehaviourTable {
    fn default() -> Self {
        let d = detect::rules::behave::BehaviourConfig::default();
        let sp = d.spanning;
        BehaviourTable {
            enabled: d.enabled,
            exfil_min_bytes: d.exfil_min_bytes,
            exfil_ratio: d.exfil_ratio,
            window_secs: sp.window_secs,
            scan_ports: sp.scan_ports as u32,
            scan_hosts: sp.scan_hosts as u32,
            syn_flood: sp.syn_flood,
            syn_flood_sources: sp.syn_flood_sources as u32,
            brute_force: sp.brute_force,
            dns_subdomains: sp.dns_subdomains as u32,
            dns_txt: sp.dns_txt,
            beacon_min_flows: sp.beacon_min_flows,
            beacon_min_interval_secs: sp.beacon_min_interval_secs,
            beacon_max_jitter: sp.beacon_max_jitter,
        }
    }
}

impl BehaviourTable {
    pub fn config(&self) -> detect::rules::behave::BehaviourConfig {
        detect::rules::behave::BehaviourConfig {
            enabled: self.enabled,
            spanning: detect::rules::sketch::SketchConfig {
                enabled: self.enabled,
                window_secs: self.window_secs,
                scan_ports: self.scan_ports as f64,
                scan_hosts: self.scan_hosts as f64,
                syn_flood: self.syn_flood,
                syn_flood_sources: self.syn_flood_sources as f64,
                brute_force: self.brute_force,
                dns_subdomains: self.dns_subdomains as f64,
                dns_txt: self.dns_txt,
                beacon_min_flows: self.beacon_min_flows,
                beacon_min_interval_secs: self.beacon_min_interval_secs,
                beacon_max_jitter: self.beacon_max_jitter,
            },
            exfil_min_bytes: self.exfil_min_bytes,
            exfil_ratio: self.exfil_ratio,
        }
    }
}

/// `[stats]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Seconds between stats log lines during a run; 0 turns them off. Default 10.
    pub interval_secs: u64,
    /// A file each stats line is also appended to, as one JSON object. Default none.
    pub file: Option<PathBuf>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { interval_secs: 10, file: None }
    }
}

/// `[afpacket]`: live capture with Linux AF_PACKET rings (TPACKET_V3) instead of DPDK ports,
/// for hosts without a DPDK-capable NIC. Workers: `capture.cores` (one each), else
/// `capture.workers` on cores 0.., else one per core.
///
/// ```toml
/// [afpacket]
/// interfaces = ["eth1"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfPacketTable {
    /// Interfaces to capture from; every worker reads each through the fanout group.
    pub interfaces: Vec<String>,
    /// Bytes per ring block (a power of two, at least 4096). Default 1 MiB.
    pub block_size: u32,
    /// Blocks per ring (per worker and interface). Default 64.
    pub block_count: u32,
    /// The most of a frame kept (the rest is cut; the wire length is still counted).
    /// Default 16384.
    pub frame_size: u32,
    /// A partly filled block is handed over after this long (milliseconds). Default 10.
    pub block_timeout_ms: u32,
    /// Promiscuous mode. Default true.
    pub promiscuous: bool,
}

impl Default for AfPacketTable {
    fn default() -> Self {
        AfPacketTable {
            interfaces: Vec::new(),
            block_size: 1 << 20,
            block_count: 64,
            frame_size: 16384,
            block_timeout_ms: 10,
            promiscuous: true,
        }
    }
}

/// `[alert_capture]`: the packets of flows a rule alerted on (and a few from before the
/// alert), to rotating pcapng files per worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertCaptureTable {
    /// Default false.
    pub enabled: bool,
    /// Where the files go (`alerts-wWORKER-SEQ.pcapng`). Default "/var/log/spinewatch/pcap".
    pub dir: PathBuf,
    /// Packets of the flow written from before the alert. Default 16.
    pub packets_before: usize,
    /// Packets written per alerting flow at most. Default 10000.
    pub max_flow_packets: u64,
    /// Packets each worker keeps for `packets_before` (× snaplen bytes of memory). Default 2048.
    pub ring_packets: usize,
    /// Bytes kept of each packet. Default 4096.
    pub snaplen: usize,
    /// A file is closed past this size. Default 64 MiB.
    pub file_bytes: u64,
    /// Files kept per worker; the oldest go. Default 16.
    pub files: usize,
}

impl Default for AlertCaptureTable {
    fn default() -> Self {
        let d = capture::alertpcap::AlertCaptureConfig::default();
        AlertCaptureTable {
            enabled: false,
            dir: d.dir,
            packets_before: d.packets_before,
            max_flow_packets: d.max_flow_packets,
            ring_packets: d.ring_packets,
            snaplen: d.snaplen,
            file_bytes: d.file_bytes,
            files: d.files,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served: `run` default "127.0.0.1:9477", replays and benches
    /// none; "" turns it off.
    pub listen: Option<String>,
}

/// A configuration that did not load, naming the file and every problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path}: {} problem(s):\n  {}", problems.len(), problems.join("\n  "))]
    Invalid { path: PathBuf, problems: Vec<String> },
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.into(), error })?;
        super::config_check::parse(&text).map_err(|problems| ConfigError::Invalid {
            path: path.into(),
            problems: problems.iter().map(|p| p.to_string()).collect(),
        })
    }

    /// Every problem, each with its key path.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let c = &self.capture;
        if !(1..=dpdk_max_burst()).contains(&c.burst_size) {
            p.push(format!("capture.burst_size: {} is outside 1..={}", c.burst_size, dpdk_max_burst()));
        }
        if c.mempool_cache > 512 {
            p.push(format!("capture.mempool_cache: {} is above DPDK's limit of 512", c.mempool_cache));
        }
        if c.mbuf_data_room < 128 + 64 {
            p.push(format!("capture.mbuf_data_room: {} leaves no room after the 128-byte headroom", c.mbuf_data_room));
        }
        if let Some(0) = c.mempool_size.value() {
            p.push("capture.mempool_size: must be \"auto\" or at least 1".into());
        }
        if c.workers == Some(0) {
            p.push("capture.workers: must be at least 1".into());
        }
        if let Some(cores) = &c.cores {
            if cores.is_empty() {
                p.push("capture.cores: empty (leave it out for cores 0..workers)".into());
            }
            for (i, &core) in cores.iter().enumerate() {
                if core >= 1024 {
                    p.push(format!("capture.cores[{i}]: core {core} does not exist"));
                }
            }
        }
        for (i, port) in c.ports.iter().enumerate() {
            if port.device.trim().is_empty() {
                p.push(format!("capture.ports[{i}].device: empty"));
            }
            if port.cores.is_empty() {
                p.push(format!("capture.ports[{i}].cores: at least one core is needed (one per RX queue)"));
            }
            for (j, &core) in port.cores.iter().enumerate() {
                if port.cores[..j].contains(&core) {
                    p.push(format!("capture.ports[{i}].cores: core {core} listed twice (one queue per core per port)"));
                }
                if core >= 1024 {
                    p.push(format!("capture.ports[{i}].cores[{j}]: core {core} does not exist"));
                }
            }
            if let Some(0) = port.rx_descriptors.value() {
                p.push(format!("capture.ports[{i}].rx_descriptors: must be \"auto\" or at least 1"));
            }
            for (j, other) in c.ports[..i].iter().enumerate() {
                if other.port_name() == port.port_name() {
                    p.push(format!(
                        "capture.ports[{i}].device: port {} already configured as capture.ports[{j}]",
                        port.port_name()
                    ));
                }
            }
        }
        if let Some(expr) = &c.bpf {
            if let Err(e) = capture::bpf::Filter::compile(expr) {
                p.push(format!("capture.bpf: {}", e.trim_start_matches("--bpf ")));
            }
        }
        if self.behaviour.window_secs == 0 {
            p.push("behaviour.window_secs: must be at least 1".into());
        }
        if self.behaviour.exfil_ratio.is_nan() || self.behaviour.exfil_ratio < 1.0 {
            p.push(format!("behaviour.exfil_ratio: {} must be at least 1", self.behaviour.exfil_ratio));
        }
        if !["auto", "hyperscan", "aho-corasick"].contains(&self.rules.prefilter.as_str()) {
            p.push(format!(
                "rules.prefilter: {:?} is not one of \"auto\", \"hyperscan\", \"aho-corasick\"",
                self.rules.prefilter
            ));
        }
        let vars = self.rules.vars();
        for (k, v) in &self.rules.address_vars {
            if let Err(e) = detect::rules::addr::parse_addresses(v, &vars) {
                p.push(format!("rules.address_vars.{k}: {e}"));
            }
        }
        for (k, v) in &self.rules.port_vars {
            if let Err(e) = detect::rules::addr::parse_ports(v, &vars) {
                p.push(format!("rules.port_vars.{k}: {e}"));
            }
        }
        let d = &self.dpdk;
        if !d.hugepages && d.memory_mb == 0 {
            p.push("dpdk.memory_mb: must be set (e.g. 2048) when dpdk.hugepages = false".into());
        }
        if d.file_prefix.is_empty() || d.file_prefix.contains('/') {
            p.push(format!("dpdk.file_prefix: {:?} must be a non-empty name without '/'", d.file_prefix));
        }
        let f = &self.flow;
        if f.capacity == 0 {
            p.push("flow.capacity: must be at least 1".into());
        }
        if f.capacity > (1 << 30) {
            p.push(format!("flow.capacity: {} flows per worker is more than 2^30", f.capacity));
        }
        if f.expire_per_burst == 0 {
            p.push("flow.expire_per_burst: must be at least 1 or flows never expire".into());
        }
        for (name, t) in [
            ("tcp", f.timeouts.tcp),
            ("udp", f.timeouts.udp),
            ("icmp", f.timeouts.icmp),
            ("default", f.timeouts.default),
        ] {
            if t.new == Some(0) || t.established == Some(0) {
                p.push(format!("flow.timeouts.{name}: new and established must be at least 1 second"));
            }
        }
        let a = &self.app;
        if a.enabled && a.max_sessions == 0 {
            p.push("app.max_sessions: must be at least 1 when app.enabled (or set app.enabled = false)".into());
        }
        if a.ooo_per_flow > a.ooo_per_worker {
            p.push(format!(
                "app.ooo_per_flow: {} is more than app.ooo_per_worker ({})",
                a.ooo_per_flow, a.ooo_per_worker
            ));
        }
        if a.http_max_head < 256 {
            p.push(format!(
                "app.http_max_head: {} is below 256 bytes (a request line alone can be longer)",
                a.http_max_head
            ));
        }
        if a.http_max_pending == 0 {
            p.push("app.http_max_pending: must be at least 1".into());
        }
        let df = &self.defrag;
        if df.enabled && (df.max_datagrams == 0 || df.max_bytes < 65_535) {
            p.push(format!(
                "defrag: max_datagrams ({}) must be at least 1 and max_bytes ({}) at least 65535 (one datagram)",
                df.max_datagrams, df.max_bytes
            ));
        }
        if df.timeout == 0 {
            p.push("defrag.timeout: must be at least 1 second".into());
        }
        if df.handoff_ring == 0 || df.handoff_ring > 65_536 {
            p.push(format!("defrag.handoff_ring: {} is not in 1..=65536", df.handoff_ring));
        }
        let ac = &self.alert_capture;
        if ac.enabled {
            if ac.ring_packets == 0 || ac.snaplen < 64 || ac.files == 0 || ac.file_bytes < 4096 {
                p.push("alert_capture: ring_packets, files must be at least 1, snaplen at least 64, file_bytes at least 4096".into());
            }
            if ac.packets_before > ac.ring_packets {
                p.push(format!(
                    "alert_capture.packets_before: {} is more than ring_packets ({})",
                    ac.packets_before, ac.ring_packets
                ));
            }
        }
        let af = &self.afpacket;
        if !af.interfaces.is_empty() {
            if !self.capture.ports.is_empty() {
                p.push("afpacket.interfaces: capture.ports is set too; `run` takes one source".into());
            }
            if !af.block_size.is_power_of_two() || af.block_size < 4096 {
                p.push(format!("afpacket.block_size: {} is not a power of two of at least 4096", af.block_size));
            }
            if af.frame_size < 64 || af.frame_size > af.block_size {
                p.push(format!("afpacket.frame_size: {} is outside 64..=block_size", af.frame_size));
            }
            if af.block_count == 0 {
                p.push("afpacket.block_count: must be at least 1".into());
            }
        }
        if let Some(a) = self.metrics.listen.as_deref().filter(|a| !a.is_empty()) {
            if a.parse::<std::net::SocketAddr>().is_err() {
                p.push(format!("metrics.listen: {a:?} is not an address:port (e.g. \"127.0.0.1:9477\")"));
            }
        }
        let e = &self.export;
        match e.eve.as_deref() {
            Some("") => p.push("export.eve: empty (use \"-\" for stdout, \"none\" for no EVE output)".into()),
            Some("none") | None => {}
            Some(v) => {
                if let Err(m) = export::sink::url::parse(v) {
                    p.push(format!("export.eve: {m}"));
                }
            }
        }
        for (i, s) in e.sinks.iter().enumerate() {
            if let Err(m) = s.full_url().and_then(|u| export::sink::url::parse(&u)) {
                p.push(format!("export.sinks[{i}]: {m}"));
            }
        }
        if e.queue_bytes < 1 << 16 {
            p.push("export.queue_bytes: must be at least 65536".into());
        }
        if e.batch_size == 0 {
            p.push("export.batch_size: must be at least 1".into());
        }
        if e.channel_capacity == 0 {
            p.push("export.channel_capacity: must be at least 1".into());
        }
        if e.format_threads > 64 {
            p.push(format!("export.format_threads: {} is more than 64", e.format_threads));
        }
        if e.max_backlog_batches == 0 {
            p.push("export.max_backlog_batches: must be at least 1".into());
        }
        p
    }

    /// The sinks: the EVE output (`eve`, or stdout when nothing else is configured), then
    /// `[[export.sinks]]`, then the command line's `--export` URLs.
    pub fn sinks(&self, eve_flag: Option<&str>, export_flags: &[String]) -> Result<Vec<export::SinkSpec>, String> {
        let mut v = Vec::new();
        let others = !self.export.sinks.is_empty() || !export_flags.is_empty();
        let eve =
            eve_flag.map(str::to_string).or_else(|| self.export.eve.clone()).or_else(|| (!others).then(|| "-".into()));
        if let Some(e) = eve.filter(|e| e != "none") {
            v.push(export::sink::url::parse(&e).map_err(|m| format!("EVE output {e}: {m}"))?);
        }
        for (i, s) in self.export.sinks.iter().enumerate() {
            v.push(
                s.full_url()
                    .and_then(|u| export::sink::url::parse(&u))
                    .map_err(|m| format!("export.sinks[{i}]: {m}"))?,
            );
        }
        for u in export_flags {
            v.push(export::sink::url::parse(u).map_err(|m| format!("--export {u}: {m}"))?);
        }
        let (mut names, mut dirs) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        for s in &v {
            if !names.insert(s.name.clone()) {
                return Err(format!("two sinks named {:?}: give one a `name`", s.name));
            }
            // Each network sink spools in a directory named after it and its collector.
            if !s.is_local() && !dirs.insert(export::fanout::dir_name(&s.name, &s.identity)) {
                return Err(format!(
                    "sink {:?} would share its spool directory with another: give one a `name`",
                    s.name
                ));
            }
        }
        Ok(v)
    }

    /// Triggered capture, when enabled.
    pub fn alert_capture(&self) -> Option<capture::alertpcap::AlertCaptureConfig> {
        let a = &self.alert_capture;
        a.enabled.then(|| capture::alertpcap::AlertCaptureConfig {
            dir: a.dir.clone(),
            packets_before: a.packets_before,
            max_flow_packets: a.max_flow_packets,
            ring_packets: a.ring_packets,
            snaplen: a.snaplen,
            file_bytes: a.file_bytes,
            files: a.files,
        })
    }

    pub fn flow_config(&self) -> detect::FlowConfig {
        let f = &self.flow;
        let d = detect::FlowConfig::default();
        detect::FlowConfig {
            capacity: f.capacity,
            tcp: f.timeouts.tcp.over(d.tcp),
            udp: f.timeouts.udp.over(d.udp),
            icmp: f.timeouts.icmp.over(d.icmp),
            default: f.timeouts.default.over(d.default),
            active_timeout: f.active_timeout,
            expire_budget: f.expire_per_burst,
            app: self.app_config(),
            defrag: detect::defrag::DefragConfig {
                enabled: self.defrag.enabled,
                max_datagrams: self.defrag.max_datagrams,
                max_bytes: self.defrag.max_bytes,
                timeout: self.defrag.timeout,
                handoff_ring: self.defrag.handoff_ring,
            },
            spread: match self.capture.rss {
                RssMode::Flow => detect::hash::Spread::Flow,
                RssMode::Addresses => detect::hash::Spread::Addresses,
            },
            rules: self.compiled_rules.clone(),
        }
    }

    pub fn app_config(&self) -> detect::AppConfig {
        let a = &self.app;
        let d = detect::AppConfig::default();
        detect::AppConfig {
            enabled: a.enabled,
            max_sessions: a.max_sessions,
            stream: detect::app::stream::StreamLimits {
                depth: a.stream_depth,
                ooo_per_stream: a.ooo_per_flow,
                ooo_total: a.ooo_per_worker,
                ..d.stream
            },
            http: {
                // Heads and the first body bytes are kept only for rules to read.
                let rules = self.compiled_rules.0.as_ref().is_some_and(|s| !s.current().1.is_empty_of_rules());
                detect::app::http::HttpLimits {
                    max_head: a.http_max_head,
                    max_pending: a.http_max_pending,
                    keep_heads: rules,
                    body_limit: if rules { a.http_body_limit } else { 0 },
                }
            },
        }
    }

    pub fn export_config(&self) -> export::ExportConfig {
        let e = &self.export;
        export::ExportConfig {
            batch_size: e.batch_size,
            batch_max_age_ms: e.batch_max_age_ms,
            channel_capacity: e.channel_capacity,
            max_backlog_batches: e.max_backlog_batches,
            format_threads: e.format_threads,
            blocking: false,
            sinks: export::SinkDefaults {
                queue_bytes: e.queue_bytes,
                spool_dir: (!e.spool_dir.is_empty()).then(|| PathBuf::from(&e.spool_dir)),
                spool_bytes: e.spool_bytes,
                drain_timeout_secs: e.drain_timeout_secs,
                spool_max_age_secs: e.spool_max_age_secs,
                network_blocking: false,
                community_id: e.community_id.then_some(e.community_id_seed),
            },
        }
    }
}

fn dpdk_max_burst() -> usize {
    512
}
