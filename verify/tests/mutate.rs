//! `sidecar-verify mutate`: a weakness planted by hand is found, and the command line's exit
//! codes, formats and acceptance file (accepted survivors, a stale acceptance refused, a file
//! that does not parse refused with its position).

#![cfg(test)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sidecar_model::mutate::{mutants, Operator};
use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, DEFAULT_RULESET};
use sidecar_verify::mutate::{run, Options};
use sidecar_verify::results::mutate::Class;
use sidecar_verify::results::Status;

/// A rule no invariant speaks about: an application's UDP to 10.9.9.9:5000 is sent to
/// 10.9.9.10 instead. Moving it elsewhere (or deleting it) changes where those connections go,
/// which no invariant of the catalog promises anything about.
const PLANTED: &str =
    "-A OUTPUT -d 10.9.9.9/32 -p udp -m udp --dport 5000 -j DNAT --to-destination 10.9.9.10";

/// The planted rule alone in a nat table: few mutants, a fast run.
fn small() -> String {
    format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n{PLANTED}\nCOMMIT\n"
    )
}

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sidecar-mutate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mutate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sidecar-verify"))
        .arg("mutate")
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The planted rule at the top of the classic ruleset's nat OUTPUT: of its mutants, the ones
/// that move or drop the DNAT survive (every invariant holds on the ruleset and on them), the
/// swap with the next rule (`-p tcp -j ISTIO_OUTPUT`, which no UDP packet matches) is
/// equivalent, and removing `-p` leaves `-m udp --dport` without `-p udp`, which iptables
/// refuses.
#[test]
fn a_planted_weakness_is_found() {
    let text = DEFAULT_RULESET.replace(
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        &format!("{PLANTED}\n-A OUTPUT -p tcp -j ISTIO_OUTPUT"),
    );
    let rs = parse("planted", text.as_bytes()).unwrap().ruleset;
    let ms: Vec<_> = mutants(&rs)
        .into_iter()
        .filter(|(m, _)| m.before == PLANTED)
        .collect();
    let r = run(
        &rs,
        ms,
        &Pod::default(),
        &Profile::istio(),
        &[],
        &Options::default(),
    )
    .unwrap();
    // Every invariant passes on the original but identity-symmetry (the classic gid rules after
    // its uid rules), which therefore kills nothing.
    assert!(
        r.original.iter().all(|i| i.id == "identity-symmetry"
            || !matches!(i.status, Status::Violated | Status::Unknown)),
        "{:?}",
        r.original
    );
    let class = |op: Operator, change: &str| {
        r.mutants
            .iter()
            .find(|m| m.mutation.operator == op && m.mutation.edit == change)
            .unwrap_or_else(|| panic!("no mutant {op:?} {change}: {:#?}", r.mutants))
    };
    let deleted = class(Operator::DeleteRule, "delete");
    assert_eq!(deleted.class, Class::Survivor, "{deleted:#?}");
    let w = &deleted.change.as_ref().unwrap().witness;
    assert_eq!(
        (w.proto.as_str(), w.dst.to_string().as_str(), w.dport),
        ("udp", "10.9.9.9", 5000)
    );
    let moved = class(
        Operator::AddressBit,
        "`--to-destination` 10.9.9.10 → 10.9.9.11",
    );
    assert_eq!(moved.class, Class::Survivor, "{moved:#?}");
    assert_eq!(
        class(Operator::SwapWithNext, "swap with rule 2").class,
        Class::Equivalent
    );
    let no_proto = class(Operator::RemoveMatch, "remove `-p`");
    assert_eq!(no_proto.class, Class::Invalid);
    assert!(no_proto.reason.is_some());
    assert!(!r.passes());
}

