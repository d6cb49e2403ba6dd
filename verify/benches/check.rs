//! `check` on the classic ruleset: every invariant proved and every rule's reachability, from
//! the parsed ruleset to the finished report (Z3 included). Target: at most 300 ms.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, print_ruleset, DEFAULT_RULESET};
use sidecar_verify::check::{check, Options};

fn bench(c: &mut Criterion) {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .expect("classic parses")
        .ruleset;
    let canonical = print_ruleset(&rs);
    let pod = Pod::default();
    let profile = Profile::istio();
    let opts = Options::default();
    let mut g = c.benchmark_group("check");
    g.sample_size(20);
    g.bench_function("classic", |b| {
        b.iter(|| {
            let r = check(&rs, &canonical, &pod, &profile, &opts).expect("check runs");
            assert!(r.all_hold());
            r
        });
    });
    let dual = Pod::new(&["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()]);
    g.bench_function("classic-dual-stack-pod", |b| {
        b.iter(|| check(&rs, &canonical, &dual, &profile, &opts).expect("check runs"));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
