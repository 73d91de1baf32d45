//! The `spinewatch` binary: CLI, config loading and wiring of capture → detect → export.

mod config;

use anyhow::{bail, Context, Result};
use capture::file::FileRunConfig;
use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// Every case the flow table must get right (handshakes, RST, half-open, UDP, ICMP, IPv6,
    /// VLAN, QinQ, timeouts, malformed frames).
    Mixed,
    /// Many interleaved TCP/UDP flows, for benchmarks.
    Flows,
}

#[derive(Clone, Copy, ValueEnum)]
enum Size {
    Small,
    Imix,
    Large,
}

#[derive(Subcommand)]
enum Cmd {
    /// The sensor: capture from the configured DPDK ports until SIGINT/SIGTERM.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Write EVE here instead of the config's export.eve ("-" for stdout).
        #[arg(long)]
        eve: Option<String>,
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
        /// Write EVE here instead of stdout ("-" for stdout). Appends; never truncates.
        #[arg(long)]
        eve: Option<String>,
        #[arg(required = true)]
        pcaps: Vec<PathBuf>,
    },
    /// Load and validate a config file; print every problem with its key path.
    CheckConfig { file: PathBuf },
    /// Write a deterministic capture (for tests, benchmarks and the demo).
    Gen {
        #[arg(long, value_enum, default_value = "mixed")]
        scenario: Scenario,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Flows (scenario "flows").
        #[arg(long, default_value_t = 10_000)]
        flows: u32,
        /// Packets per flow (scenario "flows").
        #[arg(long, default_value_t = 20)]
        packets_per_flow: u32,
        #[arg(long, value_enum, default_value = "small")]
        size: Size,
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
        Cmd::CheckConfig { file } => {
            let cfg = Config::load(&file)?;
            println!(
                "{}: ok ({} port(s), flow capacity {} per worker)",
                file.display(),
                cfg.capture.ports.len(),
                cfg.flow.capacity
            );
            Ok(0)
        }
        Cmd::Gen { scenario, out, seed, flows, packets_per_flow, size } => {
            let pkts = match scenario {
                Scenario::Mixed => pcapgen::mixed(),
                Scenario::Flows => {
                    let mix = match size {
                        Size::Small => pcapgen::SizeMix::Small,
                        Size::Imix => pcapgen::SizeMix::Imix,
                        Size::Large => pcapgen::SizeMix::Large,
                    };
                    pcapgen::many_flows(seed, flows, packets_per_flow, mix)
                }
            };
            let mut w = capture::pcap::PcapWriter::create(&out).with_context(|| format!("{}", out.display()))?;
            for (ts, f) in &pkts {
                w.write(*ts, f, f.len() as u32)?;
            }
            w.finish()?;
            eprintln!("wrote {} packets to {}", pkts.len(), out.display());
            Ok(0)
        }
        Cmd::Replay { config, workers, source, eve, pcaps } => {
            let cfg = match &config {
                Some(p) => Config::load(p)?,
                None => Config::default(),
            };
            let ncpu = capture::pin::available_cores().len().max(1);
            let workers = workers.or(cfg.capture.workers).unwrap_or(ncpu).max(1);
            let eve = eve.unwrap_or_else(|| if config.is_some() { cfg.export.eve.clone() } else { "-".into() });
            let out = open_eve(&eve)?;
            let stop = install_signals()?;
            let source = source.unwrap_or(if cfg!(feature = "dpdk") { Source::Dpdk } else { Source::File });
            let cores = cfg.capture.cores.clone().unwrap_or_else(|| (0..workers).map(|i| i % ncpu).collect());
            let summary = match source {
                Source::File => {
                    let fc = FileRunConfig { workers, cores, flow: cfg.flow_config(), export: cfg.export_config() };
                    capture::file::run_files(&pcaps, &fc, out, stop)?
                }
                Source::Dpdk => replay_dpdk(&cfg, workers, &cores, &pcaps, out, stop)?,
            };
            Ok(finish(&summary))
        }
        Cmd::Run { config, eve } => {
            let cfg = Config::load(&config)?;
            let eve = eve.unwrap_or_else(|| cfg.export.eve.clone());
            let out = open_eve(&eve)?;
            let stop = install_signals()?;
            let summary = run_dpdk(&cfg, out, stop)?;
            Ok(finish(&summary))
        }
    }
}

/// Prints the summary; the exit status is 0 unless records were lost to an output error.
fn finish(summary: &capture::RunSummary) -> i32 {
    eprint!("{}", summary.render());
    match &summary.export_error {
        Some(e) => {
            eprintln!("error: EVE output failed ({e}); {} records not written", summary.exporter.lost);
            2
        }
        None => 0,
    }
}

