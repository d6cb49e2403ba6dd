//! Parse speed: Istio's largest nft golden (`tproxy.golden`, both families, three tables) read
//! by our nft front end, against `nft -c -f` on the same file in the same run (nft's own parser
//! and evaluation, checked against the kernel without committing: a process and a netlink
//! round trip each time), and the same configuration's iptables golden by our iptables front
//! ends. Figures go into the README.
//!
//! Scale (issue 16): kube-proxy's nat table for 1,000, 5,000 and 10,000 services
//! (`sidecar_model::synth::kube_proxy`, 3 endpoints each, every 10th a NodePort service; the
//! 10,000 one is 154,022 lines, 17.6 MB) parsed by our iptables front end, against
//! `iptables-restore --test` of the same file in a scratch network namespace (`kp-bench-PID`,
//! deleted at the end) in the same run: a process that parses the file and builds the ruleset
//! without committing it. `--save-baseline`/`--baseline` as criterion takes them; `scripts/bench-parse`
//! runs the kube-proxy part alone (`-- kube`) with peak memory. Figures go into docs/scale.md.

#[path = "../tests/common/mod.rs"]
mod common;

/// The allocator the `sidecar-verify` binary uses (verify/src/main.rs), so that the figures are
/// the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{black_box, criterion_main, Criterion, Throughput};
use sidecar_model::parse;
use sidecar_model::parse::{parse_with, Options, Tuning};
use sidecar_model::synth::kube_proxy::{generate, Spec};

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

/// A scratch network namespace, deleted when dropped.
struct Netns(String);

impl Netns {
    /// `kp-bench-PID`, when `ip netns add` works (root, iproute2). First deletes the
    /// `kp-bench-PID` namespaces of runs that no longer run (a bench killed before its drop).
    fn create() -> Option<Netns> {
        if let Ok(o) = Command::new("ip").args(["netns", "list"]).output() {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                let name = line.split_whitespace().next().unwrap_or("");
                let dead = name
                    .strip_prefix("kp-bench-")
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
                if dead {
                    let _ = Command::new("ip").args(["netns", "del", name]).output();
                }
            }
        }
        let name = format!("kp-bench-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(Netns(name))
    }

    /// `iptables-restore --test FILE` in the namespace; whether it accepted the file.
    fn restore_test(&self, file: &Path) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.0, "iptables-restore", "--test"])
            .arg(file)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// The kube-proxy file of `services` services, written under the target directory.
#[expect(
    clippy::unwrap_used,
    reason = "the generator takes these specs (its tests say so); a failure here fails the run"
)]
fn kube_file(services: usize) -> (PathBuf, Vec<u8>) {
    let text = generate(&Spec {
        services,
        ..Spec::default()
    })
    .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-parse");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("kube-proxy-{services}.rules"));
    std::fs::write(&path, &text).unwrap();
    (path, text.into_bytes())
}

/// Our parse of kube-proxy's nat table at 1k/5k/10k services, and `iptables-restore --test`
/// of the same files.
#[expect(
    clippy::unwrap_used,
    reason = "the generated files parse (tests/synth.rs says so); a failure here fails the run"
)]
fn kube(c: &mut Criterion) {
    let ns = Netns::create();
    if ns.is_none() {
        println!("parse bench: no scratch namespace (not root, or no `ip`): `iptables-restore --test` is not timed");
    }
    for services in [1000, 5000, 10_000] {
        let (path, text) = kube_file(services);
        let mut g = c.benchmark_group(format!("kube-proxy/{services}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
            .throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function("ours", |b| {
            b.iter(|| parse("kube-proxy.rules", black_box(&text)).unwrap())
        });
        // The same on the calling thread alone (`parse/parallel.rs` reads the long runs of
        // `-A` lines on every core by default).
        let one = Options {
            tuning: Tuning {
                threads: 1,
                min_run_bytes: usize::MAX,
            },
            ..Options::default()
        };
        g.bench_function("ours, one thread", |b| {
            b.iter(|| parse_with("kube-proxy.rules", black_box(&text), &one).unwrap())
        });
        match &ns {
            Some(ns) if ns.restore_test(&path) => {
                g.bench_function("iptables-restore --test", |b| {
                    b.iter(|| ns.restore_test(&path))
                });
            }
            Some(_) => {
                println!("parse bench: `iptables-restore --test` refused or is missing; not timed")
            }
            None => {}
        }
        g.finish();
    }
}

/// What `criterion_group!(benches, bench)` defines, written out (its function is public and
/// undocumented).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    kube(&mut c);
}

criterion_main!(benches);
