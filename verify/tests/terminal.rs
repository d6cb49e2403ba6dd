//! The command line's terminal habits: `--version` with the revision, completions and a man
//! page from the clap definitions, colour only when asked for or on a terminal (never with
//! `NO_COLOR`), and nothing on stderr but errors when stderr is not a terminal (no progress).

#![cfg(test)]

use std::process::{Command, Output};

use sidecar_verify::corpus::workspace;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sidecar-verify"));
    c.args(args).current_dir(workspace()).env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn version_names_the_revision() {
    let o = run(&["--version"], &[]);
    assert!(o.status.success());
    let v = String::from_utf8(o.stdout).unwrap();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let rev = v
        .trim()
        .rsplit_once(" (")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .unwrap_or_default()
        .to_string();
    if git(&["rev-parse", "HEAD"]).is_some() {
        // Built from this checkout: a commit of it, HEAD or (when someone committed while the
        // tests ran) an ancestor of HEAD.
        assert_eq!(rev.len(), 12, "{v}");
        assert!(
            git(&["merge-base", "--is-ancestor", &rev, "HEAD"]).is_some(),
            "{v}: `{rev}` is not HEAD or an ancestor of it"
        );
    } else {
        assert_eq!(rev, "unknown", "{v}");
    }
    assert!(
        v.starts_with(&format!("sidecar-verify {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    let o = run(&["completions", "bash"], &[]);
    assert!(o.status.success());
    let bash = String::from_utf8(o.stdout).unwrap();
    for word in [
        "check",
        "diff",
        "mutate",
        "completions",
        "--profile",
        "--netns",
        "--max-bytes",
        "--family",
        "--quiet",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let o = run(&["completions", "zsh"], &[]);
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .contains("#compdef sidecar-verify"));
    let o = run(&["completions", "tcsh"], &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
    let o = run(&["man"], &[]);
    assert!(o.status.success());
    let man = String::from_utf8(o.stdout).unwrap();
    assert!(
        man.contains(".TH sidecar-verify 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("check"), "the subcommands are listed");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    const RED: &str = "\u{1b}[";
    let never = run(
        &[
            "check",
            "--color",
            "always",
            "corpus/broken/no-uid-return.rules",
        ],
        &[],
    );
    let text = String::from_utf8(never.stdout).unwrap();
    assert!(text.contains(RED), "--color always colours");
    assert!(text.contains("VIOLATED"));
    // stdout is a pipe here: auto means none, NO_COLOR or never means none.
    for (args, env) in [
        (vec![], vec![]),
        (vec!["--color", "never"], vec![]),
        (vec![], vec![("NO_COLOR", "1")]),
    ] {
        let mut a = vec!["check", "corpus/broken/no-uid-return.rules"];
        a.extend(args);
        let o = run(&a, &env);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            !String::from_utf8(o.stdout).unwrap().contains(RED),
            "{a:?} {env:?}"
        );
    }
    // JSON and files are never coloured.
    let o = run(&["check", "--color", "always", "--format", "json"], &[]);
    assert!(!String::from_utf8(o.stdout).unwrap().contains(RED));
}

#[test]
fn stderr_is_quiet_when_not_a_terminal() {
    // The classic check takes long enough for a progress bar on a terminal; stderr is a pipe
    // here, so nothing is drawn.
    let o = run(&["check"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(
        &[
            "--quiet",
            "check",
            "corpus/rulesets/kuma.rules",
            "--profile",
            "kuma",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty());
}
