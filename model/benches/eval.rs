//! Single-connection evaluation speed: the classic ruleset and the largest corpus ruleset,
//! fast path (no trace) and traced. Figures go into the README.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark"
)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sidecar_model::eval::{Engine, IfName, NoTrace, Packet, Scratch, Trace};
use sidecar_model::{parse, Hook, Ruleset, DEFAULT_RULESET};

fn app_to_remote() -> Packet {
    let mut p = Packet::tcp_out(
        "10.1.0.5".parse().unwrap(),
        "10.1.0.99".parse().unwrap(),
        40000,
        80,
        1000,
        1000,
    );
    p.out_iface = Some(IfName::new("eth0"));
    p
}

/// The ruleset of Istio's corpus with the most rules, if the corpus is here.
fn largest_corpus() -> Option<(String, Ruleset)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/istio");
    let dir = std::env::var_os("SIDECAR_SHARED_CORPUS")
        .map_or(root, |d| std::path::PathBuf::from(d).join("istio"));
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
        let pkts = vec![app_to_remote(); BATCH];
        let mut scratch = Scratch::default();
        g.bench_function(format!("{name}/fast"), |b| {
            b.iter_batched_ref(
                || pkts.clone(),
                |ps| {
                    for p in ps.iter_mut() {
                        black_box(engine.run_hook(Hook::Output, p, &mut scratch, &mut NoTrace));
                    }
                },
                BatchSize::LargeInput,
            )
        });
        let mut trace = Trace::default();
        g.bench_function(format!("{name}/traced"), |b| {
            b.iter_batched_ref(
                || pkts.clone(),
                |ps| {
                    for p in ps.iter_mut() {
                        trace.hits.clear();
                        trace.undecided.clear();
                        black_box(engine.run_hook(Hook::Output, p, &mut scratch, &mut trace));
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
