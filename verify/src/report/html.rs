//! A self-contained static HTML page (inline CSS and SVG, no scripts, no external assets; works
//! offline) with the content of the Markdown report, each journey drawn as an SVG chart.

use std::fmt::Write as _;

use sidecar_model::pod::{Delivery, Journey};
use sidecar_model::Ruleset;

use super::{Document, Source};
use crate::journey_text::{delivery_words, journey_text, outcome_words};
use crate::results::check::{self, RuleStatus};
use crate::results::{diff, InvariantResult, Status, Witness};

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#1b1f23}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}.holds{color:#1a7f37}.violated{color:#cf222e;font-weight:bold}.unknown{color:#9a6700;font-weight:bold}.vacuous{color:#57606a;font-style:italic}\
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}code{font-size:.9em}\
section{border-top:1px solid #d0d7de;margin-top:1.5em}.charts{display:flex;gap:2em;flex-wrap:wrap}\
svg text{font-family:ui-monospace,monospace;font-size:12px}";

fn status(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Holds => ("holds", "holds"),
        Status::Violated => ("violated", "violated"),
        Status::Unknown => ("unknown", "unknown"),
        Status::Vacuous => ("vacuous", "vacuous"),
    }
}

fn status_cell(s: Status) -> String {
    let (class, word) = status(s);
    format!("<td class=\"{class}\">{word}</td>")
}

fn witness(w: &Witness) -> String {
    esc(&format!("{} ({})", w.connection_words(), w.context_words()))
}

/// A journey as an SVG chart: per hop a box with the connection and the rules it hit, an arrow
/// to where it was delivered, and the outcome at the end.
pub fn journey_svg(title: &str, j: &Journey) -> String {
    const W: usize = 460;
    // A downward arrow from `y`, 24 high.
    let arrow = |body: &mut String, y: &mut usize| {
        let _ = write!(
            body,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#57606a\" marker-end=\"url(#arrow)\"/>",
            W / 2,
            *y,
            *y + 22
        );
        *y += 24;
    };
    let mut y = 34;
    let mut body = String::new();
    for (n, h) in j.hops.iter().enumerate() {
        let p = &h.packet;
        let who = crate::journey_text::who(p);
        let lines: Vec<String> = std::iter::once(format!(
            "hop {}: {} → {} ({who})",
            n + 1,
            std::net::SocketAddr::new(p.src, p.sport),
            std::net::SocketAddr::new(p.dst, p.dport)
        ))
        .chain(
            h.matched
                .iter()
                .map(|r| format!("  {} {} {}", r.table, r.chain, r.rule)),
        )
        .collect();
        let hgt = 10 + 16 * lines.len();
        let _ = write!(
            body,
            "<rect x=\"10\" y=\"{y}\" width=\"{}\" height=\"{hgt}\" rx=\"6\" fill=\"#ddf4ff\" stroke=\"#0969da\"/>",
            W - 20
        );
        for (k, l) in lines.iter().enumerate() {
            let _ = write!(
                body,
                "<text x=\"20\" y=\"{}\" xml:space=\"preserve\">{}</text>",
                y + 18 + 16 * k,
                esc(l)
            );
        }
        y += hgt;
        arrow(&mut body, &mut y);
        let fill = if h.delivered_to == Delivery::Dropped {
            "#ffebe9"
        } else {
            "#dafbe1"
        };
        let _ = write!(
            body,
            "<rect x=\"90\" y=\"{y}\" width=\"{}\" height=\"26\" rx=\"13\" fill=\"{fill}\" stroke=\"#57606a\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            W - 180,
            W / 2,
            y + 17,
            esc(&delivery_words(&h.delivered_to))
        );
        y += 26;
        if n + 1 < j.hops.len() {
            arrow(&mut body, &mut y);
        }
    }
    y += 10;
    let _ = write!(
        body,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">outcome: {}</text>",
        W / 2,
        y + 12,
        outcome_words(j.outcome)
    );
    y += 24;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{y}\" role=\"img\" aria-label=\"{t}\">\
         <defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"6\" refY=\"4\" orient=\"auto\">\
         <path d=\"M0,0 L8,4 L0,8 z\" fill=\"#57606a\"/></marker></defs>\
         <text x=\"10\" y=\"20\" font-weight=\"bold\">{t}</text>{body}</svg>",
        t = esc(title)
    )
}

