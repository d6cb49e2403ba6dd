//! The HTML report opened in headless Chromium: the page renders (a screenshot is taken), its
//! tables have a row per invariant, and each journey is drawn. Skips with one line when Chromium
//! is absent (`scripts/setup` installs Debian's `chromium`).

#![cfg(test)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Checked, Diffed};
use sidecar_verify::report::html::html;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| sidecar_verify::netns::on_path(c))
}

fn run_chromium(bin: &str, args: &[&str], page: &Path) -> std::process::Output {
    // A profile of its own per run: the tests run in parallel, and Chromium refuses a profile
    // another instance holds.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("sv-chromium-{}-{n}", std::process::id()));
    let out = Command::new("timeout")
        .arg("120")
        .arg(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// Renders `page`, checks the DOM Chromium built and the screenshot it took.
fn rendered(name: &str, page_html: &str, rows: usize, charts: usize) {
    let Some(bin) = chromium() else {
        println!("skipping the headless-Chromium check of the HTML report: no chromium here");
        return;
    };
    let dir = std::env::temp_dir().join(format!("sv-html-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page: PathBuf = dir.join("report.html");
    std::fs::write(&page, page_html).unwrap();
    let shot = dir.join("shot.png");
    let out = run_chromium(
        bin,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
        &page,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a {} byte screenshot is a blank page",
        png.len()
    );
    let dom = run_chromium(bin, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let table = dom
        .split("<table id=\"invariants\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no invariants table in the DOM:\n{dom}"));
    assert_eq!(table.matches("<tr>").count(), rows + 1, "{table}");
    assert_eq!(dom.matches("<svg").count(), charts);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_page_renders() {
    let page = html(&Checked::new("corpus/broken/no-uid-return.rules").document());
    assert!(
        !page.contains("http://")
            || page.matches("http://").count()
                == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "the page must not load anything"
    );
    insta::assert_snapshot!(page);
    // One chart for proxy-not-recaptured's witness, two for identity-symmetry's pair.
    rendered("check", &page, sidecar_verify::invariants::ALL.len(), 3);
}

#[test]
fn diff_page_renders() {
    let d = Diffed::new(
        "corpus/istio-classic.rules",
        "corpus/broken/no-passthrough-return.rules",
    );
    let page = html(&d.document());
    insta::assert_snapshot!(page);
    // Capture-port loops are folded into one line, without charts.
    let (shown, folded) = d.report.shown_and_folded();
    assert!(!folded.is_empty() && !shown.is_empty());
    assert_eq!(page.matches("<p id=\"folded\">").count(), 1);
    rendered(
        "diff",
        &page,
        sidecar_verify::invariants::ALL.len(),
        2 * shown.len(),
    );
}
