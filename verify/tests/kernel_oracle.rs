//! The kernel oracle: the model's per-flow rule hits and deliveries against real netfilter in a
//! pod made of network namespaces. Runs whenever the machine can (root, iproute2, iptables);
//! otherwise says why and passes. `.ci/run` installs what it needs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::Path;

use sidecar_model::pod::{Pod, Profile, Simulator};
use sidecar_model::{parse, Ruleset, DEFAULT_RULESET};
use sidecar_verify::cli::scenario_flows;
use sidecar_verify::corpus::{istio_dir, istio_iptables_files};
use sidecar_verify::kernel::{self, random_flows, SplitMix, TestPod};
use sidecar_verify::netns::unavailable;

fn sim(rs: &Ruleset) -> Simulator {
    Simulator::new(rs, Pod::new(&kernel::POD_IPS), Profile::istio())
}

fn flows(
    s: &mut Simulator,
    n: usize,
    seed: u64,
) -> (Vec<u16>, Vec<sidecar_model::pod::Connection>) {
    let mut rng = SplitMix::new(seed);
    let ports = kernel::ports(s, &mut rng);
    let mut f = scenario_flows(s);
    f.extend(random_flows(s, &ports, n, &mut rng));
    (ports, f)
}

fn report(r: &kernel::OracleReport) -> String {
    r.disagreements
        .iter()
        .take(20)
        .map(|d| {
            format!(
                "{:?}: {} model {} kernel {}",
                d.flow, d.what, d.model, d.kernel
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn classic_ruleset_agrees_with_the_kernel() {
    if let Some(why) = unavailable() {
        println!("skipping the kernel oracle: {why}");
        return;
    }
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let mut s = sim(&rs);
    let (ports, f) = flows(&mut s, 1000, 7);
    let mut tp =
        TestPod::create_with(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), &ports).unwrap();
    let r = kernel::run(&mut tp, &s, &f, 50).unwrap();
    println!(
        "kernel oracle, classic: {} flows, {} disagreements, {:.0} flows/s",
        r.compared,
        r.disagreements.len(),
        r.flows_per_second
    );
    assert!(r.compared >= 1000);
    assert!(r.disagreements.is_empty(), "{}", report(&r));
}

/// The oracle notices a model that is wrong: the kernel gets the classic ruleset without its
/// 127.0.0.6 passthrough rule, the model keeps it.
#[test]
fn the_oracle_notices_a_different_ruleset() {
    if let Some(why) = unavailable() {
        println!("skipping the kernel oracle: {why}");
        return;
    }
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let broken_text =
        DEFAULT_RULESET.replace("-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n", "");
    let broken = parse("broken", broken_text.as_bytes()).unwrap().ruleset;
    let mut s = sim(&rs);
    let (ports, f) = flows(&mut s, 200, 3);
    let mut tp =
        TestPod::create_with(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), &ports).unwrap();
    let r = kernel::run_with(&mut tp, &s, &broken, &f, 50).unwrap();
    assert!(
        !r.disagreements.is_empty(),
        "no disagreement found over {} flows",
        r.compared
    );
    // The inbound passthrough hop (127.0.0.6 -> pod IP) is one of them.
    assert!(
        r.disagreements
            .iter()
            .any(|d| d.flow.src == Some("127.0.0.6".parse().unwrap())),
        "{}",
        report(&r)
    );
}

/// Every corpus ruleset the kernel loads (and the pod can reproduce) with random flows.
#[test]
fn corpus_rulesets_agree_with_the_kernel() {
    if let Some(why) = unavailable() {
        println!("skipping the kernel oracle over the corpus: {why}");
        return;
    }
    let Some(dir) = istio_dir() else {
        println!("skipping the kernel oracle over the corpus: ../shared/corpus absent");
        return;
    };
    let per = std::env::var("SIDECAR_ORACLE_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut ports_rng = SplitMix::new(11);
    let base = sim(&parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset);
    let ports = kernel::ports(&base, &mut ports_rng);
    let mut tp =
        TestPod::create_with(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), &ports).unwrap();
    let (mut ran, mut skipped, mut failures) = (0, Vec::new(), Vec::new());
    let mut total = 0;
    for (file, _) in istio_iptables_files(&dir) {
        let file = file.as_str();
        let Ok(p) = parse(file, &std::fs::read(dir.join(file)).unwrap()) else {
            continue;
        };
        let mut s = sim(&p.ruleset);
        let mut rng = SplitMix::new(ran as u64 + 100);
        let mut f = scenario_flows(&mut s);
        f.extend(random_flows(&s, &ports, per, &mut rng));
        match kernel::run(&mut tp, &s, &f, 50) {
            Ok(r) => {
                total += r.compared;
                if !r.disagreements.is_empty() {
                    failures.push(format!(
                        "{file}: {} disagreements\n{}",
                        r.disagreements.len(),
                        report(&r)
                    ));
                }
                ran += 1;
            }
            Err(kernel::OracleError::Load(e)) => {
                skipped.push(format!("{file}: the kernel refuses it here: {e}"))
            }
            Err(e) => panic!("{file}: {e}"),
        }
    }
    println!(
        "kernel oracle over the corpus: {ran} rulesets, {total} flows; skipped {}:",
        skipped.len()
    );
    for s in &skipped {
        println!("  {s}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(ran >= 100, "only {ran} corpus rulesets ran");
}

#[derive(serde::Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    ruleset: String,
    /// A ruleset to load and exercise first, whose leftovers must not matter.
    after: Option<String>,
    proto: String,
    #[serde(default)]
    from_outside: bool,
    src: Option<std::net::IpAddr>,
    dst: std::net::IpAddr,
    dport: u16,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    why: String,
}

/// The flows of `corpus/cases/kernel-oracle.toml`, each 50 times in a row.
#[test]
fn oracle_regression_cases() {
    if let Some(why) = unavailable() {
        println!("skipping the kernel oracle regression cases: {why}");
        return;
    }
    let root = sidecar_verify::corpus::workspace();
    let cases: Cases = toml::from_str(
        &std::fs::read_to_string(root.join("corpus/cases/kernel-oracle.toml")).unwrap(),
    )
    .unwrap();
    assert!(cases.case.len() >= 4);
    let base = sim(&parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset);
    let ports = kernel::ports(&base, &mut SplitMix::new(5));
    let mut tp =
        TestPod::create_with(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), &ports).unwrap();
    let mut failures = Vec::new();
    for c in &cases.case {
        let resolve = |spec: &str| -> Option<std::path::PathBuf> {
            if let Some(p) = spec.strip_prefix("corpus:") {
                Some(root.join("corpus").join(p))
            } else if let Some(p) = spec.strip_prefix("istio:") {
                istio_dir().map(|d| d.join(p))
            } else {
                panic!(
                    "case {}: a ruleset must start with corpus: or istio:",
                    c.name
                )
            }
        };
        let Some(path) = resolve(&c.ruleset) else {
            println!("skipping case {}: ../shared/corpus absent", c.name);
            continue;
        };
        if let Some(spec) = &c.after {
            let Some(before) = resolve(spec) else {
                println!("skipping case {}: ../shared/corpus absent", c.name);
                continue;
            };
            let first = parse(spec, &std::fs::read(&before).unwrap())
                .unwrap()
                .ruleset;
            let s0 = sim(&first);
            let f0 = random_flows(&s0, &ports, 20, &mut SplitMix::new(1));
            kernel::run(&mut tp, &s0, &f0, 10).unwrap();
        }
        let rs = parse(&c.ruleset, &std::fs::read(&path).unwrap())
            .unwrap()
            .ruleset;
        let s = sim(&rs);
        let flow = sidecar_model::pod::Connection {
            proto: if c.proto == "udp" { 17 } else { 6 },
            // From outside, the model takes the profile's peer of the destination's family.
            src: if c.from_outside { None } else { c.src },
            dst: c.dst,
            sport: 40000,
            dport: c.dport,
            uid: c.uid,
            gid: c.gid,
            from_outside: c.from_outside,
        };
        let r = kernel::run(&mut tp, &s, &vec![flow; 50], 10).unwrap();
        assert_eq!(r.compared, 50);
        if !r.disagreements.is_empty() {
            failures.push(format!("case {} ({}):\n{}", c.name, c.why, report(&r)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
