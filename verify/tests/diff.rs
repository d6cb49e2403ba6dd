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

/// Every configuration present in adjacent versions of Istio's history (1.12 → 1.17 → 1.18 →
/// 1.22 → 1.24), with its profile from corpus/istio-profiles.toml: the diff runs, and every
/// change's witness replays as a connection (what `trace` runs) with the journeys the report
/// claims on both sides; and, when the machine can, every hop of those journeys agrees with the
/// kernel.
#[test]
fn history_diffs_replay_through_the_evaluator_and_the_kernel() {
    use sidecar_model::pod::{Connection, Delivery, Journey, Simulator};
    use sidecar_model::Hook;
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let profiles: toml::Value = toml::from_str(
        &std::fs::read_to_string(workspace().join("corpus/istio-profiles.toml")).unwrap(),
    )
    .unwrap();
    let versions = ["1.12.0", "1.17.0", "1.18.0", "1.22.0", "1.24.0"];
    // (config, old version, new version, old ruleset, new ruleset, profile, pod)
    let mut jobs = Vec::new();
    for (cfg, entry) in profiles.as_table().unwrap() {
        if entry.get("skip").is_some() {
            continue;
        }
        let profile = match entry.get("profile") {
            Some(v) => Profile::from_toml(&toml::to_string(v).unwrap()).unwrap(),
            None => Profile::istio(),
        };
        let pod_ips: Vec<std::net::IpAddr> = entry
            .get("pod_ips")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap().parse().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        for pair in versions.windows(2) {
            let a = dir.join(format!("history/{}/{cfg}", pair[0]));
            let b = dir.join(format!("history/{}/{cfg}", pair[1]));
            let (Ok(ta), Ok(tb)) = (std::fs::read(&a), std::fs::read(&b)) else {
                continue;
            };
            let (Ok(ra), Ok(rb)) = (parse("old", &ta), parse("new", &tb)) else {
                continue;
            };
            jobs.push((
                cfg.clone(),
                pair[0],
                pair[1],
                ra.ruleset,
                rb.ruleset,
                profile.clone(),
                Pod::new(&pod_ips),
            ));
        }
    }
    assert!(jobs.len() >= 60, "only {} history pairs", jobs.len());
    // Two threads (Z3's context is per thread).
    let (left, right) = jobs.split_at(jobs.len() / 2);
    let results: Vec<(usize, Report)> = std::thread::scope(|s| {
        let run_all = |part: &[(String, &str, &str, Ruleset, Ruleset, Profile, Pod)],
                       base: usize| {
            part.iter()
                .enumerate()
                .map(|(i, (cfg, va, vb, ra, rb, prof, pod))| {
                    let r = diff(ra, rb, pod, prof, &Options::default())
                        .unwrap_or_else(|e| panic!("{cfg} {va}→{vb}: {e}"));
                    assert!(!r.unknown && !r.truncated, "{cfg} {va}→{vb}");
                    (base + i, r)
                })
                .collect::<Vec<_>>()
        };
        let h = s.spawn(move || run_all(left, 0));
        let mut v = run_all(right, left.len());
        v.extend(h.join().unwrap());
        v
    });
    let conn = |w: &sidecar_verify::check::Witness| Connection {
        proto: if w.proto == "udp" { 17 } else { 6 },
        src: Some(w.src),
        dst: w.dst,
        sport: w.sport,
        dport: w.dport,
        uid: w.uid,
        gid: w.gid,
        from_outside: w.from_outside,
    };
    let hops = |j: &Journey, ports: &mut Vec<u16>| -> Vec<Connection> {
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
    let mut changes = 0;
    let mut kernel_jobs = Vec::new();
    let mut ports: Vec<u16> = Profile::istio().proxy_ports;
    for (i, r) in &results {
        let (cfg, va, vb, ra, rb, prof, pod) = &jobs[*i];
        for c in &r.changes {
            let so = Simulator::new(ra, pod.clone(), prof.clone());
            let sn = Simulator::new(rb, pod.clone(), prof.clone());
            assert_eq!(so.journey(&conn(&c.witness)), c.old, "{cfg} {va}→{vb} old");
            assert_eq!(sn.journey(&conn(&c.witness)), c.new, "{cfg} {va}→{vb} new");
            changes += 1;
            if pod
                .ips
                .iter()
                .all(|ip| sidecar_verify::kernel::POD_IPS.contains(ip))
            {
                ports.extend(&prof.proxy_ports);
                kernel_jobs.push((ra.clone(), prof.clone(), hops(&c.old, &mut ports)));
                kernel_jobs.push((rb.clone(), prof.clone(), hops(&c.new, &mut ports)));
            }
        }
    }
    println!("{} history diffs, {changes} change classes", results.len());
    assert!(changes >= 10, "only {changes} change classes");
    use sidecar_verify::kernel::{self, unavailable, TestPod};
    if let Some(why) = unavailable() {
        println!("skipping the kernel confirmation of history witnesses: {why}");
        return;
    }
    ports.sort_unstable();
    ports.dedup();
    let mut tp = TestPod::create_with(Path::new(BIN), &ports).unwrap();
    let mut confirmed = 0;
    for (rs, prof, flows) in kernel_jobs {
        let sim = Simulator::new(&rs, Pod::new(&kernel::POD_IPS), prof);
        match kernel::run(&mut tp, &sim, &flows, 50) {
            Ok(k) => {
                assert!(k.disagreements.is_empty(), "{:?}", k.disagreements);
                confirmed += k.compared;
            }
            // Rulesets naming groups or ipsets this node lacks do not load here.
            Err(kernel::OracleError::Load(e)) => println!("not loadable here: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
    println!("{confirmed} witness hops confirmed by the kernel");
    assert!(confirmed >= 20);
}
