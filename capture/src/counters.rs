//! Per-worker counters: written by their worker once per burst, read by anyone.

use crossbeam_utils::CachePadded;
use detect::EngineCounters;
use export::{BatcherStats, ExportStats};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// One worker's live counters. Single writer (its worker, with plain stores), many readers.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub decode_errors: AtomicU64,
    pub flows_active: AtomicU64,
    pub flows_created: AtomicU64,
    pub flows_evicted: AtomicU64,
    pub records: AtomicU64,
    pub records_dropped: AtomicU64,
    pub bursts: AtomicU64,
    /// Frames taken from the source, and their bytes (every stage counts these).
    pub received: AtomicU64,
    pub received_bytes: AtomicU64,
    /// Packets on flows, not IP, fragments.
    pub flow_packets: AtomicU64,
    pub non_ip: AtomicU64,
    pub fragments: AtomicU64,
    /// App-layer sessions opened, and flows refused one (pool empty).
    pub app_sessions: AtomicU64,
    pub app_no_session: AtomicU64,
    /// Out-of-order bytes buffered for reassembly now, and fragment bytes held for
    /// defragmentation now.
    pub reassembly_bytes: AtomicU64,
    pub defrag_bytes: AtomicU64,
    /// App-layer events and alerts handed to the exporter.
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    /// Times the export channel was full, and the largest backlog (batches).
    pub export_channel_full: AtomicU64,
    pub export_backlog_peak: AtomicU64,
    /// Reassembled datagrams handed to the worker owning their flow, taken from other workers,
    /// dropped because the ring was full, and taken after a later packet (order not kept).
    pub handoffs_sent: AtomicU64,
    pub handoffs_received: AtomicU64,
    pub handoffs_dropped: AtomicU64,
    pub handoffs_late: AtomicU64,
    /// Packets dropped on this worker's queues before it took them, where the source counts
    /// them per queue (DPDK's per-queue counters, the AF_PACKET socket's drops); written by the
    /// source's stats reader, not the worker.
    pub queue_drops: AtomicU64,
}

pub type SharedStats = Arc<[CachePadded<WorkerStats>]>;

pub fn shared_stats(workers: usize) -> SharedStats {
    (0..workers).map(|_| CachePadded::new(WorkerStats::default())).collect::<Vec<_>>().into()
}

impl WorkerStats {
    #[inline]
    pub fn publish(&self, c: &EngineCounters, f: &detect::flow::FlowCounters, b: &BatcherStats, g: [u64; 4]) {
        self.packets.store(c.packets, Relaxed);
        self.bytes.store(c.bytes, Relaxed);
        self.decode_errors.store(c.decode_errors_total(), Relaxed);
        self.flows_active.store(f.active, Relaxed);
        self.flows_created.store(f.created, Relaxed);
        self.flows_evicted.store(f.evicted, Relaxed);
        self.records.store(b.records, Relaxed);
        self.records_dropped.store(b.dropped, Relaxed);
        self.flow_packets.store(c.flow_packets, Relaxed);
        self.non_ip.store(c.non_ip, Relaxed);
        self.fragments.store(c.fragments, Relaxed);
        self.app_sessions.store(g[0], Relaxed);
        self.app_no_session.store(g[1], Relaxed);
        self.reassembly_bytes.store(g[2], Relaxed);
        self.defrag_bytes.store(g[3], Relaxed);
        self.events.store(b.events, Relaxed);
        self.alerts.store(b.alerts, Relaxed);
        self.export_channel_full.store(b.channel_full, Relaxed);
        self.export_backlog_peak.store(b.backlog_peak, Relaxed);
    }

    /// The hand-off counters (see [`detect::shard`]), once per burst.
    #[inline]
    pub fn publish_shard(&self, h: &detect::shard::ShardCounters) {
        self.handoffs_sent.store(h.sent, Relaxed);
        self.handoffs_received.store(h.received, Relaxed);
        self.handoffs_dropped.store(h.ring_full, Relaxed);
        self.handoffs_late.store(h.late, Relaxed);
    }
}

