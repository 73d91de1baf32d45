//! Live metrics: a Prometheus text endpoint (`GET /metrics`, a thread of its own, bound to
//! 127.0.0.1 unless configured otherwise) and a periodic JSON stats line, both read from the
//! workers' published counters, the ports' counters (refreshed by the runner) and the sinks'.

use crate::counters::SharedStats;
use export::sink::SinkCounters;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A port's counters as the runner last read them.
#[derive(Debug, Default)]
pub struct PortLive {
    pub name: String,
    pub ipackets: AtomicU64,
    pub ibytes: AtomicU64,
    pub imissed: AtomicU64,
    pub ierrors: AtomicU64,
    pub rx_nombuf: AtomicU64,
}

/// Everything the metrics read.
pub struct Live {
    pub workers: SharedStats,
    /// Each worker's core (None: not pinned) and queues.
    pub worker_info: Vec<(Option<usize>, Vec<String>)>,
    /// The counters at the previous stats line, for its rates.
    last: std::sync::Mutex<Option<Snapshot>>,
    /// Flow slots per worker.
    pub flow_capacity: u64,
    pub ports: Vec<Arc<PortLive>>,
    pub sinks: Vec<(String, Arc<SinkCounters>)>,
    /// Batches waiting for the export thread (set by the runner).
    pub export_queue: AtomicU64,
    pub started: Instant,
}

impl Live {
    pub fn new(workers: SharedStats, flow_capacity: u64) -> Live {
        Live {
            workers,
            worker_info: Vec::new(),
            last: std::sync::Mutex::new(None),
            flow_capacity,
            ports: Vec::new(),
            sinks: Vec::new(),
            export_queue: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

/// What the rates of a stats line are taken against: when, and per worker (frames received,
/// queue drops), per port (packets, drops: missed and no mbuf).
#[derive(Debug, Clone)]
struct Snapshot {
    at: Instant,
    workers: Vec<(u64, u64)>,
    ports: Vec<(u64, u64)>,
}

impl Snapshot {
    fn take(l: &Live) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Relaxed);
        Snapshot {
            at: Instant::now(),
            workers: l.workers.iter().map(|w| (g(&w.received), g(&w.queue_drops))).collect(),
            ports: l.ports.iter().map(|p| (g(&p.ipackets), g(&p.imissed) + g(&p.rx_nombuf))).collect(),
        }
    }
}

/// Per second since the previous stats line (since the start for the first): per worker (its
/// queues and core), then per port, (packets/s, drops/s).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    pub workers: Vec<(f64, f64)>,
    pub ports: Vec<(f64, f64)>,
}

impl Rates {
    /// The rates since the previous call (the first: since the start), remembered for the next.
    fn since_last(l: &Live) -> Rates {
        let now = Snapshot::take(l);
        let mut last = l.last.lock().unwrap_or_else(|p| p.into_inner());
        let zero = |n: usize| vec![(0, 0); n];
        let prev = last.take().unwrap_or_else(|| Snapshot {
            at: l.started,
            workers: zero(now.workers.len()),
            ports: zero(now.ports.len()),
        });
        let secs = now.at.duration_since(prev.at).as_secs_f64().max(1e-3);
        let per = |a: &[(u64, u64)], b: &[(u64, u64)]| -> Vec<(f64, f64)> {
            a.iter()
                .zip(b)
                .map(|(n, p)| (n.0.saturating_sub(p.0) as f64 / secs, n.1.saturating_sub(p.1) as f64 / secs))
                .collect()
        };
        let r = Rates { workers: per(&now.workers, &prev.workers), ports: per(&now.ports, &prev.ports) };
        *last = Some(now);
        r
    }
}

