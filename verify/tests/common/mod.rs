//! Helpers of verify's report tests (HTML, Markdown, SARIF): rulesets of the repository, `check`
//! and `diff` run on them with the default pod and the istio profile, and the documents the
//! renderers take. The corpus folders are `sidecar_verify::corpus`.

#![allow(dead_code, reason = "each test crate uses a part of these helpers")]

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{parse, print_ruleset, Ruleset};
use sidecar_verify::corpus::workspace;
use sidecar_verify::report::{Document, Source};
use sidecar_verify::{check, diff};

/// The text of `rel`, a path relative to the repository's root.
pub fn text(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap()
}

/// The ruleset `rel` (relative to the repository's root), named `rel`.
pub fn load(rel: &str) -> Ruleset {
    parse(rel, text(rel).as_bytes()).unwrap().ruleset
}

/// `check` on one ruleset of the repository, with what its report document needs.
pub struct Checked {
    /// The source's name in the document (the path, unless a test changes it).
    pub name: String,
    pub ruleset: Ruleset,
    pub pod: Pod,
    pub report: check::Report,
}

impl Checked {
    /// `check` on `rel` with the default pod and the istio profile.
    pub fn new(rel: &str) -> Checked {
        let ruleset = load(rel);
        let pod = Pod::default();
        let report = check::check(
            &ruleset,
            &print_ruleset(&ruleset),
            &pod,
            &Profile::istio(),
            &Default::default(),
        )
        .unwrap();
        Checked {
            name: rel.to_string(),
            ruleset,
            pod,
            report,
        }
    }

    /// The document the renderers take.
    pub fn document(&self) -> Document<'_> {
        Document::Check {
            report: &self.report,
            source: Source {
                name: &self.name,
                ruleset: &self.ruleset,
            },
            pod: &self.pod,
        }
    }
}

/// `diff` of two rulesets of the repository, with what its report document needs.
pub struct Diffed {
    pub old_name: String,
    pub new_name: String,
    pub old: Ruleset,
    pub new: Ruleset,
    pub pod: Pod,
    pub report: diff::Report,
}

impl Diffed {
    /// `diff` from `old` to `new` with the default pod and the istio profile.
    pub fn new(old: &str, new: &str) -> Diffed {
        Diffed::of_texts(old, &text(old), new, &text(new))
    }

    /// `diff` of two rulesets given as text, named `old` and `new`.
    pub fn of_texts(old: &str, old_text: &str, new: &str, new_text: &str) -> Diffed {
        let old_rs = parse(old, old_text.as_bytes()).unwrap().ruleset;
        let new_rs = parse(new, new_text.as_bytes()).unwrap().ruleset;
        let pod = Pod::default();
        let report = diff::diff(
            &old_rs,
            &new_rs,
            &pod,
            &Profile::istio(),
            &Default::default(),
        )
        .unwrap();
        Diffed {
            old_name: old.to_string(),
            new_name: new.to_string(),
            old: old_rs,
            new: new_rs,
            pod,
            report,
        }
    }

    /// The document the renderers take.
    pub fn document(&self) -> Document<'_> {
        Document::Diff {
            report: &self.report,
            old: Source {
                name: &self.old_name,
                ruleset: &self.old,
            },
            new: Source {
                name: &self.new_name,
                ruleset: &self.new,
            },
            pod: &self.pod,
        }
    }
}
