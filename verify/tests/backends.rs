//! Istio's two backends compared: every configuration with both an iptables and an nft golden in
//! Istio's corpus is diffed (`diff IPTABLES NFT`, with the configuration's profile and pod from
//! `corpus/istio-profiles.toml`), and `reports/backends.md` must say what this finds: per pair
//! "same behaviour", or each class of connections that behaves differently with its witness and
//! both journeys. `scripts/backends` rewrites the report (`BACKENDS_UPDATE=1`); without Istio's
//! corpus the test prints a line and passes.

#![cfg(test)]

use std::fmt::Write as _;

use sidecar_model::parse;
use sidecar_model::pod::Simulator;
use sidecar_model::pod::{Pod, Profile};
use sidecar_verify::corpus::{
    iptables_counterpart, istio_dir, istio_nft_files, istio_pod_ips, istio_profile_table,
    istio_profiles, workspace,
};
use sidecar_verify::diff::{diff, Options};
use sidecar_verify::kernel;
use sidecar_verify::results::diff::Impact;

/// A pair's differences, for the kernel to confirm: both rulesets, the profile, and the
/// witnesses' journeys on each side.
struct Claim {
    name: String,
    old: sidecar_model::Ruleset,
    new: sidecar_model::Ruleset,
    profile: Profile,
    journeys: Vec<(sidecar_model::pod::Journey, sidecar_model::pod::Journey)>,
}

/// Why the kernel oracle cannot replay a hop of the class's journeys, if it cannot.
fn not_replayable(c: &sidecar_verify::results::diff::Change) -> Option<String> {
    let (flows, _) = kernel::journey_flows([&c.old, &c.new]);
    flows.iter().find_map(kernel::unsupported)
}

/// The report's text, and the differences it claims.
/// Computed once for both tests of this file (about 27 s of diffs).
fn report() -> Option<&'static (String, Vec<Claim>)> {
    static REPORT: std::sync::OnceLock<Option<(String, Vec<Claim>)>> = std::sync::OnceLock::new();
    REPORT.get_or_init(compute_report).as_ref()
}

