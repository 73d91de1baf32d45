//! The `spinewatch` binary: CLI, config loading and wiring of capture → detect → export.
#![forbid(unsafe_code)]

mod bench;
mod config;
mod config_check;
mod rules;

use anyhow::{bail, Context, Result};
use capture::file::FileRunConfig;
use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "spinewatch",
    version,
    about = "Network sensor: DPDK capture, per-core flow tracking, Suricata-EVE-compatible export"
)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. "info" or "capture=debug". Logs go to stderr.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Source {
    /// Through DPDK's net_pcap PMD, one RX queue per worker (the real capture path).
    Dpdk,
    /// Straight from the file, pure Rust.
    File,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// The traffic generator: background flows of every protocol, encapsulations, attacks,
    /// with a ground-truth JSON (the knobs below apply).
    Traffic,
    /// Every case the flow table must get right (handshakes, RST, half-open, UDP, ICMP, IPv6,
    /// VLAN, QinQ, timeouts, malformed frames); the pipeline tests' capture.
    Mixed,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pipeline {
    Rx,
    Decode,
    Flow,
    Full,
}

/// Ready-made knob settings for the benchmark captures.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// 64-byte frames, many short flows (DNS, UDP, small TCP, ICMP).
    SmallFlows,
    /// IMIX sizes, a datacenter protocol mix, some VLAN/QinQ/VXLAN/GRE.
    ImixDc,
    /// 1500-byte frames, mostly TLS.
    TlsLarge,
}

