//! Single-connection evaluation speed: the classic ruleset and the largest corpus ruleset,
//! fast path (no trace) and traced; and a node's kube-proxy nat table of 1,000, 5,000 and
//! 10,000 services (`synth::kube_proxy`) on a mix of packets, with the chain index and without
//! (every rule scanned). Figures and the commands are in docs/scale.md, "Evaluation".

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::measurement::WallTime;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{black_box, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use sidecar_model::eval::{Engine, IfName, NoTrace, Packet, Scratch, Trace, DEFAULT_INDEX_MIN};
use sidecar_model::synth::kube_proxy::{self, Proto, Spec};
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

/// A small xorshift generator: the packet mix is the same on every run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The packet mix on a node's table of `services`, `n` packets, each with its hook:
/// - 4 in 10: a node process (OUTPUT) or a pod through `cni0` (PREROUTING) to a random
///   service's cluster IP and port: `KUBE-SERVICES`, its `KUBE-SVC-`, a `KUBE-SEP-`'s DNAT;
/// - 2 in 10: to a cluster IP on a port it does not serve, or to a pod's address (no service):
///   through `KUBE-SERVICES` to its last rule;
/// - 2 in 10: to addresses outside the cluster (1.1.1.1:443, 8.8.8.8:53 over UDP);
/// - 2 in 10: the pod's application (`10.1.0.5 -> 10.1.0.99:80`, uid 1000, out of eth0), the
///   packet of the classic benchmark.
#[expect(
    clippy::indexing_slicing,
    reason = "indices are taken below the length of the generator's non-empty service list"
)]
fn kube_mix(services: &[kube_proxy::Service], n: usize) -> Vec<(Hook, Packet)> {
    let mut rng = Mix(0x9e37_79b9_7f4a_7c15);
    let node: IpAddr = Ipv4Addr::new(192, 168, 0, 10).into();
    let pod: IpAddr = Ipv4Addr::new(10, 244, 3, 17).into();
    let eth0 = Some(IfName::new("eth0"));
    let cni0 = Some(IfName::new("cni0"));
    let out = |src: IpAddr, dst: IpAddr, proto: u8, dport: u16| {
        let mut p = Packet::tcp_out(src, dst, 40000, dport, 0, 0);
        p.proto = proto;
        p.out_iface = eth0;
        (Hook::Output, p)
    };
    (0..n)
        .map(|i| match i % 10 {
            0..=3 => {
                let s = &services[rng.below(services.len())];
                let proto = if s.proto == Proto::Tcp { 6 } else { 17 };
                let (hook, mut p) = out(node, s.cluster_ip.into(), proto, s.port);
                if i % 2 == 1 {
                    p.src = pod;
                    p.has_socket = false;
                    p.out_iface = None;
                    p.in_iface = cni0;
                    return (Hook::Prerouting, p);
                }
                (hook, p)
            }
            4 => {
                let s = &services[rng.below(services.len())];
                out(node, s.cluster_ip.into(), 6, 1)
            }
            5 => out(node, Ipv4Addr::new(10, 244, 7, 9).into(), 6, 8080),
            6 => out(node, Ipv4Addr::new(1, 1, 1, 1).into(), 6, 443),
            7 => out(node, Ipv4Addr::new(8, 8, 8, 8).into(), 17, 53),
            _ => {
                let mut p = common::app_to_remote();
                p.out_iface = eth0;
                (Hook::Output, p)
            }
        })
        .collect()
}

/// The kube-proxy cases: for 1,000, 5,000 and 10,000 services, the mix of [`kube_mix`] with
/// the engine's chain index and with every rule scanned; the time to parse, to compile the
/// engine with and without the index, and the index's size, on stderr.
#[expect(
    clippy::unwrap_used,
    reason = "the generator's specs are valid and its output parses (its tests say so)"
)]
fn bench_kube(c: &mut Criterion) {
    const BATCH: usize = 1024;
    let mut g = c.benchmark_group("kube-proxy-mix");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    for n in [1_000, 5_000, 10_000] {
        let spec = Spec {
            services: n,
            ..Spec::default()
        };
        let text = kube_proxy::generate(&spec).unwrap();
        let services = kube_proxy::services(&spec).unwrap();
        let t0 = Instant::now();
        let rs = parse("kube", text.as_bytes()).unwrap().ruleset;
        let parse_time = t0.elapsed();
        let linear = Engine::new(&rs).with_index_min(usize::MAX);
        // The best of 3 of each: the engine recompiled with the default index and without one
        // (`usize::MAX - 1` differs from the engine's `usize::MAX`, so it recompiles, and no
        // chain has that many keyed rules); their difference is the index's build.
        let best = |min: usize| {
            (0..3)
                .map(|_| {
                    let e = linear.clone();
                    let t = Instant::now();
                    let e = e.with_index_min(min);
                    let d = t.elapsed();
                    drop(black_box(e));
                    d
                })
                .min()
                .unwrap_or_default()
        };
        let (with, without) = (best(DEFAULT_INDEX_MIN), best(usize::MAX - 1));
        let engine = Engine::new(&rs);
        let stats = engine.index_stats();
        eprintln!(
            "kube-proxy {n} services: {} lines, {} rules; parse {:.1} ms; compile without \
             index {:.1} ms, with {:.1} ms (index {:.1} ms); index: {} chains, {} keyed rules, \
             {} open, {} keys, {} KiB",
            text.lines().count(),
            rs.rule_count(),
            parse_time.as_secs_f64() * 1e3,
            without.as_secs_f64() * 1e3,
            with.as_secs_f64() * 1e3,
            with.saturating_sub(without).as_secs_f64() * 1e3,
            stats.chains,
            stats.keyed,
            stats.open,
            stats.keys,
            stats.bytes / 1024,
        );
        let mix = kube_mix(&services, BATCH);
        let mut scratch = Scratch::default();
        for (name, e) in [("indexed", &engine), ("linear", &linear)] {
            g.bench_function(format!("{n}/{name}"), |b| {
                b.iter_batched_ref(
                    || mix.clone(),
                    |ps| {
                        for (hook, p) in ps.iter_mut() {
                            black_box(e.run_hook(*hook, p, &mut scratch, &mut NoTrace));
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// What `criterion_group!(benches, bench)` defines, written out: the macro's function is public
/// and cannot carry documentation, which the workspace lints ask of public items.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    bench_kube(&mut c);
}

criterion_main!(benches);
