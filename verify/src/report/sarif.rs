//! SARIF 2.1.0, for code scanning (GitHub's and any other SARIF consumer).
//!
//! One run whose driver is `sidecar-verify`, with one reporting descriptor per invariant (its
//! stable id, its statement with the profile's values), one for `diff`'s `behaviour-change` and
//! two for reachability (`unreachable-rule`, `shadowed-rule`). Results:
//!
//! * `check`: a violated invariant is an `error` located at the rule that decided the first hop
//!   of its witness (the last rule that hop hit, found in the ruleset by table, chain and number,
//!   at the line it was read from); an `unknown` one a `warning` with the reason, located at the
//!   file; a shadowed or unreachable rule a `note` at its line.
//! * `diff`: each change class is a `warning` located at the rule it comes from
//!   ([`super::cause`]): the rule the new ruleset added or changed where the witness's two
//!   journeys part, in the new file, or the old journey's rule there in the old file when the
//!   new ruleset deleted it with nothing in its place (so GitHub annotates a line the pull
//!   request changed); when both journeys hit the same rules, the rule deciding the new side's
//!   first hop. Each invariant that holds on the old ruleset and is violated on the new one is
//!   an `error` located in the new file.
//!
//! A rule whose line is unknown (0) is located at its file without a region. Files are named
//! by relative references resolved against the base id `%SRCROOT%` (as GitHub code scanning
//! expects): the path relative to [`Options::root`] (the working directory by default), with
//! `..` for a file outside it; never an absolute path. `originalUriBaseIds` describes
//! `%SRCROOT%` without a URI (the consumer, e.g. `upload-sarif`, knows its checkout). The log
//! holds no timestamps or absolute paths, so the same inputs give the same bytes.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Map, Value};
use sidecar_model::pod::{Journey, Pod};
use sidecar_model::print::print_rule;
use sidecar_model::{Family, Rule, TableKind};

use super::{Document, Source};
use crate::invariants::ALL;
use crate::results::check::{self, RuleResult, RuleStatus};
use crate::results::diff::{self, Change, Impact};
use crate::results::{replay_command, InvariantResult, Status, Witness};

/// The base id every artifact location is relative to.
pub const SRCROOT: &str = "%SRCROOT%";

/// How the log names files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The directory paths are relative to (`%SRCROOT%`); `None`: the working directory.
    pub root: Option<PathBuf>,
}

/// The schema the log declares.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rule id of a `diff` change class.
pub const BEHAVIOUR_CHANGE: &str = "behaviour-change";
/// The rule id of an unreachable rule.
pub const UNREACHABLE_RULE: &str = "unreachable-rule";
/// The rule id of a shadowed rule.
pub const SHADOWED_RULE: &str = "shadowed-rule";

/// The SARIF 2.1.0 log of `doc`, its paths relative to the working directory.
pub fn sarif(doc: &Document<'_>) -> Value {
    sarif_with(doc, &Options::default())
}

/// The SARIF 2.1.0 log of `doc`, its paths relative to `opts.root`.
pub fn sarif_with(doc: &Document<'_>, opts: &Options) -> Value {
    let names = Names::new(doc, opts);
    let names = &names;
    let (statements, results, properties) = match *doc {
        Document::Check {
            report,
            source,
            pod,
        } => (
            statements(&report.invariants),
            check_results(report, source, pod, names),
            json!({
                "command": "check",
                "ruleset": { "name": names.path(source.name), "sha256": report.ruleset.sha256 },
                "profile": report.profile,
                "routing": report.routing,
            }),
        ),
        Document::Diff {
            report,
            old,
            new,
            pod,
        } => (
            statements(&report.invariants.new),
            diff_results(report, old, new, pod, names),
            json!({
                "command": "diff",
                "old": names.path(old.name),
                "new": names.path(new.name),
                "truncated": report.truncated,
                "unknown": report.unknown,
            }),
        ),
    };
    let mut properties = properties;
    if let (Some(p), Some(why)) = (properties.as_object_mut(), why_property(doc)) {
        p.insert("support".into(), why);
    }
    let descriptors = descriptors(&statements);
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| r.into_value(&descriptors))
        .collect();
    let rules: Vec<Value> = descriptors.iter().map(Descriptor::to_value).collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "sidecar-verify",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "originalUriBaseIds": {
                SRCROOT: {
                    "description": {
                        "text": "The directory sidecar-verify ran in, or its --sarif-root: the repository's root when run from there",
                    }
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": properties,
        }]
    })
}

/// (invariant id, statement) for every invariant of the catalog, statements as reported.
fn statements(invariants: &[InvariantResult]) -> Vec<(&'static str, String)> {
    ALL.iter()
        .map(|id| {
            let name = id.name();
            let statement = invariants
                .iter()
                .find(|r| r.id == name)
                .map_or_else(|| name.to_string(), |r| r.statement.clone());
            (name, statement)
        })
        .collect()
}

