//! Markdown reports: the structure a pull-request comment needs (summary line, one table row per
//! invariant, a witness and a closed Mermaid block per violation or change class), and insta
//! snapshots of the rendering. The content itself (witnesses, journeys) is checked against
//! `trace` and the kernel in the check and diff tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, print_ruleset, Ruleset};
use sidecar_verify::corpus::workspace;
use sidecar_verify::report::markdown::markdown;
use sidecar_verify::report::{Document, Source};

fn load(rel: &str) -> Ruleset {
    let bytes = std::fs::read(workspace().join(rel)).unwrap();
    parse(rel, &bytes).unwrap().ruleset
}

fn structure(md: &str, invariants: usize, sections: usize) {
    let first = md.lines().next().unwrap();
    assert!(first.starts_with("### sidecar-verify "), "{first}");
    let rows = md.lines().filter(|l| l.starts_with("| `")).count();
    assert!(rows >= invariants, "{rows} table rows:\n{md}");
    assert_eq!(md.matches("```mermaid").count(), sections, "{md}");
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
    let rel = "corpus/broken/no-uid-return.rules";
    let rs = load(rel);
    let pod = Pod::default();
    let r = sidecar_verify::check::check(
        &rs,
        &print_ruleset(&rs),
        &pod,
        &Profile::istio(),
        &Default::default(),
    )
    .unwrap();
    let md = markdown(&Document::Check {
        report: &r,
        source: Source {
            name: rel,
            ruleset: &rs,
        },
        pod: &pod,
    });
    structure(&md, 9, 1);
    assert!(md.contains("❌ 1 of 9 invariants do not hold"));
    insta::assert_snapshot!(md);
    // The JSON renderer is the report model itself.
    insta::assert_json_snapshot!("check_json", r);
}

#[test]
fn diff_markdown() {
    let (o, n) = (
        "corpus/istio-classic.rules",
        "corpus/broken/no-uid-return.rules",
    );
    let (old, new) = (load(o), load(n));
    let pod = Pod::default();
    let r = sidecar_verify::diff::diff(&old, &new, &pod, &Profile::istio(), &Default::default())
        .unwrap();
    let md = markdown(&Document::Diff {
        report: &r,
        old: Source {
            name: o,
            ruleset: &old,
        },
        new: Source {
            name: n,
            ruleset: &new,
        },
        pod: &pod,
    });
    structure(&md, 9, r.changes.len());
    assert!(md.contains("newly violated: proxy-not-recaptured"));
    insta::assert_snapshot!(md);
    insta::assert_json_snapshot!("diff_json", r);
}
