//! Per-stage micro-benchmarks over fixed in-memory packets (no I/O, no DPDK), throughput in
//! packets (or flows):
//! - `stage/*/decode`: decode alone;
//! - `stage/*/decode+flow`: the engine (decode, flow lookup/insert, TCP state, expiry at burst
//!   ends) on a fresh table, so every flow is inserted once;
//! - `flow/lookup`: flow updates that all hit existing flows (decoded beforehand);
//! - `flow/insert`: updates that all create flows, in a full table (each insert evicts);
//! - `flow/expire`: sweeping expired flows out of a table.
//!
//!   cargo bench --bench pipeline

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use detect::flow::{FlowRecord, Pipeline, RecordSink};
use detect::{Engine, FlowConfig};

struct Count(u64);
impl RecordSink for Count {
    fn emit(&mut self, _r: &FlowRecord) {
        self.0 += 1;
    }
    fn emit_event(&mut self, _m: &detect::EventMeta, _e: &detect::AppEvent<'_>) {
        self.0 += 1;
    }
}

fn bench(c: &mut Criterion) {
    for (name, mix) in [("64B", pcapgen::SizeMix::Small), ("imix", pcapgen::SizeMix::Imix)] {
        // 50k flows x 10 packets, interleaved: the flow table (about 10 MB) is larger than L2.
        let gen = pcapgen::many_flows(1, 50_000, 10, mix);
        // Frames back to back in one arena, as mbufs sit in a pool, not scattered on the heap.
        let mut arena = Vec::new();
        let mut spans = Vec::with_capacity(gen.len());
        for (ts, f) in &gen {
            spans.push((arena.len(), f.len(), *ts));
            arena.extend_from_slice(f);
            arena.resize(arena.len().div_ceil(64) * 64, 0);
        }
        let pkts: Vec<(u64, &[u8])> = spans.iter().map(|&(o, l, ts)| (ts, &arena[o..o + l])).collect();
        let mut g = c.benchmark_group(format!("stage/{name}"));
        g.throughput(Throughput::Elements(pkts.len() as u64));
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut n = 0u32;
                for (_, f) in &pkts {
                    if let Ok(d) = detect::decode(black_box(f)) {
                        n = n.wrapping_add(d.src_port as u32);
                    }
                }
                n
            })
        });
        // A fresh table each iteration: every flow is inserted once (its first packet) and
        // looked up for the rest, as on a link; the table's setup is not timed.
        g.bench_function("decode+flow", |b| {
            b.iter_batched_ref(
                || (Engine::new(FlowConfig { capacity: 262_144, ..FlowConfig::default() }), Count(0)),
                |(e, sink)| {
                    for burst in pkts.chunks(32) {
                        e.process_burst(burst.iter().map(|(ts, f)| (black_box(*f), f.len() as u32, *ts)), sink);
                        e.end_burst(None, sink);
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

fn flow_ops(c: &mut Criterion) {
    let gen = pcapgen::many_flows(2, 50_000, 4, pcapgen::SizeMix::Small);
    let decoded: Vec<_> = gen.iter().map(|(ts, f)| (*ts, detect::decode(f).unwrap(), f.len() as u32)).collect();
    let mut g = c.benchmark_group("flow");
    g.throughput(Throughput::Elements(decoded.len() as u64));
    // Every packet hits a flow the table already has.
    g.bench_function("lookup", |b| {
        let mut t = Pipeline::new(FlowConfig { capacity: 262_144, ..FlowConfig::default() });
        let mut sink = Count(0);
        for (ts, d, len) in &decoded {
            t.update(d, *len, *ts, &mut sink);
        }
        b.iter(|| {
            for (ts, d, len) in &decoded {
                t.update(black_box(d), *len, *ts, &mut sink);
            }
        })
    });
    // Every packet creates a flow; the table is full, so each one evicts the oldest.
    let fresh: Vec<_> = decoded.iter().filter(|(_, d, _)| d.tcp_flags == 0x02 || d.proto == 17).collect();
    g.throughput(Throughput::Elements(fresh.len() as u64));
    g.bench_function("insert", |b| {
        let mut t = Pipeline::new(FlowConfig { capacity: 4096, ..FlowConfig::default() });
        let mut sink = Count(0);
        let mut shift = 0u64;
        b.iter(|| {
            shift += 1_000_000;
            for (ts, d, len) in &fresh {
                let mut d = *d;
                d.src_port ^= shift as u16; // new keys each round
                t.update(black_box(&d), *len, *ts + shift, &mut sink);
            }
        })
    });
    g.throughput(Throughput::Elements(50_000));
    g.bench_function("expire", |b| {
        b.iter_batched_ref(
            || {
                let mut t = Pipeline::new(FlowConfig { capacity: 65_536, expire_budget: 64, ..FlowConfig::default() });
                let mut sink = Count(0);
                for (ts, d, len) in &decoded {
                    t.update(d, *len, *ts, &mut sink);
                }
                (t, sink)
            },
            |(t, sink)| {
                // Long after every timeout: sweep in bursts of 64 until empty.
                while t.expire(detect::time::secs(100_000) + 1_800_000_000_000_000, sink) > 0 {}
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench, flow_ops);
criterion_main!(benches);
