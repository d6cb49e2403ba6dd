//! Random valid rulesets for property tests: proptest strategies over the numbers
//! `sidecar_model::gen` builds rulesets from.

#![allow(
    dead_code,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    reason = "test helpers"
)]

use std::fmt;

use proptest::prelude::*;
pub use sidecar_model::gen::*;
use sidecar_model::*;

/// A ruleset whose Debug output is its iptables-save text, to paste into a file.
#[derive(Clone)]
pub struct Printed(pub Ruleset);

impl fmt::Debug for Printed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{}", print_ruleset(&self.0))
    }
}

/// Seeds for one family: per table (5), per chain (builtins + up to `max_user`), its rules.
pub fn family_seeds(
    max_user: usize,
    max_rules: usize,
) -> impl Strategy<Value = Vec<(u32, Vec<Vec<Seed>>)>> {
    prop::collection::vec(
        (
            any::<u32>(),
            prop::collection::vec(
                prop::collection::vec(any::<Seed>(), 0..max_rules),
                0..(5 + max_user),
            ),
        ),
        5,
    )
}

pub fn ruleset_strategy(max_user: usize, max_rules: usize) -> impl Strategy<Value = Printed> {
    (
        family_seeds(max_user, max_rules),
        family_seeds(max_user, max_rules),
        any::<bool>(),
    )
        .prop_map(|(v4, v6, with_v6)| {
            Printed(build_ruleset(&v4, if with_v6 { Some(&v6) } else { None }))
        })
}
