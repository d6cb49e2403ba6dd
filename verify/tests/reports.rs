//! The checked-in reports in `reports/` are what `scripts/reports` would write now: each line of
//! `reports/reports.list` is run and its output compared with the file. Run `scripts/reports`
//! after a change that alters them.

#![cfg(test)]

use std::process::Command;

use sidecar_verify::corpus::{istio_dir, workspace};

#[test]
fn reports_are_fresh() {
    let root = workspace();
    let list = std::fs::read_to_string(root.join("reports/reports.list")).unwrap();
    let mut compared = 0;
    let mut stale = Vec::new();
    for line in list
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let mut words = line.split_whitespace();
        let out = words.next().unwrap();
        let args: Vec<&str> = words.collect();
        if args.iter().any(|a| a.contains("../shared/")) && istio_dir().is_none() {
            println!("skipping reports/{out}: ../shared/corpus/istio is absent");
            continue;
        }
        let run = Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
            .args(&args)
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(
            matches!(run.status.code(), Some(0 | 1)),
            "{line}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let want = std::fs::read(root.join("reports").join(out)).unwrap_or_default();
        if run.stdout != want {
            stale.push(out.to_string());
        }
        compared += 1;
    }
    assert!(compared >= 3);
    assert!(
        stale.is_empty(),
        "stale reports (run scripts/reports): {}",
        stale.join(", ")
    );
}

/// The profile the history report uses is the one corpus/istio-profiles.toml gives.
#[test]
fn report_profile_matches_the_corpus_profile() {
    let root = workspace();
    let mine: toml::Value = toml::from_str(
        &std::fs::read_to_string(root.join("reports/inbound-ports-wildcard.profile.toml")).unwrap(),
    )
    .unwrap();
    let all: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("corpus/istio-profiles.toml")).unwrap())
            .unwrap();
    let entry =
        &all["tools/istio-iptables/pkg/capture/testdata/inbound-ports-wildcard.golden"]["profile"];
    assert_eq!(&mine, entry);
}
