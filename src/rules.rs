//! Rule files to a rule set: the configuration's files and `--rules` ones, the classification
//! file, the variables; and `spinewatch check-rules`'s report.

use crate::config::Config;
use anyhow::{Context, Result};
use detect::rules::{parse_classifications, Loader, RuleSet, DEFAULT_CLASSIFICATION};
use std::path::{Path, PathBuf};

/// Loads the config's rule files, then `extra`. An unreadable file is an error naming it; a
/// bad rule is only counted.
pub fn load(cfg: &Config, config_path: Option<&Path>, extra: &[PathBuf]) -> Result<Loader> {
    let text = match &cfg.rules.classification_file {
        Some(p) => std::fs::read_to_string(p).with_context(|| {
            let from =
                config_path.map(|c| format!(" (rules.classification_file in {})", c.display())).unwrap_or_default();
            format!("{}{from}", p.display())
        })?,
        None => DEFAULT_CLASSIFICATION.to_string(),
    };
    let (classes, bad) = parse_classifications(&text);
    if let (Some(p), Some(line)) = (&cfg.rules.classification_file, bad.first()) {
        anyhow::bail!("{}:{line}: not a \"config classification: name,description,priority\" line", p.display());
    }
    let vars = cfg.rules.vars();
    let mut l = Loader::default();
    for f in rule_files(cfg.rules.files.iter().chain(extra))? {
        let bytes = std::fs::read(&f).with_context(|| format!("rule file {}", f.display()))?;
        l.add_bytes(&bytes, &f.display().to_string(), &vars, &classes);
    }
    if let Some(p) = &cfg.rules.threshold_file {
        let from = config_path.map(|c| format!(" (rules.threshold_file in {})", c.display())).unwrap_or_default();
        let text = std::fs::read_to_string(p).with_context(|| format!("{}{from}", p.display()))?;
        let t = detect::rules::threshold::parse_config(&text, &vars)
            .map_err(|(line, why)| anyhow::anyhow!("{}:{line}: {why}{from}", p.display()))?;
        for (line, why) in &t.skipped {
            tracing::warn!("{}:{line}: skipped: {why}", p.display());
        }
        let n = detect::rules::threshold::apply_config(&mut l.rules, &t);
        tracing::info!(entries = t.entries.len(), rules = n, skipped = t.skipped.len(), "threshold file applied");
    }
    Ok(l)
}

/// The rule files named: a directory stands for its `*.rules` files, in name order (as
/// suricata-update's output directory is given); a directory without any is an error.
fn rule_files<'a>(named: impl Iterator<Item = &'a PathBuf>) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in named {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("rule directory {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "rules") && f.is_file())
            .collect();
        if in_dir.is_empty() {
            anyhow::bail!("rule directory {}: no *.rules file in it", p.display());
        }
        in_dir.sort();
        out.extend(in_dir);
    }
    Ok(out)
}

/// Loads and compiles the rules for a run (`[rules] files` and `--rules`) into `cfg`; logs
/// what loaded and what was rejected. Nothing to load: detection stays off.
pub fn build(cfg: &Config, config_path: Option<&Path>, extra: &[PathBuf], iocs: &[PathBuf]) -> Result<Option<RuleSet>> {
    let ioc_files: Vec<&PathBuf> = cfg.ioc.files.iter().chain(iocs).collect();
    let behave = cfg.behaviour.config();
    if cfg.rules.files.is_empty() && extra.is_empty() && ioc_files.is_empty() && !behave.enabled {
        return Ok(None);
    }
    let mut set = detect::rules::ioc::IocSet::default();
    let mut rep = detect::rules::ioc::IocReport::default();
    for f in &ioc_files {
        let text = std::fs::read_to_string(f).with_context(|| format!("indicator file {}", f.display()))?;
        set.add_text(&text, &f.display().to_string(), &mut rep);
    }
    set.build();
    for (src, line, why) in rep.rejected.iter().take(5) {
        tracing::warn!("{src}:{line}: {why}");
    }
    if !ioc_files.is_empty() {
        tracing::info!(
            files = ioc_files.len(),
            loaded = rep.loaded,
            rejected = rep.rejected.len(),
            "indicators loaded"
        );
    }
    let scanner = scanner(&cfg.rules.prefilter)?;
    if cfg.rules.files.is_empty() && extra.is_empty() {
        return Ok(Some(RuleSet::full(Vec::new(), set, behave, &cfg.rules.vars(), scanner.as_deref())));
    }
    let l = load(cfg, config_path, extra)?;
    let r = &l.report;
    let top: Vec<String> = r.reasons_by_count().iter().take(3).map(|(k, n)| format!("{k} ({n})")).collect();
    tracing::info!(
        files = r.files,
        loaded = r.loaded,
        rejected = r.rejected,
        "rules loaded{}",
        if top.is_empty() {
            String::new()
        } else {
            format!("; rejected mostly: {} (spinewatch check-rules --verbose lists them)", top.join(", "))
        }
    );
    if r.loaded == 0 {
        anyhow::bail!("no rule loaded from {} file(s): nothing to detect with", r.files);
    }
    let set = RuleSet::full(l.rules, set, behave, &cfg.rules.vars(), scanner.as_deref());
    tracing::info!(prefilter = set.scanner, "rules compiled");
    Ok(Some(set))
}

