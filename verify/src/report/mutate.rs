//! `mutate`'s reports for a person (text) and for a pull-request comment (Markdown); its JSON
//! is the model itself ([`crate::results::mutate::Report`]). Both lead with the counts, then
//! the survivors (each with the first class of connections whose journey it changes and a
//! `trace` replay of its witness on the ruleset), the accepted ones with their reasons, the
//! unknown ones with why, and the killed ones grouped by the invariant that kills them first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sidecar_model::pod::Pod;
use sidecar_model::Family;

use super::budget::cell;
use crate::results::mutate::{Class, MutantResult, Report};
use crate::results::{replay_command, Status};

/// `iptables nat ISTIO_OUTPUT rule 2: delete-rule (delete)`.
fn place(m: &MutantResult) -> String {
    let x = &m.mutation;
    let tool = match x.family {
        Family::Ipv4 => "iptables",
        Family::Ipv6 => "ip6tables",
    };
    format!(
        "{tool} {} {} rule {}: {} ({})",
        x.table.name(),
        x.chain,
        x.rule,
        x.operator.name(),
        x.edit
    )
}

/// The counts line: `N mutants: I invalid, E equivalent, K killed, M masked, A accepted, S
/// survivors, U unknown (T s)`.
pub fn summary(r: &Report) -> String {
    let c = &r.counts;
    format!(
        "{} mutants: {} invalid, {} equivalent, {} killed, {} masked, {} accepted, {} survivors, {} unknown ({:.1} s)",
        c.mutants,
        c.invalid,
        c.equivalent,
        c.killed,
        c.masked,
        c.accepted,
        c.survivors,
        c.unknown,
        r.seconds
    )
}

/// The mutants of `class` grouped by `key` (none: left out), the keys sorted.
fn grouped(
    r: &Report,
    class: Class,
    key: impl Fn(&MutantResult) -> Option<String>,
) -> BTreeMap<String, Vec<&MutantResult>> {
    let mut by: BTreeMap<String, Vec<&MutantResult>> = BTreeMap::new();
    for m in r.of(class) {
        if let Some(k) = key(m) {
            by.entry(k).or_default().push(m);
        }
    }
    by
}

/// The masked mutants by the invariants that mask them (joined with `+`).
fn masked_by(r: &Report) -> BTreeMap<String, Vec<&MutantResult>> {
    grouped(r, Class::Masked, |m| Some(m.masked_by.join(" + ")))
}

/// The killed mutants by the invariant that kills each first (catalog order).
fn killed_by(r: &Report) -> BTreeMap<String, Vec<&MutantResult>> {
    grouped(r, Class::Killed, |m| {
        m.killed_by.first().map(|k| k.id.to_string())
    })
}

/// One line per group: `  key  count  e.g. first mutant`.
fn group_lines(s: &mut String, groups: &BTreeMap<String, Vec<&MutantResult>>) {
    for (key, ms) in groups {
        let _ = writeln!(
            s,
            "  {key:<27} {:>3}  e.g. {}",
            ms.len(),
            ms.first().map_or(String::new(), |m| place(m))
        );
    }
}

/// A collapsed Markdown table of the groups, headed `summary`, its key column `key`.
fn group_table(
    s: &mut String,
    summary: &str,
    key: &str,
    groups: &BTreeMap<String, Vec<&MutantResult>>,
) {
    let _ = writeln!(s, "<details><summary>{summary}</summary>\n");
    let _ = writeln!(s, "| {key} | mutants | e.g. |\n|---|---:|---|");
    for (k, ms) in groups {
        let _ = writeln!(
            s,
            "| `{k}` | {} | {} |",
            ms.len(),
            cell(&ms.first().map_or(String::new(), |m| place(m)))
        );
    }
    s.push_str("\n</details>\n");
}

fn not_holding(r: &Report) -> Vec<String> {
    r.original
        .iter()
        .filter(|i| matches!(i.status, Status::Violated | Status::Unknown))
        .map(|i| format!("{} ({:?})", i.id, i.status).to_lowercase())
        .collect()
}

