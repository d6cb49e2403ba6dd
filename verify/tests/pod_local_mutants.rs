//! The single-rule mutants of the pod-local rules, enumerated by hand, that the catalog was
//! blind to before `pod-local` (issue 13: deleting ISTIO_OUTPUT rule 2 passed all nine
//! invariants): every one that changes behaviour (`diff` finds a routable change) is now
//! killed, and by the invariant named here; the ones named equivalent change nothing; the
//! applications' RETURN's mutants change only a process of gid 1337 and another uid
//! ([`Expect::GidOnly`]), which identity symmetry speaks about, not `pod-local`.
//!
//! The operators are the mutation test's: delete a rule, drop a `!`, swap two neighbours, a port
//! ±1, an owner id ±1. The rules are ISTIO_OUTPUT's pod-local ones: the proxy's redirect of its
//! own connections to the pod IP into 15006 (classic rule 2; CNI's rule 4, with its 15008
//! exception) and the applications' RETURN over lo (classic rule 3, CNI's rule 5).

#![cfg(test)]

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, Ruleset, DEFAULT_RULESET};
use sidecar_verify::check::Status;
use sidecar_verify::corpus::istio_dir;
use sidecar_verify::diff::{diff, Options};

/// What a mutant must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A routable change, and this invariant (among others, maybe) is violated.
    Killed(&'static str),
    /// No routable change.
    Equivalent,
    /// A routable change only to connections of a process with the proxy's gid 1337 and
    /// another uid (every changed class says `gid 1337` and a uid other than 1337): rule 3's mutants make
    /// the gid rules reachable over lo, so such a process's connection to the pod IP goes
    /// through 15006 like the uid-1337 proxy's. `pod-local` speaks for the proxy as it
    /// re-connects (uid 1337 and gid 1337) and holds; whether the proxy's other identities
    /// behave alike is identity symmetry's question (the original treats them unalike).
    GidOnly,
}

