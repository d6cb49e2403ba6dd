//! Markdown made to be posted as a pull-request comment: a one-line summary, the invariant
//! table (old vs new for a diff), each violation or change class with its witness, the journeys
//! as text in collapsed sections, and a Mermaid flowchart of each journey (GitHub renders
//! Mermaid in comments).

use std::fmt::Write as _;

use sidecar_model::pod::Journey;
use sidecar_model::Ruleset;

use super::{Document, Source};
use crate::journey_text::{delivery_words, journey_text, outcome_words};
use crate::results::check::{self, RuleStatus};
use crate::results::{diff, replay_command, InvariantResult, Status, Witness};

fn status(s: Status) -> &'static str {
    match s {
        Status::Holds => "✅ holds",
        Status::Violated => "❌ violated",
        Status::Unknown => "⚠️ unknown",
        Status::Vacuous => "➖ vacuous",
    }
}

fn witness(w: &Witness) -> String {
    format!("`{}` ({})", w.connection_words(), w.context_words())
}

/// Escapes text for a Mermaid label in double quotes.
fn label(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// A Mermaid flowchart of a journey; node ids are prefixed with `id` so that several charts
/// (or subgraphs) can share a document.
fn mermaid_nodes(out: &mut String, id: &str, j: &Journey) {
    let mut prev: Option<String> = None;
    for (n, h) in j.hops.iter().enumerate() {
        let p = &h.packet;
        let who = crate::journey_text::who(p);
        let conn = format!(
            "{}<br/>{}",
            label(&format!(
                "hop {}: {} → {}",
                n + 1,
                std::net::SocketAddr::new(p.src, p.sport),
                std::net::SocketAddr::new(p.dst, p.dport)
            )),
            label(&who)
        );
        let rules: Vec<String> = h
            .matched
            .iter()
            .map(|r| label(&format!("{} {} {}", r.table, r.chain, r.rule)))
            .collect();
        let hop_id = format!("{id}h{n}");
        let to_id = format!("{id}d{n}");
        let _ = writeln!(out, "    {hop_id}[\"{conn}\"]");
        let _ = writeln!(
            out,
            "    {to_id}([\"{}\"])",
            label(&delivery_words(&h.delivered_to))
        );
        let via = if rules.is_empty() {
            "no rule".to_string()
        } else {
            rules.join("<br/>")
        };
        let _ = writeln!(out, "    {hop_id} -- \"{via}\" --> {to_id}");
        if let Some(p) = prev {
            let _ = writeln!(out, "    {p} --> {hop_id}");
        }
        prev = Some(to_id);
    }
    if let Some(p) = prev {
        let _ = writeln!(
            out,
            "    {p} --> {id}end{{\"{}\"}}",
            outcome_words(j.outcome)
        );
    }
}

fn journey_block(out: &mut String, title: &str, rs: &Ruleset, j: &Journey) {
    let _ = writeln!(
        out,
        "<details><summary>{title}: {}</summary>\n\n```text\n{}```\n\n</details>\n",
        outcome_words(j.outcome),
        journey_text(rs, j)
    );
}

fn invariant_rows(out: &mut String, invs: &[InvariantResult]) {
    let _ = writeln!(out, "| invariant | status | statement |\n|---|---|---|");
    for i in invs {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            i.id,
            status(i.status),
            i.statement
        );
    }
}

/// The document as Markdown.
pub fn markdown(doc: &Document<'_>) -> String {
    match doc {
        Document::Check {
            report,
            source,
            pod,
        } => check_md(report, *source, pod),
        Document::Diff {
            report, old, new, ..
        } => diff_md(report, *old, *new),
    }
}

fn check_md(r: &check::Report, src: Source<'_>, pod: &sidecar_model::pod::Pod) -> String {
    let mut out = String::new();
    let violated: Vec<&InvariantResult> =
        r.invariants.iter().filter(|i| !i.status.passes()).collect();
    let vacuous = r
        .invariants
        .iter()
        .filter(|i| i.status == Status::Vacuous)
        .count();
    let dead = r
        .rules
        .iter()
        .filter(|x| x.status != RuleStatus::Live)
        .count();
    let head = if violated.is_empty() && vacuous > 0 {
        format!(
            "✅ no invariant violated: {} hold, {vacuous} vacuous (nothing to check)",
            r.invariants.len() - vacuous
        )
    } else if violated.is_empty() {
        format!("✅ all {} invariants hold", r.invariants.len())
    } else {
        format!(
            "❌ {} of {} invariants do not hold",
            violated.len(),
            r.invariants.len()
        )
    };
    let _ = writeln!(
        out,
        "### sidecar-verify check `{}`: {head}; {dead} rule(s) never decide a routable connection\n",
        src.name
    );
    if !pod.is_classic_default() {
        let _ = writeln!(out, "Pod {}\n", pod.header());
    }
    for w in &r.warnings {
        let _ = writeln!(out, "> **Warning:** {w}\n");
    }
    invariant_rows(&mut out, &r.invariants);
    for i in r.invariants.iter().filter(|i| i.status != Status::Holds) {
        let _ = writeln!(out, "\n#### `{}`: {}\n", i.id, status(i.status));
        if let Some(reason) = &i.reason {
            let _ = writeln!(out, "{reason}\n");
        }
        if let Some(w) = &i.witness {
            let _ = writeln!(out, "Witness: {}\n", witness(w));
            let _ = writeln!(out, "Replay: `{}`\n", replay_command(src.name, pod, w));
        }
        if let Some(j) = &i.journey {
            let _ = writeln!(out, "```mermaid\nflowchart TD");
            mermaid_nodes(&mut out, "j", j);
            let _ = writeln!(out, "```\n");
            journey_block(&mut out, "journey", src.ruleset, j);
        }
        if let Some(pw) = &i.pair {
            let _ = writeln!(out, "Paired with: {}\n", witness(&pw.witness));
            let _ = writeln!(
                out,
                "Replay: `{}`\n",
                replay_command(src.name, pod, &pw.witness)
            );
            let _ = writeln!(out, "```mermaid\nflowchart TD");
            mermaid_nodes(&mut out, "p", &pw.journey);
            let _ = writeln!(out, "```\n");
            journey_block(&mut out, "paired journey", src.ruleset, &pw.journey);
        }
    }
    why_md(&mut out, &r.invariants);
    if dead > 0 {
        let _ = writeln!(
            out,
            "\n#### Rules\n\n| rule | status | earlier rules responsible |\n|---|---|---|"
        );
        for x in r.rules.iter().filter(|x| x.status != RuleStatus::Live) {
            let by: Vec<String> =
                x.by.iter()
                    .map(|b| format!("{} {}", b.chain, b.rule))
                    .collect();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                x.text.replace('|', "\\|"),
                format!("{:?}", x.status).to_lowercase(),
                by.join(", ")
            );
        }
    }
    out
}

