//! `diff` shows what matters first: classes ranked by impact, loops of connections addressed to
//! the proxy's own capture ports folded into one line, and class descriptions that name the
//! exact port and address sets (checked against sets worked out by hand from the rules).

#![cfg(test)]

use sidecar_model::pod::{Outcome, Pod, Profile};
use sidecar_model::{parse, Ruleset};
use sidecar_verify::corpus::workspace;
use sidecar_verify::diff::{diff, Impact, Options, Report};
use sidecar_verify::report::text;

fn classic_text() -> String {
    std::fs::read_to_string(workspace().join("corpus/istio-classic.rules")).unwrap()
}

fn ruleset(name: &str, text: &str) -> Ruleset {
    parse(name, text.as_bytes()).unwrap().ruleset
}

fn file(rel: &str) -> Ruleset {
    ruleset(
        rel,
        &std::fs::read_to_string(workspace().join(rel)).unwrap(),
    )
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

/// The classic ruleset with two edits: the outbound redirect spares dport 8080 (applications'
/// connections to remote port 8080 are no longer captured: a capture change), and the proxy's
/// and applications' connections over lo to 15001 are sent to the inbound listener first
/// (they loop before and after, only differently: folded).
fn constructed() -> (Ruleset, Ruleset) {
    let old = classic_text();
    let redirect = "-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n";
    let first = "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN\n";
    assert!(old.contains(redirect) && old.contains(first));
    let new = old
        .replace(
            redirect,
            "-A ISTIO_OUTPUT -p tcp -m tcp ! --dport 8080 -j ISTIO_REDIRECT\n",
        )
        .replace(
            first,
            &format!(
                "-A ISTIO_OUTPUT -o lo -p tcp -m tcp --dport 15001 -j ISTIO_IN_REDIRECT\n{first}"
            ),
        );
    (ruleset("old", &old), ruleset("new", &new))
}

#[test]
fn application_capture_comes_first_and_capture_port_loops_fold() {
    let (old, new) = constructed();
    let r = run(&old, &new);
    assert!(!r.truncated && !r.unknown);
    let impacts: Vec<Impact> = r.changes.iter().map(|c| c.impact).collect();
    // Ranked: never a class of less impact before one of more.
    assert!(impacts.windows(2).all(|w| w[0] <= w[1]), "{impacts:?}");
    // The capture change is first: an application's connection to a remote port 8080.
    let top = &r.changes[0];
    assert_eq!(top.impact, Impact::Capture, "{:#?}", r.changes);
    assert_eq!(top.witness.dport, 8080);
    assert!(!top.witness.from_outside);
    assert!(
        top.description.contains("dport 8080") && !top.description.contains("among others"),
        "{}",
        top.description
    );
    assert_eq!(
        top.before,
        "captured by 15001, then leaves the pod to 10.1.0.99:8080"
    );
    assert_eq!(top.after, "leaves the pod uncaptured, to 10.1.0.99:8080");
    // Folded: every connection addressed to 15001 or 15006, looping on both sides.
    let (shown, folded) = r.shown_and_folded();
    assert!(!folded.is_empty(), "{:#?}", r.changes);
    for c in &folded {
        assert_eq!(c.impact, Impact::CapturePortLoop);
        assert!([15001, 15006].contains(&c.witness.dport), "{c:#?}");
        assert_eq!(
            (c.old.outcome, c.new.outcome),
            (Outcome::Loop, Outcome::Loop)
        );
        assert!(c.before.starts_with("loops: ") && c.after.starts_with("loops: "));
    }
    // Every class the edits make is a capture change or a folded loop.
    assert!(
        shown.iter().all(|c| c.impact == Impact::Capture),
        "{shown:#?}"
    );
    // The text: the shown classes numbered, then one line for the folded ones.
    let t = text::diff(&r);
    assert!(t.contains("1. [application capture] "), "{t}");
    assert!(!t.contains("capture-port loop]"), "{t}");
    let fold = format!(
        "+ {} class(es) of connections addressed to the proxy's own capture ports (15001, 15006) loop before and after",
        folded.len()
    );
    assert_eq!(t.matches(&fold).count(), 1, "{t}");
    assert!(!t.contains("was "), "{t}");
    // JSON: every change carries its impact, in order.
    let json = serde_json::to_value(&r).unwrap();
    let names: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["impact"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"capture"));
    assert_eq!(names.last(), Some(&"capture-port-loop"));
}

