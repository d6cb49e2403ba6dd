//! The reports for a person, as `check` and `diff` print them by default.

use std::fmt::Write as _;

use sidecar_model::eval::Packet;
use sidecar_model::pod::Pod;
use sidecar_model::{Family, Ruleset};

use crate::journey_text::journey_text;
use crate::results::check::{self, RuleStatus};
use crate::results::{diff, replay_command, InvariantResult, Status, Witness};

fn witness_text(w: &Witness) -> String {
    format!("{} ({})", w.connection_words(), w.context_words())
}

fn packet_text(p: &Packet) -> String {
    let mut s = format!(
        "proto {} {} -> {}",
        p.proto,
        std::net::SocketAddr::new(p.src, p.sport),
        std::net::SocketAddr::new(p.dst, p.dport)
    );
    if let Some(i) = p.in_iface {
        s.push_str(&format!(" in {}", i.as_str()));
    }
    if let Some(o) = p.out_iface {
        s.push_str(&format!(" out {}", o.as_str()));
    }
    if p.has_socket {
        s.push_str(&format!(" uid {} gid {}", p.uid, p.gid));
    } else {
        s.push_str(" (no socket)");
    }
    if p.ctstate != sidecar_model::eval::ConnState::New {
        s.push_str(&format!(" ctstate {:?}", p.ctstate));
    }
    if p.mark != 0 {
        s.push_str(&format!(" mark {:#x}", p.mark));
    }
    s
}

/// `check`'s report for a person; `rules_arg` is the RULES argument as given (for the replay
/// commands).
pub fn check(report: &check::Report, rs: &Ruleset, rules_arg: &str, pod: &Pod) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ruleset sha256 {}; profile {}; pod {}; {}",
        report.ruleset.sha256,
        report.profile,
        pod.header(),
        if report.routing {
            "routable connections"
        } else {
            "every header combination (--no-routing)"
        }
    );
    for w in &report.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "\ninvariants");
    for i in &report.invariants {
        let st = match i.status {
            Status::Holds => "holds",
            Status::Violated => "VIOLATED",
            Status::Unknown => "UNKNOWN",
            Status::Vacuous => "vacuous",
        };
        let _ = writeln!(s, "  {st:<9} {:<27} {}", i.id, i.statement);
        if let Some(r) = &i.reason {
            let _ = writeln!(s, "            reason: {r}");
        }
        if let Some(w) = &i.witness {
            let _ = writeln!(s, "            witness: {}", witness_text(w));
            let _ = writeln!(
                s,
                "            replay:  {}",
                replay_command(rules_arg, pod, w)
            );
        }
        if let Some(j) = &i.journey {
            for line in journey_text(rs, j).lines() {
                let _ = writeln!(s, "              {line}");
            }
        }
        if let Some(pw) = &i.pair {
            let w = &pw.witness;
            let _ = writeln!(s, "            paired with: {}", witness_text(w));
            let _ = writeln!(
                s,
                "            replay:  {}",
                replay_command(rules_arg, pod, w)
            );
            for line in journey_text(rs, &pw.journey).lines() {
                let _ = writeln!(s, "              {line}");
            }
        }
    }
    let _ = writeln!(s, "\nrules");
    let mut counts = [0usize; 5];
    for r in &report.rules {
        let (n, word) = match r.status {
            RuleStatus::Live => (0, "live"),
            RuleStatus::Unroutable => (1, "unroutable"),
            RuleStatus::Shadowed => (2, "shadowed"),
            RuleStatus::Unreachable => (3, "unreachable"),
            RuleStatus::Unknown => (4, "unknown"),
        };
        if let Some(c) = counts.get_mut(n) {
            *c += 1;
        }
        if r.status == RuleStatus::Live {
            continue;
        }
        let fam = if r.family == Family::Ipv6 {
            " (IPv6)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {word:<11} {} {} {}{fam}  {}",
            r.table.name(),
            r.chain,
            r.rule,
            r.text
        );
        if !r.by.is_empty() {
            let by: Vec<String> =
                r.by.iter()
                    .map(|b| format!("{} {}", b.chain, b.rule))
                    .collect();
            let _ = writeln!(s, "              by {}", by.join(", "));
        }
        if let Some(p) = &r.packet {
            let _ = writeln!(
                s,
                "              hit only by packets like: {}",
                packet_text(p)
            );
        }
    }
    let [live, unroutable, shadowed, unreachable, unknown] = counts;
    let _ = writeln!(
        s,
        "  {live} live, {unroutable} unroutable, {shadowed} shadowed, {unreachable} unreachable{}",
        if unknown > 0 {
            format!(", {unknown} unknown")
        } else {
            String::new()
        }
    );
    if !report.undecided.is_empty() {
        let _ = writeln!(
            s,
            "\nmatches the model cannot interpret (free in the proofs)"
        );
        for u in &report.undecided {
            let fam = if u.family == Family::Ipv6 {
                "ip6tables"
            } else {
                "iptables"
            };
            let _ = writeln!(s, "  {fam} {} {} {}", u.table.name(), u.chain, u.rule);
        }
    }
    why_text(&mut s, &report.invariants);
    let held = report
        .invariants
        .iter()
        .filter(|i| i.status == Status::Holds)
        .count();
    let violated = report
        .invariants
        .iter()
        .filter(|i| i.status == Status::Violated)
        .count();
    let vacuous = report
        .invariants
        .iter()
        .filter(|i| i.status == Status::Vacuous)
        .count();
    let vacuous_words = if vacuous == 0 {
        String::new()
    } else {
        format!(", {vacuous} vacuous (nothing to check)")
    };
    let _ = writeln!(
        s,
        "\n{} invariants: {held} hold, {violated} violated, {} unknown{vacuous_words}",
        report.invariants.len(),
        report.invariants.len() - held - violated - vacuous
    );
    s
}

