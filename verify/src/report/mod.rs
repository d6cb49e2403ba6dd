//! Reports: one model, several renderers. A [`Document`] is what `check` or `diff` found, with
//! the rulesets and the names they were read under, so that renderers can quote rules and point
//! at their lines. JSON is the model itself (`serde_json`); [`markdown`] is made to be posted as a
//! pull-request comment (GitHub renders its Mermaid journeys); [`sarif`] is SARIF 2.1.0 for code
//! scanning; [`html`] is a self-contained page with the journeys drawn.

pub mod html;
pub mod markdown;
pub mod sarif;

use sidecar_model::pod::{Delivery, Outcome, Pod};
use sidecar_model::Ruleset;

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
        report: &'a crate::check::Report,
        /// The ruleset.
        source: Source<'a>,
        /// The pod.
        pod: &'a Pod,
    },
    /// `diff` of two rulesets.
    Diff {
        /// The result.
        report: &'a crate::diff::Report,
        /// The old ruleset.
        old: Source<'a>,
        /// The new ruleset.
        new: Source<'a>,
        /// The pod.
        pod: &'a Pod,
    },
}

/// Where a hop arrived, in words.
pub(crate) fn delivery_words(d: &Delivery) -> String {
    match d {
        Delivery::Listener(p) => format!("proxy listener {p}"),
        Delivery::App(p) => format!("application port {p}"),
        Delivery::Remote(a) => format!("remote {a}"),
        Delivery::Dropped => "dropped".into(),
    }
}

/// How a journey ended, in words.
pub(crate) fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::App => "served in the pod",
        Outcome::Remote => "leaves the pod",
        Outcome::Drop => "dropped",
        Outcome::Loop => "loops",
    }
}
