//! Journeys for people: hop by hop, each rule hit with its text, then where the connection went.

use std::fmt::Write as _;

use sidecar_model::pod::{Delivery, HopReport, HopVerdict, Journey, Outcome};
use sidecar_model::print::print_rule;
use sidecar_model::{Family, Ruleset};

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

/// The rule's text (`-A CHAIN …`) for a hit.
pub fn rule_text(rs: &Ruleset, family: Family, r: &sidecar_model::pod::RuleRef) -> String {
    rs.table_at(family, r.table, r.part)
        .and_then(|t| t.chain(&r.chain))
        .and_then(|c| c.rules.get((r.rule as usize).saturating_sub(1)))
        .map(|rule| print_rule(family, &r.chain, rule))
        .unwrap_or_default()
}

/// How a hit names its table: `nat`, or `inet istio-proxy-nat` for an nftables table.
pub fn table_label(rs: &Ruleset, family: Family, r: &sidecar_model::pod::RuleRef) -> String {
    rs.table_at(family, r.table, r.part)
        .map_or_else(|| r.table.to_string(), |t| t.display_name())
}

fn delivery(d: &Delivery) -> String {
    match d {
        Delivery::Listener(p) => format!("proxy listener {p}"),
        Delivery::App(p) => format!("application port {p}"),
        Delivery::Remote(a) => format!("remote {a}"),
        Delivery::Dropped => "nowhere (dropped)".into(),
    }
}

fn verdict(v: &HopVerdict) -> String {
    match v {
        HopVerdict::Accept => "not translated".into(),
        HopVerdict::Redirect(p) => format!("redirected to local port {p}"),
        HopVerdict::Dnat(a) => format!("translated to {a}"),
        HopVerdict::Tproxy(p) => format!("TPROXY to local port {p}"),
        HopVerdict::Drop => "dropped".into(),
        HopVerdict::Reject => "rejected".into(),
    }
}

/// Who opened a hop's connection: `uid U gid G`, or `from outside`.
pub fn who(p: &sidecar_model::eval::Packet) -> String {
    if p.has_socket {
        format!("uid {} gid {}", p.uid, p.gid)
    } else {
        "from outside".into()
    }
}

/// One hop as text.
pub fn hop_text(rs: &Ruleset, n: usize, h: &HopReport) -> String {
    let p = &h.packet;
    let fam = p.family();
    let mut s = String::new();
    let who = who(p);
    let _ = writeln!(
        s,
        "hop {n}: {} {} -> {} ({who}), enters {}",
        proto_name(p.proto),
        std::net::SocketAddr::new(p.src, p.sport),
        std::net::SocketAddr::new(p.dst, p.dport),
        h.hook
    );
    let width = h
        .matched
        .iter()
        .map(|r| format!("{} {} {}", table_label(rs, fam, r), r.chain, r.rule).len())
        .max()
        .unwrap_or(0);
    for r in &h.matched {
        let head = format!("{} {} {}", table_label(rs, fam, r), r.chain, r.rule);
        let _ = writeln!(
            s,
            "  {:<6} {head:<width$}  {}",
            r.hook,
            rule_text(rs, fam, r)
        );
    }
    for r in &h.undecided {
        let _ = writeln!(
            s,
            "  (undecided, taken as no match: {} {} {}  {})",
            table_label(rs, fam, r),
            r.chain,
            r.rule,
            rule_text(rs, fam, r)
        );
    }
    let _ = writeln!(
        s,
        "  => {}; arrives at {} (original destination {})",
        verdict(&h.verdict),
        delivery(&h.delivered_to),
        h.original_dst
    );
    s
}

/// A whole journey as text.
pub fn journey_text(rs: &Ruleset, j: &Journey) -> String {
    let mut s = String::new();
    for (i, h) in j.hops.iter().enumerate() {
        s.push_str(&hop_text(rs, i + 1, h));
    }
    let outcome = match j.outcome {
        Outcome::App => "app: served in the pod",
        Outcome::Remote => "remote: left the pod",
        Outcome::Drop => "drop",
        Outcome::Loop => "loop: a hop repeated or the hop bound was reached",
    };
    let _ = writeln!(s, "outcome: {outcome}");
    s
}

/// Where a hop arrived, in words.
pub fn delivery_words(d: &Delivery) -> String {
    match d {
        Delivery::Listener(p) => format!("proxy listener {p}"),
        Delivery::App(p) => format!("application port {p}"),
        Delivery::Remote(a) => format!("remote {a}"),
        Delivery::Dropped => "dropped".into(),
    }
}

/// How a journey ended, in words.
pub fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::App => "served in the pod",
        Outcome::Remote => "leaves the pod",
        Outcome::Drop => "dropped",
        Outcome::Loop => "loops",
    }
}

/// A journey in a few words, as `diff` tells what happens before and after a change:
/// "captured by 15001, then leaves the pod to 10.1.0.99:80", "leaves the pod uncaptured, to
/// 10.1.0.99:80", "reaches port 53 uncaptured", "captured by 15006, then reaches port 80",
/// "loops: 15001 → 15006 → 15001 → …", "dropped".
pub fn journey_words(j: &Journey) -> String {
    let arrives = |d: &Delivery| match d {
        Delivery::Listener(p) | Delivery::App(p) => p.to_string(),
        Delivery::Remote(a) => a.to_string(),
        Delivery::Dropped => "dropped".into(),
    };
    if j.outcome == Outcome::Loop {
        let mut steps: Vec<String> = j.hops.iter().map(|h| arrives(&h.delivered_to)).collect();
        steps.push("…".into());
        return format!("loops: {}", steps.join(" → "));
    }
    let mut parts = Vec::new();
    for (n, h) in j.hops.iter().enumerate() {
        let first = n == 0;
        let redirected = match (h.verdict, h.delivered_to) {
            (HopVerdict::Redirect(p) | HopVerdict::Tproxy(p), _) => Some(p),
            (HopVerdict::Dnat(_), Delivery::Listener(p)) => Some(p),
            _ => None,
        };
        let again = if first { "captured" } else { "recaptured" };
        let uncaptured = if first { " uncaptured" } else { "" };
        parts.push(match (redirected, h.delivered_to) {
            (_, Delivery::Dropped) => match h.verdict {
                HopVerdict::Reject => "rejected".to_string(),
                _ => "dropped".to_string(),
            },
            (Some(p), Delivery::Listener(_)) => format!("{again} by {p}"),
            (Some(p), _) => format!("{again} to port {p}, where no proxy listens"),
            (None, Delivery::Listener(p)) => format!("reaches proxy port {p}{uncaptured}"),
            (None, Delivery::App(p)) => format!("reaches port {p}{uncaptured}"),
            (None, Delivery::Remote(a)) if first => format!("leaves the pod uncaptured, to {a}"),
            (None, Delivery::Remote(a)) => format!("leaves the pod to {a}"),
        });
    }
    if parts.is_empty() {
        return "no hop".into();
    }
    parts.join(", then ")
}