/// The prefilter the config asks for: Hyperscan (through the FFI crate, when this build links
/// libhs) or None for the built-in Aho-Corasick.
fn scanner(choice: &str) -> Result<Option<Box<detect::rules::engine::ScannerFactory>>> {
    if choice != "aho-corasick" && hyperscan_sys::AVAILABLE {
        return Ok(Some(Box::new(|pats: &[Vec<u8>]| {
            let refs: Vec<&[u8]> = pats.iter().map(Vec::as_slice).collect();
            match hyperscan_sys::HsDatabase::literals(&refs, true) {
                Ok(db) => Some(Box::new(Hs(db)) as Box<dyn detect::rules::engine::LiteralScanner>),
                Err(e) => {
                    tracing::warn!("Hyperscan could not compile a prefilter ({e}); Aho-Corasick for it");
                    None
                }
            }
        })));
    }
    if choice == "hyperscan" {
        anyhow::bail!("rules.prefilter = \"hyperscan\": this build has no Hyperscan (apt-get install libhyperscan-dev, then build again)");
    }
    Ok(None)
}

/// Hyperscan as the rules' literal scanner.
#[derive(Debug)]
struct Hs(hyperscan_sys::HsDatabase);

impl detect::rules::engine::LiteralScanner for Hs {
    fn new_scratch(&self) -> Option<detect::rules::engine::Scratch> {
        hyperscan_sys::HsScratch::new(&self.0).ok().map(|s| detect::rules::engine::Scratch(Box::new(s)))
    }
    fn scan(&self, scratch: &mut detect::rules::engine::Scratch, data: &[u8], hit: &mut dyn FnMut(u32)) {
        if let Some(s) = scratch.0.downcast_mut::<hyperscan_sys::HsScratch>() {
            self.0.scan(s, data, hit);
        }
    }
}

/// [`build`] into `cfg` for a run: the workers' rules slot (a reload replaces its set).
pub fn compile_into(cfg: &mut Config, config_path: Option<&Path>, extra: &[PathBuf], iocs: &[PathBuf]) -> Result<()> {
    if let Some(set) = build(cfg, config_path, extra, iocs)? {
        cfg.compiled_rules = detect::flow::SharedRules::new(set);
    }
    Ok(())
}

/// On SIGUSR2 (Suricata's rule-reload signal), reads the rule and indicator files again and hands the new set to the workers
/// (each takes it at its next burst; flows keep their state). A set that fails to load leaves
/// the running one in place. Stops when `done` is set. Nothing to do when the run has no rules.
pub fn spawn_reloader(
    cfg: &Config,
    config_path: Option<PathBuf>,
    extra: Vec<PathBuf>,
    iocs: Vec<PathBuf>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(slot) = cfg.compiled_rules.0.clone() else { return Ok(None) };
    let usr2 = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, usr2.clone())?;
    let cfg = cfg.clone();
    let t = std::thread::Builder::new().name("sw-reload".into()).spawn(move || {
        while !done.load(Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if !usr2.swap(false, Relaxed) {
                continue;
            }
            match build(&cfg, config_path.as_deref(), &extra, &iocs) {
                Ok(Some(set)) => {
                    let n = set.len();
                    slot.replace(std::sync::Arc::new(set));
                    tracing::info!(rules = n, "rules reloaded (SIGUSR2): the workers take them at their next burst");
                }
                Ok(None) => tracing::warn!("SIGUSR2: no rule or indicator file to reload"),
                Err(e) => tracing::error!("SIGUSR2: reload failed, the running rules stay: {e:#}"),
            }
        }
    })?;
    Ok(Some(t))
}

/// `spinewatch check-rules`: the load report, as text or JSON.
pub fn check(cfg: &Config, config_path: Option<&Path>, files: &[PathBuf], json: bool, verbose: bool) -> Result<i32> {
    let l = load(cfg, config_path, files)?;
    let r = &l.report;
    if json {
        let reasons: serde_json::Map<String, serde_json::Value> =
            r.reasons.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
        let out = serde_json::json!({"loaded": r.loaded, "rejected": r.rejected, "reasons": reasons});
        println!("{out}");
    } else {
        let total = r.loaded + r.rejected;
        let pct = if total == 0 { 0.0 } else { 100.0 * r.loaded as f64 / total as f64 };
        println!("{} rule file(s): {} rules loaded, {} rejected ({pct:.1}% loaded)", r.files, r.loaded, r.rejected);
        if !r.reasons.is_empty() {
            println!("rejected, by reason:");
            for (k, n) in r.reasons_by_count() {
                println!("  {n:>6}  {k}");
            }
        }
        if verbose {
            for f in &r.failures {
                println!("{}:{}: {}", f.source, f.line, f.reject);
            }
        }
    }
    Ok(if r.loaded == 0 && r.rejected > 0 { 1 } else { 0 })
}