struct Descriptor {
    id: &'static str,
    description: String,
    level: &'static str,
}

impl Descriptor {
    fn to_value(&self) -> Value {
        json!({
            "id": self.id,
            "shortDescription": { "text": self.description },
            "defaultConfiguration": { "level": self.level },
        })
    }
}

fn descriptors(statements: &[(&'static str, String)]) -> Vec<Descriptor> {
    let mut v: Vec<Descriptor> = statements
        .iter()
        .map(|(id, statement)| Descriptor {
            id,
            description: statement.clone(),
            level: "error",
        })
        .collect();
    v.push(Descriptor {
        id: BEHAVIOUR_CHANGE,
        description: "a class of connections behaves differently on the new ruleset (where a hop \
                      is delivered, dropped or sent, or whether the journey loops)"
            .into(),
        level: "warning",
    });
    v.push(Descriptor {
        id: UNREACHABLE_RULE,
        description: "no packet reaches this rule: earlier rules of its chain take every one"
            .into(),
        level: "note",
    });
    v.push(Descriptor {
        id: SHADOWED_RULE,
        description: "packets reach this rule but none matches there: earlier rules of its chain \
                      take every packet it would match"
            .into(),
        level: "note",
    });
    v
}

/// The rulesets' names as the log gives them: paths relative to the root.
struct Names {
    /// The working directory, absolute (`None` when it cannot be had: names stay as given).
    cwd: Option<PathBuf>,
    /// The root, absolute.
    root: Option<PathBuf>,
}

impl Names {
    fn new(_doc: &Document<'_>, opts: &Options) -> Names {
        let cwd = std::env::current_dir().ok();
        let root = match (&opts.root, &cwd) {
            (Some(r), Some(c)) => Some(normalize(&c.join(r))),
            (Some(r), None) if r.is_absolute() => Some(normalize(r)),
            (None, Some(c)) => Some(normalize(c)),
            _ => None,
        };
        Names { cwd, root }
    }

    /// `name` relative to the root (`/` separated), or as given when it is no path
    /// (`<stdin>`, the default's name) or the root is unknown.
    fn path(&self, name: &str) -> String {
        if name.starts_with('<') {
            return name.to_string();
        }
        let (Some(cwd), Some(root)) = (&self.cwd, &self.root) else {
            return name.to_string();
        };
        let abs = normalize(&cwd.join(name));
        let lexical = relative(&abs, root);
        if lexical.starts_with("..") {
            // Through a symbolic link the file may be under the root after all.
            if let (Ok(a), Ok(r)) = (std::fs::canonicalize(&abs), std::fs::canonicalize(root)) {
                let canonical = relative(&a, &r);
                if !canonical.starts_with("..") {
                    return canonical;
                }
            }
        }
        lexical
    }

    fn uri(&self, name: &str) -> String {
        uri(&self.path(name))
    }
}

/// `p` without `.` components and with `..` applied (lexically).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base` (both absolute and normalised), `/` separated, with `..` where
/// `path` is outside `base`; `.` for `base` itself.
fn relative(path: &Path, base: &Path) -> String {
    let p: Vec<Component<'_>> = path.components().collect();
    let b: Vec<Component<'_>> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = Vec::new();
    parts.extend(b.iter().skip(common).map(|_| "..".to_string()));
    parts.extend(
        p.iter()
            .skip(common)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// Where a result points: a file, and the line there when known.
struct Location {
    uri: String,
    line: u32,
    columns: Option<(u32, u32)>,
}

impl Location {
    fn file(source: Source<'_>, names: &Names) -> Location {
        Location {
            uri: names.uri(source.name),
            line: 0,
            columns: None,
        }
    }

    fn rule(source: Source<'_>, rule: &Rule, names: &Names) -> Location {
        let o = &rule.origin;
        Location {
            uri: names.uri(source.name),
            line: o.line,
            columns: (o.line > 0 && o.end > o.start)
                .then(|| (o.start.saturating_add(1), o.end.saturating_add(1))),
        }
    }

    fn to_value(&self) -> Value {
        let mut physical = Map::new();
        physical.insert(
            "artifactLocation".into(),
            json!({ "uri": self.uri, "uriBaseId": SRCROOT }),
        );
        if self.line > 0 {
            let mut region = Map::new();
            region.insert("startLine".into(), json!(self.line));
            if let Some((start, end)) = self.columns {
                region.insert("startColumn".into(), json!(start));
                region.insert("endColumn".into(), json!(end));
            }
            physical.insert("region".into(), Value::Object(region));
        }
        json!({ "physicalLocation": physical })
    }
}

struct Finding {
    rule: &'static str,
    level: &'static str,
    text: String,
    location: Location,
}

impl Finding {
    fn into_value(self, descriptors: &[Descriptor]) -> Value {
        let mut v = Map::new();
        v.insert("ruleId".into(), json!(self.rule));
        if let Some(i) = descriptors.iter().position(|d| d.id == self.rule) {
            v.insert("ruleIndex".into(), json!(i));
        }
        v.insert("level".into(), json!(self.level));
        v.insert("message".into(), json!({ "text": self.text }));
        v.insert("locations".into(), json!([self.location.to_value()]));
        Value::Object(v)
    }
}

/// `name` as a URI reference: unreserved characters and `/` as they are, every other byte
/// percent-encoded (a path with spaces, or the default ruleset's `<default: …>` name).
fn uri(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn find_rule<'a>(
    source: Source<'a>,
    family: Family,
    (table, part): (TableKind, u8),
    chain: &str,
    rule: u32,
) -> Option<&'a Rule> {
    let index = usize::try_from(rule.checked_sub(1)?).ok()?;
    source
        .ruleset
        .table_at(family, table, part)?
        .chain(chain)?
        .rules
        .get(index)
}

fn family_of(w: &Witness) -> Family {
    if w.dst.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    }
}

/// The rule that decided the journey's first hop (the last rule it hit), with its text.
struct Decider<'a> {
    rule: &'a Rule,
    text: String,
    at: String,
}

fn decider<'a>(source: Source<'a>, family: Family, journey: &Journey) -> Option<Decider<'a>> {
    let hit = journey.hops.first()?.matched.last()?;
    let rule = find_rule(source, family, (hit.table, hit.part), &hit.chain, hit.rule)?;
    Some(Decider {
        rule,
        text: print_rule(family, &hit.chain, rule),
        at: format!("{} {} {}", hit.table, hit.chain, hit.rule),
    })
}