/// `mutate`'s report for a person; `rules_arg` is the RULES argument as given (for the replay
/// commands, which trace the witness on the ruleset: the mutant's journey is the report's
/// "now").
pub fn text(r: &Report, name: &str, rules_arg: &str, pod: &Pod) -> String {
    let mut s = String::new();
    let ips: Vec<String> = r.pod_ips.iter().map(ToString::to_string).collect();
    let _ = writeln!(s, "{name}: {}", summary(r));
    let _ = writeln!(s, "profile {}; pod {}", r.profile, ips.join(", "));
    let bad = not_holding(r);
    if !bad.is_empty() {
        let _ = writeln!(
            s,
            "the ruleset itself does not satisfy {} (these cannot kill a mutant)",
            bad.join(", ")
        );
    }
    let detail = |s: &mut String, m: &MutantResult| {
        let _ = writeln!(s, "  {}", place(m));
        let _ = writeln!(s, "    before: {}", m.mutation.before);
        let _ = writeln!(
            s,
            "    after:  {}",
            m.mutation.after.as_deref().unwrap_or("(deleted)")
        );
        if let Some(c) = &m.change {
            let _ = writeln!(s, "    class:  {}", c.description);
            let _ = writeln!(s, "    effect: {}", c.effect);
            let _ = writeln!(
                s,
                "    witness: {} ({})",
                c.witness.connection_words(),
                c.witness.context_words()
            );
            let _ = writeln!(
                s,
                "    replay (on the ruleset): {}",
                replay_command(rules_arg, pod, &c.witness)
            );
        }
        if let Some(why) = &m.reason {
            let _ = writeln!(s, "    reason: {why}");
        }
    };
    for (class, title) in [
        (
            Class::Survivor,
            "survivors (behaviour changes, every invariant holds)",
        ),
        (
            Class::Unknown,
            "unknown (neither killed nor shown equivalent)",
        ),
        (Class::Accepted, "accepted survivors"),
    ] {
        let list: Vec<&MutantResult> = r.of(class).collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{title}: {}", list.len());
        for m in list {
            detail(&mut s, m);
        }
    }
    if !r.unneeded.is_empty() {
        let _ = writeln!(
            s,
            "\nacceptances that accept no survivor (their mutants are killed or equivalent now; remove them): {}",
            r.unneeded.len()
        );
        for u in &r.unneeded {
            let _ = writeln!(s, "  {u}");
        }
    }
    let masked = masked_by(r);
    if !masked.is_empty() {
        let _ = writeln!(
            s,
            "\nmasked: {}, each changing only connections that an invariant the ruleset already violates reports there (fix the ruleset or the profile and it can speak)",
            r.counts.masked
        );
        group_lines(&mut s, &masked);
    }
    let by = killed_by(r);
    if !by.is_empty() {
        let _ = writeln!(
            s,
            "\nkilled: {}, by the first invariant each violates",
            r.counts.killed
        );
        group_lines(&mut s, &by);
    }
    s
}

/// `mutate`'s report as Markdown, made to be posted as a pull-request comment, whole.
pub fn markdown(r: &Report, name: &str) -> String {
    markdown_within(r, name, None)
}

/// `mutate`'s Markdown in at most `max` bytes (`None`: whole; [`super::budget`]): past the
/// budget the survivors', unknown and accepted tables keep their first rows (halved until it
/// fits), then the masked and killed groups are counted only.
pub fn markdown_within(r: &Report, name: &str, max: Option<usize>) -> String {
    let rows = [Class::Survivor, Class::Unknown, Class::Accepted]
        .iter()
        .map(|c| r.of(*c).count())
        .max()
        .unwrap_or(0);
    let plans = super::budget::halving(rows)
        .map(|rows| (rows, true))
        .chain(std::iter::once((0, false)));
    super::budget::fit(
        max,
        plans.map(|(rows, groups)| markdown_plan(r, name, rows, groups, max.unwrap_or(0))),
    )
}