/// classic → no-metrics-exclusion drops the RETURN of dport 15090 from ISTIO_INBOUND: exactly the
/// inbound connections to 15090 change (the other RETURNs stay, and every other port was
/// captured before and still is).
#[test]
fn only_dport_15090_inbound_changes_without_the_metrics_exclusion() {
    let r = run(
        &file("corpus/istio-classic.rules"),
        &file("corpus/broken/no-metrics-exclusion.rules"),
    );
    assert_eq!(r.changes.len(), 1, "{:#?}", r.changes);
    let c = &r.changes[0];
    assert_eq!(
        c.description,
        "from outside, tcp, from a non-local source, to a pod IP, any sport, dport 15090"
    );
    assert_eq!(c.impact, Impact::Capture);
    assert_eq!(c.before, "reaches proxy port 15090 uncaptured");
    assert_eq!(c.after, "captured by 15006, then reaches proxy port 15090");
}

/// classic → wrong-inbound-port redirects inbound to 15007: every inbound port but the five
/// RETURNs of ISTIO_INBOUND (22, 15008, 15020, 15021, 15090) changes, split by the old outcome:
/// 15001 and 15006 looped before (the inbound listener re-connects to them as the proxy and is
/// captured again), every other port reached the application.
#[test]
fn inbound_port_sets_are_named_exactly() {
    let r = run(
        &file("corpus/istio-classic.rules"),
        &file("corpus/broken/wrong-inbound-port.rules"),
    );
    let inbound: Vec<&str> = r
        .changes
        .iter()
        .filter(|c| c.witness.from_outside)
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        inbound,
        // Both of one impact (capture): in the order of their descriptions.
        [
            "from outside, tcp, from a non-local source, to a pod IP, any sport, dport 15001 or 15006",
            "from outside, tcp, from a non-local source, to a pod IP, any sport, dport not 22, 15001, 15006, 15008, 15020, 15021 or 15090",
        ],
        "{:#?}",
        r.changes
    );
    // An application's connection to its pod's 15001 over lo: every local destination but
    // 127.0.0.1 (rule 2 of ISTIO_OUTPUT spares it), from every local source but 127.0.0.6 (rule
    // 1 takes those).
    let own = r
        .changes
        .iter()
        .find(|c| {
            !c.witness.from_outside
                && c.witness.uid == 1000
                && c.witness.src.to_string() == "10.1.0.5"
        })
        .unwrap_or_else(|| panic!("{:#?}", r.changes));
    for want in [
        "from a local source other than 127.0.0.6",
        "to a local destination other than 127.0.0.1",
        "uid not 1337",
    ] {
        assert!(
            own.description.contains(want),
            "`{want}` missing from {}",
            own.description
        );
    }
}

/// The dport words of a description as a membership test, when they list a set: "any dport",
/// "dport 15090", "dport 15001 or 15006", "dport not 22, 15001 or 15090".
fn dport_set(description: &str) -> Option<Box<dyn Fn(u16) -> bool>> {
    let part = description
        .split(", dport ")
        .nth(1)
        .map(|p| format!("dport {p}"));
    let part = match description.rsplit(", ").next()? {
        "any dport" => return Some(Box::new(|_| true)),
        _ => part?,
    };
    if part.ends_with("among others") {
        return None;
    }
    let (negated, list) = match part.strip_prefix("dport not ") {
        Some(l) => (true, l.to_string()),
        None => (false, part.strip_prefix("dport ")?.to_string()),
    };
    let ports: Vec<u16> = list
        .replace(" or ", ", ")
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    Some(Box::new(move |v| ports.contains(&v) != negated))
}