/// What a run detects with, on top of its config.
#[derive(clap::Args, Debug)]
struct DetectArgs {
    /// A rule file (Suricata's language) on top of the config's; repeatable.
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// An indicator file (plain list or CSV) on top of the config's; repeatable.
    #[arg(long = "ioc")]
    ioc: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The sensor: capture from the configured DPDK ports until SIGINT/SIGTERM.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Write EVE here instead of the config's export.eve ("-" for stdout, "none").
        #[arg(long)]
        eve: Option<String>,
        /// Another sink, on top of the config's (see docs/export.md); repeatable.
        #[arg(long = "export")]
        export: Vec<String>,
        /// Only the packets this filter takes (libpcap's language, as tcpdump's), instead of
        /// capture.bpf.
        #[arg(long)]
        bpf: Option<String>,
        #[command(flatten)]
        det: DetectArgs,
    },
    /// Recorded traffic through the same pipeline; EVE to stdout, a summary on stderr.
    Replay {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Workers (default: capture.workers, or the number of cores).
        #[arg(long)]
        workers: Option<usize>,
        /// Packet source (default: dpdk when built with DPDK, else file).
        #[arg(long, value_enum)]
        source: Option<Source>,
        /// Write EVE here instead of stdout ("-" for stdout, "none"). Appends; never truncates.
        #[arg(long)]
        eve: Option<String>,
        /// Another sink, on top of the config's (see docs/export.md); repeatable.
        #[arg(long = "export")]
        export: Vec<String>,
        #[command(flatten)]
        det: DetectArgs,
        /// Only the packets this filter takes (libpcap's language, as tcpdump's), instead of
        /// capture.bpf.
        #[arg(long)]
        bpf: Option<String>,
        /// A capture to read (as the positional arguments; Suricata's -r); repeatable.
        #[arg(short = 'r', long = "read")]
        read: Vec<PathBuf>,
        /// After the captures named, watch this folder: each new capture file, in name order,
        /// once it is finished (has not grown for a second), until SIGINT/SIGTERM (Suricata's
        /// --pcap-file-continuous). Reads with the file source.
        #[arg(long, value_name = "DIR")]
        continuous: Option<PathBuf>,
        /// Capture files: pcap or pcapng, "-" for standard input, or a folder (its files in
        /// name order).
        pcaps: Vec<PathBuf>,
    },
    /// Benchmark: the real pipeline over DPDK net_pcap replaying the captures from memory
    /// (infinite_rx, one pre-split capture per RX queue) for a fixed time.
    Bench {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Workers, one RX queue each (default: capture.workers, or the number of cores).
        #[arg(long)]
        workers: Option<usize>,
        /// Seconds measured, after the warm-up.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seconds before measuring starts (start-up and cache warming are left out).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// How much of the pipeline runs: rx (receive and free: the ceiling), decode, flow, full.
        #[arg(long, value_enum, default_value = "full")]
        pipeline: Pipeline,
        /// One JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Where the full pipeline's EVE goes (default: discarded after formatting).
        #[arg(long)]
        eve: Option<String>,
        #[command(flatten)]
        det: DetectArgs,
        #[arg(required = true)]
        pcaps: Vec<PathBuf>,
    },
    /// Load and validate a config file; print every problem with its key path.
    CheckConfig { file: PathBuf },
    /// Load rule files (Suricata's language) and report rules loaded and rejected, by reason.
    CheckRules {
        /// Variables, classification file and more rule files from this config.
        #[arg(long)]
        config: Option<PathBuf>,
        /// {"loaded": N, "rejected": M, "reasons": {REASON: COUNT}} on stdout.
        #[arg(long)]
        json: bool,
        /// Every rejected rule with its file, line and reason.
        #[arg(long)]
        verbose: bool,
        files: Vec<PathBuf>,
    },
    /// Write a deterministic capture (for tests, benchmarks and the demo) and its ground truth.
    Gen {
        #[arg(long, value_enum, default_value = "traffic")]
        scenario: Scenario,
        #[arg(long)]
        out: PathBuf,
        /// Ground-truth JSON (flows and scenarios); default: OUT with ".truth.json".
        #[arg(long)]
        truth: Option<PathBuf>,
        /// Starting values for the knobs; explicit knobs override them.
        #[arg(long, value_enum)]
        preset: Option<Preset>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Background flows.
        #[arg(long)]
        flows: Option<u64>,
        /// Data packet sizes: 64, imix, 1500 or jumbo.
        #[arg(long)]
        sizes: Option<String>,
        /// Protocol weights, e.g. "http=20,tls=30,dns=15,dns-tcp=2,ssh=3,tcp=15,udp=10,icmp=5".
        #[arg(long)]
        mix: Option<String>,
        /// Encapsulation weights, e.g. "none=85,vlan=8,qinq=3,vxlan=2,gre=2".
        #[arg(long)]
        encap: Option<String>,
        /// Percent of flows over IPv6.
        #[arg(long)]
        ipv6: Option<u32>,
        /// New flows per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Pareto shape of flow sizes (smaller: heavier tail).
        #[arg(long)]
        alpha: Option<f64>,
        /// The most data packets in one flow.
        #[arg(long)]
        max_packets: Option<u32>,
        /// Attack scenarios: "all", "none", or a list of port-scan, syn-flood, dns-tunnel, beacon,
        /// exfil, brute-force, cleartext-creds.
        #[arg(long, default_value = "none")]
        attacks: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let code = match dispatch(cli.cmd) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn dispatch(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::CheckRules { config, json, verbose, files } => {
            let cfg = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            rules::check(&cfg, config.as_deref(), &files, json, verbose)
        }
        Cmd::CheckConfig { file } => {
            let cfg = Config::load(&file)?;
            let env = config_check::environment(&cfg);
            if !env.problems.is_empty() {
                bail!(
                    "{}: {} problem(s) with the files it names:\n  {}",
                    file.display(),
                    env.problems.len(),
                    env.problems.join("\n  ")
                );
            }
            for w in &env.warnings {
                eprintln!("warning: {}: {w}", file.display());
            }
            println!(
                "{}: ok ({} port(s), flow capacity {} per worker)",
                file.display(),
                cfg.capture.ports.len(),
                cfg.flow.capacity
            );
            // Each configured sink, and the options its scheme takes (keys of its table or of
            // its URL's query).
            for (i, t) in cfg.export.sinks.iter().enumerate() {
                let (scheme, _) = export::sink::url::split_scheme(&t.url);
                let opts = export::sink::url::options_of(scheme).unwrap_or_default();
                println!("  export.sinks[{i}] {}: options {}", t.url, opts.join(", "));
            }
            Ok(0)
        }
        Cmd::Gen {
            scenario,
            out,
            truth,
            preset,
            seed,
            flows,
            sizes,
            mix,
            encap,
            ipv6,
            rate,
            alpha,
            max_packets,
            attacks,
        } => {
            let mut w = capture::pcap::PcapWriter::create(&out).with_context(|| format!("{}", out.display()))?;
            let truth_path = truth.unwrap_or_else(|| {
                let mut p = out.clone().into_os_string();
                p.push(".truth.json");
                PathBuf::from(p)
            });
            if scenario == Scenario::Mixed {
                let pkts = pcapgen::mixed();
                for (ts, f) in &pkts {
                    w.write(*ts, f, f.len() as u32)?;
                }
                w.finish()?;
                eprintln!("wrote {} packets to {}", pkts.len(), out.display());
                return Ok(0);
            }
            let mut cfg = preset_config(preset);
            cfg.seed = seed;
            if let Some(v) = flows {
                cfg.flows = v;
            }
            if let Some(v) = sizes {
                cfg.sizes = pcapgen::traffic::Sizes::parse(&v)
                    .with_context(|| format!("--sizes {v}: one of 64, imix, 1500, jumbo"))?;
            }
            if let Some(v) = mix {
                cfg.mix = pcapgen::traffic::ProtoMix::parse(&v).map_err(|e| anyhow::anyhow!("--mix: {e}"))?;
            }
            if let Some(v) = encap {
                cfg.encap = pcapgen::traffic::EncapMix::parse(&v).map_err(|e| anyhow::anyhow!("--encap: {e}"))?;
            }
            if let Some(v) = ipv6 {
                cfg.ipv6_percent = v.min(100);
            }
            if let Some(v) = rate {
                cfg.flows_per_sec = v;
            }
            if let Some(v) = alpha {
                cfg.size_alpha = v;
            }
            if let Some(v) = max_packets {
                cfg.max_packets = v;
            }
            cfg.attacks = match attacks.as_str() {
                "none" | "" => Vec::new(),
                "all" => pcapgen::traffic::Attack::ALL.to_vec(),
                list => list
                    .split(',')
                    .map(|a| {
                        pcapgen::traffic::Attack::parse(a).with_context(|| format!("--attacks: unknown scenario {a:?}"))
                    })
                    .collect::<Result<_>>()?,
            };
            let tf =
                std::fs::File::create(&truth_path).with_context(|| format!("creating {}", truth_path.display()))?;
            let mut tw = pcapgen::traffic::TruthWriter::new(std::io::BufWriter::new(tf))?;
            let (mut err, mut terr, mut nflows) = (None, None, 0u64);
            let t = pcapgen::traffic::generate_with(
                &cfg,
                |ts, f| {
                    if err.is_none() {
                        if let Err(e) = w.write(ts, f, f.len() as u32) {
                            err = Some(e);
                        }
                    }
                },
                |flow| {
                    nflows += 1;
                    if terr.is_none() {
                        if let Err(e) = tw.flow(&flow) {
                            terr = Some(e);
                        }
                    }
                },
            );
            if let Some(e) = err {
                return Err(anyhow::Error::new(e).context(format!("writing {}", out.display())));
            }
            if let Some(e) = terr {
                return Err(anyhow::Error::new(e).context(format!("writing {}", truth_path.display())));
            }
            w.finish()?;
            tw.finish(&t).with_context(|| format!("writing {}", truth_path.display()))?;
            eprintln!(
                "wrote {} packets ({} flows, {} scenarios) to {}, truth in {}",
                t.packets,
                nflows,
                t.scenarios.len(),
                out.display(),
                truth_path.display()
            );
            Ok(0)
        }
        Cmd::Replay {
            config,
            workers,
            source,
            eve,
            export,
            det: DetectArgs { rules: rule_files, ioc },
            bpf,
            read,
            continuous,
            pcaps,
        } => {
            let mut cfg = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            if bpf.is_some() {
                cfg.capture.bpf = bpf;
            }
            let pcaps = expand_inputs(pcaps.iter().chain(&read))?;
            if pcaps.is_empty() && continuous.is_none() {
                bail!("no capture to read: name files, folders or \"-\" (standard input), or --continuous DIR");
            }
            if let Some(dir) = &continuous {
                if !dir.is_dir() {
                    bail!("--continuous {}: not a folder", dir.display());
                }
                if source == Some(Source::Dpdk) {
                    bail!(
                        "--continuous reads with the file source (DPDK's net_pcap needs its captures before it starts)"
                    );
                }
            }
            rules::compile_into(&mut cfg, config.as_deref(), &rule_files, &ioc)?;
            let done = Arc::new(AtomicBool::new(false));
            let reloader = rules::spawn_reloader(&cfg, config.clone(), rule_files, ioc, done.clone())?;
            let ncpu = capture::pin::available_cores().len().max(1);
            let workers = workers.or(cfg.capture.workers).unwrap_or(ncpu).max(1);
            let out = cfg.sinks(eve.as_deref(), &export).map_err(anyhow::Error::msg)?;
            let sig = install_signals()?;
            let stop = sig.stop.clone();
            let source = source.unwrap_or(if cfg!(feature = "dpdk") && continuous.is_none() {
                Source::Dpdk
            } else {
                Source::File
            });
            let cores = cfg.capture.cores.clone().unwrap_or_else(|| (0..workers).map(|i| i % ncpu).collect());
            let mut summary = match source {
                Source::File => {
                    let fc = FileRunConfig {
                        workers,
                        cores,
                        flow: cfg.flow_config(),
                        export: replay_export(&cfg),
                        alert_capture: cfg.alert_capture(),
                        bpf: cfg.capture.bpf.clone(),
                        watch: continuous.clone(),
                    };
                    capture::file::run_files(&pcaps, &fc, out, stop)?
                }
                Source::Dpdk => replay_dpdk(&cfg, workers, &cores, &pcaps, out, stop)?,
            };
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(t) = reloader {
                let _ = t.join();
            }
            // A watched folder has no end: a signal is how it ends.
            Ok(finish(&mut summary, &sig, if continuous.is_some() { Ending::Live } else { Ending::Replay }))
        }
        Cmd::Bench {
            config,
            workers,
            duration,
            warmup,
            pipeline,
            json,
            eve,
            det: DetectArgs { rules: rule_files, ioc },
            pcaps,
        } => {
            let mut cfg = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            rules::compile_into(&mut cfg, config.as_deref(), &rule_files, &ioc)?;
            let ncpu = capture::pin::available_cores().len().max(1);
            let workers = workers.or(cfg.capture.workers).unwrap_or(ncpu).max(1);
            let cores = cfg.capture.cores.clone().unwrap_or_else(|| (0..workers).map(|i| i % ncpu).collect());
            let stage = match pipeline {
                Pipeline::Rx => capture::worker::Stage::Rx,
                Pipeline::Decode => capture::worker::Stage::Decode,
                Pipeline::Flow => capture::worker::Stage::Flow,
                Pipeline::Full => capture::worker::Stage::Full,
            };
            // Formatted as EVE and discarded unless --eve says where.
            let out = cfg.sinks(Some(eve.as_deref().unwrap_or("null:")), &[]).map_err(anyhow::Error::msg)?;
            let stop = install_signals()?.stop;
            bench::run(&cfg, workers, &cores, stage, warmup, duration, json, &pcaps, out, stop)
        }
        Cmd::Run { config, eve, export, bpf, det: DetectArgs { rules: rule_files, ioc } } => {
            let mut cfg = Config::load(&config)?;
            if bpf.is_some() {
                cfg.capture.bpf = bpf;
            }
            rules::compile_into(&mut cfg, Some(&config), &rule_files, &ioc)?;
            let done = Arc::new(AtomicBool::new(false));
            let reloader = rules::spawn_reloader(&cfg, Some(config.clone()), rule_files, ioc, done.clone())?;
            let out = cfg.sinks(eve.as_deref(), &export).map_err(anyhow::Error::msg)?;
            let sig = install_signals()?;
            let stop = sig.stop.clone();
            // AF_PACKET rings when interfaces are configured (any build), else DPDK ports.
            let mut summary = if cfg.afpacket.interfaces.is_empty() {
                run_dpdk(&cfg, out, stop)?
            } else {
                run_afpacket(&cfg, out, stop)?
            };
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(t) = reloader {
                let _ = t.join();
            }
            Ok(finish(&mut summary, &sig, Ending::Live))
        }
    }
}

