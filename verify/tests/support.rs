//! "Why it holds": the supports `check` reports, tested against what they claim. An invariant
//! holds whatever the rules outside its support match, so deleting any one of them, or making
//! it match every packet, must leave the invariant holding; and the supports of the classic
//! ruleset must name the rules the article says each invariant rests on.

#![cfg(test)]

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, print_ruleset, Family, Rule, Ruleset, DEFAULT_RULESET};
use sidecar_verify::check::{check, explain, Status};
use sidecar_verify::prove;
use sidecar_verify::results::support::Support;

fn classic() -> Ruleset {
    parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset
}

fn supports(rs: &Ruleset) -> Vec<(&'static str, Support)> {
    let (pod, profile) = (Pod::default(), Profile::istio());
    let mut r = check(rs, &print_ruleset(rs), &pod, &profile, &Default::default()).unwrap();
    assert!(
        r.invariants.iter().all(|i| i.support.is_none()),
        "only on demand"
    );
    explain(rs, &pod, &profile, &Default::default(), &mut r).unwrap();
    // On the classic ruleset identity-symmetry is violated (the gid rules after the uid rules),
    // dns (no DNS capture) and dual-stack-parity (IPv4 only) have nothing to check; every other
    // invariant holds, and only those get a support.
    let not_holding: Vec<(&str, Status)> = r
        .invariants
        .iter()
        .filter(|i| i.status != Status::Holds)
        .map(|i| (i.id, i.status))
        .collect();
    assert_eq!(
        not_holding,
        [
            ("dns", Status::Vacuous),
            ("identity-symmetry", Status::Violated),
            ("dual-stack-parity", Status::Vacuous)
        ]
    );
    assert!(r
        .invariants
        .iter()
        .all(|i| i.status == Status::Holds || i.support.is_none()));
    r.invariants
        .iter()
        .filter(|i| i.status == Status::Holds)
        .map(|i| {
            (
                i.id,
                i.support
                    .clone()
                    .unwrap_or_else(|| panic!("{}: no support", i.id)),
            )
        })
        .collect()
}

fn texts(s: &Support) -> Vec<&str> {
    s.rules.iter().map(|r| r.text.as_str()).collect()
}

#[test]
fn the_classic_supports_name_the_rules_the_article_names() {
    let all = supports(&classic());
    let get = |id: &str| &all.iter().find(|(i, _)| *i == id).unwrap().1;
    let proxy = texts(get("proxy-not-recaptured"));
    assert!(
        proxy.contains(&"-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN")
            || proxy.contains(&"-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN"),
        "{proxy:?}"
    );
    let metrics = texts(get("metrics-bypass"));
    assert!(
        metrics.contains(&"-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN"),
        "{metrics:?}"
    );
    assert!(texts(get("passthrough-not-recaptured"))
        .contains(&"-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN"),);
    for (id, s) in &all {
        assert!(
            s.minimal,
            "{id}: the classic supports are small enough to minimise"
        );
    }
}

/// `rs` with the rule `n` (0-based) of chain `chain` of the nat table changed by `f` (`None`:
/// deleted).
fn edited(rs: &Ruleset, table: usize, chain: usize, n: usize, f: Option<fn(&mut Rule)>) -> Ruleset {
    let mut out = rs.clone();
    let rules = &mut out.ipv4[table].chains[chain].rules;
    match f {
        None => {
            rules.remove(n);
        }
        Some(f) => f(&mut rules[n]),
    }
    out
}

/// Matches every packet: no address, interface, protocol, fragment or module match.
fn match_all(r: &mut Rule) {
    r.src = None;
    r.dst = None;
    r.in_iface = None;
    r.out_iface = None;
    r.proto = None;
    r.fragment = None;
    r.matches.clear();
}

