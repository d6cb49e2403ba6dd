//! The article's six kinds of sidecar traffic and the extra cases, as journeys over the classic
//! ruleset. Each hop's rule hits were compared once by hand with the kernel's per-rule counters
//! (`scripts/handcheck-classic`, output in docs/handcheck.md); the snapshots pin them.

#![cfg(test)]

use sidecar_model::pod::{Pod, Profile, Simulator};
use sidecar_model::{parse, DEFAULT_RULESET};
use sidecar_verify::journey_text::journey_text;
use sidecar_verify::scenarios::run_scenarios;

#[test]
fn scenarios_on_the_classic_ruleset() {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let mut sim = Simulator::new(&rs, Pod::default(), Profile::istio());
    let results = run_scenarios(&mut sim);
    assert_eq!(results.len(), 10);
    for r in &results {
        let mut text = format!("{}\nmodel: {}\n", r.scenario.title, r.model_path);
        if let Some(w) = &r.why {
            text.push_str(&format!("disagrees with the article: {w}\n"));
        }
        text.push_str(&journey_text(&rs, &r.journey));
        insta::assert_snapshot!(r.scenario.id, text);
    }
    // What the kernel showed by hand: the article is right about 1, 2 and 4; for 3 the scrape
    // ends at 15090 in PREROUTING/INPUT; for 5 and 6 uid 1337 is caught by rule 4 first.
    let agree: Vec<(&str, Option<bool>)> =
        results.iter().map(|r| (r.scenario.id, r.agrees)).collect();
    assert_eq!(
        agree,
        vec![
            ("1-remote-to-local", Some(true)),
            ("2-local-to-remote", Some(true)),
            ("3-prometheus-scrape", Some(false)),
            ("4-local-to-local", Some(true)),
            ("5-envoy-localhost", Some(false)),
            ("6-sidecar-to-istiod", Some(false)),
            ("x-own-pod-ip", None),
            ("x-gid-1337", None),
            ("x-root", None),
            ("x-app-localhost", None),
        ]
    );
}

#[test]
fn trace_json_contract() {
    let bin = env!("CARGO_BIN_EXE_sidecar-verify");
    let out = std::process::Command::new(bin)
        .args([
            "trace",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--dst",
            "10.1.0.99",
            "--dport",
            "80",
            "--pod-ip",
            "10.1.0.5",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "remote");
    let hop = &v["hops"][0];
    assert_eq!(hop["hook"], "OUTPUT");
    assert_eq!(hop["verdict"], serde_json::json!({"redirect": 15001}));
    assert_eq!(hop["delivered_to"], serde_json::json!({"listener": 15001}));
    let matched: Vec<(String, String, u64)> = hop["matched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["table"].as_str().unwrap().into(),
                m["chain"].as_str().unwrap().into(),
                m["rule"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        matched,
        vec![
            ("nat".into(), "OUTPUT".into(), 1),
            ("nat".into(), "ISTIO_OUTPUT".into(), 9),
            ("nat".into(), "ISTIO_REDIRECT".into(), 1)
        ]
    );
    assert_eq!(
        v["hops"][1]["delivered_to"],
        serde_json::json!({"remote": "10.1.0.99:80"})
    );
}