fn diff_md(r: &diff::Report, old: Source<'_>, new: Source<'_>) -> String {
    let mut out = String::new();
    let newly: Vec<&str> = r
        .invariants
        .old
        .iter()
        .zip(&r.invariants.new)
        .filter(|(o, n)| o.status.passes() && !n.status.passes())
        .map(|(o, _)| o.id)
        .collect();
    let head = if r.changes.is_empty() {
        "✅ no connection behaves differently".to_string()
    } else {
        format!(
            "⚠️ {} class(es) of connections behave differently{}",
            r.changes.len(),
            if r.truncated { " (bound reached)" } else { "" }
        )
    };
    let inv = if newly.is_empty() {
        String::new()
    } else {
        format!("; ❌ newly violated: {}", newly.join(", "))
    };
    let _ = writeln!(
        out,
        "### sidecar-verify diff `{}` → `{}`: {head}{inv}\n",
        old.name, new.name
    );
    let _ = writeln!(out, "| invariant | old | new |\n|---|---|---|");
    for (o, n) in r.invariants.old.iter().zip(&r.invariants.new) {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            o.id,
            status(o.status),
            status(n.status)
        );
    }
    let (shown, folded) = r.shown_and_folded();
    for (k, c) in shown.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n#### {}. {}: {}\n\n- before: {}\n- after: {}\n",
            k + 1,
            c.impact.words(),
            c.description,
            c.before,
            c.after
        );
        let _ = writeln!(out, "Witness: {}\n", witness(&c.witness));
        let _ = writeln!(out, "```mermaid\nflowchart TD");
        let _ = writeln!(out, "  subgraph old [\"old: {}\"]", label(old.name));
        mermaid_nodes(&mut out, &format!("o{k}"), &c.old);
        let _ = writeln!(out, "  end");
        let _ = writeln!(out, "  subgraph new [\"new: {}\"]", label(new.name));
        mermaid_nodes(&mut out, &format!("n{k}"), &c.new);
        let _ = writeln!(out, "  end\n```\n");
        journey_block(&mut out, "old journey", old.ruleset, &c.old);
        journey_block(&mut out, "new journey", new.ruleset, &c.new);
    }
    touched_md(&mut out, &r.touched);
    if !folded.is_empty() {
        let _ = writeln!(out, "\n➕ {}", super::text::folded_line(r, folded.len()));
    }
    if !r.unroutable_changes.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} class(es) only packets routing never produces can see (not counted)</summary>\n",
            r.unroutable_changes.len()
        );
        for c in &r.unroutable_changes {
            let _ = writeln!(
                out,
                "- {}: {} — e.g. {}",
                c.description,
                c.effect,
                witness(&c.witness)
            );
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}

/// Why each invariant that holds holds (when `check --why` computed it): a collapsed section
/// per invariant with the rules its proof rests on.
fn why_md(out: &mut String, invs: &[InvariantResult]) {
    let with: Vec<&InvariantResult> = invs.iter().filter(|i| i.support.is_some()).collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n#### Why each invariant holds\n\nThe rules each proof rests on; the invariant holds whatever the other rules match.\n"
    );
    for i in with {
        let Some(sup) = &i.support else { continue };
        let note = if sup.minimal { "" } else { ", not minimal" };
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code>: {} rule(s){note}</summary>\n",
            i.id,
            sup.rules.len()
        );
        for r in &sup.rules {
            let _ = writeln!(out, "- {}: `{}`", r.place(), r.text);
        }
        if sup.rules.is_empty() {
            let _ = writeln!(out, "- no rule: it holds whatever the rules match");
        }
        let _ = writeln!(out, "\n</details>\n");
    }
}

/// `diff`: the invariants whose supporting rules (on the old ruleset) the change touches.
fn touched_md(out: &mut String, touched: &[crate::results::support::Touched]) {
    if touched.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n#### Invariants whose supporting rules this change touches\n"
    );
    for t in touched {
        let rules: Vec<String> = t
            .rules
            .iter()
            .map(|r| format!("{} `{}`", r.place(), r.text))
            .collect();
        let _ = writeln!(
            out,
            "- this change touches rules that `{}` rests on: {}",
            t.id,
            rules.join("; ")
        );
    }
}