fn trace_pre(rs: &Ruleset, j: &Journey) -> String {
    format!("<pre>{}</pre>", esc(&journey_text(rs, j)))
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        esc(title)
    )
}

fn invariant_table(out: &mut String, invs: &[InvariantResult]) {
    out.push_str(
        "<table id=\"invariants\"><tr><th>invariant</th><th>status</th><th>statement</th></tr>",
    );
    for i in invs {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td>{}<td>{}</td></tr>",
            esc(i.id),
            status_cell(i.status),
            esc(&i.statement)
        );
    }
    out.push_str("</table>\n");
}

/// The document as a self-contained HTML page.
pub fn html(doc: &Document<'_>) -> String {
    match doc {
        Document::Check {
            report,
            source,
            pod,
        } => check_html(report, *source, pod),
        Document::Diff {
            report, old, new, ..
        } => diff_html(report, *old, *new),
    }
}

fn check_html(r: &check::Report, src: Source<'_>, pod: &sidecar_model::pod::Pod) -> String {
    let mut b = String::new();
    let bad = r
        .invariants
        .iter()
        .filter(|i| i.status != Status::Holds)
        .count();
    let vacuous = r
        .invariants
        .iter()
        .filter(|i| i.status == Status::Vacuous)
        .count();
    let vacuous_words = if vacuous == 0 {
        String::new()
    } else {
        format!(" ({vacuous} vacuous: nothing to check)")
    };
    let title = format!("sidecar-verify check {}", src.name);
    let _ = write!(
        b,
        "<h1>{}</h1><p id=\"summary\">{} of {} invariants hold{}; ruleset sha256 <code>{}</code>; profile {}{}</p>",
        esc(&title),
        r.invariants.len() - bad,
        r.invariants.len(),
        esc(&vacuous_words),
        esc(&r.ruleset.sha256),
        esc(&r.profile),
        if pod.is_classic_default() {
            String::new()
        } else {
            format!("; pod {}", esc(&pod.header()))
        }
    );
    for w in &r.warnings {
        let _ = write!(
            b,
            "<p class=\"warning\"><strong>Warning:</strong> {}</p>",
            esc(w)
        );
    }
    invariant_table(&mut b, &r.invariants);
    for i in r.invariants.iter().filter(|i| i.status != Status::Holds) {
        let _ = write!(
            b,
            "<section><h2><code>{}</code>: {}</h2>",
            esc(i.id),
            status(i.status).1
        );
        if let Some(reason) = &i.reason {
            let _ = write!(b, "<p>{}</p>", esc(reason));
        }
        if let Some(w) = &i.witness {
            let _ = write!(b, "<p>Witness: <code>{}</code></p>", witness(w));
        }
        if let Some(j) = &i.journey {
            let _ = write!(
                b,
                "<div class=\"charts\">{}</div>{}",
                journey_svg("journey", j),
                trace_pre(src.ruleset, j)
            );
        }
        if let Some(pw) = &i.pair {
            let _ = write!(
                b,
                "<p>Paired with: <code>{}</code></p><div class=\"charts\">{}</div>{}",
                witness(&pw.witness),
                journey_svg("paired journey", &pw.journey),
                trace_pre(src.ruleset, &pw.journey)
            );
        }
        b.push_str("</section>\n");
    }
    why_html(&mut b, &r.invariants);
    let dead: Vec<_> = r
        .rules
        .iter()
        .filter(|x| x.status != RuleStatus::Live)
        .collect();
    if !dead.is_empty() {
        b.push_str("<section><h2>Rules that decide no routable connection</h2><table id=\"rules\"><tr><th>rule</th><th>status</th><th>earlier rules responsible</th></tr>");
        for x in dead {
            let by: Vec<String> =
                x.by.iter()
                    .map(|y| format!("{} {}", y.chain, y.rule))
                    .collect();
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&x.text),
                format!("{:?}", x.status).to_lowercase(),
                esc(&by.join(", "))
            );
        }
        b.push_str("</table></section>\n");
    }
    page(&title, &b)
}

