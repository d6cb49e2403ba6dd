//! The hop cases of `corpus/cases/` run by each engine: the concrete evaluator, the SMT hop
//! encoding with the packet fixed and the kernel oracle (when the machine can run it; otherwise
//! one line says why). A case an engine cannot run says so in its data.

#![cfg(test)]

use std::path::Path;

use sidecar_verify::cases::run::{run_all, Evaluator, Kernel, Runner, Smt};
use sidecar_verify::cases::{load_all, parse_cases, show_hit, Case, CaseError, Engine, Source};
use sidecar_verify::corpus::istio_dir;
use sidecar_verify::kernel::Side;

fn cases() -> Vec<Case> {
    load_all().unwrap()
}

/// Runs every case in `runner`: none fails, none is skipped but those Istio's corpus (when it
/// is not here) or the data's `skip` leave out, and the 20 outside Istio's corpus run.
fn all_pass(runner: &mut dyn Runner, cases: &[Case]) {
    let sum = run_all(runner, cases);
    print!("{sum}");
    assert!(sum.failures.is_empty(), "{}", sum.failures.join("\n"));
    let skipped_by_data = cases
        .iter()
        .filter(|c| c.skipped_by(sum.engine).is_some())
        .count();
    if istio_dir().is_some() {
        assert_eq!(sum.skipped.len(), skipped_by_data, "{sum}");
    }
    assert!(sum.ran >= 20, "only {} cases ran", sum.ran);
}

#[test]
fn the_evaluator_meets_every_case() {
    all_pass(&mut Evaluator, &cases());
}

#[test]
fn the_smt_encoding_meets_every_case() {
    all_pass(&mut Smt, &cases());
}