/// Label values are names we chose or a device string: escaped as the format wants.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Renders the Prometheus text exposition (format 0.0.4).
pub fn render(l: &Live) -> String {
    let mut o = String::with_capacity(8192);
    let family = |o: &mut String, name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
        let _ = writeln!(o, "# HELP spinewatch_{name} {help}\n# TYPE spinewatch_{name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(o, "spinewatch_{name}{labels} {v}");
        }
    };
    type Getter = fn(&crate::counters::WorkerStats) -> &AtomicU64;
    let worker_metrics: [(&str, &str, &str, Getter); 26] = [
        ("received_packets_total", "counter", "Frames the worker took from its queues.", |w| &w.received),
        ("received_bytes_total", "counter", "Bytes of the frames the worker took.", |w| &w.received_bytes),
        ("packets_total", "counter", "Packets the worker processed.", |w| &w.packets),
        ("bytes_total", "counter", "Bytes of the packets the worker processed.", |w| &w.bytes),
        ("flow_packets_total", "counter", "Packets counted on a flow.", |w| &w.flow_packets),
        ("non_ip_packets_total", "counter", "Packets that are not IP.", |w| &w.non_ip),
        ("fragments_total", "counter", "IP fragments.", |w| &w.fragments),
        ("decode_errors_total", "counter", "Packets that did not decode.", |w| &w.decode_errors),
        ("flows_active", "gauge", "Flows in the worker's table.", |w| &w.flows_active),
        ("flows_created_total", "counter", "Flows created.", |w| &w.flows_created),
        ("flows_evicted_total", "counter", "Flows pushed out of a full table.", |w| &w.flows_evicted),
        ("app_sessions_total", "counter", "App-layer sessions opened.", |w| &w.app_sessions),
        ("app_no_session_total", "counter", "Flows not parsed: the session pool was empty.", |w| &w.app_no_session),
        ("reassembly_bytes", "gauge", "Out-of-order TCP bytes buffered.", |w| &w.reassembly_bytes),
        ("defrag_bytes", "gauge", "IP fragment bytes held for reassembly.", |w| &w.defrag_bytes),
        ("records_total", "counter", "Records (flows, events, alerts) handed to the exporter.", |w| &w.records),
        ("events_total", "counter", "App-layer events and alerts handed to the exporter.", |w| &w.events),
        ("alerts_total", "counter", "Alerts handed to the exporter.", |w| &w.alerts),
        ("records_dropped_total", "counter", "Records dropped: the exporter was behind past the backlog.", |w| {
            &w.records_dropped
        }),
        ("export_channel_full_total", "counter", "Times the export channel was full.", |w| &w.export_channel_full),
        ("export_backlog_peak", "gauge", "Most batches a worker held back at once.", |w| &w.export_backlog_peak),
        ("handoffs_sent_total", "counter", "Reassembled datagrams handed to the worker owning their flow.", |w| {
            &w.handoffs_sent
        }),
        ("handoffs_received_total", "counter", "Datagrams taken from other workers onto a flow.", |w| {
            &w.handoffs_received
        }),
        ("handoffs_dropped_total", "counter", "Datagrams dropped: the ring to their worker was full.", |w| {
            &w.handoffs_dropped
        }),
        ("handoffs_late_total", "counter", "Datagrams taken after a later packet of this worker.", |w| {
            &w.handoffs_late
        }),
        (
            "queue_drops_total",
            "counter",
            "Packets dropped on the worker's queues (where the source counts them per queue).",
            |w| &w.queue_drops,
        ),
    ];
    family(
        &mut o,
        "worker_info",
        "gauge",
        "A worker's core and the queues it reads (always 1).",
        &mut l.worker_info.iter().enumerate().map(|(i, (core, queues))| {
            let core = core.map_or_else(|| "none".to_string(), |c| c.to_string());
            (format!("{{worker=\"{i}\",core=\"{core}\",queues=\"{}\"}}", esc(&queues.join(","))), 1)
        }),
    );
    for (name, kind, help, get) in worker_metrics {
        let mut rows = l.workers.iter().enumerate().map(|(i, w)| (format!("{{worker=\"{i}\"}}"), get(w).load(Relaxed)));
        family(&mut o, name, kind, help, &mut rows);
    }
    family(
        &mut o,
        "flow_capacity",
        "gauge",
        "Flow slots per worker.",
        &mut l.workers.iter().enumerate().map(|(i, _)| (format!("{{worker=\"{i}\"}}"), l.flow_capacity)),
    );
    type PortGetter = fn(&PortLive) -> &AtomicU64;
    let port_metrics: [(&str, &str, PortGetter); 5] = [
        ("port_ipackets_total", "Packets the NIC received.", |p| &p.ipackets),
        ("port_ibytes_total", "Bytes the NIC received.", |p| &p.ibytes),
        ("port_imissed_total", "Packets the NIC dropped: the RX ring was full.", |p| &p.imissed),
        ("port_ierrors_total", "Erroneous packets the NIC received.", |p| &p.ierrors),
        ("port_rx_nombuf_total", "Packets dropped: no mbuf.", |p| &p.rx_nombuf),
    ];
    if !l.ports.is_empty() {
        for (name, help, get) in port_metrics {
            let mut rows = l.ports.iter().map(|p| (format!("{{port=\"{}\"}}", esc(&p.name)), get(p).load(Relaxed)));
            family(&mut o, name, "counter", help, &mut rows);
        }
    }
    family(
        &mut o,
        "export_queue_batches",
        "gauge",
        "Batches waiting for the export thread.",
        &mut std::iter::once((String::new(), l.export_queue.load(Relaxed))),
    );
    type SinkGetter = fn(&SinkCounters) -> &AtomicU64;
    let sink_metrics: [(&str, &str, &str, SinkGetter); 10] = [
        ("sink_records_total", "counter", "Records the sink took.", |c| &c.records),
        ("sink_sent_total", "counter", "Records the sink's peer took.", |c| &c.sent),
        ("sink_sent_bytes_total", "counter", "Bytes the sink's peer took.", |c| &c.bytes),
        ("sink_spooled_total", "counter", "Records written to the sink's spool.", |c| &c.spooled),
        ("sink_replayed_total", "counter", "Records read back from the spool and sent.", |c| &c.replayed),
        ("sink_dropped_total", "counter", "Records dropped: spool full, or no spool.", |c| &c.dropped),
        ("sink_lost_total", "counter", "Records lost to a fatal output error.", |c| &c.lost),
        ("sink_errors_total", "counter", "Send and connect errors.", |c| &c.errors),
        ("sink_queue_bytes", "gauge", "Bytes queued in memory.", |c| &c.queued_bytes),
        ("sink_spool_bytes", "gauge", "Bytes held in the spool.", |c| &c.spool_bytes),
    ];
    if !l.sinks.is_empty() {
        for (name, kind, help, get) in sink_metrics {
            let mut rows = l.sinks.iter().map(|(n, c)| (format!("{{sink=\"{}\"}}", esc(n)), get(c).load(Relaxed)));
            family(&mut o, name, kind, help, &mut rows);
        }
    }
    family(
        &mut o,
        "uptime_seconds",
        "gauge",
        "Seconds since the run started.",
        &mut std::iter::once((String::new(), l.started.elapsed().as_secs())),
    );
    o
}

