//! Reports: one model ([`crate::results`]), several renderers. A [`Document`] is what `check` or
//! `diff` found, with the rulesets and the names they were read under, so that renderers can
//! quote rules and point at their lines. JSON is the model itself (`serde_json`); [`text`] is for
//! a person at a terminal; [`markdown`] is made to be posted as a pull-request comment (GitHub
//! renders its Mermaid journeys); [`sarif`] is SARIF 2.1.0 for code scanning; [`html`] is a
//! self-contained page with the journeys drawn. Renderers read the model, never the commands
//! that fill it in.

pub mod budget;
pub mod cause;
pub mod html;
pub mod markdown;
pub mod mutate;
pub mod sarif;
pub mod text;

use sidecar_model::pod::Pod;
use sidecar_model::Ruleset;

use crate::results::{check, diff};

/// A ruleset as a report names it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The path given on the command line (or the default's name).
    pub name: &'a str,
    /// The ruleset.
    pub ruleset: &'a Ruleset,
}

/// What a report is about.
#[derive(Debug, Clone, Copy)]
pub enum Document<'a> {
    /// `check` on one ruleset.
    Check {
        /// The result.
        report: &'a check::Report,
        /// The ruleset.
        source: Source<'a>,
        /// The pod.
        pod: &'a Pod,
    },
    /// `diff` of two rulesets.
    Diff {
        /// The result.
        report: &'a diff::Report,
        /// The old ruleset.
        old: Source<'a>,
        /// The new ruleset.
        new: Source<'a>,
        /// The pod.
        pod: &'a Pod,
    },
}
