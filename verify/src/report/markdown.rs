//! Markdown made to be posted as a pull-request comment: a one-line summary, the invariant
//! table (old vs new for a diff), each violation or change class with its witness, the journeys
//! as text in collapsed sections, and a Mermaid flowchart of each journey (GitHub renders
//! Mermaid in comments).
//!
//! [`markdown_within`] fits the report into a byte budget (`--max-bytes`, [`super::budget`]):
//! for `diff`, past the budget the unroutable classes are counted instead of listed, the touched
//! supporting rules named by invariant only, and then the classes from the last one up are told
//! in one table line each (impact, connections, before, after, witness) without their Mermaid
//! journeys, until it fits; for `check`, the supports of `--why` are named by invariant only, the
//! rules table is shortened, and then the violations from the last one up lose their journeys.

use std::fmt::Write as _;

use sidecar_model::pod::Journey;
use sidecar_model::Ruleset;

use super::budget::{self, cell};
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

/// The document as Markdown, whole.
pub fn markdown(doc: &Document<'_>) -> String {
    markdown_within(doc, None)
}

/// The document as Markdown in at most `max` bytes (`None`: whole), shortened as the module says.
pub fn markdown_within(doc: &Document<'_>, max: Option<usize>) -> String {
    match doc {
        Document::Check {
            report,
            source,
            pod,
        } => {
            let sections = report
                .invariants
                .iter()
                .filter(|i| i.status != Status::Holds)
                .count();
            let dead = report
                .rules
                .iter()
                .filter(|x| x.status != RuleStatus::Live)
                .count();
            let whole = CheckPlan {
                full: sections,
                rules: dead,
                why: true,
            };
            let plans = std::iter::once(whole)
                .chain(std::iter::once(CheckPlan {
                    why: false,
                    ..whole
                }))
                .chain(budget::halving(dead).skip(1).map(move |rules| CheckPlan {
                    rules,
                    why: false,
                    ..whole
                }))
                .chain((0..sections).rev().map(|full| CheckPlan {
                    full,
                    rules: 0,
                    why: false,
                }));
            budget::fit(
                max,
                plans.map(|p| check_md(report, *source, pod, p, max.unwrap_or(0))),
            )
        }
        Document::Diff {
            report, old, new, ..
        } => {
            let n = report.shown_and_folded().0.len();
            let whole = DiffPlan {
                full: n,
                unroutable: true,
                touched: true,
            };
            let plans = std::iter::once(whole)
                .chain(std::iter::once(DiffPlan {
                    unroutable: false,
                    ..whole
                }))
                .chain(std::iter::once(DiffPlan {
                    unroutable: false,
                    touched: false,
                    ..whole
                }))
                .chain((0..n).rev().map(|full| DiffPlan {
                    full,
                    unroutable: false,
                    touched: false,
                }));
            budget::fit(
                max,
                plans.map(|p| diff_md(report, *old, *new, p, max.unwrap_or(0))),
            )
        }
    }
}

/// How much of a `check` report is told in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CheckPlan {
    /// The first `full` sections (invariants that do not hold) with their journeys; the others
    /// with their witness and replay only.
    full: usize,
    /// The first `rules` rows of the rules table.
    rules: usize,
    /// The rules each invariant rests on (else the invariants with a support, by id).
    why: bool,
}

