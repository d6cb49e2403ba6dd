//! What `pod-local` and `dns` find on Istio's own files, confirmed in real netfilter: every hop
//! of every witness journey of theirs on a configuration of Istio's corpus (with the profile of
//! `corpus/istio-profiles.toml`) goes where the model says in the kernel oracle's pod, and so
//! does ztunnel's own UDP DNS query in the ambient versions whose UDP DNS redirect has no mark
//! exemption (Istio 1.21-1.23). Our own broken rulesets' witnesses are confirmed by
//! `every_witness_is_confirmed_by_the_kernel` (tests/check.rs). Runs when the machine can (root,
//! iproute2, iptables, nftables) and Istio's corpus is here; otherwise says why and passes.

#![cfg(test)]

use std::net::IpAddr;
use std::path::Path;

use sidecar_model::pod::{Connection, Delivery, Pod, Profile, Simulator};
use sidecar_model::{parse, print_ruleset};
use sidecar_verify::check::{check, Options, Status};
use sidecar_verify::corpus::{
    istio_dir, istio_iptables_files, istio_key, istio_pod_ips, istio_profile_table, workspace,
};
use sidecar_verify::kernel::{self, unavailable, TestPod};

/// The entry of `file` in corpus/istio-profiles.toml: its profile (the `"*"` entry's values,
/// the entry's, then both for the file's history tag, as tests/istio_corpus_check.rs builds it)
/// and pod addresses.
fn entry(profiles: &toml::Table, file: &str) -> Option<(Profile, Vec<IpAddr>)> {
    let (key, tag) = istio_key(file);
    if profiles.get(key)?.get("skip").is_some() {
        return None;
    }
    let table = istio_profile_table(profiles, key, tag)?;
    let profile = Profile::from_toml(&toml::to_string(&table).unwrap()).unwrap();
    Some((profile, istio_pod_ips(profiles, key)))
}

/// Ztunnel's own UDP DNS query to a cluster nameserver, as it re-connects (its mark).
fn ztunnel_udp_query(p: &Profile) -> Connection {
    Connection {
        proto: 17,
        src: None,
        dst: "10.96.0.10".parse().unwrap(),
        sport: 40000,
        dport: 53,
        uid: p.proxy_uid,
        gid: p.proxy_gid,
        from_outside: false,
        mark: p.reconnect_mark(),
        iface: None,
    }
}

#[test]
fn new_invariants_witnesses_on_istios_corpus_are_confirmed_by_the_kernel() {
    if let Some(why) = unavailable() {
        println!("skipping the kernel confirmation: {why}");
        return;
    }
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let profiles: toml::Table = toml::from_str(
        &std::fs::read_to_string(workspace().join("corpus/istio-profiles.toml")).unwrap(),
    )
    .unwrap();
    let (mut confirmed, mut files, mut ztunnel_loops) = (0, Vec::new(), 0);
    for (file, _) in istio_iptables_files(&dir) {
        let Some((profile, ips)) = entry(&profiles, &file) else {
            continue;
        };
        let Ok(p) = parse(&file, &std::fs::read(dir.join(&file)).unwrap()) else {
            continue;
        };
        let rs = p.ruleset;
        let report = match check(
            &rs,
            &print_ruleset(&rs),
            &Pod::new(&ips),
            &profile,
            &Options::default(),
        ) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let found: Vec<_> = report
            .invariants
            .iter()
            .filter(|i| i.status == Status::Violated && ["pod-local", "dns"].contains(&i.id))
            .collect();
        let sim = Simulator::new(&rs, Pod::new(&kernel::POD_IPS), profile.clone());
        let (mut flows, mut ports) =
            kernel::journey_flows(found.iter().filter_map(|i| i.journey.as_ref()));
        // Ztunnel's own UDP query where the model sends it back to the DNS listener.
        let z = ztunnel_udp_query(&profile);
        let z_back = profile.proxy_mark.is_some()
            && profile
                .dns_capture_port
                .is_some_and(|d| sim.hop(&z).delivered_to == Delivery::Listener(d));
        if z_back {
            flows.push(z);
            ztunnel_loops += 1;
        }
        if flows.is_empty() {
            continue;
        }
        ports.extend(&profile.proxy_ports);
        ports.extend(flows.iter().map(|c| c.dport));
        ports.sort_unstable();
        ports.dedup();
        let mut tp =
            TestPod::create_with(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), &ports).unwrap();
        let r = match kernel::run(&mut tp, &sim, &flows, 1) {
            Err(kernel::OracleError::Load(e)) => {
                println!("{file}: the kernel refuses it here: {e}");
                continue;
            }
            r => r.unwrap(),
        };
        assert!(r.disagreements.is_empty(), "{file}: {:?}", r.disagreements);
        assert_eq!(
            r.skipped_unsupported, 0,
            "{file}: a hop the oracle cannot run"
        );
        println!(
            "{file}: {} hop(s) confirmed ({}{})",
            r.compared,
            found.iter().map(|i| i.id).collect::<Vec<_>>().join(", "),
            if z_back {
                ", ztunnel's own UDP query"
            } else {
                ""
            }
        );
        confirmed += r.compared;
        files.push(file);
    }
    // The ambient files of Istio 1.21 and 1.23 (default, default_ipv6): dns's TCP witness and
    // ztunnel's own UDP query.
    assert!(files.len() >= 3, "only {files:?}");
    assert!(
        ztunnel_loops >= 3,
        "ztunnel's query captured back in {ztunnel_loops} files"
    );
    assert!(confirmed >= 6, "only {confirmed} hops confirmed");
}