/// The Markdown with the first `rows` rows of each mutant table, and the masked and killed
/// groups when `groups`.
fn markdown_plan(r: &Report, name: &str, rows: usize, groups: bool, max: usize) -> String {
    let mut s = String::new();
    let verdict = if r.passes() {
        "✅ no unaccepted survivor"
    } else {
        "❌ the invariants miss some mutants"
    };
    let _ = writeln!(s, "### `sidecar-verify mutate` {}: {verdict}\n", cell(name));
    let c = &r.counts;
    let mut shortened = Vec::new();
    let longest = [Class::Survivor, Class::Unknown, Class::Accepted]
        .iter()
        .map(|c| r.of(*c).count())
        .max()
        .unwrap_or(0);
    if rows < longest {
        shortened.push(format!("the mutant tables keep their first {rows} row(s)"));
    }
    if !groups && (c.masked > 0 || c.killed > 0) {
        shortened.push("the masked and killed mutants are counted only".to_string());
    }
    if !shortened.is_empty() {
        let _ = writeln!(s, "{}", super::budget::note(max, &shortened));
    }
    let _ = writeln!(
        s,
        "| mutants | invalid | equivalent | killed | masked | accepted | survivors | unknown | time |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |\n",
        c.mutants,
        c.invalid,
        c.equivalent,
        c.killed,
        c.masked,
        c.accepted,
        c.survivors,
        c.unknown,
        r.seconds
    );
    let bad = not_holding(r);
    if !bad.is_empty() {
        let _ = writeln!(
            s,
            "The ruleset itself does not satisfy {}: these cannot kill a mutant.\n",
            bad.join(", ")
        );
    }
    if !r.unneeded.is_empty() {
        let _ = writeln!(
            s,
            "Acceptances that accept no survivor (their mutants are killed or equivalent now; remove them):\n"
        );
        for u in &r.unneeded {
            let _ = writeln!(s, "- `{}`", u.replace('`', "'"));
        }
        let _ = writeln!(s);
    }
    for (class, title) in [
        (Class::Survivor, "Survivors"),
        (Class::Unknown, "Unknown"),
        (Class::Accepted, "Accepted survivors"),
    ] {
        let list: Vec<&MutantResult> = r.of(class).collect();
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "#### {title} ({})\n", list.len());
        let _ = writeln!(s, "| mutant | rule before → after | changed connections | witness | reason |\n|---|---|---|---|---|");
        let more = list.len().saturating_sub(rows);
        for m in list.into_iter().take(rows) {
            let (class_words, witness) =
                m.change
                    .as_ref()
                    .map_or((String::new(), String::new()), |c| {
                        (
                            format!("{}: {}", c.description, c.effect),
                            format!(
                                "`{}` ({})",
                                c.witness.connection_words(),
                                c.witness.context_words()
                            ),
                        )
                    });
            let _ = writeln!(
                s,
                "| {} | `{}` → {} | {} | {} | {} |",
                cell(&place(m)),
                cell(&m.mutation.before),
                m.mutation
                    .after
                    .as_deref()
                    .map_or("(deleted)".to_string(), |a| format!("`{}`", cell(a))),
                cell(&class_words),
                cell(&witness),
                cell(m.reason.as_deref().unwrap_or(""))
            );
        }
        if more > 0 {
            let _ = writeln!(s, "\n… and {more} more: listed in the whole report.");
        }
        s.push('\n');
    }
    if !groups {
        return s;
    }
    let masked = masked_by(r);
    if !masked.is_empty() {
        group_table(
            &mut s,
            &format!(
                "Masked ({}): changing only connections an invariant the ruleset already violates reports",
                c.masked
            ),
            "masked by",
            &masked,
        );
        s.push('\n');
    }
    let by = killed_by(r);
    if !by.is_empty() {
        group_table(
            &mut s,
            &format!("Killed ({}) by invariant", c.killed),
            "invariant",
            &by,
        );
    }
    s
}
