//! Property: for every valid ruleset `r`, `parse(print(r)) == r`.
//!
//! Rulesets are built from vectors of random numbers by [`gen::build_ruleset`], which places each
//! match and target only where iptables accepts it (REDIRECT in nat PREROUTING/OUTPUT, owner in
//! OUTPUT/POSTROUTING, jumps only to later user chains, …), so that shrinking works on the numbers
//! and every generated ruleset is one the kernel would load.

#![cfg(test)]

use proptest::prelude::*;
use sidecar_model::gen::strategy::{cases, config, ruleset_strategy};
use sidecar_model::*;

proptest! {
    #![proptest_config(config(cases(256)))]

    #[test]
    fn parse_print_round_trip(rs in ruleset_strategy(4, 6)) {
        let text = print_ruleset(&rs.0);
        let parsed = parse("printed", text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&parsed.ruleset, &rs.0);
        prop_assert_eq!(print_ruleset(&parsed.ruleset), text);
    }

    #[test]
    fn json_round_trip(rs in ruleset_strategy(3, 4)) {
        let json = serde_json::to_string(&rs.0).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let back: Ruleset = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(back, rs.0);
    }
}

/// The generator reaches every kind of match and target (else the property proves little).
#[test]
fn generator_covers_every_kind() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;
    let mut runner = TestRunner::deterministic();
    let strat = ruleset_strategy(4, 6);
    let (mut matches, mut targets) = (BTreeSet::new(), BTreeSet::new());
    let mut rules = 0;
    for _ in 0..300 {
        let rs = strat.new_tree(&mut runner).unwrap().current().0;
        for t in rs.ipv4.iter().chain(&rs.ipv6) {
            for c in &t.chains {
                for r in &c.rules {
                    rules += 1;
                    for m in &r.matches {
                        let j = serde_json::to_value(m).unwrap();
                        matches.insert(j["module"].as_str().unwrap().to_string());
                    }
                    if let Some(t) = &r.target {
                        let j = serde_json::to_value(t).unwrap();
                        targets.insert(j["target"].as_str().unwrap().to_string());
                    }
                }
            }
        }
    }
    assert!(rules > 3000, "only {rules} rules generated");
    // Every module of the table, and the unknown one.
    assert_eq!(
        matches.len(),
        sidecar_model::matches::MODULES.len() + 1,
        "match kinds reached: {matches:?}"
    );
    assert_eq!(targets.len(), 20, "target kinds reached: {targets:?}");
}