/// Every listed dport set is the class's, as the evaluator sees it: with the other fields at the
/// witness's values, a port is in the words exactly when its connection hits the same rules on
/// its first hop on both sides and ends the same ways as the witness (the class's definition),
/// on ports inside, outside and next to every listed one.
#[test]
fn listed_port_sets_agree_with_the_evaluator() {
    use sidecar_model::pod::{Journey, Simulator};
    let (co, cn) = constructed();
    let mut pairs = vec![(co, cn)];
    for f in [
        "wrong-inbound-port",
        "no-metrics-exclusion",
        "redirect-first",
        "no-output-jump",
    ] {
        pairs.push((
            file("corpus/istio-classic.rules"),
            file(&format!("corpus/broken/{f}.rules")),
        ));
    }
    let sig = |j: &Journey| (j.hops.first().map(|h| h.matched.clone()), j.outcome);
    let mut checked = 0;
    for (old, new) in &pairs {
        let r = run(old, new);
        let so = Simulator::new(old, Pod::default(), Profile::istio());
        let sn = Simulator::new(new, Pod::default(), Profile::istio());
        for c in &r.changes {
            let Some(inside) = dport_set(&c.description) else {
                continue;
            };
            let want = (sig(&c.old), sig(&c.new));
            let mut samples: Vec<u16> = vec![0, 1, 22, 53, 80, 443, 8080, 15000, 15090, 65535];
            for p in c.description.split(|ch: char| !ch.is_ascii_digit()) {
                if let Ok(p) = p.parse::<u16>() {
                    samples.extend([p.saturating_sub(1), p, p.saturating_add(1)]);
                }
            }
            for v in samples {
                let mut w = c.witness.clone();
                w.dport = v;
                let got = (
                    sig(&so.journey(&w.connection())),
                    sig(&sn.journey(&w.connection())),
                );
                assert_eq!(
                    got == want,
                    inside(v),
                    "dport {v} against `{}`",
                    c.description
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 300, "only {checked} ports checked");
}

/// A class of IPv6 connections says so; an IPv4 class goes without (Istio 1.17.0 → 1.18.0 of
/// `ipv6-inbound-ports`: the proxy's connections to its own 15008 stop being captured, in both
/// families).
#[test]
fn ipv6_classes_say_ipv6() {
    let Some(dir) = sidecar_verify::corpus::istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let golden = "tools/istio-iptables/pkg/capture/testdata/ipv6-inbound-ports.golden";
    let load = |v: &str| {
        let p = dir.join(format!("history/{v}/{golden}"));
        parse(&p.display().to_string(), &std::fs::read(&p).unwrap())
            .unwrap()
            .ruleset
    };
    let pod = Pod::new(&["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()]);
    let r = diff(
        &load("1.17.0"),
        &load("1.18.0"),
        &pod,
        &Profile::istio(),
        &Options::default(),
    )
    .unwrap();
    let mut families = [false, false];
    for c in &r.changes {
        let v6 = c.witness.dst.is_ipv6();
        families[usize::from(v6)] = true;
        assert_eq!(c.description.contains(", IPv6, "), v6, "{}", c.description);
        assert_eq!(c.witness.dport, 15008);
        assert_eq!(c.after, "reaches proxy port 15008 uncaptured");
    }
    assert_eq!(families, [true, true], "{:#?}", r.changes);
}

/// Outbound capture that spares 10.0.0.0/8: exactly the applications' connections to non-local
/// destinations in 10.0.0.0/8 change, which the words say with the kind kept (the pod's own
/// 10.1.0.5 is in the prefix but not in the class), and the evaluator agrees on addresses inside,
/// at the edges of and outside the prefix.
#[test]
fn an_excluded_prefix_is_named_with_its_kind() {
    use sidecar_model::pod::{Journey, Simulator};
    let old = classic_text();
    let redirect = "-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n";
    let new = old.replace(
        redirect,
        "-A ISTIO_OUTPUT ! -d 10.0.0.0/8 -j ISTIO_REDIRECT\n",
    );
    let (old, new) = (ruleset("old", &old), ruleset("new", &new));
    let r = run(&old, &new);
    assert_eq!(r.changes.len(), 1, "{:#?}", r.changes);
    let c = &r.changes[0];
    assert_eq!(c.impact, Impact::Capture);
    assert!(
        c.description
            .contains(", to a non-local destination in 10.0.0.0/8, "),
        "{}",
        c.description
    );
    let so = Simulator::new(&old, Pod::default(), Profile::istio());
    let sn = Simulator::new(&new, Pod::default(), Profile::istio());
    let sig = |j: &Journey| (j.hops.first().map(|h| h.matched.clone()), j.outcome);
    let want = (sig(&c.old), sig(&c.new));
    for (dst, inside) in [
        ("10.0.0.0", true),
        ("10.255.255.255", true),
        ("10.1.0.99", true),
        ("9.255.255.255", false),
        ("11.0.0.0", false),
        ("192.168.0.1", false),
    ] {
        let mut w = c.witness.clone();
        w.dst = dst.parse().unwrap();
        let got = (
            sig(&so.journey(&w.connection())),
            sig(&sn.journey(&w.connection())),
        );
        assert_eq!(got == want, inside, "{dst}");
    }
}
