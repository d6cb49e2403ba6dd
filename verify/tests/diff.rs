//! `diff`: equivalent rewrites report no change, broken variants report theirs with witnesses
//! that `trace` replays with the claimed journeys, and diffs across Istio's history run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, Ruleset};
use sidecar_verify::corpus::{istio_dir, workspace};
use sidecar_verify::diff::{diff, Options, Report};

const BIN: &str = env!("CARGO_BIN_EXE_sidecar-verify");

fn load(path: &Path) -> Ruleset {
    let bytes = std::fs::read(path).unwrap();
    parse(&path.display().to_string(), &bytes).unwrap().ruleset
}

fn classic() -> PathBuf {
    workspace().join("corpus/istio-classic.rules")
}

fn run(old: &Ruleset, new: &Ruleset) -> Report {
    diff(
        old,
        new,
        &Pod::default(),
        &Profile::istio(),
        &Options::default(),
    )
    .unwrap()
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(workspace().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    v.sort();
    v
}

#[test]
fn equivalent_rewrites_of_the_classic_ruleset_change_nothing() {
    let old = load(&classic());
    let eq = files("corpus/equivalent");
    assert!(eq.len() >= 5);
    for f in eq {
        let r = run(&old, &load(&f));
        assert!(
            r.changes.is_empty() && !r.unknown && !r.truncated,
            "{}: {}",
            f.display(),
            sidecar_verify::diff::text(&r)
        );
    }
}

/// Splitting a CIDR, renaming chains and a multiport form, in Istio's configurations.
#[test]
fn equivalent_rewrites_of_corpus_rulesets_change_nothing() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let rewrite = |file: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.contains(from), "{file} lacks `{from}`");
        let old = parse(file, text.as_bytes()).unwrap().ruleset;
        let new = parse(file, text.replace(from, to).as_bytes())
            .unwrap()
            .ruleset;
        assert_ne!(old, new);
        let r = run(&old, &new);
        assert!(
            r.changes.is_empty(),
            "{file}: {}",
            sidecar_verify::diff::text(&r)
        );
    };
    rewrite(
        "tools/istio-iptables/pkg/capture/testdata/ipnets.golden",
        "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT",
        "-A ISTIO_OUTPUT -d 10.0.0.0/9 -j ISTIO_REDIRECT\n-A ISTIO_OUTPUT -d 10.128.0.0/9 -j ISTIO_REDIRECT",
    );
    rewrite(
        "tools/istio-iptables/pkg/capture/testdata/ipnets.golden",
        "ISTIO_REDIRECT",
        "MESH_REDIRECT",
    );
    rewrite(
        "tools/istio-iptables/pkg/capture/testdata/inbound-ports-wildcard.golden",
        "ISTIO_IN_REDIRECT",
        "MESH_INBOUND_REDIRECT",
    );
    rewrite(
        "cni/pkg/plugin/testdata/include-exclude-ports.txt.golden",
        "-A ISTIO_OUTPUT -p tcp --dport 5555 -j RETURN",
        "-A ISTIO_OUTPUT -p tcp -m multiport --dports 5555 -j RETURN",
    );
}