#[test]
fn a_rule_outside_the_support_does_not_matter() {
    let rs = classic();
    let all = supports(&rs);
    let pod = Pod::default();
    let profile = Profile::istio();
    let mut tried = 0;
    for (ti, t) in rs.ipv4.iter().enumerate() {
        for (ci, c) in t.chains.iter().enumerate() {
            for (ri, _) in c.rules.iter().enumerate() {
                let outside: Vec<&str> = all
                    .iter()
                    .filter(|(_, s)| {
                        !s.rules.iter().any(|r| {
                            r.family == Family::Ipv4
                                && r.table == t.kind
                                && r.chain == c.name
                                && r.rule as usize == ri + 1
                        })
                    })
                    .map(|(id, _)| *id)
                    .collect();
                if outside.is_empty() {
                    continue;
                }
                for (how, f) in [
                    ("deleted", None),
                    ("matching everything", Some(match_all as fn(&mut Rule))),
                ] {
                    let e = edited(&rs, ti, ci, ri, f);
                    let p = prove::ruleset(&e, &pod, &profile, &Default::default()).unwrap();
                    for id in &outside {
                        let i = p.invariants.iter().find(|i| i.id == *id).unwrap();
                        assert_eq!(
                            i.status,
                            Status::Holds,
                            "{id} does not rest on {} {} {} but fails with it {how}",
                            t.kind.name(),
                            c.name,
                            ri + 1
                        );
                        tried += 1;
                    }
                }
            }
        }
    }
    // Every invariant has rules outside its support on the classic ruleset.
    assert!(tried > 50, "{tried}");
}

#[test]
fn deleting_both_supporting_returns_breaks_proxy_not_recaptured() {
    // The other direction is not a property of deletions (deleting a needed rule may keep the
    // invariant by luck), but on the classic ruleset deleting the uid-1337 and gid-1337 RETURNs
    // together breaks proxy-not-recaptured.
    let rs = classic();
    let t = rs
        .ipv4
        .iter()
        .position(|t| t.kind == sidecar_model::TableKind::Nat)
        .unwrap();
    let c = rs.ipv4[t].chain_index("ISTIO_OUTPUT").unwrap();
    let mut e = rs.clone();
    e.ipv4[t].chains[c].rules.retain(|r| {
        let text = sidecar_model::print::print_rule(Family::Ipv4, "ISTIO_OUTPUT", r);
        !text.ends_with("-owner 1337 -j RETURN") || text.contains(" -o lo ")
    });
    let p = prove::ruleset(&e, &Pod::default(), &Profile::istio(), &Default::default()).unwrap();
    let i = p
        .invariants
        .iter()
        .find(|i| i.id == "proxy-not-recaptured")
        .unwrap();
    assert_eq!(i.status, Status::Violated);
}

#[test]
fn diff_names_the_invariants_whose_supporting_rules_the_change_touches() {
    let old = classic();
    let broken = std::fs::read_to_string(
        sidecar_verify::corpus::workspace().join("corpus/broken/no-uid-return.rules"),
    )
    .unwrap();
    let new = parse("no-uid-return", broken.as_bytes()).unwrap().ruleset;
    let (pod, profile) = (Pod::default(), Profile::istio());
    let r = sidecar_verify::diff::diff(&old, &new, &pod, &profile, &Default::default()).unwrap();
    let t = r
        .touched
        .iter()
        .find(|t| t.id == "proxy-not-recaptured")
        .expect("the uid-1337 RETURN is gone");
    assert_eq!(
        t.rules.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
        ["-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN"]
    );
    // Every touched rule is one the change removed: no rule of the new ruleset has its text.
    let new_text = print_ruleset(&new);
    for t in &r.touched {
        for x in &t.rules {
            assert!(
                !new_text.lines().any(|l| l == x.text),
                "{}: {}",
                t.id,
                x.text
            );
        }
    }
    // The same ruleset on both sides touches nothing.
    let same = sidecar_verify::diff::diff(&old, &old, &pod, &profile, &Default::default()).unwrap();
    assert!(same.touched.is_empty());
    assert!(same
        .invariants
        .old
        .iter()
        .all(|i| (i.status == Status::Holds) == i.support.is_some()));
}