/// The kernel runner for `cases`; none, after a line that says why, when the machine cannot
/// run the oracle.
fn kernel(cases: &[Case]) -> Option<Kernel> {
    match Kernel::new(Path::new(env!("CARGO_BIN_EXE_sidecar-verify")), cases) {
        Ok(k) => Some(k),
        Err(CaseError::Unavailable(why)) => {
            println!("skipping the kernel runner of the hop cases: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn the_kernel_meets_every_case() {
    let cases = cases();
    let Some(mut k) = kernel(&cases) else {
        return;
    };
    all_pass(&mut k, &cases);
}

/// Every case the kernel oracle cannot run says so, and the flows it once disagreed on run 50
/// times in a row.
#[test]
fn the_data_says_what_an_engine_cannot_run() {
    let cases = cases();
    for c in &cases {
        if let Some(why) = Kernel::cannot_run(c) {
            assert!(
                c.skipped_by(Engine::Kernel).is_some(),
                "case {}: the oracle cannot run it ({why}) and its data does not say so",
                c.name
            );
        }
    }
    let regressions: Vec<&Case> = cases
        .iter()
        .filter(|c| c.file == "kernel-oracle.toml")
        .collect();
    assert!(regressions.len() >= 8);
    assert!(regressions.iter().all(|c| c.repeat == 50));
    assert!(regressions.iter().any(|c| c.after.is_some()));
}

/// The classic ruleset's hops that were checked by hand against the kernel's counters
/// (docs/handcheck.md) are all cases, each naming its heading there.
#[test]
fn every_hand_checked_hop_is_a_case() {
    let doc =
        std::fs::read_to_string(sidecar_verify::corpus::workspace().join("docs/handcheck.md"))
            .unwrap();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(headings.len(), 12);
    let cases = cases();
    for h in &headings {
        let cited = format!("docs/handcheck.md `{h}`");
        let n = cases
            .iter()
            .filter(|c| c.expected_from.contains(&cited))
            .count();
        assert_eq!(n, 1, "{n} cases cite `{h}`");
    }
}

/// The format that corpus/cases/README.md shows is the one the loader reads.
#[test]
fn the_readme_example_loads() {
    let readme =
        std::fs::read_to_string(sidecar_verify::corpus::workspace().join("corpus/cases/README.md"))
            .unwrap();
    let example = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .unwrap();
    let c = &load_one(example).unwrap()[0];
    assert_eq!(c.connection.mark, 0x539);
    assert_eq!(c.repeat, 50);
    assert_eq!(c.skipped_by(Engine::Smt), Some("…"));
    assert!(matches!(&c.after, Some(Source::Istio(_))));
    assert_eq!(c.expected.hits.len(), 3);
}

const GOOD: &str = r#"
[[case]]
name = "app-out"
rules = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p tcp -j REDIRECT --to-ports 15001
COMMIT
"""
dst = "10.1.0.99"
dport = 8080
uid = 1000
gid = 1000
hits = ["OUTPUT: nat OUTPUT 1"]
delivery = "listener 15001"
original_dst = "10.1.0.99:8080"
expected_from = "a test of the loader"
"#;

fn load_one(text: &str) -> Result<Vec<Case>, String> {
    parse_cases("t.toml", text).map_err(|e| e.to_string())
}

#[test]
fn the_loader_reads_a_case() {
    let c = &load_one(GOOD).unwrap()[0];
    assert_eq!(c.connection.proto, 6);
    assert_eq!(c.connection.sport, 40000);
    assert_eq!(c.connection.uid, 1000);
    assert_eq!(c.repeat, 1);
    assert!(matches!(&c.ruleset, Source::Inline(t) if t.starts_with("*nat")));
    assert_eq!(
        c.expected.hits.iter().map(show_hit).collect::<Vec<_>>(),
        ["OUTPUT: nat OUTPUT 1"]
    );
    assert_eq!(c.profile.name, "istio");
    // The case holds in the evaluator and the encoding.
    for runner in [&mut Evaluator as &mut dyn Runner, &mut Smt] {
        let sum = run_all(runner, std::slice::from_ref(c));
        assert_eq!((sum.ran, sum.failures.len()), (1, 0), "{:?}", sum.failures);
    }
}

/// A wrong expectation fails in every engine that runs it, and says what differs.
#[test]
fn a_wrong_expectation_fails() {
    let text = GOOD
        .replace("listener 15001", "app 15001")
        .replace("OUTPUT: nat OUTPUT 1", "OUTPUT: nat OUTPUT 2");
    let cases = load_one(&text).unwrap();
    for runner in [&mut Evaluator as &mut dyn Runner, &mut Smt] {
        let sum = run_all(runner, &cases);
        assert_eq!(sum.failures.len(), 1);
        let f = &sum.failures[0];
        assert!(
            f.contains("rule hits: expected OUTPUT: nat OUTPUT 2; got OUTPUT: nat OUTPUT 1"),
            "{f}"
        );
        assert!(
            f.contains("delivery: expected app 15001; got listener 15001"),
            "{f}"
        );
    }
    let Some(mut k) = kernel(&cases) else {
        return;
    };
    let text = GOOD.replace("OUTPUT: nat OUTPUT 1", "OUTPUT: nat OUTPUT 2");
    let sum = run_all(&mut k, &load_one(&text).unwrap());
    assert_eq!(sum.failures.len(), 1, "{sum}");
    assert!(
        sum.failures[0].contains(
            "rule hits of the first packet: expected OUTPUT: nat OUTPUT 2; kernel OUTPUT: nat OUTPUT 1 (in 1 of 1 runs)"
        ),
        "{}",
        sum.failures[0]
    );
}

/// An engine the data names in `skip` does not run the case, and says why.
#[test]
fn a_skip_is_explicit() {
    let text = GOOD.replace(
        "expected_from",
        "skip = { smt = \"a reason\" }\nexpected_from",
    );
    let cases = load_one(&text).unwrap();
    let sum = run_all(&mut Smt, &cases);
    assert_eq!(
        (sum.ran, sum.skipped.clone()),
        (0, vec!["app-out: a reason".to_string()])
    );
    assert_eq!(run_all(&mut Evaluator, &cases).ran, 1);
}

#[test]
fn the_loader_refuses_bad_cases() {
    let bad = [
        (GOOD.replace("dport = 8080", "dportt = 8080"), "unknown field `dportt`"),
        (
            GOOD.replace("OUTPUT: nat OUTPUT 1", "OUTPUT nat OUTPUT 1"),
            "hit `OUTPUT nat OUTPUT 1` is not `HOOK: TABLE CHAIN RULE`",
        ),
        (
            GOOD.replace("OUTPUT: nat OUTPUT 1", "OUTPUT: nat OUTPUT 0"),
            "is not `HOOK: TABLE CHAIN RULE`",
        ),
        (
            GOOD.replace("listener 15001", "proxy 15001"),
            "delivery `proxy 15001` is not",
        ),
        (
            GOOD.replace("original_dst = \"10.1.0.99:8080\"\n", ""),
            "a TCP hop delivered in the pod gives its `original_dst`",
        ),
        (
            GOOD.replace("listener 15001", "remote 10.1.0.99:8080"),
            "`original_dst` is for a hop delivered in the pod",
        ),
        (
            GOOD.replace("\"a test of the loader\"", "\" \""),
            "`expected_from` must say where",
        ),
        (
            GOOD.replace("expected_from", "skip = { kernel = \"\" }\nexpected_from"),
            "`skip.kernel` must say why",
        ),
        (
            GOOD.replace("expected_from", "skip = { kernell = \"x\" }\nexpected_from"),
            "unknown variant `kernell`",
        ),
        (
            GOOD.replace("rules = \"\"\"", "ruleset = \"corpus:x\"\nrules = \"\"\""),
            "give exactly one of `ruleset` and `rules`",
        ),
        (
            GOOD.replace("rules = \"\"\"", "ruleset = \"x.rules\"\nwhy = \"\"\""),
            "ruleset `x.rules` is not `corpus:PATH`, `istio:PATH` or one of the file's `[rulesets]`",
        ),
        (
            GOOD.replace("\ndst = ", "\nproto = \"sctp\"\ndst = "),
            "proto `sctp` is not `tcp` or `udp`",
        ),
        (
            GOOD.replace("\ndst = ", "\nprofile = \"osm\"\ndst = "),
            "unknown profile `osm`",
        ),
        (
            GOOD.replace("\ndst = ", "\niface = \"vnet0\"\ndst = "),
            "`iface` is the interface a connection from outside arrives on",
        ),
    ];
    for (text, want) in bad {
        let e = load_one(&text).map(|_| ()).unwrap_err();
        assert!(e.contains(want), "{e}\n(wanted `{want}`)");
    }
    // Names are unique over all files.
    let dir = std::env::temp_dir().join(format!("sv-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), GOOD).unwrap();
    std::fs::write(dir.join("b.toml"), GOOD).unwrap();
    let e = sidecar_verify::cases::load_dir(&dir)
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        e,
        "b.toml: case `app-out`: the name is taken by a case of a.toml"
    );
}

/// Not a check: prints what the kernel does with each case, in the cases' own syntax, for
/// writing a new case's expectation (`cargo test -p sidecar-verify --test cases -- --ignored
/// --nocapture`). Read it against the rules before pasting it.
#[test]
#[ignore = "a tool: prints the kernel's outcome of every case"]
fn record_what_the_kernel_does() {
    let cases = cases();
    let Some(mut k) = kernel(&cases) else {
        return;
    };
    for c in &cases {
        if c.skipped_by(Engine::Kernel).is_some() {
            continue;
        }
        let Some(hop) = c.load().unwrap() else {
            continue;
        };
        let runs = k.observe(&hop).unwrap();
        let (_, obs, hits) = &runs.runs[0];
        let same = runs.runs.iter().all(|(_, o, h)| (o, h) == (obs, hits));
        println!("# {} ({} runs, all alike: {same})", c.name, runs.runs.len());
        let hits: Vec<String> = hits
            .iter()
            .map(|(f, r)| format!("{:?} {}", f, show_hit(r)))
            .collect();
        println!("hits = {hits:?}");
        match obs.delivered {
            Some((Side::Pod, p)) => println!(
                "delivery = \"pod port {p}\" (proxy port: {}); original_dst = {:?}",
                c.profile.proxy_ports.contains(&p),
                obs.original_dst.map(|a| a.to_string())
            ),
            Some((Side::Peer, p)) => println!("delivery = \"peer port {p}\""),
            None => println!("delivery = \"dropped\""),
        }
        println!();
    }
}
