//! `check` on the classic ruleset: every invariant proved and every rule's reachability, from
//! the parsed ruleset to the finished report (Z3 included). Target: at most 100 ms. And the
//! scale group: `check` of a node's nat table (kube-proxy with N services and Istio's rules in
//! front, `sidecar-verify synth kube-proxy --mesh istio`), and `diff` of two such tables that
//! differ in one service's endpoint (docs/scale.md; `scripts/bench-scale` runs the command line
//! at the sizes criterion is too slow for).

use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{criterion_main, Criterion};
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, print_ruleset, DEFAULT_RULESET};
use sidecar_verify::check::{check, explain, Options, Status};

#[expect(
    clippy::expect_used,
    reason = "the classic ruleset parses and is checked (the tests say so); a failure here fails the run"
)]
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
            // Every invariant passes but identity-symmetry (the classic gid rules after its uid
            // rules).
            assert!(r.invariants.iter().filter(|i| !i.status.passes()).count() == 1);
            r
        });
    });
    // `check --why`: the proofs and then every holding invariant's support, minimised.
    g.bench_function("classic-why", |b| {
        b.iter(|| {
            let mut r = check(&rs, &canonical, &pod, &profile, &opts).expect("check runs");
            explain(&rs, &pod, &profile, &opts, &mut r).expect("the supports are computed");
            assert!(r
                .invariants
                .iter()
                .all(|i| i.status != Status::Holds || i.support.is_some()));
            r
        });
    });
    let dual = Pod::new(&[
        Ipv4Addr::new(10, 1, 0, 5).into(),
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5).into(),
    ]);
    g.bench_function("classic-dual-stack-pod", |b| {
        b.iter(|| check(&rs, &canonical, &dual, &profile, &opts).expect("check runs"));
    });
    g.finish();
    scale(c);
}

/// `check` and `diff` on kube-proxy tables with Istio's rules in front.
#[expect(
    clippy::expect_used,
    reason = "the generated tables parse and can be checked (tests/synth.rs says so); a failure here fails the run"
)]
fn scale(c: &mut Criterion) {
    use sidecar_model::synth::kube_proxy::{generate, Mesh, Spec};
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    for services in [10, 100] {
        let spec = Spec {
            services,
            mesh: Mesh::from_name("istio"),
            ..Spec::default()
        };
        let text = generate(&spec).expect("the table is generated");
        let rs = parse("node", text.as_bytes()).expect("it parses").ruleset;
        let pod = Pod::default();
        let profile = Profile::istio();
        let opts = Options::default();
        g.bench_function(format!("check-kube-proxy-{services}"), |b| {
            b.iter(|| check(&rs, &text, &pod, &profile, &opts).expect("check runs"));
        });
        // The same table with one endpoint of one service moved.
        let moved = text.replacen("--to-destination 10.244.", "--to-destination 10.245.", 1);
        assert_ne!(moved, text, "an endpoint was moved");
        let new = parse("node-moved", moved.as_bytes())
            .expect("it parses")
            .ruleset;
        let dopts = sidecar_verify::diff::Options::default();
        g.bench_function(format!("diff-kube-proxy-{services}-one-service"), |b| {
            b.iter(|| {
                let r = sidecar_verify::diff::diff(&rs, &new, &pod, &profile, &dopts)
                    .expect("diff runs");
                assert!(!r.changes.is_empty(), "the moved endpoint is a change");
                r
            });
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
