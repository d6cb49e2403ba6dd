//! Parse speed: Istio's largest nft golden (`tproxy.golden`, both families, three tables) read
//! by our nft front end, against `nft -c -f` on the same file in the same run (nft's own parser
//! and evaluation, checked against the kernel without committing: a process and a netlink
//! round trip each time), and the same configuration's iptables golden by our iptables front
//! ends. Figures go into the README.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;

use criterion::{black_box, criterion_main, Criterion};
use sidecar_model::parse;

#[expect(
    clippy::unwrap_used,
    reason = "the corpus files parse (the tests say so); a failure here fails the run"
)]
fn bench(c: &mut Criterion) {
    let Some(dir) = common::istio_dir() else {
        println!("parse bench: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let nft = dir.join("tools/istio-nftables/pkg/capture/testdata/tproxy.golden");
    let ipt = dir.join("tools/istio-iptables/pkg/capture/testdata/tproxy.golden");
    let nft_text = std::fs::read(&nft).unwrap();
    let ipt_text = std::fs::read(&ipt).unwrap();
    let mut g = c.benchmark_group("parse");
    g.bench_function("nft/tproxy.golden", |b| {
        b.iter(|| parse("tproxy.golden", black_box(&nft_text)).unwrap())
    });
    g.bench_function("iptables/tproxy.golden", |b| {
        b.iter(|| parse("tproxy.golden", black_box(&ipt_text)).unwrap())
    });
    let nft_here = Command::new("nft")
        .args(["-c", "-f"])
        .arg(&nft)
        .output()
        .is_ok_and(|o| o.status.success());
    if nft_here {
        g.bench_function("nft -c -f tproxy.golden", |b| {
            b.iter(|| {
                Command::new("nft")
                    .args(["-c", "-f"])
                    .arg(&nft)
                    .output()
                    .unwrap()
            })
        });
    } else {
        println!("parse bench: `nft -c -f` cannot run here (no nft, or no CAP_NET_ADMIN)");
    }
    g.finish();
}

/// What `criterion_group!(benches, bench)` defines, written out (its function is public and
/// undocumented).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