/// The captures named: "-" (standard input) as it is, a folder as its files in name order.
fn expand_inputs<'a>(named: impl Iterator<Item = &'a PathBuf>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in named {
        if p.as_os_str() == capture::pcap::STDIN {
            if out.iter().any(|q: &PathBuf| q.as_os_str() == capture::pcap::STDIN) {
                bail!("standard input (\"-\") named twice");
            }
            out.push(p.clone());
        } else if p.is_dir() {
            let files = capture::file::capture_files(p).with_context(|| format!("{}", p.display()))?;
            if files.is_empty() {
                bail!("{}: no capture file in this folder", p.display());
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// How a run ends: a live capture is stopped by a signal as its normal end; a replay that a
/// signal stopped did not read its input to the end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Live,
    Replay,
}

/// Prints the summary and returns the exit status: 2 when an output failed for good (records
/// lost to it), 128 + the signal when a replay was interrupted, 1 when records were dropped or
/// the accounting does not balance, else 0.
fn finish(summary: &mut capture::RunSummary, sig: &Signals, ending: Ending) -> i32 {
    let stopped = sig.stopped_by().filter(|_| ending == Ending::Replay);
    summary.interrupted = stopped.map(|(_, name)| name.to_string());
    eprint!("{}", summary.render());
    if let Some(e) = &summary.export_error {
        eprintln!("error: EVE output failed ({e}); {} records not written", summary.exporter.lost);
        return 2;
    }
    if let Some((n, name)) = stopped {
        eprintln!("error: interrupted by {name}: the replay stopped before the end of its captures");
        return 128 + n;
    }
    let lost = summary.records_lost();
    if lost > 0 || !summary.balanced() {
        eprintln!("error: {lost} records were not delivered to every sink (see the summary)");
        return 1;
    }
    0
}

fn preset_config(p: Option<Preset>) -> pcapgen::traffic::TrafficConfig {
    use pcapgen::traffic::{EncapMix, ProtoMix, Sizes, TrafficConfig};
    let base = TrafficConfig::default();
    match p {
        None => base,
        Some(Preset::SmallFlows) => TrafficConfig {
            flows: 40_000,
            sizes: Sizes::Small,
            mix: ProtoMix { tcp: 30, http: 5, tls: 5, dns_udp: 30, udp: 20, icmp: 10, ..ProtoMix::NONE },
            size_alpha: 2.0,
            max_packets: 40,
            flows_per_sec: 20_000.0,
            ..base
        },
        Some(Preset::ImixDc) => TrafficConfig {
            flows: 2_500,
            sizes: Sizes::Imix,
            encap: EncapMix { none: 85, vlan: 8, qinq: 3, vxlan: 2, gre: 2 },
            flows_per_sec: 2_000.0,
            max_packets: 400,
            ..base
        },
        Some(Preset::TlsLarge) => TrafficConfig {
            flows: 10_000,
            sizes: Sizes::Large,
            mix: ProtoMix { http: 10, tls: 80, dns_udp: 10, ..ProtoMix::NONE },
            flows_per_sec: 500.0,
            max_packets: 400,
            ..base
        },
    }
}

/// A replay waits for the exporter instead of dropping: back-pressure costs nothing there, and
/// the records must not depend on thread timing.
fn replay_export(cfg: &Config) -> export::ExportConfig {
    export::ExportConfig { blocking: true, ..cfg.export_config() }
}

/// `run` on AF_PACKET rings (`[afpacket] interfaces`).
fn run_afpacket(cfg: &Config, out: Vec<export::SinkSpec>, stop: Arc<AtomicBool>) -> Result<capture::RunSummary> {
    let af = &cfg.afpacket;
    let ncpu = capture::pin::available_cores().len().max(1);
    let cores = cfg
        .capture
        .cores
        .clone()
        .unwrap_or_else(|| (0..cfg.capture.workers.unwrap_or(ncpu).max(1)).map(|i| i % ncpu).collect());
    let rc = capture::afpacket::AfPacketRunConfig {
        interfaces: af.interfaces.clone(),
        cores,
        ring: afpacket_sys::RingConfig {
            block_size: af.block_size,
            block_count: af.block_count,
            frame_size: af.frame_size,
            retire_ms: af.block_timeout_ms,
            fanout_group: None,
            promiscuous: af.promiscuous,
        },
        bpf: cfg.capture.bpf.clone(),
        flow: cfg.flow_config(),
        export: cfg.export_config(),
        stats_interval: (cfg.stats.interval_secs > 0).then(|| std::time::Duration::from_secs(cfg.stats.interval_secs)),
        metrics: Some(cfg.metrics.listen.clone().unwrap_or_else(|| "127.0.0.1:9477".into())),
        stats_file: cfg.stats.file.clone(),
        alert_capture: cfg.alert_capture(),
    };
    Ok(capture::afpacket::run_afpacket(&rc, out, stop)?)
}

/// The stop signals: each ends the run with its summary (a second one exits at once).
const STOP_SIGNALS: [(i32, &str); 4] = [
    (signal_hook::consts::SIGINT, "SIGINT"),
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGQUIT, "SIGQUIT"),
    (signal_hook::consts::SIGUSR1, "SIGUSR1"),
];

/// The signals, as Suricata takes them: SIGINT, SIGTERM, SIGQUIT and SIGUSR1 set the stop
/// flag (and say which one did); SIGHUP reopens every output file (after logrotate moved them);
/// SIGUSR2 reloads the rules ([`rules::spawn_reloader`]).
struct Signals {
    stop: Arc<AtomicBool>,
    by: Arc<std::sync::atomic::AtomicUsize>,
}

impl Signals {
    /// The signal that stopped the run (number and name), if one did.
    fn stopped_by(&self) -> Option<(i32, &'static str)> {
        let n = self.by.load(std::sync::atomic::Ordering::Relaxed) as i32;
        STOP_SIGNALS.into_iter().find(|&(s, _)| s == n)
    }
}

fn install_signals() -> Result<Signals> {
    let stop = Arc::new(AtomicBool::new(false));
    let by = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (sig, _) in STOP_SIGNALS {
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
        signal_hook::flag::register_usize(sig, by.clone(), sig as usize)?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    std::thread::Builder::new().name("sw-sighup".into()).spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if hup.swap(false, std::sync::atomic::Ordering::Relaxed) {
            tracing::info!("SIGHUP: reopening the output files");
            export::sink::file::request_reopen();
        }
    })?;
    Ok(Signals { stop, by })
}