/// A JSON string (names come from the configuration), written as EVE writes strings.
fn json_str(s: &str) -> String {
    let mut o = Vec::with_capacity(s.len() + 2);
    export::eve::write_str(&mut o, s.as_bytes());
    String::from_utf8_lossy(&o).into_owned()
}

/// One JSON object with the same figures (the periodic stats line), with the rates since the
/// previous one.
pub fn render_json(l: &Live, rates: &Rates) -> String {
    let g = |a: &AtomicU64| a.load(Relaxed);
    let mut o = String::with_capacity(2048);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let _ = write!(
        o,
        "{{\"timestamp\":{:.3},\"uptime\":{},\"workers\":[",
        now.as_secs_f64(),
        l.started.elapsed().as_secs()
    );
    for (i, w) in l.workers.iter().enumerate() {
        let _ = write!(
            o,
            "{}{{\"worker\":{i},\"core\":{},\"queues\":[{}],\"pps\":{:.1},\"drops_per_sec\":{:.1},\"queue_drops\":{},\"received\":{},\"packets\":{},\"bytes\":{},\"decode_errors\":{},\"flows_active\":{},\"flow_capacity\":{},\"flows_evicted\":{},\"reassembly_bytes\":{},\"defrag_bytes\":{},\"records\":{},\"alerts\":{},\"records_dropped\":{}}}",
            if i > 0 { "," } else { "" },
            l.worker_info.get(i).and_then(|x| x.0).map_or_else(|| "null".to_string(), |c| c.to_string()),
            l.worker_info.get(i).map_or_else(String::new, |x| x.1.iter().map(|q| json_str(q)).collect::<Vec<_>>().join(",")),
            rates.workers.get(i).map_or(0.0, |r| r.0),
            rates.workers.get(i).map_or(0.0, |r| r.1),
            g(&w.queue_drops),
            g(&w.received),
            g(&w.packets),
            g(&w.bytes),
            g(&w.decode_errors),
            g(&w.flows_active),
            l.flow_capacity,
            g(&w.flows_evicted),
            g(&w.reassembly_bytes),
            g(&w.defrag_bytes),
            g(&w.records),
            g(&w.alerts),
            g(&w.records_dropped)
        );
    }
    o.push_str("],\"ports\":[");
    for (i, p) in l.ports.iter().enumerate() {
        let _ = write!(
            o,
            "{}{{\"port\":{},\"pps\":{:.1},\"drops_per_sec\":{:.1},\"ipackets\":{},\"imissed\":{},\"ierrors\":{},\"rx_nombuf\":{}}}",
            if i > 0 { "," } else { "" },
            json_str(&p.name),
            rates.ports.get(i).map_or(0.0, |r| r.0),
            rates.ports.get(i).map_or(0.0, |r| r.1),
            g(&p.ipackets),
            g(&p.imissed),
            g(&p.ierrors),
            g(&p.rx_nombuf)
        );
    }
    let _ = write!(o, "],\"export_queue\":{},\"sinks\":[", g(&l.export_queue));
    for (i, (n, c)) in l.sinks.iter().enumerate() {
        let _ = write!(
            o,
            "{}{{\"sink\":{},\"records\":{},\"sent\":{},\"spooled\":{},\"replayed\":{},\"dropped\":{},\"lost\":{},\"errors\":{},\"queue_bytes\":{},\"spool_bytes\":{}}}",
            if i > 0 { "," } else { "" },
            json_str(n),
            g(&c.records),
            g(&c.sent),
            g(&c.spooled),
            g(&c.replayed),
            g(&c.dropped),
            g(&c.lost),
            g(&c.errors),
            g(&c.queued_bytes),
            g(&c.spool_bytes)
        );
    }
    o.push_str("]}");
    o
}

