//! proptest strategies over the numbers this generator builds rulesets from, and the
//! configuration the property tests share. Behind the `proptest` feature, which the tests of
//! both crates turn on (model's through a dev-dependency on itself): the strategies live with
//! the generator they drive, and no test reaches into another crate's test folder for them.

use std::fmt;

use proptest::prelude::*;

use super::{build_ruleset, Seed};
use crate::{print_ruleset, Ruleset};

/// A ruleset whose `Debug` output is its iptables-save text, to paste into a file.
#[derive(Clone)]
pub struct Printed(pub Ruleset);

impl fmt::Debug for Printed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{}", print_ruleset(&self.0))
    }
}

/// Seeds for one family: per table (5), per chain (the built-in ones and up to `max_user`
/// user chains), its rules (fewer than `max_rules`).
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

/// Valid rulesets of up to `max_user` user chains per table and fewer than `max_rules` rules
/// per chain; an IPv6 half half of the time.
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

/// `PROPTEST_CASES` when it is set to a number (the nightly runs set 100,000), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The configuration of a property test that runs `cases` cases, with shrinking cut short on CI
/// (`CI` set: 200 steps instead of 2,000); a failure is reported with its case shrunk that far.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: if std::env::var_os("CI").is_some() {
            200
        } else {
            2000
        },
        ..ProptestConfig::default()
    }
}