/// What a mutant does to its line.
#[derive(Debug, Clone, Copy)]
enum Edit {
    /// Deletes it.
    Delete,
    /// Replaces it with this line.
    Replace(&'static str),
    /// Swaps it with this (neighbouring) line.
    SwapWith(&'static str),
}

/// A mutant: a name, the line it edits (exactly as in the ruleset), the edit, and what it must
/// do.
struct Mutant {
    name: &'static str,
    line: &'static str,
    edit: Edit,
    expect: Expect,
}

fn load(text: &str) -> Ruleset {
    parse("mutant", text.as_bytes()).unwrap().ruleset
}

/// `text` with the mutant applied; panics when the line is not found once.
fn apply(text: &str, m: &Mutant) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at: Vec<usize> = (0..lines.len()).filter(|i| lines[*i] == m.line).collect();
    assert_eq!(
        at.len(),
        1,
        "{}: `{}` is not one line of the ruleset",
        m.name,
        m.line
    );
    let i = at[0];
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match m.edit {
        Edit::Delete => {
            out.remove(i);
        }
        Edit::SwapWith(other) => {
            let j = lines.iter().position(|l| *l == other).unwrap();
            assert_eq!(i.abs_diff(j), 1, "{}: not neighbours", m.name);
            out.swap(i, j);
        }
        Edit::Replace(w) => out[i] = w.to_string(),
    }
    out.join("\n") + "\n"
}

/// Runs every mutant against `text`; returns the failures.
fn run(label: &str, text: &str, profile: &Profile, mutants: &[Mutant]) -> Vec<String> {
    let original = load(text);
    let pod = Pod::default();
    let mut failures = Vec::new();
    for m in mutants {
        let mutated = apply(text, m);
        let r = diff(
            &original,
            &load(&mutated),
            &pod,
            profile,
            &Options::default(),
        )
        .unwrap_or_else(|e| panic!("{label} {}: {e}", m.name));
        assert!(
            !r.unknown,
            "{label} {}: the solver could not decide",
            m.name
        );
        // The original passes every invariant but identity-symmetry (Istio's gid rules after
        // its uid rules, a finding of its own): a mutant is killed by what the original passes.
        let old_bad: Vec<&str> = r
            .invariants
            .old
            .iter()
            .filter(|i| !i.status.passes())
            .map(|i| i.id)
            .collect();
        assert!(
            old_bad.iter().all(|id| *id == "identity-symmetry"),
            "{label}: the original must pass, but {old_bad:?}"
        );
        let changed = !r.changes.is_empty();
        let violated: Vec<&str> = r
            .invariants
            .new
            .iter()
            .filter(|i| i.status == Status::Violated && !old_bad.contains(&i.id))
            .map(|i| i.id)
            .collect();
        println!(
            "{label} {}: changed {changed}, violated {violated:?}",
            m.name
        );
        let ok = match m.expect {
            Expect::Killed(id) => changed && violated.contains(&id),
            Expect::Equivalent => !changed && violated.is_empty(),
            Expect::GidOnly => {
                changed
                    && !violated.contains(&"pod-local")
                    && r.changes.iter().all(|c| {
                        let d = &c.description;
                        d.contains(", gid 1337,") && !d.contains(", uid 1337,")
                    })
            }
        };
        if !ok {
            failures.push(format!(
                "{label} {}: expected {:?}, got changed {changed}, violated {violated:?}",
                m.name, m.expect
            ));
        }
    }
    failures
}

const C2: &str =
    "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT";
const C1: &str = "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN";
const C3: &str = "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN";

#[test]
fn the_classic_rulesets_pod_local_mutants_are_killed() {
    use Expect::*;
    let mutants = [
        Mutant {
            name: "delete rule 2",
            line: C2,
            edit: Edit::Delete,
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 2 without the `!` of -d",
            line: C2,
            edit: Edit::Replace(
                "-A ISTIO_OUTPUT -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT",
            ),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 2 uid 1336",
            line: C2,
            edit: Edit::Replace(
                "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1336 -j ISTIO_IN_REDIRECT",
            ),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 2 uid 1338",
            line: C2,
            edit: Edit::Replace(
                "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1338 -j ISTIO_IN_REDIRECT",
            ),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "swap rules 1 and 2",
            line: C1,
            edit: Edit::SwapWith(C2),
            expect: Killed("passthrough-not-recaptured"),
        },
        Mutant {
            name: "swap rules 2 and 3",
            line: C2,
            edit: Edit::SwapWith(C3),
            expect: Equivalent,
        },
        Mutant {
            name: "delete rule 3",
            line: C3,
            edit: Edit::Delete,
            expect: GidOnly,
        },
        Mutant {
            name: "rule 3 without its `!`",
            line: C3,
            edit: Edit::Replace("-A ISTIO_OUTPUT -o lo -m owner --uid-owner 1337 -j RETURN"),
            expect: GidOnly,
        },
        Mutant {
            name: "rule 3 uid 1336",
            line: C3,
            edit: Edit::Replace("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1336 -j RETURN"),
            expect: GidOnly,
        },
        Mutant {
            name: "rule 3 uid 1338",
            line: C3,
            edit: Edit::Replace("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1338 -j RETURN"),
            expect: GidOnly,
        },
    ];
    let failures = run("classic", DEFAULT_RULESET, &Profile::istio(), &mutants);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const N3: &str = "-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN";
const N4: &str = "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT";
const N5: &str = "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN";

/// Istio's CNI default (cni/pkg/plugin/testdata/basic.txt.golden), whose pod-local rule keeps
/// 15008 (HBONE) to the proxy itself.
#[test]
fn istios_cni_default_pod_local_mutants_are_killed() {
    use Expect::*;
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let text =
        std::fs::read_to_string(dir.join("cni/pkg/plugin/testdata/basic.txt.golden")).unwrap();
    // Its profile as corpus/istio-profiles.toml gives it.
    let profile = Profile {
        name: "basic".into(),
        exclude_inbound_ports: vec![15008, 15020, 15021, 15090],
        metrics_ports: vec![15020, 15021, 15090],
        exclude_outbound_ports: vec![15020],
        ..Profile::istio()
    };
    let r4 = |with: &'static str| Edit::Replace(with);
    let mutants = [
        Mutant {
            name: "delete rule 4",
            line: N4,
            edit: Edit::Delete,
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 4 without the `!` of -d",
            line: N4,
            edit: r4("-A ISTIO_OUTPUT -o lo -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 4 without the `!` of --dport",
            line: N4,
            edit: r4("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 4 port 15007",
            line: N4,
            edit: r4("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15007 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 4 port 15009",
            line: N4,
            edit: r4("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15009 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 4 uid 1336",
            line: N4,
            edit: r4("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1336 -j ISTIO_IN_REDIRECT"),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "rule 4 uid 1338",
            line: N4,
            edit: r4("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1338 -j ISTIO_IN_REDIRECT"),
            expect: Killed("pod-local"),
        },
        Mutant {
            name: "swap rules 3 and 4",
            line: N3,
            edit: Edit::SwapWith(N4),
            expect: Killed("passthrough-not-recaptured"),
        },
        Mutant {
            name: "swap rules 4 and 5",
            line: N4,
            edit: Edit::SwapWith(N5),
            expect: Equivalent,
        },
        Mutant {
            name: "delete rule 5",
            line: N5,
            edit: Edit::Delete,
            expect: GidOnly,
        },
        Mutant {
            name: "rule 5 without its `!`",
            line: N5,
            edit: Edit::Replace("-A ISTIO_OUTPUT -o lo -m owner --uid-owner 1337 -j RETURN"),
            expect: GidOnly,
        },
        Mutant {
            name: "rule 5 uid 1336",
            line: N5,
            edit: Edit::Replace("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1336 -j RETURN"),
            expect: GidOnly,
        },
        Mutant {
            name: "rule 5 uid 1338",
            line: N5,
            edit: Edit::Replace("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1338 -j RETURN"),
            expect: GidOnly,
        },
    ];
    let failures = run("CNI default", &text, &profile, &mutants);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const DNS_TCP: &str =
    "-A ISTIO_OUTPUT_DNS -d 127.0.0.53/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053";
const DNS_UDP: &str =
    "-A ISTIO_OUTPUT_DNS -d 127.0.0.53/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053";
const DNS_UID: &str = "-A ISTIO_OUTPUT_DNS -m owner --uid-owner 1337 -j RETURN";

/// The DNS rules of `corpus/rulesets/dns-servers.rules` (capture for the nameserver 127.0.0.53
/// only, a local resolver of uid 101): each mutant that changes behaviour is killed by `dns`,
/// and the witness of a break of the UDP rule alone is a UDP query (so `Dom::udp` is what the
/// evaluator replays, or `check` would have failed with a disagreement).
#[test]
fn the_dns_rules_mutants_are_killed() {
    use Expect::*;
    let root = sidecar_verify::corpus::workspace();
    let text = std::fs::read_to_string(root.join("corpus/rulesets/dns-servers.rules")).unwrap();
    let profile = Profile::from_toml(
        "dns_capture_port = 15053\ndns_servers = [\"127.0.0.53\"]\ndns_resolver_uid = 101\npod_local_exempt_ports = [15008, 53]\n",
    )
    .unwrap();
    let mutants = [
        Mutant {
            name: "delete the TCP DNS redirect",
            line: DNS_TCP,
            edit: Edit::Delete,
            expect: Killed("dns"),
        },
        Mutant {
            name: "delete the UDP DNS redirect",
            line: DNS_UDP,
            edit: Edit::Delete,
            expect: Killed("dns"),
        },
        Mutant {
            name: "the UDP DNS redirect for every nameserver (#30309)",
            line: DNS_UDP,
            edit: Edit::Replace(
                "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053",
            ),
            expect: Killed("dns"),
        },
        Mutant {
            name: "the UDP DNS redirect port 52",
            line: DNS_UDP,
            edit: Edit::Replace(
                "-A ISTIO_OUTPUT_DNS -d 127.0.0.53/32 -p udp -m udp --dport 52 -j REDIRECT --to-ports 15053",
            ),
            expect: Killed("dns"),
        },
        Mutant {
            name: "the UDP DNS redirect to 15054",
            line: DNS_UDP,
            edit: Edit::Replace(
                "-A ISTIO_OUTPUT_DNS -d 127.0.0.53/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15054",
            ),
            expect: Killed("dns"),
        },
        Mutant {
            name: "the proxy's DNS RETURN uid 1338",
            line: DNS_UID,
            edit: Edit::Replace("-A ISTIO_OUTPUT_DNS -m owner --uid-owner 1338 -j RETURN"),
            expect: Killed("dns"),
        },
    ];
    let failures = run("dns-servers", &text, &profile, &mutants);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The UDP rule alone broken: the witness is a UDP query, replayed by the evaluator.
    let m = &mutants[1];
    let rs = load(&apply(&text, m));
    let r = sidecar_verify::check::check(
        &rs,
        &sidecar_model::print_ruleset(&rs),
        &Pod::default(),
        &profile,
        &sidecar_verify::check::Options::default(),
    )
    .unwrap();
    let dns = r.invariants.iter().find(|i| i.id == "dns").unwrap();
    assert_eq!(dns.status, Status::Violated);
    let w = dns.witness.as_ref().unwrap();
    assert_eq!((w.proto.as_str(), w.dport), ("udp", 53), "{w:?}");
}