/// The stats file of a live run, opened for appending (None: no file); the error names it.
pub fn open_stats_file(path: Option<&std::path::Path>) -> std::io::Result<Option<std::fs::File>> {
    path.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| std::io::Error::new(e.kind(), format!("stats file {}: {e}", p.display())))
    })
    .transpose()
}

/// The periodic report of a live run: the stats log lines (workers, then each sink) and, when
/// `file` is open, the JSON object appended to it.
pub fn report(live: &Live, file: Option<&mut std::fs::File>) {
    let rates = Rates::since_last(live);
    if let Some(f) = file {
        if let Err(e) = writeln!(f, "{}", render_json(live, &rates)) {
            tracing::error!("stats file: {e}");
        }
    }
    let g = |a: &AtomicU64| a.load(Relaxed);
    let p: u64 = live.workers.iter().map(|w| g(&w.packets)).sum();
    let f: u64 = live.workers.iter().map(|w| g(&w.flows_active)).sum();
    let r: u64 = live.workers.iter().map(|w| g(&w.records)).sum();
    // Per worker: its core and queues, packets/s and drops/s on them; then per port.
    let mut per = String::new();
    for (i, (pps, dps)) in rates.workers.iter().enumerate() {
        let (core, queues) = live.worker_info.get(i).map_or((None, &[][..]), |x| (x.0, &x.1[..]));
        let core = core.map_or_else(|| "-".to_string(), |c| c.to_string());
        let _ = write!(
            per,
            "{}w{i}@core{core}[{}] {pps:.0} pps {dps:.0} drops/s",
            if i > 0 { "; " } else { "" },
            queues.join(",")
        );
    }
    for (pl, (pps, dps)) in live.ports.iter().zip(&rates.ports) {
        let _ = write!(per, "; port {} {pps:.0} pps {dps:.0} drops/s", pl.name);
    }
    tracing::info!(packets = p, flows_active = f, records = r, rates = %per, "stats");
    for (name, c) in &live.sinks {
        tracing::info!(
            sink = %name,
            records = g(&c.records),
            sent = g(&c.sent),
            spooled = g(&c.spooled),
            replayed = g(&c.replayed),
            dropped = g(&c.dropped),
            lost = g(&c.lost),
            errors = g(&c.errors),
            "sink stats"
        );
    }
}

/// The endpoint's thread: answers `GET /metrics` (anything else: 404) until `done`.
pub struct Server {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: std::net::SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.done.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// [`serve`] when `listen` is set and not empty; a failure is logged and the run goes on
/// without the endpoint (a sensor keeps capturing if its metrics port is taken).
pub fn serve_if(listen: Option<&str>, live: &Arc<Live>) -> Option<Server> {
    let a = listen.filter(|a| !a.is_empty())?;
    match serve(a, live.clone()) {
        Ok(s) => {
            tracing::info!(addr = %s.addr, "metrics at http://{}/metrics", s.addr);
            Some(s)
        }
        Err(e) => {
            tracing::error!("metrics: cannot listen on {a}: {e}; running without the endpoint");
            None
        }
    }
}

/// Binds `listen` and serves `live`.
pub fn serve(listen: &str, live: Arc<Live>) -> io::Result<Server> {
    let l = TcpListener::bind(listen)?;
    l.set_nonblocking(true)?;
    let addr = l.local_addr()?;
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let thread = std::thread::Builder::new().name("sw-metrics".into()).spawn(move || {
        while !d2.load(Relaxed) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                    let mut req = [0u8; 2048];
                    let n = s.read(&mut req).unwrap_or(0);
                    let line = String::from_utf8_lossy(&req[..n]);
                    let path = line.split_whitespace().nth(1).unwrap_or("");
                    let (status, body) = match path {
                        "/metrics" => ("200 OK", render(&live)),
                        _ => ("404 Not Found", "try /metrics\n".to_string()),
                    };
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })?;
    Ok(Server { done, thread: Some(thread), addr })
}
