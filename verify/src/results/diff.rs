//! What `diff` finds: the classes of connections whose journey changed, and the invariants of
//! both rulesets.

use serde::Serialize;
use sidecar_model::pod::Journey;

use super::support::Touched;
use super::{InvariantResult, Witness};

/// One class of connections whose journey changed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The class in words, around the witness ("opened in the pod, tcp, uid 1337, gid not 1337,
    /// …").
    pub description: String,
    /// What changed for it: the outcome and path on each side.
    pub effect: String,
    /// One connection of the class.
    pub witness: Witness,
    /// Its journey on the old ruleset.
    pub old: Journey,
    /// Its journey on the new ruleset.
    pub new: Journey,
}

/// The invariants of both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Invariants {
    /// On the old ruleset.
    pub old: Vec<InvariantResult>,
    /// On the new ruleset.
    pub new: Vec<InvariantResult>,
}

/// Everything `diff` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Classes of routable connections that behave differently.
    pub changes: Vec<Change>,
    /// Classes only packets routing never produces can see.
    pub unroutable_changes: Vec<Change>,
    /// The invariants, old and new.
    pub invariants: Invariants,
    /// The class bound was reached: there may be more classes.
    pub truncated: bool,
    /// A query the solver could not decide: the list may be incomplete.
    pub unknown: bool,
    /// The invariants whose supporting rules on the old ruleset the change touches (changes or
    /// removes), whether or not they still hold.
    pub touched: Vec<Touched>,
}