#[cfg(not(feature = "dpdk"))]
fn replay_dpdk(
    _: &Config,
    _: usize,
    _: &[usize],
    _: &[PathBuf],
    _: Vec<export::SinkSpec>,
    _: Arc<AtomicBool>,
) -> Result<capture::RunSummary> {
    bail!("this spinewatch was built without DPDK (feature \"dpdk\"); use --source file")
}

#[cfg(not(feature = "dpdk"))]
fn run_dpdk(_: &Config, _: Vec<export::SinkSpec>, _: Arc<AtomicBool>) -> Result<capture::RunSummary> {
    bail!("this spinewatch was built without DPDK (feature \"dpdk\"): `run` needs it, or afpacket.interfaces")
}

#[cfg(feature = "dpdk")]
pub(crate) fn eal_base(cfg: &Config, prefix: &str, memory_mb: u32, hugepages: bool) -> Vec<String> {
    let cores = capture::pin::available_cores();
    let set = if cores.is_empty() {
        "0".to_string()
    } else {
        cores.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
    };
    let mut a = vec![
        "spinewatch".to_string(),
        // The main lcore may float over every core this process may use: workers pin
        // themselves, and the exporter must not share a worker's core by inheritance.
        format!("--lcores=0@({set})"),
        format!("--file-prefix={prefix}"),
        "--log-level=warning".into(),
        "--no-telemetry".into(),
    ];
    if !hugepages {
        a.push("--no-huge".into());
    }
    if memory_mb > 0 {
        a.push("-m".into());
        a.push(memory_mb.to_string());
    }
    a.extend(cfg.dpdk.eal_args.iter().cloned());
    a
}

