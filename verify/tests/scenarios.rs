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
            ("x-proxy-gid", None),
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

/// The scenarios come from the profile: under each other mesh's built-in profile, on our
/// ruleset of its generator's default, they use its listeners, identity, ports and DNS, name
/// its chains in the path, and compare no claim of the (Istio) article.
#[test]
fn scenarios_follow_the_profile_of_each_mesh() {
    use sidecar_verify::scenarios::{text, ClaimedArrival::*};
    let root = sidecar_verify::corpus::workspace();
    for (mesh, chain, outbound, admin, dns) in [
        ("kuma", "KUMA_MESH_OUTBOUND", 15001, Some(9901), Some(15053)),
        ("linkerd", "PROXY_INIT_OUTPUT", 4140, Some(4190), None),
        (
            "consul",
            "CONSUL_PROXY_OUTPUT",
            15001,
            Some(19000),
            Some(8600),
        ),
    ] {
        let path = root.join(format!("corpus/rulesets/{mesh}.rules"));
        let rs = parse(mesh, &std::fs::read(&path).unwrap()).unwrap().ruleset;
        let profile = Profile::named(mesh).unwrap();
        let mut sim = Simulator::new(&rs, Pod::default(), profile.clone());
        let results = run_scenarios(&mut sim);
        let by_id = |id: &str| results.iter().find(|r| r.scenario.id == id);
        assert!(results.iter().all(|r| r.agrees.is_none()), "{mesh}");
        // Outbound: the mesh's outbound listener, then out of the pod, through its own chain.
        let out = by_id("2-local-to-remote").unwrap();
        let seen = sidecar_verify::scenarios::observed(&out.journey);
        assert_eq!(
            seen.iter().map(|h| h.arrives).collect::<Vec<_>>(),
            [Listener(outbound), Remote],
            "{mesh}: {}",
            out.model_path
        );
        assert!(out.model_path.contains(chain), "{mesh}: {}", out.model_path);
        // The proxy's own admin port over loopback: reached untouched, as the proxy.
        let five = by_id("5-envoy-localhost");
        assert_eq!(five.map(|r| r.scenario.connection.dport), admin, "{mesh}");
        let five = five.unwrap();
        assert_eq!(five.scenario.connection.uid, profile.proxy_uid);
        assert!(five
            .scenario
            .title
            .contains(&format!("uid {}", profile.proxy_uid)));
        assert_eq!(five.journey.hops.len(), 1, "{mesh}: {}", five.model_path);
        // DNS: an application's UDP query reaches the mesh's DNS listener, when it has one.
        let q = by_id("x-app-dns");
        assert_eq!(q.is_some(), dns.is_some(), "{mesh}");
        if let (Some(q), Some(port)) = (q, dns) {
            assert_eq!(q.scenario.connection.proto, 17);
            let seen = sidecar_verify::scenarios::observed(&q.journey);
            assert_eq!(
                seen.first().map(|h| h.arrives),
                Some(Listener(port)),
                "{mesh}"
            );
        }
        let t = text(&results, &profile);
        assert!(t.starts_with("scenarios of \"Traffic types and iptables rules in Istio sidecar explained\" (Tetrate blog"), "{t}");
        assert!(
            t.contains(&format!("not compared under profile `{mesh}`")),
            "{t}"
        );
        assert!(!t.contains("AGREE"), "{t}");
    }
    // Linkerd promises its admin port 4191 as a metrics port: the scrape is left alone.
    let rs = parse(
        "l",
        &std::fs::read(root.join("corpus/rulesets/linkerd.rules")).unwrap(),
    )
    .unwrap()
    .ruleset;
    let mut sim = Simulator::new(&rs, Pod::default(), Profile::named("linkerd").unwrap());
    let scrape = run_scenarios(&mut sim)
        .into_iter()
        .find(|r| r.scenario.id == "3-prometheus-scrape")
        .unwrap();
    assert_eq!(scrape.scenario.connection.dport, 4191);
    assert_eq!(
        sidecar_verify::scenarios::observed(&scrape.journey)
            .first()
            .map(|h| h.arrives),
        Some(Listener(4191))
    );
}