fn trace_json(rules: &Path, w: &sidecar_verify::check::Witness) -> serde_json::Value {
    let mut a = vec![
        "trace".to_string(),
        rules.display().to_string(),
        "--json".into(),
        "--src".into(),
        w.src.to_string(),
        "--sport".into(),
        w.sport.to_string(),
        "--dst".into(),
        w.dst.to_string(),
        "--dport".into(),
        w.dport.to_string(),
        "--proto".into(),
        w.proto.clone(),
    ];
    if w.from_outside {
        a.push("--from-outside".into());
    } else {
        a.extend([
            "--uid".into(),
            w.uid.to_string(),
            "--gid".into(),
            w.gid.to_string(),
        ]);
    }
    let out = Command::new(BIN).args(&a).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn broken_variants_change_and_their_witnesses_replay() {
    let old_path = classic();
    let old = load(&old_path);
    let mut replayed = 0;
    for f in files("corpus/broken") {
        let r = run(&old, &load(&f));
        let harmless = f.ends_with("no-loopback-return.rules");
        assert_eq!(r.changes.is_empty(), harmless, "{}", f.display());
        if harmless {
            // Only packets leaving a non-loopback interface for 127.0.0.1 see rule 8.
            assert!(!r.unroutable_changes.is_empty());
            assert!(r
                .unroutable_changes
                .iter()
                .all(|c| c.witness.dst.is_loopback() && c.witness.iface != "lo"));
        }
        for c in &r.changes {
            assert_ne!(c.old, c.new);
            assert_eq!(
                trace_json(&old_path, &c.witness),
                serde_json::to_value(&c.old).unwrap()
            );
            assert_eq!(
                trace_json(&f, &c.witness),
                serde_json::to_value(&c.new).unwrap()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 20, "only {replayed} witnesses replayed");
}

#[test]
fn diff_exit_codes() {
    let c = classic();
    let broken = workspace().join("corpus/broken/no-uid-return.rules");
    let code = |args: &[&Path]| {
        Command::new(BIN)
            .arg("diff")
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(code(&[&c, &c]), Some(0));
    assert_eq!(code(&[&c, &broken]), Some(1));
    assert_eq!(code(&[&c, Path::new("/nonexistent")]), Some(2));
}

/// Adjacent Istio versions of the same configuration diff without error; every change the
/// encoding finds is confirmed by the evaluator inside `diff` (else it fails).
#[test]
fn diffs_across_istio_history_run() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let versions = ["1.12.0", "1.17.0", "1.18.0", "1.22.0", "1.24.0"];
    let configs = [
        "tools/istio-iptables/pkg/capture/testdata/inbound-ports-wildcard.golden",
        "tools/istio-iptables/pkg/capture/testdata/tproxy.golden",
    ];
    let pod = Pod::new(&["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()]);
    let mut ran = 0;
    for cfg in configs {
        for pair in versions.windows(2) {
            let a = dir.join(format!("history/{}/{cfg}", pair[0]));
            let b = dir.join(format!("history/{}/{cfg}", pair[1]));
            if !a.exists() || !b.exists() {
                continue;
            }
            let r = diff(
                &load(&a),
                &load(&b),
                &pod,
                &Profile::istio(),
                &Options::default(),
            )
            .unwrap_or_else(|e| panic!("{cfg} {}→{}: {e}", pair[0], pair[1]));
            assert!(!r.unknown);
            println!(
                "{cfg} {} → {}: {} change class(es)",
                pair[0],
                pair[1],
                r.changes.len()
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "only {ran} history diffs ran");
}

/// Every hop of every change witness's journey, on both sides, goes where the model says in
/// real netfilter.
#[test]
fn change_witnesses_are_confirmed_by_the_kernel() {
    use sidecar_model::pod::{Connection, Delivery, Journey, Simulator};
    use sidecar_model::Hook;
    use sidecar_verify::kernel::{self, unavailable, TestPod};
    if let Some(why) = unavailable() {
        println!("skipping the kernel confirmation of diff witnesses: {why}");
        return;
    }
    let old = load(&classic());
    let mut confirmed = 0;
    let flows_of = |j: &Journey, ports: &mut Vec<u16>| -> Vec<Connection> {
        j.hops
            .iter()
            .map(|h| {
                let p = h.packet;
                ports.push(p.dport);
                if let Delivery::App(port) | Delivery::Listener(port) = h.delivered_to {
                    ports.push(port);
                }
                Connection {
                    proto: p.proto,
                    src: Some(p.src),
                    dst: p.dst,
                    sport: p.sport,
                    dport: p.dport,
                    uid: p.uid,
                    gid: p.gid,
                    from_outside: h.hook != Hook::Output,
                }
            })
            .collect()
    };
    for f in files("corpus/broken") {
        let new = load(&f);
        let r = run(&old, &new);
        for (rs, side_new) in [(&old, false), (&new, true)] {
            let mut ports = Profile::istio().proxy_ports;
            let mut flows = Vec::new();
            for c in &r.changes {
                flows.extend(flows_of(if side_new { &c.new } else { &c.old }, &mut ports));
            }
            if flows.is_empty() {
                continue;
            }
            ports.sort_unstable();
            ports.dedup();
            let sim = Simulator::new(rs, Pod::new(&kernel::POD_IPS), Profile::istio());
            let mut tp = TestPod::create_with(Path::new(BIN), &ports).unwrap();
            let k = kernel::run(&mut tp, &sim, &flows, 1).unwrap();
            assert!(
                k.disagreements.is_empty(),
                "{} ({}): {:?}",
                f.display(),
                if side_new { "new" } else { "old" },
                k.disagreements
            );
            confirmed += k.compared;
        }
    }
    assert!(confirmed >= 40, "only {confirmed} witness hops confirmed");
}

/// The class of the one change of `no-uid-return`, as a person would state it: the proxy's uid
/// with another gid, to anything outside the pod, on any port.
#[test]
fn a_change_class_is_described_symbolically() {
    let r = run(
        &load(&classic()),
        &load(&workspace().join("corpus/broken/no-uid-return.rules")),
    );
    assert_eq!(r.changes.len(), 1);
    let d = &r.changes[0].description;
    for want in [
        "opened in the pod",
        "uid 1337",
        "gid not 1337",
        "to a non-local destination",
        "any dport",
        "any sport",
    ] {
        assert!(d.contains(want), "`{want}` missing from: {d}");
    }
}