fn check_md(
    r: &check::Report,
    src: Source<'_>,
    pod: &sidecar_model::pod::Pod,
    plan: CheckPlan,
    max: usize,
) -> String {
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
    let sections = r
        .invariants
        .iter()
        .filter(|i| i.status != Status::Holds)
        .count();
    let mut shortened = Vec::new();
    if plan.full < sections {
        shortened.push(format!(
            "{} of the {sections} invariants that do not hold are told without their journeys",
            sections - plan.full
        ));
    }
    if plan.rules < dead {
        shortened.push(format!(
            "{} of the {dead} rules that never decide a routable connection are not listed",
            dead - plan.rules
        ));
    }
    let supports = r.invariants.iter().filter(|i| i.support.is_some()).count();
    if !plan.why && supports > 0 {
        shortened.push("the rules each invariant rests on are not listed".to_string());
    }
    if !shortened.is_empty() {
        let _ = writeln!(out, "{}", budget::note(max, &shortened));
    }
    if !pod.is_classic_default() {
        let _ = writeln!(out, "Pod {}\n", pod.header());
    }
    for w in &r.warnings {
        let _ = writeln!(out, "> **Warning:** {w}\n");
    }
    invariant_rows(&mut out, &r.invariants);
    for (k, i) in r
        .invariants
        .iter()
        .filter(|i| i.status != Status::Holds)
        .enumerate()
    {
        let _ = writeln!(out, "\n#### `{}`: {}\n", i.id, status(i.status));
        if let Some(reason) = &i.reason {
            let _ = writeln!(out, "{reason}\n");
        }
        if let Some(w) = &i.witness {
            let _ = writeln!(out, "Witness: {}\n", witness(w));
            let _ = writeln!(out, "Replay: `{}`\n", replay_command(src.name, pod, w));
        }
        if k >= plan.full {
            if let Some(pw) = &i.pair {
                let _ = writeln!(out, "Paired with: {}\n", witness(&pw.witness));
            }
            continue;
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
    if plan.why {
        why_md(&mut out, &r.invariants);
    } else if supports > 0 {
        let ids: Vec<String> = r
            .invariants
            .iter()
            .filter(|i| i.support.is_some())
            .map(|i| format!("`{}`", i.id))
            .collect();
        let _ = writeln!(
            out,
            "\n#### Why each invariant holds\n\nThe rules the proofs of {} rest on are in the whole report.",
            ids.join(", ")
        );
    }
    if dead > 0 && plan.rules == 0 {
        let _ = writeln!(
            out,
            "\n#### Rules\n\n{dead} rule(s) never decide a routable connection: listed in the whole report."
        );
    } else if dead > 0 {
        let _ = writeln!(
            out,
            "\n#### Rules\n\n| rule | status | earlier rules responsible |\n|---|---|---|"
        );
        for x in r
            .rules
            .iter()
            .filter(|x| x.status != RuleStatus::Live)
            .take(plan.rules)
        {
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
        if plan.rules < dead {
            let _ = writeln!(
                out,
                "\n… and {} more: listed in the whole report.",
                dead - plan.rules
            );
        }
    }
    out
}

/// How much of a `diff` report is told in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiffPlan {
    /// The first `full` classes with their journeys; the others one table line each.
    full: usize,
    /// The classes only unroutable packets see, listed (else counted).
    unroutable: bool,
    /// The supporting rules the change touches, listed (else the invariants named).
    touched: bool,
}

fn diff_md(
    r: &diff::Report,
    old: Source<'_>,
    new: Source<'_>,
    plan: DiffPlan,
    max: usize,
) -> String {
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
    let (shown, folded) = r.shown_and_folded();
    let mut shortened = Vec::new();
    if plan.full < shown.len() {
        shortened.push(format!(
            "{} {} told in one table line each, without {} journeys",
            if plan.full == 0 {
                format!("all {} classes", shown.len())
            } else {
                format!("classes {}–{}", plan.full + 1, shown.len())
            },
            if shown.len() - plan.full == 1 {
                "is"
            } else {
                "are"
            },
            if shown.len() - plan.full == 1 {
                "its"
            } else {
                "their"
            },
        ));
    }
    if !plan.unroutable && !r.unroutable_changes.is_empty() {
        shortened.push(format!(
            "the {} class(es) only unroutable packets see are counted, not listed",
            r.unroutable_changes.len()
        ));
    }
    if !plan.touched && !r.touched.is_empty() {
        shortened.push(
            "the supporting rules the change touches are named by invariant only".to_string(),
        );
    }
    if !shortened.is_empty() {
        let _ = writeln!(out, "{}", budget::note(max, &shortened));
    }
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
    for (k, c) in shown.iter().enumerate().take(plan.full) {
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
    if let Some(rest) = shown.get(plan.full..).filter(|rest| !rest.is_empty()) {
        brief_rows(&mut out, plan.full, rest);
    }
    if let Some(why) = &r.touched_skipped {
        let _ = writeln!(
            out,
            "\n#### Invariants whose supporting rules this change touches\n\nNot computed: {why}."
        );
    }
    if plan.touched {
        touched_md(&mut out, &r.touched);
    } else if !r.touched.is_empty() {
        let ids: Vec<String> = r.touched.iter().map(|t| format!("`{}`", t.id)).collect();
        let _ = writeln!(
            out,
            "\n#### Invariants whose supporting rules this change touches\n\n{} (the rules: in the whole report)",
            ids.join(", ")
        );
    }
    if !folded.is_empty() {
        let _ = writeln!(out, "\n➕ {}", super::text::folded_line(r, folded.len()));
    }
    if !plan.unroutable && !r.unroutable_changes.is_empty() {
        let _ = writeln!(
            out,
            "\n{} class(es) only packets routing never produces can see (not counted): listed in the whole report.",
            r.unroutable_changes.len()
        );
    } else if !r.unroutable_changes.is_empty() {
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

/// The classes told in brief, one table line each, numbered on from `skip`.
fn brief_rows(out: &mut String, skip: usize, rest: &[&diff::Change]) {
    let title = if rest.len() == 1 {
        format!("Class {}, in brief", skip + 1)
    } else {
        format!("Classes {}–{}, in brief", skip + 1, skip + rest.len())
    };
    let _ = writeln!(
        out,
        "\n#### {title}\n\n| # | impact | connections | before | after | witness |\n|---:|---|---|---|---|---|"
    );
    for (k, c) in rest.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            skip + k + 1,
            c.impact.words(),
            cell(&c.description),
            cell(&c.before),
            cell(&c.after),
            cell(&witness(&c.witness))
        );
    }
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
