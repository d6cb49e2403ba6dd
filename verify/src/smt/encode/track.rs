//! The tracked mode of the encoder, used only by the support queries ("why an invariant
//! holds", [`crate::prove::support`]): every place a rule is tried gets a fresh boolean for
//! its match instead of the match itself, tied to the real match only under that rule's
//! tracking literal (`track_r => (m == match_r)`). With every literal assumed the encoding says
//! what the untracked one says; without a rule's literal, that rule's match is free at every
//! place it is tried (its target kept), so a violation unsatisfiable without it holds whatever
//! that rule matches. Off (the default) the encoder builds exactly the terms it always built.

use std::collections::BTreeMap;

use z3::ast::Bool;

use super::{Encoder, RuleId};

/// The tracking literals and the constraints tying each tried rule's match to them.
#[derive(Debug, Default)]
pub struct Tracking {
    /// One literal per rule, made the first time the rule is tried.
    pub literals: BTreeMap<RuleId, Bool>,
    /// `literal => (fresh == match)`, one per place a rule is tried; to be asserted with the
    /// encoding.
    pub ties: Vec<Bool>,
}

impl Encoder<'_> {
    /// Switches the encoder to tracked mode (before anything is encoded).
    pub fn track_rules(&mut self) {
        self.tracking = Some(Tracking::default());
    }

    /// The tracking literals and ties, when the encoder is in tracked mode.
    pub fn tracking(&self) -> Option<&Tracking> {
        self.tracking.as_ref()
    }

    /// The match term the encoding uses for rule `id` tried where `m` is its real match: `m`
    /// itself, or in tracked mode a fresh boolean tied to `m` under the rule's literal.
    pub(super) fn tracked_match(&mut self, id: RuleId, m: Bool) -> Bool {
        let Some(t) = self.tracking.as_mut() else {
            return m;
        };
        let lit = t
            .literals
            .entry(id)
            .or_insert_with(|| Bool::fresh_const("track"))
            .clone();
        let f = Bool::fresh_const("tracked_match");
        t.ties.push(lit.implies(f.iff(&m)));
        f
    }
}