/// A witness in words: `tcp 10.1.0.5:40000 -> 10.1.0.99:80 (uid 1337 gid 1000)`.
fn witness_words(w: &Witness) -> String {
    format!("{} ({})", w.connection_words(), w.who())
}

/// A violated invariant, located at the rule deciding its witness's first hop in `source`.
fn violation(
    inv: &InvariantResult,
    source: Source<'_>,
    pod: &Pod,
    lead: &str,
    names: &Names,
) -> Option<Finding> {
    let w = inv.witness.as_ref()?;
    let family = inv.family.unwrap_or_else(|| family_of(w));
    let d = inv
        .journey
        .as_ref()
        .and_then(|j| decider(source, family, j));
    let mut text = format!(
        "{}{}: {}. Violated by {}",
        lead,
        inv.id,
        inv.statement,
        witness_words(w)
    );
    if let Some(d) = &d {
        text.push_str(&format!(
            "; its first hop is decided by {}: {}",
            d.at, d.text
        ));
    }
    text.push_str(&format!(
        ". Replay: {}",
        replay_command(source.name, pod, w)
    ));
    if let Some(pw) = &inv.pair {
        text.push_str(&format!(
            ". Paired with {}, whose journey differs. Replay: {}",
            witness_words(&pw.witness),
            replay_command(source.name, pod, &pw.witness)
        ));
    }
    let location = d.map_or_else(
        || Location::file(source, names),
        |d| Location::rule(source, d.rule, names),
    );
    Some(Finding {
        rule: inv.id,
        level: "error",
        text,
        location,
    })
}

fn check_results(
    report: &check::Report,
    source: Source<'_>,
    pod: &Pod,
    names: &Names,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for inv in &report.invariants {
        match inv.status {
            Status::Holds => {}
            Status::Violated => {
                if let Some(f) = violation(inv, source, pod, "", names) {
                    out.push(f);
                } else {
                    out.push(Finding {
                        rule: inv.id,
                        level: "error",
                        text: format!("{}: {}. Violated", inv.id, inv.statement),
                        location: Location::file(source, names),
                    });
                }
            }
            Status::Unknown => out.push(Finding {
                rule: inv.id,
                level: "warning",
                text: format!(
                    "{}: {}. Unknown: {}",
                    inv.id,
                    inv.statement,
                    inv.reason
                        .as_deref()
                        .unwrap_or("the solver could not decide it")
                ),
                location: Location::file(source, names),
            }),
            Status::Vacuous => out.push(Finding {
                rule: inv.id,
                level: "note",
                text: format!(
                    "{}: {}. Vacuous: {}",
                    inv.id,
                    inv.statement,
                    inv.reason
                        .as_deref()
                        .unwrap_or("no connection meets its premise")
                ),
                location: Location::file(source, names),
            }),
        }
    }
    for r in &report.rules {
        if let Some(f) = reachability(r, source, names) {
            out.push(f);
        }
    }
    out
}

