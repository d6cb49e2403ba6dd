//! The SMT encoding with the packet fixed agrees with the concrete evaluator, hit for hit: the
//! rules hit (in order, with their hook), drop/reject, where the hop is delivered and the
//! final destination. Over the classic ruleset, every Istio corpus ruleset and random rulesets.

#![cfg(test)]

use proptest::prelude::*;
use sidecar_model::gen::strategy::{cases, config, ruleset_strategy};
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, Family, Hook, Ruleset, DEFAULT_RULESET};
use sidecar_verify::corpus::{istio_dir, istio_iptables_files};
use sidecar_verify::smt::agree::hop_agrees;

fn pod() -> Pod {
    Pod::new(&["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()])
}

/// Compares one hop; returns a description of the first difference.
fn agree(rs: &Ruleset, family: Family, s: [u32; 12]) -> Result<(), String> {
    // Interface names from the encoder's enumeration (index 0 is "no interface").
    let names = sidecar_verify::smt::Ifaces::new(rs).unwrap().names;
    let names: Vec<&str> = names.iter().skip(1).map(String::as_str).collect();
    let (entry, pkt) =
        sidecar_model::gen::packet(&s, family, &[Hook::Output, Hook::Prerouting], &names);
    hop_agrees(rs, &pod(), &Profile::istio(), family, entry, pkt)
}

fn seeds(n: usize, mut x: u64) -> Vec<[u32; 12]> {
    (0..n)
        .map(|_| {
            let mut s = [0u32; 12];
            for v in &mut s {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                *v = (x >> 33) as u32;
            }
            s
        })
        .collect()
}

#[test]
fn classic_ruleset_agrees_with_the_evaluator() {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    for s in seeds(400, 1) {
        agree(&rs, Family::Ipv4, s).unwrap();
    }
}

/// Pairs of random rulesets as nft tables stacked in one namespace (two tables at each place:
/// newest first, nat until one binds), every hop the evaluator's.
#[test]
fn stacked_nft_tables_agree_with_the_evaluator() {
    let sample = sidecar_model::gen::sample(16, 77);
    for (i, pair) in sample.chunks(2).enumerate() {
        let [a, b] = pair else { continue };
        let rs = sidecar_model::nft::stack(
            sidecar_model::nft::translate(a).0,
            sidecar_model::nft::translate(b).0,
        );
        for (k, s) in seeds(60, i as u64 + 300).into_iter().enumerate() {
            let fam = if k % 2 == 1 {
                Family::Ipv6
            } else {
                Family::Ipv4
            };
            agree(&rs, fam, s)
                .map_err(|e| format!("pair {i}: {e}"))
                .unwrap();
        }
    }
}

#[test]
fn corpus_rulesets_agree_with_the_evaluator() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let mut n = 0;
    for (file, _) in istio_iptables_files(&dir) {
        let bytes = std::fs::read(dir.join(&file)).unwrap();
        let Ok(parsed) = parse(&file, &bytes) else {
            continue;
        };
        let rs = parsed.ruleset;
        for (i, s) in seeds(12, n as u64 + 7).into_iter().enumerate() {
            let fam = if i % 3 == 2 && !rs.ipv6.is_empty() {
                Family::Ipv6
            } else {
                Family::Ipv4
            };
            agree(&rs, fam, s)
                .map_err(|e| format!("{file}: {e}"))
                .unwrap();
        }
        n += 1;
    }
    assert!(n >= 150, "only {n} corpus rulesets");
}

proptest! {
    #![proptest_config(config(cases(96)))]

    #[test]
    fn random_rulesets_agree_with_the_evaluator(
        rs in ruleset_strategy(4, 6),
        pkts in prop::collection::vec(any::<[u32; 12]>(), 1..6),
    ) {
        for (i, s) in pkts.into_iter().enumerate() {
            let fam = if i % 2 == 1 && !rs.0.ipv6.is_empty() { Family::Ipv6 } else { Family::Ipv4 };
            if let Err(e) = agree(&rs.0, fam, s) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// A nat OUTPUT chain with a run of rules keyed by destination address (and protocol and
/// port), as `KUBE-SERVICES` is: the encoding takes runs of pairwise disjoint keys as flat
/// terms (`smt/encode/chain.rs`, `Run`). Keys drawn from a few addresses, protocols and ports
/// repeat, so runs end and start again; targets stop, continue, jump to a chain that may
/// return, or translate; the rules after the run show whether control left it.
fn keyed_run(rules: &[(usize, usize, usize, usize)]) -> Ruleset {
    let addrs = ["10.1.0.99", "10.96.0.1", "1.1.1.1", "10.1.0.5"];
    let ports = ["80", "8080", "53"];
    let targets = [
        "-j RETURN",
        "-j ACCEPT",
        "-j MARK --set-xmark 0x1/0x1",
        "-j SUB",
        "-g SUB",
        "-j DNAT --to-destination 10.1.0.99",
        "-j REDIRECT",
    ];
    let mut text = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:RUN - [0:0]\n:SUB - [0:0]\n-A OUTPUT -j RUN\n-A OUTPUT -j MARK --set-xmark 0x8/0x8\n",
    );
    for &(a, p, port, t) in rules {
        let head = format!("-A RUN -d {}/32", addrs[a % addrs.len()]);
        let proto = match p % 3 {
            0 => String::new(),
            1 => format!(" -p tcp -m tcp --dport {}", ports[port % ports.len()]),
            _ => format!(" -p udp -m udp --dport {}", ports[port % ports.len()]),
        };
        text += &format!("{head}{proto} {}\n", targets[t % targets.len()]);
    }
    text += "-A RUN -j MARK --set-xmark 0x4/0x4\n-A RUN -p tcp -j REDIRECT --to-ports 15006\n";
    text += "-A SUB -m mark --mark 0x1/0x1 -j RETURN\n-A SUB -p udp -j RETURN\n-A SUB -j MARK --set-xmark 0x2/0x2\n";
    text += "COMMIT\n";
    parse("keyed-run", text.as_bytes()).unwrap().ruleset
}

proptest! {
    #![proptest_config(config(cases(96)))]

    #[test]
    fn keyed_runs_agree_with_the_evaluator(
        rules in prop::collection::vec((0..4usize, 0..3usize, 0..3usize, 0..7usize), 2..12),
        pkts in prop::collection::vec((0..8u32, prop::sample::select(vec![6u32, 7, 9]), 0..3u32, any::<[u32; 12]>()), 1..8),
    ) {
        let rs = keyed_run(&rules);
        for (dst, port, proto, mut s) in pkts {
            // At OUTPUT, to one of the generator's addresses, on a port the rules name, TCP or
            // UDP (`sidecar_model::gen::packet` picks by these seeds), with no mark.
            s[0] = 0;
            s[2] = dst;
            s[4] = port;
            s[7] = proto;
            s[11] = 0;
            if let Err(e) = agree(&rs, Family::Ipv4, s) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
