//! Per-stage micro-benchmarks over fixed in-memory packets (no I/O, no DPDK):
//! `decode` alone, and `decode+flow` (the engine: decode, flow lookup/insert, TCP state,
//! expiry at burst ends). Throughput is reported in packets.
//!
//!   cargo bench --bench pipeline

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use detect::flow::{FlowRecord, RecordSink};
use detect::{Engine, FlowConfig};

struct Count(u64);
impl RecordSink for Count {
    fn emit(&mut self, _r: &FlowRecord) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