/// What one worker did, at the end.
#[derive(Debug, Clone, Default)]
pub struct WorkerSummary {
    pub id: usize,
    pub core: Option<usize>,
    pub engine: EngineCounters,
    pub export: BatcherStats,
    /// Packets the worker took from its source (RX bursts or file batches).
    pub received: u64,
    pub bursts: u64,
    /// Flow-table slots of this worker.
    pub flow_capacity: u64,
    /// Records the `flow` bench stage counted and dropped on purpose.
    pub discarded_records: u64,
    /// Packets `--bpf` refused (received, not processed).
    pub filtered: u64,
}

/// Per-port NIC counters at the end of a DPDK run.
#[derive(Debug, Clone, Default)]
pub struct PortSummary {
    pub name: String,
    pub ipackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub rx_nombuf: u64,
}

/// What a whole run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub source: String,
    pub workers: Vec<WorkerSummary>,
    pub ports: Vec<PortSummary>,
    pub exporter: ExportStats,
    /// The output error that made the exporter lose records, if any.
    pub export_error: Option<String>,
    /// Seconds from the first packet received to the last one processed.
    pub elapsed_secs: f64,
    /// Packets the source read (file) or the NIC reported (DPDK).
    pub input_packets: u64,
    /// Triggered packet capture, when it was on.
    pub alert_capture: Option<crate::alertpcap::AlertCaptureStats>,
    /// The signal that ended a run before the end of its input (a replay), if one did.
    pub interrupted: Option<String>,
    /// What the input said about itself: captures cut short (their whole packets were read),
    /// each finished file of a watched folder.
    pub input_notes: Vec<String>,
}

impl RunSummary {
    pub fn total(&self) -> EngineCounters {
        let mut t = EngineCounters::default();
        for w in &self.workers {
            t.add(&w.engine);
        }
        t
    }

    /// Packets `--bpf` refused, every worker.
    pub fn filtered(&self) -> u64 {
        self.workers.iter().map(|w| w.filtered).sum()
    }

    pub fn export_total(&self) -> BatcherStats {
        let mut t = BatcherStats::default();
        for w in &self.workers {
            t.records += w.export.records;
            t.events += w.export.events;
            t.alerts += w.export.alerts;
            t.sent += w.export.sent;
            t.dropped += w.export.dropped;
            t.candidates += w.export.candidates;
            t.candidates_dropped += w.export.candidates_dropped;
            t.channel_full += w.export.channel_full;
            t.backlog_peak = t.backlog_peak.max(w.export.backlog_peak);
        }
        t
    }

    /// Every packet the source delivered was processed and lands in exactly one bucket, and
    /// every record was either exported or counted as dropped.
    /// Packets the NIC counted as received that no worker took from the RX rings before the
    /// ports stopped.
    pub fn left_in_rings(&self) -> u64 {
        self.input_packets.saturating_sub(self.total().packets + self.filtered())
    }

    /// Records that were made and did not reach every sink they were for: batches dropped by
    /// the workers (the exporter behind), and records each sink dropped or lost.
    pub fn records_lost(&self) -> u64 {
        self.export_total().dropped + self.exporter.sinks.iter().map(|s| s.dropped + s.lost).sum::<u64>()
    }

    pub fn balanced(&self) -> bool {
        let t = self.total();
        let e = self.export_total();
        t.balanced()
            && self.input_packets == t.packets + self.filtered() + self.left_in_rings()
            && self.input_packets >= t.packets + self.filtered()
            && e.records == self.exporter.records + e.dropped
            // Every thresholded match was decided, or lost with a dropped batch.
            && e.candidates == self.exporter.thresholds.candidates + e.candidates_dropped
            // Every datagram handed over reached its worker.
            && t.shard.sent == t.shard.received
            && self.exporter.sinks.iter().all(|s| s.balanced())
    }