#[cfg(feature = "dpdk")]
pub(crate) fn dpdk_run_config(
    cfg: &Config,
    eal_args: Vec<String>,
    ports: Vec<capture::dpdk::PortSpec>,
    hw_ts: bool,
) -> capture::dpdk::DpdkRunConfig {
    capture::dpdk::DpdkRunConfig {
        eal_args,
        ports,
        burst_size: cfg.capture.burst_size,
        mempool_size: cfg.capture.mempool_size.value(),
        mempool_cache: cfg.capture.mempool_cache,
        mbuf_data_room: cfg.capture.mbuf_data_room,
        mtu: cfg.capture.mtu.unwrap_or(0),
        flow: cfg.flow_config(),
        export: cfg.export_config(),
        hw_timestamps: hw_ts,
        rewritten_links: false,
        bpf: cfg.capture.bpf.clone(),
        expected_per_worker: None,
        stage: capture::worker::Stage::Full,
        bench: None,
        idle_exit: std::time::Duration::from_secs(5),
        stats_interval: (cfg.stats.interval_secs > 0).then(|| std::time::Duration::from_secs(cfg.stats.interval_secs)),
        metrics: cfg.metrics.listen.clone(),
        stats_file: cfg.stats.file.clone(),
        alert_capture: cfg.alert_capture(),
    }
}