fn reachability(r: &RuleResult, source: Source<'_>, names: &Names) -> Option<Finding> {
    let (rule, word) = match r.status {
        RuleStatus::Shadowed => (SHADOWED_RULE, "shadowed"),
        RuleStatus::Unreachable => (UNREACHABLE_RULE, "unreachable"),
        RuleStatus::Live | RuleStatus::Unroutable | RuleStatus::Unknown => return None,
    };
    let mut text = format!("{} {} {} is {word}", r.table, r.chain, r.rule);
    if !r.by.is_empty() {
        let by: Vec<String> =
            r.by.iter()
                .map(|b| format!("{} {}", b.chain, b.rule))
                .collect();
        text.push_str(&format!(" by {}", by.join(", ")));
    }
    text.push_str(&format!(": {}", r.text));
    let location = find_rule(source, r.family, (r.table, r.part), &r.chain, r.rule).map_or_else(
        || Location::file(source, names),
        |rule| Location::rule(source, rule, names),
    );
    Some(Finding {
        rule,
        level: "note",
        text,
        location,
    })
}

fn change_result(c: &Change, old: Source<'_>, new: Source<'_>, names: &Names) -> Finding {
    let family = family_of(&c.witness);
    let cause = super::cause::cause(old.ruleset, new.ruleset, family, &c.old, &c.new);
    let (location, from) = match &cause {
        Some(k) => {
            let (source, side) = match k.side {
                super::cause::Side::New => (new, "new"),
                super::cause::Side::Old => (old, "old"),
            };
            (
                Location::rule(source, k.rule, names),
                format!(
                    ". It comes from {side} {} ({}): {}",
                    k.at,
                    k.kind.words(),
                    k.text
                ),
            )
        }
        None => (
            decider(new, family, &c.new)
                .map(|d| Location::rule(new, d.rule, names))
                .or_else(|| {
                    decider(old, family, &c.old).map(|d| Location::rule(old, d.rule, names))
                })
                .unwrap_or_else(|| Location::file(new, names)),
            String::new(),
        ),
    };
    // Loops of connections addressed to the proxy's own capture ports that loop on both sides
    // are a note; every other change a warning.
    let level = if c.impact == Impact::CapturePortLoop {
        "note"
    } else {
        "warning"
    };
    Finding {
        rule: BEHAVIOUR_CHANGE,
        level,
        text: format!(
            "{}: {} (impact: {}){from}",
            c.description,
            c.effect,
            c.impact.words()
        ),
        location,
    }
}

fn diff_results(
    report: &diff::Report,
    old: Source<'_>,
    new: Source<'_>,
    pod: &Pod,
    names: &Names,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = report
        .changes
        .iter()
        .map(|c| change_result(c, old, new, names))
        .collect();
    for inv in &report.invariants.new {
        let held = report
            .invariants
            .old
            .iter()
            .any(|o| o.id == inv.id && o.status.passes());
        if held && inv.status == Status::Violated {
            let lead = "holds on the old ruleset, violated on the new one: ";
            out.push(
                violation(inv, new, pod, lead, names).unwrap_or_else(|| Finding {
                    rule: inv.id,
                    level: "error",
                    text: format!("{lead}{}: {}", inv.id, inv.statement),
                    location: Location::file(new, names),
                }),
            );
        }
    }
    out
}

/// Why each invariant holds (when computed): the run's `support` property, per invariant id the
/// rules its proof rests on (place, text, and the line they were read from when known), and for
/// `diff` the invariants whose supporting rules the change touches (`touched`).
fn why_property(doc: &Document<'_>) -> Option<Value> {
    let (invs, source, touched) = match *doc {
        Document::Check { report, source, .. } => (&report.invariants, source, None),
        Document::Diff { report, old, .. } => (&report.invariants.old, old, Some(&report.touched)),
    };
    let mut m = Map::new();
    for i in invs {
        let Some(sup) = &i.support else { continue };
        let rules: Vec<Value> = sup
            .rules
            .iter()
            .map(|r| {
                let line = find_rule(source, r.family, (r.table, r.part), &r.chain, r.rule)
                    .map_or(0, |x| x.origin.line);
                json!({ "at": r.place(), "text": r.text, "line": line })
            })
            .collect();
        m.insert(
            i.id.into(),
            json!({ "minimal": sup.minimal, "rules": rules }),
        );
    }
    let mut out = Map::new();
    if !m.is_empty() {
        out.insert("invariants".into(), Value::Object(m));
    }
    if let Some(t) = touched.filter(|t| !t.is_empty()) {
        let v: Vec<Value> = t
            .iter()
            .map(|x| {
                let at: Vec<String> = x.rules.iter().map(|r| r.place()).collect();
                json!({ "invariant": x.id, "rules": at })
            })
            .collect();
        out.insert("touched".into(), Value::Array(v));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}