fn open_eve(spec: &str) -> Result<Box<dyn Write + Send>> {
    if spec == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let p = Path::new(spec);
    if let Some(dir) = p.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .with_context(|| format!("opening EVE output {spec}"))?;
    Ok(Box::new(f))
}

/// SIGINT/SIGTERM set the stop flag; a second one exits at once.
fn install_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

#[cfg(not(feature = "dpdk"))]
fn replay_dpdk(
    _: &Config,
    _: usize,
    _: &[usize],
    _: &[PathBuf],
    _: Box<dyn Write + Send>,
    _: Arc<AtomicBool>,
) -> Result<capture::RunSummary> {
    bail!("this spinewatch was built without DPDK (feature \"dpdk\"); use --source file")
}

#[cfg(not(feature = "dpdk"))]
fn run_dpdk(_: &Config, _: Box<dyn Write + Send>, _: Arc<AtomicBool>) -> Result<capture::RunSummary> {
    bail!("this spinewatch was built without DPDK (feature \"dpdk\"): `run` needs it")
}

#[cfg(feature = "dpdk")]
fn eal_base(cfg: &Config, prefix: &str, memory_mb: u32, hugepages: bool) -> Vec<String> {
    let ncpu = capture::pin::available_cores().len().max(1);
    let mut a = vec![
        "spinewatch".to_string(),
        // The main lcore may float over every core: workers pin themselves, and the exporter
        // must not share a worker's core by inheritance.
        format!("--lcores=0@(0-{})", ncpu - 1),
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
fn dpdk_run_config(
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
        flow: cfg.flow_config(),
        export: cfg.export_config(),
        hw_timestamps: hw_ts,
        expected_per_worker: None,
        idle_exit: std::time::Duration::from_secs(5),
        stats_interval: (cfg.stats.interval_secs > 0).then(|| std::time::Duration::from_secs(cfg.stats.interval_secs)),
    }
}

#[cfg(feature = "dpdk")]
fn replay_dpdk(
    cfg: &Config,
    workers: usize,
    cores: &[usize],
    pcaps: &[PathBuf],
    out: Box<dyn Write + Send>,
    stop: Arc<AtomicBool>,
) -> Result<capture::RunSummary> {
    let dir = std::env::temp_dir().join(format!("spinewatch-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = (|| {
        let split = capture::split::split_captures(pcaps, workers, &dir)?;
        let mut vdev = "net_pcap_replay0".to_string();
        for f in &split.files {
            let f = f.to_str().context("temporary path is not UTF-8")?;
            if f.contains(',') {
                bail!("temporary path {f} contains a comma, which the vdev syntax cannot carry");
            }
            vdev.push_str(",rx_pcap=");
            vdev.push_str(f);
        }
        // Replay needs no hugepages and no PCI: size EAL memory to the pool unless configured.
        let memory = if cfg.dpdk.memory_mb > 0 { cfg.dpdk.memory_mb } else { 512 };
        let prefix = format!("{}-{}", cfg.dpdk.file_prefix, std::process::id());
        let mut eal = eal_base(cfg, &prefix, memory, false);
        eal.push("--no-pci".into());
        eal.push(format!("--vdev={vdev}"));
        let port_cores: Vec<usize> = (0..workers).map(|i| cores[i % cores.len().max(1)]).collect();
        // Distinct workers need distinct cores in the DPDK runner (a worker is a core): when
        // there are more workers than cores, give each its own "core" slot index anyway.
        let port_cores = dedup_cores(port_cores);
        let spec = capture::dpdk::PortSpec { name: "net_pcap_replay0".into(), cores: port_cores, rx_descriptors: None };
        let mut rc = dpdk_run_config(cfg, eal, vec![spec], true);
        rc.expected_per_worker = Some(split.packets.clone());
        let mut s = capture::dpdk::run_dpdk(&rc, out, stop)?;
        s.source = "dpdk net_pcap".into();
        Ok(s)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Keeps one worker per queue even when the core list repeats: a repeated core gets the next
/// unused id (the OS still schedules it; pinning to a core that does not exist is logged).
#[cfg(feature = "dpdk")]
fn dedup_cores(mut v: Vec<usize>) -> Vec<usize> {
    for i in 1..v.len() {
        while v[..i].contains(&v[i]) {
            v[i] += 1;
        }
    }
    v
}

#[cfg(feature = "dpdk")]
fn run_dpdk(cfg: &Config, out: Box<dyn Write + Send>, stop: Arc<AtomicBool>) -> Result<capture::RunSummary> {
    if cfg.capture.ports.is_empty() {
        bail!("capture.ports: no port configured; `run` captures from DPDK ports");
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
    let rc = dpdk_run_config(cfg, eal, specs, false);
    Ok(capture::dpdk::run_dpdk(&rc, out, stop)?)
}