/// Exit 1 with survivors; the same run with every survivor accepted (in `RULES.mutate.toml`
/// beside the ruleset) exits 0 and lists them as accepted with their reasons.
#[test]
fn survivors_fail_the_run_until_accepted() {
    let d = dir("accept");
    let rules = d.join("planted.rules");
    std::fs::write(&rules, small()).unwrap();
    let r = rules.to_str().unwrap();
    let out = mutate(&[r, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let c = &v["counts"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        n("invalid")
            + n("equivalent")
            + n("killed")
            + n("masked")
            + n("accepted")
            + n("survivors")
            + n("unknown"),
        n("mutants")
    );
    assert_eq!(n("mutants"), v["mutants"].as_array().unwrap().len() as u64);
    assert!(n("survivors") >= 2, "{v:#}");
    assert_eq!(n("unknown"), 0);
    // Accept each survivor by its chain, operator, rule and edit.
    let mut toml = String::new();
    for m in v["mutants"].as_array().unwrap() {
        if m["class"] == "survivor" {
            assert!(m["change"]["witness"]["dst"].is_string(), "{m:#}");
            toml.push_str(&format!(
                "[[accept]]\nchain = {}\noperator = {}\nrule = {}\nedit = {}\nreason = \"a test: where the packet goes after the DNAT is the rule's business\"\n\n",
                m["chain"], m["operator"], m["before"], m["edit"]
            ));
        }
    }
    std::fs::write(d.join("planted.rules.mutate.toml"), &toml).unwrap();
    let out = mutate(&[r, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = json(&out);
    assert_eq!(w["counts"]["survivors"], 0);
    assert_eq!(w["counts"]["accepted"], c["survivors"]);
    // The text report lists them apart, with the reason.
    let out = mutate(&[r]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 0 survivors"), "{text}");
    assert!(text.contains("accepted survivors:"), "{text}");
    assert!(
        text.contains("reason: a test: where the packet goes"),
        "{text}"
    );
    // `--accept` names another file: here, none at all (an empty one).
    let empty = d.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = mutate(&[r, "--accept", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // Markdown for a pull request.
    let out = mutate(&[r, "--format", "markdown"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains(
            "| mutants | invalid | equivalent | killed | masked | accepted | survivors | unknown | time |"
        ),
        "{md}"
    );
    assert!(md.contains("#### Accepted survivors"), "{md}");
    std::fs::remove_dir_all(&d).unwrap();
}

fn refused(d: &Path, toml: &str) -> String {
    let rules = d.join("r.rules");
    std::fs::write(&rules, small()).unwrap();
    std::fs::write(d.join("r.rules.mutate.toml"), toml).unwrap();
    let out = mutate(&[rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{toml}");
    assert!(out.stdout.is_empty());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An acceptance that matches no mutant (its rule changed) is refused, at its line.
#[test]
fn a_stale_acceptance_is_refused() {
    let d = dir("stale");
    let err = refused(
        &d,
        &format!(
            "# accepted\n\n[[accept]]\nchain = \"OUTPUT\"\noperator = \"delete-rule\"\nrule = \"{}\"\nreason = \"x\"\n",
            PLANTED.replace("5000", "5001")
        ),
    );
    assert!(
        err.contains("r.rules.mutate.toml:3:1: stale acceptance"),
        "{err}"
    );
    // The right rule with an edit the operator does not make is stale too.
    let err = refused(
        &d,
        &format!(
            "[[accept]]\nchain = \"OUTPUT\"\noperator = \"port-shift\"\nrule = \"{PLANTED}\"\nedit = \"`--dport` 5000 → 5002\"\nreason = \"x\"\n"
        ),
    );
    assert!(
        err.contains("r.rules.mutate.toml:1:1: stale acceptance"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A file that does not parse, an unknown operator or key, a missing reason: exit 2 with the
/// position.
#[test]
fn a_bad_acceptance_file_is_refused_with_its_position() {
    let d = dir("bad");
    let err = refused(&d, "[[accept]]\nchain = \"OUTPUT\n");
    assert!(err.contains("r.rules.mutate.toml:2:"), "{err}");
    let err = refused(
        &d,
        &format!("[[accept]]\nchain = \"OUTPUT\"\noperator = \"delete\"\nrule = \"{PLANTED}\"\nreason = \"x\"\n"),
    );
    assert!(err.contains("r.rules.mutate.toml:3:12:"), "{err}");
    assert!(err.contains("delete-rule"), "{err}");
    let err = refused(
        &d,
        &format!("[[accept]]\nchain = \"OUTPUT\"\noperator = \"delete-rule\"\nrule = \"{PLANTED}\"\nreason = \" \"\n"),
    );
    assert!(
        err.contains("r.rules.mutate.toml:1:1: an accepted survivor needs a `reason`"),
        "{err}"
    );
    let err = refused(&d, "[[accept]]\nchian = \"OUTPUT\"\n");
    assert!(err.contains("r.rules.mutate.toml:2:1:"), "{err}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Mutants of a family the pod has no address of are unknown, never equivalent: neither `diff`
/// nor the proofs look at that family's tables. The command line gives every family of the
/// ruleset a pod address (`Pod::for_rulesets`), so this guards library callers with a pod of
/// one family.
#[test]
fn a_family_without_a_pod_address_is_not_a_pass() {
    let text = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n# Generated by ip6tables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n";
    let rs = parse("v6", text.as_bytes()).unwrap().ruleset;
    let ms: Vec<_> = mutants(&rs)
        .into_iter()
        .filter(|(m, _)| m.family == sidecar_model::Family::Ipv6)
        .collect();
    assert!(!ms.is_empty());
    let r = run(
        &rs,
        ms,
        &Pod::new(&["10.1.0.5".parse().unwrap()]),
        &Profile::istio(),
        &[],
        &Options::default(),
    )
    .unwrap();
    for m in &r.mutants {
        assert_eq!(m.class, Class::Unknown, "{m:#?}");
        assert!(
            m.reason
                .as_deref()
                .unwrap_or("")
                .contains("no IPv6 address"),
            "{m:#?}"
        );
    }
}

/// The classic ruleset: every behaviour-changing mutant is killed by an invariant, or masked by
/// identity-symmetry, which the ruleset violates (issue 13's bar): nothing is left to accept.
/// The masked ones are exactly the mutants of rule 3 (`-o lo -m owner ! --uid-owner 1337 -j
/// RETURN`) that change only a process of gid 1337 and another uid connecting to a pod
/// address, the proxy known by its gid alone, which the ruleset already treats unlike uid 1337.
#[test]
fn the_classic_ruleset_has_no_unaccepted_survivor() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/istio-classic.rules");
    let out = mutate(&[rules.to_str().unwrap(), "--format", "json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let counts = &v["counts"];
    assert_eq!(counts["survivors"], 0, "{counts}");
    assert_eq!(counts["unknown"], 0, "{counts}");
    assert_eq!(counts["accepted"], 0, "{counts}");
    assert!(counts["killed"].as_u64().unwrap() > 50, "{counts}");
    let masked: Vec<&serde_json::Value> = v["mutants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["class"] == "masked")
        .collect();
    assert_eq!(masked.len(), 4, "{masked:#?}");
    for m in masked {
        assert_eq!(
            m["before"], "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN",
            "{m:#}"
        );
        assert_eq!(
            m["masked_by"],
            serde_json::json!(["identity-symmetry"]),
            "{m:#}"
        );
        assert_eq!(m["change"]["witness"]["gid"], 1337, "{m:#}");
        assert_ne!(m["change"]["witness"]["uid"], 1337, "{m:#}");
    }
}

/// Masking leaves out exactly what the violated invariant reports: deleting classic rule 3
/// changes only connections identity-symmetry reports (masked by it, and not masked by no
/// invariant at all); deleting rule 9 (`-j ISTIO_REDIRECT`) stops capturing applications'
/// outbound connections, which identity-symmetry does not speak about (not masked).
#[test]
fn masking_leaves_out_only_what_the_violated_invariant_reports() {
    use sidecar_verify::invariants::Id;
    use sidecar_verify::mutate::mask::masked;
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let without = |line: &str| {
        let text: String = DEFAULT_RULESET
            .lines()
            .filter(|l| *l != line)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(text.len(), DEFAULT_RULESET.len(), "{line}");
        parse("mutant", text.as_bytes()).unwrap().ruleset
    };
    let opts = sidecar_verify::diff::Options {
        max_classes: 1,
        timeout_ms: 30_000,
        ..Default::default()
    };
    let pod = Pod::default();
    let istio = Profile::istio();
    let sym = [Id::from_name("identity-symmetry").unwrap()];
    let rule3 = without("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN");
    assert_eq!(
        masked(&rs, &rule3, &pod, &istio, &sym, &opts).unwrap(),
        Some(true)
    );
    assert_eq!(
        masked(&rs, &rule3, &pod, &istio, &[], &opts).unwrap(),
        Some(false)
    );
    let rule9 = without("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
    assert_eq!(
        masked(&rs, &rule9, &pod, &istio, &sym, &opts).unwrap(),
        Some(false)
    );
}

/// An acceptance whose mutants are all killed (or equivalent) accepts nothing: the run names it
/// and fails, so an outdated acceptance does not linger once an invariant covers its mutant.
#[test]
fn an_acceptance_that_accepts_nothing_fails_the_run() {
    const JUMP: &str = "-A OUTPUT -p tcp -j ISTIO_OUTPUT";
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let ms: Vec<_> = mutants(&rs)
        .into_iter()
        .filter(|(m, _)| m.before == JUMP && m.operator == Operator::DeleteRule)
        .collect();
    assert_eq!(ms.len(), 1);
    let text = format!(
        "[[accept]]\nchain = \"OUTPUT\"\noperator = \"delete-rule\"\nrule = \"{JUMP}\"\nreason = \"outdated\"\n"
    );
    let accepts = sidecar_verify::mutate::accept::parse(Path::new("x.mutate.toml"), &text).unwrap();
    let r = run(
        &rs,
        ms,
        &Pod::default(),
        &Profile::istio(),
        &accepts,
        &Options::default(),
    )
    .unwrap();
    // Deleting the jump to ISTIO_OUTPUT leaves outbound traffic uncaptured: killed.
    assert_eq!(r.mutants[0].class, Class::Killed, "{:#?}", r.mutants[0]);
    assert_eq!(
        r.unneeded,
        [format!("1:1: OUTPUT delete-rule `{JUMP}`")],
        "{:?}",
        r.unneeded
    );
    assert!(!r.passes());
}

/// `mutate --format markdown` within a budget: a run with many survivors (the planted rule's
/// mutants, repeated) is shortened to fit, its tables cut with a note, never over the budget.
#[test]
fn the_markdown_report_fits_its_budget() {
    use sidecar_verify::report::mutate::{markdown, markdown_within};
    let rs = parse("small", small().as_bytes()).unwrap().ruleset;
    let ms = mutants(&rs);
    let mut r = run(
        &rs,
        ms,
        &Pod::default(),
        &Profile::istio(),
        &[],
        &Options::default(),
    )
    .unwrap();
    let survivors: Vec<_> = r.of(Class::Survivor).cloned().collect();
    assert!(!survivors.is_empty());
    for _ in 0..100 {
        r.mutants.extend(survivors.iter().cloned());
    }
    let whole = markdown(&r, "small");
    let max = 5_000;
    assert!(whole.len() > 4 * max, "{}", whole.len());
    let md = markdown_within(&r, "small", Some(max));
    assert!(md.len() <= max, "{} bytes", md.len());
    assert!(md.contains("Shortened to fit 5000 bytes"), "{md}");
    assert!(md.contains("more: listed in the whole report"), "{md}");
    assert_eq!(markdown_within(&r, "small", None), whole);
}

/// `--deadline`: past it no mutant is made or compared (a node's table has hundreds of
/// thousands), each is `unknown` with the deadline named, none is counted as equivalent or
/// killed, and the run fails; every mutant is still listed. `mutations` makes the same list as
/// `mutants`, edit for edit.
#[test]
fn past_the_deadline_every_mutant_is_unknown() {
    let rs = parse("classic", DEFAULT_RULESET.as_bytes())
        .unwrap()
        .ruleset;
    let listed = sidecar_model::mutate::mutations(&rs);
    let made = mutants(&rs);
    assert_eq!(listed.len(), made.len());
    for ((m, edit), (n, mutant)) in listed.iter().zip(&made) {
        assert_eq!(m, n);
        assert!(edit.apply(&rs) == *mutant, "{m:?}");
    }
    let out = mutate(&["--format", "json", "--deadline", "0s"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let ms = v["mutants"].as_array().unwrap();
    assert_eq!(ms.len(), made.len());
    assert_eq!(v["counts"]["unknown"], made.len());
    for m in ms {
        assert_eq!(m["class"], "unknown", "{m}");
        assert!(m["reason"].as_str().unwrap().contains("--deadline"), "{m}");
    }
}
