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
    let _ = writeln!(s, "\ninvariants");
    for i in &report.invariants {
        let st = match i.status {
            Status::Holds => "holds",
            Status::Violated => "VIOLATED",
            Status::Unknown => "UNKNOWN",
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
    let _ = writeln!(
        s,
        "\n{} invariants: {held} hold, {violated} violated, {} unknown",
        report.invariants.len(),
        report.invariants.len() - held - violated
    );
    s
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
            " (a query was undecided: the list may be incomplete)"
        } else {
            ""
        }
    );
    for (i, c) in r.changes.iter().enumerate() {
        let _ = writeln!(s, "\n{}. {}\n   {}", i + 1, c.description, c.effect);
        let w = &c.witness;
        let _ = writeln!(s, "   witness: {} ({})", w.connection_words(), w.who());
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
    s
}
