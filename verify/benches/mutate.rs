//! `mutate` on the classic ruleset: every single-rule mutant reloaded, diffed against the
//! ruleset and (when it changes behaviour) proved, Z3 included, in one process. A run takes
//! seconds, so the sample is the smallest criterion allows.

use criterion::{criterion_main, Criterion};
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, DEFAULT_RULESET};
use sidecar_verify::mutate::{mutate, Options};

#[expect(
    clippy::expect_used,
    reason = "the classic ruleset parses and its invariants can be proved (the tests say so); a failure here fails the run"
)]
fn bench(c: &mut Criterion) {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .expect("classic parses")
        .ruleset;
    let pod = Pod::default();
    let profile = Profile::istio();
    let opts = Options::default();
    let mut g = c.benchmark_group("mutate");
    g.sample_size(10);
    g.bench_function("classic", |b| {
        b.iter(|| mutate(&rs, &pod, &profile, &[], &opts).expect("mutate runs"));
    });
    g.finish();
}

/// What `criterion_group!(benches, bench)` defines, written out: the macro's function is public
/// and cannot carry documentation, which the workspace lints ask of public items.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