/// The one line the classes of [`diff::Impact::CapturePortLoop`] fold into.
pub fn folded_line(r: &diff::Report, folded: usize) -> String {
    let ports: Vec<String> = r.capture_ports.iter().map(ToString::to_string).collect();
    format!(
        "{folded} class(es) of connections addressed to the proxy's own capture ports ({}) loop \
         before and after, only differently (folded; --format json lists them)",
        ports.join(", ")
    )
}

/// `diff`'s report for a person.
pub fn diff(r: &diff::Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} class(es) of connections behave differently{}{}",
        r.changes.len(),
        if r.truncated {
            " (bound reached: there may be more)"
        } else {
            ""
        },
        if r.unknown {
            " (undecided: the list may be incomplete)"
        } else {
            ""
        }
    );
    if !r.samples.is_empty() {
        let _ = writeln!(
            s,
            "undecided: {} rule(s) with a random sample (-m statistic) that one packet may pass twice in a hop: one shared draw stands for two, so a change behind the second may not be seen (first: {})",
            r.samples.len(),
            r.samples.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let (shown, folded) = r.shown_and_folded();
    for (i, c) in shown.iter().enumerate() {
        let _ = writeln!(
            s,
            "\n{}. [{}] {}\n   before: {}\n   after:  {}\n   rules:  {}",
            i + 1,
            c.impact.words(),
            c.description,
            c.before,
            c.after,
            c.rules
        );
        let w = &c.witness;
        let _ = writeln!(s, "   witness: {} ({})", w.connection_words(), w.who());
    }
    if !folded.is_empty() {
        let _ = writeln!(s, "\n+ {}", folded_line(r, folded.len()));
    }
    if !r.unroutable_changes.is_empty() {
        let _ = writeln!(
            s,
            "\n{} class(es) only packets routing never produces can see (not counted):",
            r.unroutable_changes.len()
        );
        for c in &r.unroutable_changes {
            let w = &c.witness;
            let _ = writeln!(
                s,
                "  - {}: {}\n    e.g. {} {}:{} -> {}:{} {} {}",
                c.description,
                c.effect,
                w.proto,
                w.src,
                w.sport,
                w.dst,
                w.dport,
                if w.from_outside { "in" } else { "out" },
                w.iface
            );
        }
    }
    let _ = writeln!(s, "\ninvariants (old → new)");
    for (o, n) in r.invariants.old.iter().zip(&r.invariants.new) {
        let st = |x: &InvariantResult| format!("{:?}", x.status).to_lowercase();
        let mark = if o.status == n.status { " " } else { "*" };
        let _ = writeln!(s, " {mark} {:<27} {} → {}", o.id, st(o), st(n));
    }
    touched_text(&mut s, &r.touched);
    if let Some(why) = &r.touched_skipped {
        let _ = writeln!(
            s,
            "\nwhich invariants' supporting rules this change touches: not computed ({why})"
        );
    }
    s
}

/// `check`'s "why each invariant holds": per invariant that holds, the rules it rests on.
fn why_text(s: &mut String, invariants: &[InvariantResult]) {
    let with: Vec<&InvariantResult> = invariants.iter().filter(|i| i.support.is_some()).collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nwhy each invariant holds (the rules its proof rests on; it holds whatever the others match)"
    );
    for i in with {
        let Some(sup) = &i.support else { continue };
        let note = if sup.minimal {
            ""
        } else {
            " (not minimal: the minimisation ran out of time)"
        };
        if sup.rules.is_empty() {
            let _ = writeln!(
                s,
                "  {}: no rule (it holds whatever every rule matches){note}",
                i.id
            );
            continue;
        }
        let _ = writeln!(s, "  {}: {} rule(s){note}", i.id, sup.rules.len());
        for r in &sup.rules {
            let _ = writeln!(s, "    {:<26} {}", r.place(), r.text);
        }
    }
}

/// `diff`'s list of the invariants whose supporting rules the change touches.
fn touched_text(s: &mut String, touched: &[crate::results::support::Touched]) {
    for t in touched {
        let _ = writeln!(
            s,
            "\nthis change touches rules that {} rests on (on the old ruleset):",
            t.id
        );
        for r in &t.rules {
            let _ = writeln!(s, "  {:<26} {}", r.place(), r.text);
        }
    }
}
