//! Markdown reports: the structure a pull-request comment needs (summary line, one table row per
//! invariant, a witness and a closed Mermaid block per violation or change class), and insta
//! snapshots of the rendering. The content itself (witnesses, journeys) is checked against
//! `trace` and the kernel in the check and diff tests.

#![cfg(test)]

mod common;

use common::{Checked, Diffed};
use sidecar_verify::report::markdown::markdown;

/// `sections` witnesses, `charts` Mermaid journeys (a relational invariant's pair has two).
fn structure(md: &str, invariants: usize, sections: usize, charts: usize) {
    let first = md.lines().next().unwrap();
    assert!(first.starts_with("### sidecar-verify "), "{first}");
    let rows = md.lines().filter(|l| l.starts_with("| `")).count();
    assert!(rows >= invariants, "{rows} table rows:\n{md}");
    assert_eq!(md.matches("```mermaid").count(), charts, "{md}");
    assert_eq!(
        md.matches("```").count() % 2,
        0,
        "an unclosed code block:\n{md}"
    );
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("Witness: ").count(), sections);
}

#[test]
fn check_markdown() {
    let c = Checked::new("corpus/broken/no-uid-return.rules");
    let md = markdown(&c.document());
    // proxy-not-recaptured, and identity-symmetry (as on the classic ruleset) with its pair.
    let n = sidecar_verify::invariants::ALL.len();
    structure(&md, n, 2, 3);
    assert!(md.contains(&format!("❌ 2 of {n} invariants do not hold")));
    assert_eq!(md.matches("Paired with: ").count(), 1);
    insta::assert_snapshot!(md);
    // The JSON renderer is the report model itself.
    insta::assert_json_snapshot!("check_json", c.report);
}

#[test]
fn diff_markdown() {
    let d = Diffed::new(
        "corpus/istio-classic.rules",
        "corpus/broken/no-uid-return.rules",
    );
    let md = markdown(&d.document());
    structure(&md, 11, d.report.changes.len(), d.report.changes.len());
    assert!(md.contains("newly violated: proxy-not-recaptured"));
    insta::assert_snapshot!(md);
    insta::assert_json_snapshot!("diff_json", d.report);
}