fn diff_html(r: &diff::Report, old: Source<'_>, new: Source<'_>) -> String {
    let mut b = String::new();
    let title = format!("sidecar-verify diff {} → {}", old.name, new.name);
    let _ = write!(
        b,
        "<h1>{}</h1><p id=\"summary\">{} class(es) of connections behave differently{}</p>",
        esc(&title),
        r.changes.len(),
        if r.truncated { " (bound reached)" } else { "" }
    );
    b.push_str("<table id=\"invariants\"><tr><th>invariant</th><th>old</th><th>new</th></tr>");
    for (o, n) in r.invariants.old.iter().zip(&r.invariants.new) {
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td>{}{}</tr>",
            esc(o.id),
            status_cell(o.status),
            status_cell(n.status)
        );
    }
    b.push_str("</table>\n");
    touched_html(&mut b, &r.touched);
    let (shown, folded) = r.shown_and_folded();
    for (k, c) in shown.iter().enumerate() {
        let _ = writeln!(
            b,
            "<section class=\"change\"><h2>{}. {}: {}</h2><p>before: {}<br>after: {}</p><p>Witness: <code>{}</code></p><div class=\"charts\">{}{}</div>\
             <h3>old journey</h3>{}<h3>new journey</h3>{}</section>",
            k + 1,
            esc(c.impact.words()),
            esc(&c.description),
            esc(&c.before),
            esc(&c.after),
            witness(&c.witness),
            journey_svg(&format!("old: {}", old.name), &c.old),
            journey_svg(&format!("new: {}", new.name), &c.new),
            trace_pre(old.ruleset, &c.old),
            trace_pre(new.ruleset, &c.new)
        );
    }
    if !folded.is_empty() {
        let _ = writeln!(
            b,
            "<p id=\"folded\">{}</p>",
            esc(&super::text::folded_line(r, folded.len()))
        );
    }
    if !r.unroutable_changes.is_empty() {
        let _ = write!(
            b,
            "<section><h2>Only packets routing never produces see these ({})</h2><ul>",
            r.unroutable_changes.len()
        );
        for c in &r.unroutable_changes {
            let _ = write!(
                b,
                "<li>{}: {} — e.g. <code>{}</code></li>",
                esc(&c.description),
                esc(&c.effect),
                witness(&c.witness)
            );
        }
        b.push_str("</ul></section>\n");
    }
    page(&title, &b)
}

/// Why each invariant that holds holds (when `check --why` computed it).
fn why_html(b: &mut String, invs: &[InvariantResult]) {
    let with: Vec<&InvariantResult> = invs.iter().filter(|i| i.support.is_some()).collect();
    if with.is_empty() {
        return;
    }
    b.push_str("<section id=\"why\"><h2>Why each invariant holds</h2><p>The rules each proof rests on; the invariant holds whatever the other rules match.</p>");
    for i in with {
        let Some(sup) = &i.support else { continue };
        let note = if sup.minimal { "" } else { " (not minimal)" };
        let _ = write!(
            b,
            "<details><summary><code>{}</code>: {} rule(s){note}</summary><ul>",
            esc(i.id),
            sup.rules.len()
        );
        for r in &sup.rules {
            let _ = write!(
                b,
                "<li>{}: <code>{}</code></li>",
                esc(&r.place()),
                esc(&r.text)
            );
        }
        b.push_str("</ul></details>");
    }
    b.push_str("</section>\n");
}

/// `diff`: the invariants whose supporting rules (on the old ruleset) the change touches.
fn touched_html(b: &mut String, touched: &[crate::results::support::Touched]) {
    if touched.is_empty() {
        return;
    }
    b.push_str("<section id=\"touched\"><h2>Invariants whose supporting rules this change touches</h2><ul>");
    for t in touched {
        let rules: Vec<String> = t
            .rules
            .iter()
            .map(|r| format!("{}: <code>{}</code>", esc(&r.place()), esc(&r.text)))
            .collect();
        let _ = write!(
            b,
            "<li>this change touches rules that <code>{}</code> rests on: {}</li>",
            esc(t.id),
            rules.join("; ")
        );
    }
    b.push_str("</ul></section>\n");
}
