//! Every iptables-form ruleset we can find parses and prints back to itself: ours under
//! `corpus/`, and Istio's generated files read in place from `../shared/corpus/istio` (override
//! with `SIDECAR_SHARED_CORPUS`; the test says so and passes when they are absent).

#![cfg(test)]

mod common;

use std::path::Path;

use common::{istio_dir, round_trip, workspace};
use sidecar_model::{parse, print_ruleset, Table};

/// Where Istio's files are, if they are here; says so when they are not.
fn istio_corpus() -> Option<std::path::PathBuf> {
    let dir = istio_dir();
    if dir.is_none() {
        println!(
            "skipping the Istio corpus: ../shared/corpus/istio not found (set SIDECAR_SHARED_CORPUS)"
        );
    }
    dir
}

/// The files INDEX.md lists in iptables form (`restore` or `cmd`).
fn istio_iptables_files(dir: &Path) -> Vec<String> {
    let index = std::fs::read_to_string(dir.join("INDEX.md")).unwrap();
    index
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            match cols.as_slice() {
                ["", file, "restore" | "cmd", ..] => Some(file.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// Files of Istio's corpus that iptables itself refuses, with the line and the error we give.
/// Both are Istio 1.21's: an IPv6 address in an `iptables` (IPv4) command, fixed by 1.23.
pub const KNOWN_INVALID: &[(&str, usize, &str)] = &[
    (
        "history/1.21.0/cni/pkg/iptables/testdata/default_ipv6.golden",
        8,
        "IPv6 address `e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164` in an IPv4 rule",
    ),
    (
        "history/1.21.0/cni/pkg/iptables/testdata/hostprobe_ipv6.golden",
        3,
        "IPv6 address `e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164` in an IPv4 rule",
    ),
];

#[test]
fn istio_corpus_parses_and_round_trips() {
    let Some(dir) = istio_corpus() else { return };
    let files = istio_iptables_files(&dir);
    assert!(
        files.len() >= 150,
        "INDEX.md lists only {} iptables-form files",
        files.len()
    );
    let (mut ok, mut refused) = (0, 0);
    let (mut v4_rules, mut v6_rules) = (0, 0);
    for file in &files {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        if let Some((_, line, msg)) = KNOWN_INVALID.iter().find(|(f, ..)| f == file) {
            let e = parse(file, &bytes).expect_err(file);
            assert_eq!(e.line, *line, "{file}: {e}");
            assert_eq!(e.message, *msg, "{file}");
            refused += 1;
            continue;
        }
        let rs = parse(file, &bytes)
            .unwrap_or_else(|e| panic!("{e}"))
            .ruleset;
        round_trip(file, &rs).unwrap_or_else(|e| panic!("{e}"));
        let rules = |tables: &[Table]| {
            tables
                .iter()
                .flat_map(|t| &t.chains)
                .map(|c| c.rules.len())
                .sum::<usize>()
        };
        v4_rules += rules(&rs.ipv4);
        v6_rules += rules(&rs.ipv6);
        ok += 1;
    }
    println!(
        "istio corpus: {ok} files parsed and round-tripped ({v4_rules} IPv4 rules, {v6_rules} IPv6 rules); {refused} refused as iptables refuses them"
    );
    assert_eq!(ok + refused, files.len());
    assert_eq!(refused, KNOWN_INVALID.len());
}

#[test]
fn istio_ipv6_files_have_both_families() {
    let Some(dir) = istio_corpus() else { return };
    // An `_ipv6` golden of the CNI holds the v4 block, then the v6 block after `ip6tables-save`.
    let rs = parse(
        "default_ipv6",
        &std::fs::read(dir.join("cni/pkg/iptables/testdata/default_ipv6.golden")).unwrap(),
    )
    .unwrap()
    .ruleset;
    assert_eq!(rs.ipv4.len(), 3);
    assert_eq!(rs.ipv6.len(), 3);
    let text = print_ruleset(&rs);
    assert!(text.contains("-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT"));
    assert!(text.contains(
        "-A ISTIO_PRERT -s e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164/128 -p tcp -m tcp -j ACCEPT"
    ));
}

/// The files under `corpus/` (recursively) that `keep` keeps.
fn own_files(keep: impl Fn(&Path) -> bool) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![workspace().join("corpus")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if keep(&p) {
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn own_corpus_round_trips() {
    let mut n = 0;
    for p in own_files(|p| p.extension().is_some_and(|x| x == "rules")) {
        let name = p.display().to_string();
        let rs = parse(&name, &std::fs::read(&p).unwrap())
            .unwrap_or_else(|e| panic!("{e}"))
            .ruleset;
        round_trip(&name, &rs).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 3, "only {n} rulesets under corpus/");
}

#[test]
fn classic_prints_exactly_as_iptables_save() {
    // The embedded default is iptables-save output: its canonical print is itself, comments aside.
    let rs = parse("classic", sidecar_model::DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&print_ruleset(&rs)),
        strip(sidecar_model::DEFAULT_RULESET)
    );
}

/// Every file of both corpora (rulesets, broken inputs, Istio's iptables forms) reads the same
/// with its runs of `-A` lines on threads, however short (`parse/parallel.rs`): the same ruleset,
/// or the same error.
#[test]
fn threads_read_every_corpus_file_alike() {
    use sidecar_model::parse::{parse_with, Options, Tuning};
    let one = Options {
        tuning: Tuning {
            threads: 1,
            min_run_bytes: usize::MAX,
        },
        ..Options::default()
    };
    let many = Options {
        tuning: Tuning {
            threads: 3,
            min_run_bytes: 1,
        },
        ..Options::default()
    };
    let mut files = own_files(|p| !p.extension().is_some_and(|x| x == "md" || x == "toml"));
    if let Some(dir) = istio_corpus() {
        files.extend(istio_iptables_files(&dir).iter().map(|f| dir.join(f)));
    }
    let (mut ok, mut refused) = (0, 0);
    for p in &files {
        let name = p.display().to_string();
        let bytes = std::fs::read(p).unwrap();
        match (
            parse_with(&name, &bytes, &one),
            parse_with(&name, &bytes, &many),
        ) {
            (Ok(a), Ok(b)) => {
                assert!(a.ruleset == b.ruleset && a.format == b.format, "{name}");
                ok += 1;
            }
            (Err(a), Err(b)) => {
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{name}");
                refused += 1;
            }
            (a, b) => panic!("{name}: {a:?} against {b:?}"),
        }
    }
    assert!(ok >= 20 && refused >= 1, "{ok} read, {refused} refused");
    println!("{ok} files read alike, {refused} refused alike");
}
