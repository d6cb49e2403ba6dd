//! SARIF reports: each log validates against the OASIS SARIF 2.1.0 schema shipped in
//! `verify/schemas/`, carries the expected results (rule ids, levels) located at the lines of
//! the rules that decide them, and is pinned by an insta snapshot.

#![cfg(test)]

mod common;

use common::{text, Checked, Diffed};
use serde_json::Value;
use sidecar_verify::check::{Report, RuleStatus, Status};
use sidecar_verify::report::sarif::{sarif, sarif_with, Options};

const CLASSIC: &str = "corpus/istio-classic.rules";
const NO_UID_RETURN: &str = "corpus/broken/no-uid-return.rules";
const REDIRECT_15001: &str = "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001";
/// The classic rule `corpus/broken/no-uid-return.rules` lacks (a `diff` of the two files shows
/// only this line and the comments).
const UID_RETURN: &str = "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN";

/// The 1-based line of `rel` that is exactly `line`.
fn line_of(rel: &str, line: &str) -> u64 {
    let t = text(rel);
    let mut found = t.lines().enumerate().filter(|(_, l)| l.trim_end() == line);
    let (n, _) = found
        .next()
        .unwrap_or_else(|| panic!("{rel} has no line {line}"));
    assert!(found.next().is_none(), "{rel} has {line} twice");
    n as u64 + 1
}

/// The line `n` (1-based) of `rel`.
fn line_at(rel: &str, n: u64) -> String {
    text(rel)
        .lines()
        .nth(usize::try_from(n - 1).unwrap())
        .unwrap()
        .to_string()
}

fn schema() -> Value {
    serde_json::from_str(&text("verify/schemas/sarif-schema-2.1.0.json")).unwrap()
}

/// Validators for the shipped schema: as the draft it declares (draft-04), and as draft-07,
/// whose formats include `uri-reference` (draft-04 has no such format and lets any string pass).
/// The schema uses no keyword whose meaning differs between the two.
fn validators() -> [jsonschema::Validator; 2] {
    let schema = schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
    let declared = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let draft7 = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    [declared, draft7]
}

fn validate(log: &Value) {
    for validator in validators() {
        let errors: Vec<String> = validator
            .iter_errors(log)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "not valid SARIF 2.1.0:\n{}\n{log:#}",
            errors.join("\n")
        );
    }
}

fn check_log(rel: &str) -> (Value, Report) {
    let c = Checked::new(rel);
    (sarif(&c.document()), c.report)
}

fn results(log: &Value) -> &Vec<Value> {
    log["runs"][0]["results"].as_array().unwrap()
}

fn uri(result: &Value) -> &str {
    result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
}

