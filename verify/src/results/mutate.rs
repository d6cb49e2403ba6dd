//! What `mutate` finds: every single-rule mutant of a ruleset and what became of it.

use std::net::IpAddr;

use serde::Serialize;
use sidecar_model::mutate::Mutation;

use super::{InvariantResult, Witness};

/// What became of a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// The kernel would refuse it (its print does not load): not run.
    Invalid,
    /// `diff` finds no routable connection that behaves differently.
    Equivalent,
    /// An invariant that holds on the ruleset is violated on the mutant, or one the ruleset
    /// violates is violated on the mutant at a connection where the ruleset keeps it.
    Killed,
    /// It changes behaviour, every invariant still holds, and the acceptance file accepts it.
    Accepted,
    /// It changes behaviour, but only of connections an invariant the ruleset already violates
    /// reports there (`masked_by`): no invariant can kill it until the ruleset is fixed, yet
    /// the catalog is not blind to it ([`crate::mutate::mask`]).
    Masked,
    /// It changes behaviour and every invariant still holds: the catalog is blind to it.
    Survivor,
    /// Neither killed nor shown equivalent: a query was undecided or failed. Not a pass.
    Unknown,
}

/// One connection that behaves differently on the mutant (the first class `diff` finds).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The class in words, as `diff` describes it.
    pub description: String,
    /// What changed for it (outcome and path before and after).
    pub effect: String,
    /// One connection of the class.
    pub witness: Witness,
}

/// An invariant the mutant violates where the ruleset does not (the ruleset keeps it
/// everywhere, or at least at the witness).
#[derive(Debug, Clone, Serialize)]
pub struct Kill {
    /// The invariant's id.
    pub id: &'static str,
    /// The connection that violates it on the mutant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
}

/// One mutant and its class.
#[derive(Debug, Clone, Serialize)]
pub struct MutantResult {
    /// Which edit, where.
    #[serde(flatten)]
    pub mutation: Mutation,
    /// What became of it.
    pub class: Class,
    /// The first class of connections that behaves differently (all but invalid and
    /// equivalent mutants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The invariants that kill it, in catalog order (killed mutants).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub killed_by: Vec<Kill>,
    /// The invariants, violated on the ruleset, whose violations cover every connection it
    /// changes (masked mutants): each alone does, or, when none alone does, all together.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub masked_by: Vec<&'static str>,
    /// Why: the kernel's refusal (invalid), the undecided query (unknown), the acceptance's
    /// reason (accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How many mutants fell in each class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every mutant the operators made.
    pub mutants: usize,
    /// Refused by the kernel's load-time checks.
    pub invalid: usize,
    /// No routable change.
    pub equivalent: usize,
    /// Killed by an invariant.
    pub killed: usize,
    /// Changes only what an invariant the ruleset violates already reports.
    pub masked: usize,
    /// Survivors the acceptance file accepts.
    pub accepted: usize,
    /// Survivors not accepted.
    pub survivors: usize,
    /// Neither killed nor shown equivalent.
    pub unknown: usize,
}

/// Everything `mutate` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The profile's name.
    pub profile: String,
    /// The pod's addresses.
    pub pod_ips: Vec<IpAddr>,
    /// The counts.
    pub counts: Counts,
    /// Wall-clock seconds for the whole run.
    pub seconds: f64,
    /// The ruleset's own invariants: one that does not hold there cannot kill a mutant.
    pub original: Vec<InvariantResult>,
    /// Every mutant, in the order the operators made them.
    pub mutants: Vec<MutantResult>,
    /// Acceptances that name mutants of this run but accept none of them (each is killed,
    /// equivalent or invalid now): outdated, to be removed. `line:column: chain operator
    /// `rule``.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unneeded: Vec<String>,
}

impl Report {
    /// Whether the run passes: no unaccepted survivor, no unknown, and no acceptance that no
    /// longer accepts anything.
    pub fn passes(&self) -> bool {
        self.counts.survivors == 0 && self.counts.unknown == 0 && self.unneeded.is_empty()
    }

    /// The mutants of one class.
    pub fn of(&self, class: Class) -> impl Iterator<Item = &MutantResult> {
        self.mutants.iter().filter(move |m| m.class == class)
    }
}
