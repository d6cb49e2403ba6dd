//! Single-connection evaluation speed: the classic ruleset and the largest corpus ruleset,
//! fast path (no trace) and traced. Figures go into the README.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::measurement::WallTime;
use criterion::{black_box, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use sidecar_model::eval::{Engine, IfName, NoTrace, Packet, Scratch, Trace};
use sidecar_model::{parse, Hook, Ruleset, DEFAULT_RULESET};

/// The ruleset of Istio's corpus with the most rules, if the corpus is here.
fn largest_corpus() -> Option<(String, Ruleset)> {
    let dir = common::istio_dir()?;
    let mut best: Option<(String, Ruleset)> = None;
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(parsed) = parse("c", &std::fs::read(&p).ok()?) {
                let n = parsed.ruleset.rule_count();
                if best.as_ref().is_none_or(|(_, b)| n > b.rule_count()) {
                    best = Some((p.display().to_string(), parsed.ruleset));
                }
            }
        }
    }
    best
}

/// Benchmarks `evaluate` over a batch of `pkts`, each evaluated in place.
fn bench_batch(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: String,
    pkts: &[Packet],
    mut evaluate: impl FnMut(&mut Packet),
) {
    g.bench_function(id, |b| {
        b.iter_batched_ref(
            || pkts.to_vec(),
            |ps| ps.iter_mut().for_each(&mut evaluate),
            BatchSize::LargeInput,
        )
    });
}

#[expect(
    clippy::unwrap_used,
    reason = "the embedded rulesets parse (the tests say so); a failure here fails the run"
)]
fn bench(c: &mut Criterion) {
    let classic = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    // The fixed cost: a nat table with empty built-in chains.
    let empty = parse("empty", b"*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
        .unwrap()
        .ruleset;
    let mut sets = vec![
        ("classic".to_string(), classic),
        ("empty-nat".to_string(), empty),
    ];
    if let Some((name, rs)) = largest_corpus() {
        eprintln!("largest corpus ruleset: {name} ({} rules)", rs.rule_count());
        sets.push(("largest-corpus".to_string(), rs));
    }
    // Packets are evaluated in place, 1,024 per batch, so that the figure is the evaluation and
    // not the copying of a 112-byte packet into the benchmark loop (which alone costs more than
    // an evaluation through black_box).
    const BATCH: usize = 1024;
    let mut g = c.benchmark_group("evaluate-output-hook");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, rs) in &sets {
        let engine = Engine::new(rs);
        let mut packet = common::app_to_remote();
        packet.out_iface = Some(IfName::new("eth0"));
        let pkts = vec![packet; BATCH];
        let mut scratch = Scratch::default();
        bench_batch(&mut g, format!("{name}/fast"), &pkts, |p| {
            black_box(engine.run_hook(Hook::Output, p, &mut scratch, &mut NoTrace));
        });
        let mut trace = Trace::default();
        bench_batch(&mut g, format!("{name}/traced"), &pkts, |p| {
            trace.hits.clear();
            trace.undecided.clear();
            black_box(engine.run_hook(Hook::Output, p, &mut scratch, &mut trace));
        });
    }
    g.finish();
}

/// What `criterion_group!(benches, bench)` defines, written out: the macro's function is public
/// and cannot carry documentation, which the workspace lints ask of public items.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
