//! The pull-request scripts the GitHub Action (action.yml) runs: `scripts/pr-comment` writes one
//! comment body within its budget from OLD NEW pairs or from the rulesets changed since a git
//! revision, with the whole reports and one SARIF beside it; `scripts/pr-comment-post` posts it
//! once and updates that comment afterwards (with a stand-in for `gh`). They need bash, git and
//! jq; a test prints a line and passes when one is missing.

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sidecar_verify::corpus::workspace;

const BIN: &str = env!("CARGO_BIN_EXE_sidecar-verify");
const MARKER: &str = "<!-- sidecar-verify -->";

use sidecar_verify::netns::on_path as have;

fn tools() -> bool {
    let missing: Vec<&str> = ["bash", "git", "jq"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        println!("skipping: {} not installed", missing.join(", "));
    }
    missing.is_empty()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sv-pr-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pr_comment(dir: &Path, args: &[&str]) -> Output {
    Command::new(workspace().join("scripts/pr-comment"))
        .arg("--bin")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Two pairs given as paths: one comment, the titles relative to the working directory, the
/// verdict, the whole reports and one SARIF with every pair's results.
#[test]
fn pairs_make_one_comment() {
    if !tools() {
        return;
    }
    let root = workspace();
    let out = scratch("pairs");
    let classic = "corpus/istio-classic.rules";
    let broken = "corpus/broken/no-uid-return.rules";
    let run = pr_comment(
        &root,
        &[
            "--out",
            out.to_str().unwrap(),
            classic,
            broken,
            classic,
            classic,
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let body = read(&out.join("comment.md"));
    assert!(
        body.starts_with(&format!("{MARKER}\n## sidecar-verify: ❌")),
        "{body}"
    );
    assert!(
        body.contains(&format!("### sidecar-verify diff `{classic}` → `{broken}`")),
        "{body}"
    );
    assert!(
        body.contains("✅ no connection behaves differently"),
        "{body}"
    );
    assert!(body.len() <= 60_000);
    assert_eq!(read(&out.join("verdict")).trim(), "violation");
    for n in 1..=2 {
        for ext in ["md", "html", "json", "sarif"] {
            assert!(out.join(format!("report/{n}.{ext}")).is_file(), "{n}.{ext}");
        }
    }
    let sarif: serde_json::Value = serde_json::from_str(&read(&out.join("report.sarif"))).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let one: serde_json::Value = serde_json::from_str(&read(&out.join("report/1.sarif"))).unwrap();
    assert_eq!(results, one["runs"][0]["results"].as_array().unwrap());
    assert_eq!(sarif["runs"][0]["properties"]["pairs"][0]["new"], broken);
    // In a smaller budget, still whole lines and under it.
    let run = pr_comment(
        &root,
        &[
            "--out",
            out.to_str().unwrap(),
            "--max-bytes",
            "4000",
            classic,
            broken,
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let body = read(&out.join("comment.md"));
    assert!(body.len() <= 4000, "{} bytes", body.len());
    assert!(body.contains("Shortened to fit"), "{body}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// `--base REV GLOB`: each file the work tree changes since REV against its version there; a
/// deleted one and a bad revision said so.
#[test]
fn changed_rulesets_are_compared_with_the_base() {
    if !tools() {
        return;
    }
    let repo = scratch("base");
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {o:?}");
    };
    let classic = std::fs::read(workspace().join("corpus/istio-classic.rules")).unwrap();
    std::fs::create_dir_all(repo.join("corpus")).unwrap();
    std::fs::write(repo.join("corpus/a.rules"), &classic).unwrap();
    std::fs::write(repo.join("corpus/same.rules"), &classic).unwrap();
    std::fs::write(repo.join("corpus/gone.rules"), &classic).unwrap();
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    std::fs::copy(
        workspace().join("corpus/broken/no-uid-return.rules"),
        repo.join("corpus/a.rules"),
    )
    .unwrap();
    std::fs::remove_file(repo.join("corpus/gone.rules")).unwrap();
    let run = pr_comment(&repo, &["--base", "HEAD", "corpus/*.rules"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let body = read(&repo.join(".sidecar-verify/comment.md"));
    assert!(
        body.contains(
            "### sidecar-verify diff `.sidecar-verify/base/corpus/a.rules` → `corpus/a.rules`"
        ),
        "{body}"
    );
    assert!(body.contains("- `corpus/gone.rules`: deleted"), "{body}");
    assert!(!body.contains("same.rules"), "{body}");
    assert_eq!(
        read(&repo.join(".sidecar-verify/base/corpus/a.rules")).as_bytes(),
        classic
    );
    let run = pr_comment(&repo, &["--base", "no-such-rev", "corpus/*.rules"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("`no-such-rev` is not a git revision"));
    std::fs::remove_dir_all(&repo).unwrap();
}

/// The comment is posted once, then the same one (found by the marker) is updated.
#[test]
fn the_comment_is_posted_once_then_updated() {
    if !tools() {
        return;
    }
    let d = scratch("post");
    let log = d.join("gh.log");
    let existing = d.join("existing");
    let gh = d.join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/usr/bin/env bash\necho \"gh $*\" >>'{}'\ncase \"$*\" in *--paginate*) [ -f '{}' ] && echo 4242 ;; esac\nexit 0\n",
            log.display(),
            existing.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&gh).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&gh, perms).unwrap();
    let body = d.join("comment.md");
    std::fs::write(&body, format!("{MARKER}\nhello\n")).unwrap();
    let post = || {
        Command::new(workspace().join("scripts/pr-comment-post"))
            .arg(&body)
            .env(
                "PATH",
                format!("{}:{}", d.display(), std::env::var("PATH").unwrap()),
            )
            .env("REPO", "owner/repo")
            .env("PR", "7")
            .output()
            .unwrap()
    };
    assert!(post().status.success());
    std::fs::write(&existing, "").unwrap();
    assert!(post().status.success());
    let calls = read(&log);
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 4, "{calls}");
    assert!(
        lines[1].starts_with("gh api --method POST repos/owner/repo/issues/7/comments -F body=@"),
        "{calls}"
    );
    assert!(
        lines[3]
            .starts_with("gh api --method PATCH repos/owner/repo/issues/comments/4242 -F body=@"),
        "{calls}"
    );
    // A body without the marker is refused: it could never be found again.
    std::fs::write(&body, "hello\n").unwrap();
    assert_eq!(post().status.code(), Some(2));
    std::fs::remove_dir_all(&d).unwrap();
}
