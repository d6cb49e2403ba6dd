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

/// The rulesets of the budget test: Istio's classic sidecar against ambient's in-pod
/// redirection, which share little, so that the whole Markdown report is over one comment.
/// (`corpus/rulesets/mixed-features.rules` as the new side makes a report of 106 kB and fits
/// too, in twice the time.)
const VERY_DIFFERENT: (&str, &str) = (
    "corpus/istio-classic.rules",
    "corpus/rulesets/ambient-inpod.rules",
);

/// Fences and collapsed sections closed.
fn balanced(md: &str) {
    assert_eq!(md.matches("```").count() % 2, 0, "an unclosed code block");
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
}

/// `--max-bytes`: a diff between very different rulesets fits the budget, and still names every
/// class (its description), the first ones with their journeys; the whole report does not fit.
#[test]
fn a_diff_of_very_different_rulesets_fits_one_comment() {
    use sidecar_verify::report::budget::{DEFAULT_MAX_BYTES, MIN_MAX_BYTES};
    use sidecar_verify::report::markdown::markdown_within;
    let d = Diffed::new(VERY_DIFFERENT.0, VERY_DIFFERENT.1);
    let doc = d.document();
    let whole = markdown(&doc);
    let (shown, folded) = d.report.shown_and_folded();
    assert!(
        whole.len() > DEFAULT_MAX_BYTES,
        "the test needs a report over the budget: {} bytes",
        whole.len()
    );
    assert!(shown.len() >= 15, "{} classes", shown.len());
    assert_eq!(markdown_within(&doc, None), whole);
    let mut charts_before = usize::MAX;
    for max in [
        DEFAULT_MAX_BYTES,
        40_000,
        20_000,
        12_000,
        5_000,
        MIN_MAX_BYTES,
    ] {
        let md = markdown_within(&doc, Some(max));
        assert!(md.len() <= max, "{} bytes over {max}", md.len());
        balanced(&md);
        assert!(md.starts_with("### sidecar-verify diff `corpus/istio-classic.rules` → "));
        assert!(
            md.contains(&format!("Shortened to fit {max} bytes"))
                || md.contains(&format!("Cut here to fit {max} bytes")),
            "{md}"
        );
        assert!(md.contains("`--max-bytes 0`"), "{md}");
        // The journeys go from the last class up: the charts left are the first classes'.
        let charts = md.matches("```mermaid").count();
        assert!(charts <= charts_before, "{max}: {charts} charts");
        charts_before = charts;
        for (k, c) in shown.iter().enumerate().take(charts) {
            assert!(
                md.contains(&format!(
                    "#### {}. {}: {}",
                    k + 1,
                    c.impact.words(),
                    c.description
                )),
                "{max}: class {} is not told in full",
                k + 1
            );
        }
        if max >= 12_000 {
            // Every class still named, in full or on a line of its own.
            for (k, c) in shown.iter().enumerate() {
                let full = format!("#### {}. ", k + 1);
                let brief = format!("| {} | {} | {} |", k + 1, c.impact.words(), c.description);
                assert!(
                    md.contains(&full) || md.contains(&brief),
                    "{max}: class {} ({}) is not named",
                    k + 1,
                    c.description
                );
            }
            if !folded.is_empty() {
                assert!(
                    md.contains(&format!("➕ {} class(es)", folded.len())),
                    "{md}"
                );
            }
        }
    }
    // The default budget keeps most classes whole.
    let md = markdown_within(&doc, Some(DEFAULT_MAX_BYTES));
    assert!(md.matches("```mermaid").count() >= shown.len() / 2, "{md}");
}

/// `check`'s Markdown in a small budget: shortened, never over.
#[test]
fn a_check_report_fits_a_small_budget() {
    use sidecar_verify::report::markdown::markdown_within;
    let c = Checked::new("corpus/rulesets/mixed-features.rules");
    let doc = c.document();
    let whole = markdown(&doc);
    let max = 3_000;
    assert!(whole.len() > max, "{}", whole.len());
    let md = markdown_within(&doc, Some(max));
    assert!(md.len() <= max, "{} bytes", md.len());
    balanced(&md);
    assert!(
        md.contains("Shortened to fit 3000 bytes") || md.contains("Cut here"),
        "{md}"
    );
}

/// `--max-bytes` below the least a shortened report fits in is refused (exit 2), 0 is
/// unlimited.
#[test]
fn max_bytes_is_checked() {
    let bin = env!("CARGO_BIN_EXE_sidecar-verify");
    let out = std::process::Command::new(bin)
        .args(["diff", "a", "b", "--max-bytes", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`100` is below 2000, the least a shortened report fits in (0: unlimited)"),
        "{err}"
    );
}