fn start_line(result: &Value) -> Option<u64> {
    result["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64()
}

/// Every result names a rule of the driver, by id and index.
fn rules_consistent(log: &Value) {
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in [
        "proxy-not-recaptured",
        "metrics-bypass",
        "inbound-captured",
        "outbound-captured",
        "passthrough-not-recaptured",
        "localhost-untouched",
        "no-redirect-loop",
        "single-pass",
        "exclusions-respected",
        "behaviour-change",
        "unreachable-rule",
        "shadowed-rule",
    ] {
        assert!(ids.contains(&id), "no rule {id}: {ids:?}");
    }
    for r in results(log) {
        let id = r["ruleId"].as_str().unwrap();
        let i = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(ids[i], id);
    }
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(
        log["$schema"],
        "https://json.schemastore.org/sarif-2.1.0.json"
    );
    assert_eq!(log["runs"][0]["tool"]["driver"]["name"], "sidecar-verify");
}

/// The notes are exactly the shadowed and unreachable rules, each at a line of its chain.
fn notes_match_reachability(log: &Value, r: &Report, rel: &str) {
    // Vacuous invariants are notes too, one each under the invariant's id.
    let vacuous: Vec<&str> = r
        .invariants
        .iter()
        .filter(|i| i.status == Status::Vacuous)
        .map(|i| i.id)
        .collect();
    let vacuous_notes: Vec<&str> = results(log)
        .iter()
        .filter(|x| x["level"] == "note")
        .filter_map(|x| x["ruleId"].as_str())
        .filter(|id| !matches!(*id, "shadowed-rule" | "unreachable-rule"))
        .collect();
    assert_eq!(vacuous_notes, vacuous, "{log:#}");
    let notes: Vec<&Value> = results(log)
        .iter()
        .filter(|x| x["level"] == "note")
        .filter(|x| {
            matches!(
                x["ruleId"].as_str(),
                Some("shadowed-rule" | "unreachable-rule")
            )
        })
        .collect();
    let dead: Vec<_> = r
        .rules
        .iter()
        .filter(|x| matches!(x.status, RuleStatus::Shadowed | RuleStatus::Unreachable))
        .collect();
    assert_eq!(notes.len(), dead.len(), "{log:#}");
    for (note, rule) in notes.iter().zip(&dead) {
        let id = match rule.status {
            RuleStatus::Shadowed => "shadowed-rule",
            _ => "unreachable-rule",
        };
        assert_eq!(note["ruleId"], id);
        assert_eq!(uri(note), rel);
        let line = line_at(rel, start_line(note).unwrap());
        assert!(
            line.starts_with(&format!("-A {} ", rule.chain)),
            "{rule:?} located at {line}"
        );
    }
}

#[test]
fn check_no_uid_return_sarif() {
    let (log, r) = check_log(NO_UID_RETURN);
    validate(&log);
    rules_consistent(&log);
    // identity-symmetry is violated by the classic ruleset too (its gid rules after its uid
    // rules): its result names the pair.
    let errors: Vec<&Value> = results(&log)
        .iter()
        .filter(|x| x["level"] == "error" && x["ruleId"] != "identity-symmetry")
        .collect();
    assert_eq!(errors.len(), 1, "{log:#}");
    assert!(results(&log)
        .iter()
        .any(|x| x["ruleId"] == "identity-symmetry"
            && x["message"]["text"]
                .as_str()
                .unwrap()
                .contains("Paired with")));
    let e = errors[0];
    assert_eq!(e["ruleId"], "proxy-not-recaptured");
    assert_eq!(uri(e), NO_UID_RETURN);
    assert_eq!(
        start_line(e),
        Some(line_of(NO_UID_RETURN, REDIRECT_15001)),
        "{e:#}"
    );
    let msg = e["message"]["text"].as_str().unwrap();
    assert!(
        msg.contains("tcp 10.1.0.5:40000 -> 10.1.0.99:80 (uid 1337 gid 1000)"),
        "{msg}"
    );
    assert!(
        results(&log)
            .iter()
            .all(|x| x["level"] == "error" || x["level"] == "note"),
        "{log:#}"
    );
    notes_match_reachability(&log, &r, NO_UID_RETURN);
    insta::assert_json_snapshot!(log);
}

#[test]
fn check_classic_sarif() {
    let (log, r) = check_log(CLASSIC);
    validate(&log);
    rules_consistent(&log);
    // Every invariant but identity-symmetry passes (the gid rules come after the uid rules).
    let bad: Vec<&str> = r
        .invariants
        .iter()
        .filter(|i| !i.status.passes())
        .map(|i| i.id)
        .collect();
    assert_eq!(bad, ["identity-symmetry"]);
    // Besides that error, nothing but reachability notes: ISTIO_OUTPUT 5 and 6 can never match.
    assert!(
        results(&log)
            .iter()
            .all(|x| x["level"] == "note" || x["ruleId"] == "identity-symmetry"),
        "{log:#}"
    );
    notes_match_reachability(&log, &r, CLASSIC);
    let texts: Vec<&str> = results(&log)
        .iter()
        .map(|x| x["message"]["text"].as_str().unwrap())
        .collect();
    for n in [5, 6] {
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with(&format!("nat ISTIO_OUTPUT {n} is "))),
            "{texts:?}"
        );
    }
    insta::assert_json_snapshot!(log);
}

#[test]
fn diff_classic_to_no_uid_return_sarif() {
    let d = Diffed::new(CLASSIC, NO_UID_RETURN);
    let (log, r) = (sarif(&d.document()), &d.report);
    validate(&log);
    rules_consistent(&log);
    let res = results(&log);
    let changes: Vec<&Value> = res
        .iter()
        .filter(|x| x["ruleId"] == "behaviour-change")
        .collect();
    assert!(!r.changes.is_empty());
    assert_eq!(changes.len(), r.changes.len(), "{log:#}");
    // The change deletes one rule and adds none: every class comes from it, at its line in
    // the old file (the new file has no line for it).
    for (c, change) in changes.iter().zip(&r.changes) {
        assert_eq!(c["level"], "warning");
        assert_eq!(uri(c), CLASSIC, "{c:#}");
        assert_eq!(start_line(c), Some(line_of(CLASSIC, UID_RETURN)), "{c:#}");
        let text = c["message"]["text"].as_str().unwrap();
        assert!(text.starts_with(&change.description));
        assert!(
            text.ends_with(&format!(
                "It comes from old nat ISTIO_OUTPUT 4 (deleted): {UID_RETURN}"
            )),
            "{text}"
        );
    }
    let errors: Vec<&Value> = res.iter().filter(|x| x["level"] == "error").collect();
    assert_eq!(errors.len(), 1, "{log:#}");
    assert_eq!(errors[0]["ruleId"], "proxy-not-recaptured");
    assert_eq!(uri(errors[0]), NO_UID_RETURN);
    assert_eq!(
        start_line(errors[0]),
        Some(line_of(NO_UID_RETURN, REDIRECT_15001))
    );
    assert_eq!(res.len(), changes.len() + errors.len());
    insta::assert_json_snapshot!(log);
}

/// The `behaviour-change` results of `d`'s log, each checked to be located in `file` at `line`
/// (1-based), with `words` in its message.
fn changes_at(d: &Diffed, file: &str, line: u64, words: &str) {
    let log = sarif(&d.document());
    validate(&log);
    let changes: Vec<&Value> = results(&log)
        .iter()
        .filter(|x| x["ruleId"] == "behaviour-change")
        .collect();
    assert!(!changes.is_empty(), "{log:#}");
    assert_eq!(changes.len(), d.report.changes.len());
    for c in changes {
        assert_eq!((uri(c), start_line(c)), (file, Some(line)), "{c:#}");
        let text = c["message"]["text"].as_str().unwrap();
        assert!(text.contains(words), "{text}");
    }
}