#[cfg(feature = "dpdk")]
fn replay_dpdk(
    cfg: &Config,
    workers: usize,
    cores: &[usize],
    pcaps: &[PathBuf],
    out: Vec<export::SinkSpec>,
    stop: Arc<AtomicBool>,
) -> Result<capture::RunSummary> {
    with_split("replay", pcaps, workers, cfg.flow_config().spread, |split| {
        // Replay needs no hugepages and no PCI: size EAL memory to the pool unless configured.
        let memory = if cfg.dpdk.memory_mb > 0 { cfg.dpdk.memory_mb } else { 512 };
        let mut rc = net_pcap_run_config(cfg, "replay", split, false, memory, workers, cores, None, true)?;
        rc.expected_per_worker = Some(split.packets.clone());
        rc.rewritten_links = split.rewritten;
        rc.export = replay_export(cfg);
        let mut s = capture::dpdk::run_dpdk(&rc, out, stop)?;
        s.source = "dpdk net_pcap".into();
        s.input_notes.extend(split.notes.iter().cloned());
        Ok(s)
    })
}

/// Splits `pcaps` by the symmetric flow hash into one file per worker in a temporary folder,
/// runs `f` on the split, and removes the folder whatever `f` returned.
#[cfg(feature = "dpdk")]
pub(crate) fn with_split<T>(
    what: &str,
    pcaps: &[PathBuf],
    workers: usize,
    spread: detect::hash::Spread,
    f: impl FnOnce(&capture::split::Split) -> Result<T>,
) -> Result<T> {
    let dir = std::env::temp_dir().join(format!("spinewatch-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result =
        capture::split::split_captures(pcaps, workers, spread, &dir).map_err(anyhow::Error::from).and_then(|s| f(&s));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The DPDK run of a `net_pcap` vdev named `net_pcap_{what}0` whose RX queue i reads the split's
/// file i (from memory, forever, with `infinite`), one worker per queue, no PCI, no hugepages.
#[cfg(feature = "dpdk")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn net_pcap_run_config(
    cfg: &Config,
    what: &str,
    split: &capture::split::Split,
    infinite: bool,
    memory_mb: u32,
    workers: usize,
    cores: &[usize],
    rx_descriptors: Option<u16>,
    hw_timestamps: bool,
) -> Result<capture::dpdk::DpdkRunConfig> {
    let name = format!("net_pcap_{what}0");
    let mut vdev = name.clone();
    for f in &split.files {
        let f = f.to_str().context("temporary path is not UTF-8")?;
        if f.contains(',') {
            bail!("temporary path {f} contains a comma, which the vdev syntax cannot carry");
        }
        vdev.push_str(",rx_pcap=");
        vdev.push_str(f);
    }
    if infinite {
        vdev.push_str(",infinite_rx=1");
    }
    let prefix = format!("{}-{what}-{}", cfg.dpdk.file_prefix, std::process::id());
    let mut eal = eal_base(cfg, &prefix, memory_mb, false);
    eal.push("--no-pci".into());
    eal.push(format!("--vdev={vdev}"));
    // Distinct workers need distinct cores in the DPDK runner (a worker is a core): when there
    // are more workers than cores, give each its own "core" slot index anyway.
    let port_cores = dedup_cores((0..workers).map(|i| cores[i % cores.len().max(1)]).collect());
    let spec = capture::dpdk::PortSpec { name, cores: port_cores, rx_descriptors };
    Ok(dpdk_run_config(cfg, eal, vec![spec], hw_timestamps))
}

/// Keeps one worker per queue even when the core list repeats: a repeated core gets the next
/// unused id (the OS still schedules it; pinning to a core that does not exist is logged).
#[cfg(feature = "dpdk")]
pub(crate) fn dedup_cores(mut v: Vec<usize>) -> Vec<usize> {
    for i in 1..v.len() {
        while v[..i].contains(&v[i]) {
            v[i] += 1;
        }
    }
    v
}

#[cfg(feature = "dpdk")]
fn run_dpdk(cfg: &Config, out: Vec<export::SinkSpec>, stop: Arc<AtomicBool>) -> Result<capture::RunSummary> {
    if cfg.capture.ports.is_empty() {
        bail!("capture.ports: no port configured; `run` captures from DPDK ports (or set afpacket.interfaces)");
    }
    if let Some(why) = cfg.dpdk.hugepages.then(config_check::hugepage_problem).flatten() {
        bail!("{why}");
    }
    let memory = cfg.dpdk.memory_mb;
    let mut eal = eal_base(cfg, &cfg.dpdk.file_prefix, memory, cfg.dpdk.hugepages);
    let mut any_pci = false;
    let mut specs = Vec::new();
    for p in &cfg.capture.ports {
        if p.is_vdev() {
            eal.push(format!("--vdev={}", p.device));
        } else {
            any_pci = true;
            eal.push("-a".into());
            eal.push(p.device.clone());
        }
        specs.push(capture::dpdk::PortSpec {
            name: p.port_name().to_string(),
            cores: p.cores.clone(),
            rx_descriptors: p.rx_descriptors.value().map(|v| v.min(u16::MAX as u32) as u16),
        });
    }
    if !any_pci {
        eal.push("--no-pci".into());
    }
    let mut rc = dpdk_run_config(cfg, eal, specs, false);
    // The sensor serves its metrics unless told otherwise (bound to loopback).
    rc.metrics.get_or_insert_with(|| "127.0.0.1:9477".into());
    Ok(capture::dpdk::run_dpdk(&rc, out, stop)?)
}