fn compute_report() -> Option<(String, Vec<Claim>)> {
    let dir = istio_dir()?;
    let profiles = istio_profiles().unwrap();
    let mut pairs = Vec::new();
    for nft in istio_nft_files(&dir) {
        let Some(ipt) = iptables_counterpart(&nft).filter(|f| dir.join(f).is_file()) else {
            continue;
        };
        pairs.push((ipt, nft));
    }
    let mut claims = Vec::new();
    let mut same = 0;
    let mut same_dual = 0;
    let mut body = String::new();
    let mut summary = String::new();
    for (ipt, nft) in &pairs {
        let table = istio_profile_table(&profiles, ipt, None)
            .unwrap_or_else(|| panic!("no entry `{ipt}` in corpus/istio-profiles.toml"));
        let profile = Profile::from_toml(&toml::to_string(&table).unwrap()).unwrap();
        let old = parse(ipt, &std::fs::read(dir.join(ipt)).unwrap())
            .unwrap()
            .ruleset;
        let new = parse(nft, &std::fs::read(dir.join(nft)).unwrap())
            .unwrap()
            .ruleset;
        let pod = Pod::for_rulesets(&istio_pod_ips(&profiles, ipt), &[&old, &new]);
        let r = diff(&old, &new, &pod, &profile, &Options::default())
            .unwrap_or_else(|e| panic!("{ipt} vs {nft}: {e}"));
        let name = nft
            .rsplit('/')
            .next()
            .unwrap_or(nft)
            .trim_end_matches(".golden");
        let origin = if nft.starts_with("cni/") {
            "cni"
        } else {
            "istio-nftables"
        };
        let verdict = if r.unknown {
            "**unknown** (the solver could not decide)".to_string()
        } else if r.changes.is_empty() {
            same += 1;
            "same behaviour".to_string()
        } else {
            format!("**{} class(es) differ**", r.changes.len())
        };
        // With IPv6 off, iptables holds no IPv6 rules while nft's `inet` tables see IPv6 too:
        // on a pod that has an IPv6 address all the same, do they still agree?
        let dual = (pod.families().len() == 1).then(|| {
            let ips = ["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
            let pod2 = Pod::for_rulesets(&ips, &[&old, &new]);
            let r2 = diff(&old, &new, &pod2, &profile, &Options::default())
                .unwrap_or_else(|e| panic!("{ipt} vs {nft} (dual-stack pod): {e}"));
            (pod2, r2)
        });
        let dual_verdict = match &dual {
            None => "(the pod is dual-stack)".to_string(),
            Some((_, r2)) if r2.unknown => "**unknown**".to_string(),
            Some((_, r2)) if r2.changes.is_empty() => {
                same_dual += 1;
                "same behaviour".to_string()
            }
            Some((_, r2)) => format!("**{} class(es) differ**", r2.changes.len()),
        };
        let _ = writeln!(
            summary,
            "| {origin} | `{name}` | {} | {verdict} | {dual_verdict} |",
            pod.header()
        );
        for (p, rr) in std::iter::once((&pod, &r)).chain(dual.as_ref().map(|(p, r)| (p, r))) {
            if rr.changes.is_empty() && !rr.unknown {
                continue;
            }
            claims.push(Claim {
                name: format!("{nft} (pod {})", p.header()),
                old: old.clone(),
                new: new.clone(),
                profile: profile.clone(),
                // The classes the report shows; the folded capture-port loops are not claims
                // (and one of them meets a known gap of the model, docs/kernel-oracle.md).
                journeys: rr
                    .changes
                    .iter()
                    .filter(|c| c.impact != Impact::CapturePortLoop && not_replayable(c).is_none())
                    .map(|c| (c.old.clone(), c.new.clone()))
                    .collect(),
            });
            let (shown, _) = rr.shown_and_folded();
            let mut kernel_lines = String::new();
            for (i, c) in shown.iter().enumerate() {
                let line = match not_replayable(c) {
                    None => "replayed in the kernel: agrees".to_string(),
                    Some(why) => format!("not replayed in the kernel: a hop {why}"),
                };
                let _ = writeln!(kernel_lines, "- class {}: {line}", i + 1);
            }
            let _ = writeln!(body, "\n## {origin}: `{name}`, pod {}\n", p.header());
            let ips: String = p.ips.iter().map(|a| format!(" --pod-ip {a}")).collect();
            let _ = writeln!(
                body,
                "`sidecar-verify diff{ips} --profile PROFILE {ipt} {nft}` (PROFILE: the entry `{ipt}` of corpus/istio-profiles.toml):\n"
            );
            let _ = writeln!(body, "```\n{}```\n", sidecar_verify::report::text::diff(rr));
            body.push_str(&kernel_lines);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "# Istio's iptables and nftables backends compared\n");
    let _ = writeln!(
        out,
        "Generated by `scripts/backends` (kept fresh by `verify/tests/backends.rs`) from Istio's corpus: \
         each configuration that has both an iptables golden and an nft golden is diffed, the iptables \
         rules as OLD and the nft rules as NEW, with the configuration's profile and pod from \
         `corpus/istio-profiles.toml`. \"Same behaviour\" is a proof: no connection of the pod, \
         in any family it has, takes a different journey under the two.\n"
    );
    let _ = writeln!(
        out,
        "{same} of {} pairs behave the same on the configuration's pod.",
        pairs.len()
    );
    let _ = writeln!(
        out,
        "{same_dual} of the {} configurations with IPv6 off behave the same on a pod that has an IPv6 \
         address too (10.1.0.5 and fd00::5), where nft's `inet` tables see IPv6 connections and \
         iptables holds no IPv6 rule.\n",
        summary.lines().filter(|l| !l.ends_with("(the pod is dual-stack) |")).count()
    );
    let _ = writeln!(
        out,
        "| generator | configuration | configuration's pod | result | on a dual-stack pod |\n|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "\nEach difference below says whether the kernel confirms it: `verify/tests/backends.rs` \
         replays both journeys of the class's witness hop by hop in a pod of network namespaces, \
         the iptables rules loaded with iptables-restore and the nft rules with `nft -f`, and \
         asserts that the kernel agrees with the model on every hop (rules hit, where the \
         connection arrives); a connection from outside arriving on another interface than eth0 \
         comes through a veth pair of that name. A class whose journeys the oracle's pod \
         cannot reproduce would say so. The folded classes \
         (connections addressed to the proxy's own capture ports, looping on both sides) are \
         not claims and are not replayed.\n"
    );
    out.push_str(&summary);
    out.push_str(&body);
    Some((out, claims))
}

#[test]
fn backends_report_is_fresh() {
    let Some((text, _)) = report() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let path = workspace().join("reports/backends.md");
    if std::env::var_os("BACKENDS_UPDATE").is_some() {
        std::fs::write(&path, text).unwrap();
        println!("wrote {}", path.display());
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        &old == text,
        "reports/backends.md is stale: run scripts/backends\n--- new\n{text}"
    );
}

/// Every difference the report claims is the kernel's: each witness's journeys (old on the
/// iptables rules, new on the nft rules) agree with netfilter hop by hop.
#[test]
fn every_claimed_difference_is_confirmed_in_the_kernel() {
    if let Some(why) = sidecar_verify::netns::unavailable() {
        println!("skipping the kernel confirmation: {why}");
        return;
    }
    let Some((_, claims)) = report() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let mut hops = 0;
    for c in claims.iter().filter(|c| !c.journeys.is_empty()) {
        for (rs, side) in [(&c.old, 0), (&c.new, 1)] {
            let journeys = c
                .journeys
                .iter()
                .map(|(o, n)| if side == 0 { o } else { n });
            let (flows, mut ports) = kernel::journey_flows(journeys);
            ports.extend(&c.profile.proxy_ports);
            ports.extend(flows.iter().map(|f| f.dport));
            ports.sort_unstable();
            ports.dedup();
            let sim = Simulator::new(rs, Pod::new(&kernel::POD_IPS), c.profile.clone());
            let mut tp = kernel::TestPod::create_with(
                std::path::Path::new(env!("CARGO_BIN_EXE_sidecar-verify")),
                &ports,
            )
            .unwrap();
            let r =
                kernel::run(&mut tp, &sim, &flows, 1).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let which = if side == 0 { "iptables" } else { "nft" };
            assert!(
                r.disagreements.is_empty(),
                "{} ({which} side): {:#?}",
                c.name,
                r.disagreements
            );
            assert_eq!(
                r.skipped_unsupported, 0,
                "{}: a hop the oracle cannot run",
                c.name
            );
            assert_eq!(r.skipped_undecided, 0, "{}: an undecidable hop", c.name);
            assert!(r.compared > 0, "{}: nothing replayed", c.name);
            hops += r.compared;
        }
    }
    let classes: usize = claims.iter().map(|c| c.journeys.len()).sum();
    println!("backends: {classes} classes of {} differing pairs replayed, {hops} hops agree with the kernel", claims.len());
}