/// A rule the new ruleset changes: every class (connections to 15090 now captured, to 15091
/// now not) is located at the new text's line, the only line the change touches.
#[test]
fn a_changed_rule_is_located_at_its_new_text() {
    let old = text(CLASSIC);
    let (from, to) = (
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN",
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 15091 -j RETURN",
    );
    assert!(old.contains(from));
    let new = old.replace(from, to);
    let d = Diffed::of_texts(CLASSIC, &old, "changed.rules", &new);
    let line = new.lines().position(|l| l == to).unwrap() as u64 + 1;
    changes_at(&d, "changed.rules", line, to);
}

/// A rule the new ruleset inserts: every class is located at its line in the new file.
#[test]
fn an_added_rule_is_located_at_its_line() {
    let old = text(CLASSIC);
    let (before, added) = (
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 3306 -j RETURN",
    );
    let new = old.replace(before, &format!("{added}\n{before}"));
    let d = Diffed::of_texts(CLASSIC, &old, "added.rules", &new);
    let line = new.lines().position(|l| l == added).unwrap() as u64 + 1;
    changes_at(&d, "added.rules", line, &format!("(added): {added}"));
}

/// Every artifact location of `log`: its uri, each with the `%SRCROOT%` base.
fn artifact_uris(log: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for r in results(log) {
        let a = &r["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(a["uriBaseId"], "%SRCROOT%", "{r:#}");
        out.push(a["uri"].as_str().unwrap().to_string());
    }
    out
}

/// Files are named relative to the root (`--sarif-root`, else the working directory), with
/// `..` outside it, never by an absolute path; the base is declared without a URI.
#[test]
fn paths_are_relative_to_the_root() {
    let root = sidecar_verify::corpus::workspace();
    let (old, new) = (root.join(CLASSIC), root.join(NO_UID_RETURN));
    let mut d = Diffed::new(CLASSIC, NO_UID_RETURN);
    d.old_name = old.to_str().unwrap().to_string();
    d.new_name = new.to_str().unwrap().to_string();
    let at = |root: Option<std::path::PathBuf>| {
        let log = sarif_with(&d.document(), &Options { root });
        validate(&log);
        let run = &log["runs"][0];
        assert_eq!(
            run["originalUriBaseIds"]["%SRCROOT%"]["uri"],
            Value::Null,
            "no absolute root in the log"
        );
        let mut uris = artifact_uris(&log);
        uris.sort();
        uris.dedup();
        let props = [
            run["properties"]["old"].as_str().unwrap().to_string(),
            run["properties"]["new"].as_str().unwrap().to_string(),
        ];
        (uris, props)
    };
    let (uris, props) = at(Some(root.clone()));
    assert_eq!(uris, [NO_UID_RETURN, CLASSIC]);
    assert_eq!(props, [CLASSIC, NO_UID_RETURN]);
    let (uris, _) = at(Some(root.join("verify")));
    assert_eq!(
        uris,
        [format!("../{NO_UID_RETURN}"), format!("../{CLASSIC}")]
    );
    // The working directory of a test is its package's, verify/.
    let (uris, _) = at(None);
    assert_eq!(
        uris,
        [format!("../{NO_UID_RETURN}"), format!("../{CLASSIC}")]
    );
}

/// The validator does reject what the schema forbids (so the tests above prove something).
#[test]
fn the_schema_rejects_an_invalid_log() {
    let (mut log, _) = check_log(NO_UID_RETURN);
    log["runs"][0]["results"][0]["level"] = Value::from("fatal");
    let [declared, draft7] = validators();
    for v in [&declared, &draft7] {
        assert!(!v.is_valid(&log));
    }
    let mut log2 = sarif_minimal();
    for v in [&declared, &draft7] {
        assert!(v.is_valid(&log2));
    }
    log2["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        Value::from(0);
    for v in [&declared, &draft7] {
        assert!(!v.is_valid(&log2), "startLine 0 must be rejected");
    }
    let mut log3 = sarif_minimal();
    log3["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
        Value::from("<default: istio-classic.rules>");
    assert!(!draft7.is_valid(&log3), "uri-reference must be checked");
}

/// A ruleset named by something that is not a URI reference (the built-in default's name) is
/// percent-encoded into one.
#[test]
fn names_that_are_not_uris_are_encoded() {
    let mut c = Checked::new(NO_UID_RETURN);
    c.name = "<default: istio-classic.rules>".to_string();
    let log = sarif(&c.document());
    validate(&log);
    assert_eq!(
        uri(&results(&log)[0]),
        "%3Cdefault%3A%20istio-classic.rules%3E"
    );
}

fn sarif_minimal() -> Value {
    serde_json::json!({
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "x" } },
            "results": [{
                "message": { "text": "m" },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": "a.rules" },
                    "region": { "startLine": 1 }
                }}]
            }]
        }]
    })
}