    /// A human summary, one counter per line, for stderr.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let t = self.total();
        let e = self.export_total();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "spinewatch summary ({}, {} worker{})",
            self.source,
            self.workers.len(),
            if self.workers.len() == 1 { "" } else { "s" }
        );
        let _ = writeln!(s, "  input packets        {}", self.input_packets);
        for p in &self.ports {
            let _ = writeln!(
                s,
                "  port {:<15} ipackets {} imissed {} ierrors {} rx_nombuf {}",
                p.name, p.ipackets, p.imissed, p.ierrors, p.rx_nombuf
            );
        }
        if !self.ports.is_empty() {
            let _ = writeln!(s, "  left in RX rings     {}", self.left_in_rings());
        }
        if self.filtered() > 0 {
            let _ = writeln!(s, "  filtered out (bpf)   {}", self.filtered());
        }
        let _ = writeln!(s, "  packets processed    {} ({} bytes)", t.packets, t.bytes);
        let _ = writeln!(s, "    on flows           {}", t.flow_packets);
        let _ = writeln!(s, "    not IP             {}", t.non_ip);
        let _ = writeln!(s, "    fragments          {}", t.fragments);
        let _ = writeln!(s, "    decode errors      {}", t.decode_errors_total());
        for k in detect::DecodeErrorKind::ALL {
            for l in detect::Layer::ALL {
                let n = t.decode_errors[k as usize][l as usize];
                if n > 0 {
                    let _ = writeln!(s, "      {}.{:<20} {}", l.name(), k.name(), n);
                }
            }
        }
        let df = &t.defrag;
        if df.fragments > 0 {
            let _ = writeln!(
                s,
                "  defrag               {} datagrams from {} fragments (overlaps {}, differing {}, tiny {}, timed out {}, evicted {}, invalid {}, undecodable {}, pending {})",
                df.reassembled,
                df.fragments,
                df.overlaps,
                df.overlap_mismatch,
                df.tiny,
                df.timeouts,
                df.evicted,
                df.invalid,
                df.decode_errors,
                df.pending
            );
        }
        let h = &t.shard;
        if h.sent + h.ring_full + h.received > 0 {
            let _ = writeln!(
                s,
                "  hand-offs            {} datagrams to their flow's worker, {} taken (late {}), {} dropped: ring full",
                h.sent, h.received, h.late, h.ring_full
            );
        }
        let _ = writeln!(s, "  flows created        {}", t.flows.created);
        let _ = writeln!(
            s,
            "  records              {} (flows {}: timeout {}, shutdown {}, evicted {}, interim {}; app events {}; alerts {})",
            e.records,
            e.records - e.events,
            t.flows.timed_out,
            t.flows.shutdown,
            t.flows.evicted,
            t.flows.interim,
            e.events - e.alerts,
            e.alerts
        );
        if t.rules > 0 || t.detect.alerts > 0 {
            let m = &t.detect;
            let th = &self.exporter.thresholds;
            let _ = writeln!(
                s,
                "  detection            {} rules: alerts {} (matches {}, indicator matches {}, behavioural {}, thresholded {}, suppressed by threshold.config {}, candidates verified {}, step limit {}, reloads taken {})",
                t.rules, m.alerts + th.alerts, m.matches, m.ioc_matches, m.behaviour, th.alerts, m.suppressed, m.candidates, m.step_limit, t.rule_reloads
            );
            if m.tracked > 0 {
                let _ = writeln!(
                    s,
                    "  thresholds           {} matches of thresholded rules decided across workers: {} alerted, {} suppressed (lost with dropped batches {}; trackers evicted {}; decided before every worker's time {}, after a later one {})",
                    th.candidates, th.alerts, th.suppressed, e.candidates_dropped, th.evicted, th.early, th.late
                );
            }
        }
        let a = &t.app;
        let ids = |p: detect::AppProto| a.identified[p as usize];
        let evs = |p: detect::AppProto| a.events[p as usize];
        let _ = write!(s, "  app protocols       ");
        for p in detect::AppProto::PROTOCOLS {
            let _ = write!(s, " {} {}", p.name().unwrap_or_default(), ids(p));
        }
        let _ = writeln!(
            s,
            " failed {} (sessions {}, no session {})",
            ids(detect::AppProto::Failed),
            a.sessions,
            a.no_session
        );
        let _ = write!(s, "  app events           {} (", e.events - e.alerts);
        for (i, p) in detect::AppProto::PROTOCOLS.into_iter().enumerate() {
            let _ = write!(s, "{}{} {}", if i > 0 { " " } else { "" }, p.name().unwrap_or_default(), evs(p));
        }
        let _ = writeln!(s, ")");
        let st = &a.stream;
        let _ = writeln!(
            s,
            "  reassembly           gaps {} (buffer full {}), out of order {}, retransmitted {}, differing {}, out of window {}, depth reached {}, peak buffered {} B; in order {} (of which body segments passed over in the flow table {})",
            st.gaps, st.ooo_overflow, st.ooo_buffered, st.retransmitted, st.overlap_mismatch, st.out_of_window, st.depth_reached, st.ooo_bytes_peak, st.in_order, st.fast_skipped
        );
        let _ = writeln!(s, "  parser anomalies     {}", a.proto.anomalies());
        let _ = writeln!(
            s,
            "  records exported     {} (dropped {}, channel full {} times, lost to output errors {})",
            self.exporter.records, e.dropped, e.channel_full, self.exporter.lost
        );
        for k in &self.exporter.sinks {
            let _ = write!(
                s,
                "  sink {:<15} records {}: sent {} ({} bytes), dropped {}, lost {}, left in spool {}; spooled {}, replayed {}, errors {}",
                k.name, k.records, k.sent, k.bytes, k.dropped, k.lost, k.left, k.spooled, k.replayed, k.errors
            );
            if k.recovered > 0 {
                let _ = write!(s, ", found in the spool at start {}", k.recovered);
            }
            if k.expired > 0 {
                let _ = write!(s, ", of the dropped past the spool's maximum age {}", k.expired);
            }
            let _ = writeln!(s);
        }
        if self.exporter.spanning_alerts > 0 || self.exporter.sketch_keys_dropped > 0 {
            let _ = writeln!(
                s,
                "  merged behaviours    alerts {} (evidence over every worker: scans, floods, brute force, DNS tunnels; keys not tracked {}; windows judged before every worker's part {}, parts after {})",
                self.exporter.spanning_alerts,
                self.exporter.sketch_keys_dropped,
                self.exporter.sketch_windows_early,
                self.exporter.sketch_late
            );
        }
        if let Some(c) = &self.alert_capture {
            let _ = writeln!(
                s,
                "  alert capture        flows {} packets {} (dropped {}) in {} files, {} bytes, in {}",
                c.flows,
                c.packets,
                c.dropped,
                c.files,
                c.bytes,
                c.dir.display()
            );
        }
        if let Some(err) = &self.export_error {
            let _ = writeln!(s, "  output error         {err}");
        }
        for w in &self.workers {
            let core = w.core.map(|c| format!("core {c}")).unwrap_or_else(|| "unpinned".into());
            let _ = writeln!(
                s,
                "  worker {} ({core}): packets {} flows {} records {}",
                w.id, w.engine.packets, w.engine.flows.created, w.export.records
            );
        }
        if self.elapsed_secs > 0.0 {
            let _ = writeln!(
                s,
                "  elapsed              {:.3} s ({:.3} Mpps)",
                self.elapsed_secs,
                t.packets as f64 / self.elapsed_secs / 1e6
            );
        }
        if let Some(sig) = &self.interrupted {
            let _ = writeln!(s, "  interrupted          by {sig}: the input was not read to its end");
        }
        for n in &self.input_notes {
            let _ = writeln!(s, "  input                {n}");
        }
        let lost = self.records_lost();
        let accounting = if !self.balanced() {
            "UNBALANCED".to_string()
        } else if lost > 0 {
            format!("every record counted; {lost} LOST (dropped by the workers or the sinks, or lost to output errors: see above)")
        } else {
            "balanced".to_string()
        };
        let _ = writeln!(s, "  accounting           {accounting}");
        s
    }
}
