//! The tables of match modules and targets agree with every phase (in the spirit of cedar's
//! `extension_schema_correctness`): every module of `MODULES` and every target of `TARGETS` is
//! made by the generator, prints and parses back to itself, serializes under its own name, is
//! in the fuzz dictionary, and its declarations are coherent. (That every module has an SMT
//! encoding is a compile-time fact in `verify/src/smt/matches.rs`, whose test compares the
//! encoding with `eval`.)

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};

use sidecar_model::matches::{unknown, MODULES};
use sidecar_model::targets::{self, TARGETS};
use sidecar_model::{gen, parse, print_ruleset, Match, Ruleset};

/// Generated rulesets: enough for every module and target many times over.
fn sample() -> Vec<Ruleset> {
    gen::sample(150, 12)
}

/// The fuzz dictionary's lines.
fn dictionary() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/iptables.dict");
    std::fs::read_to_string(path).unwrap()
}

/// Whether a line of the dictionary starts with `"` + `token` + a space or the closing `"`.
fn in_dictionary(dict: &str, token: &str) -> bool {
    let start = format!("\"{token}");
    dict.lines().any(|l| {
        l.strip_prefix(&start)
            .is_some_and(|rest| rest.starts_with(['"', ' ']))
    })
}

#[test]
fn every_module_is_generated_and_round_trips() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for rs in sample() {
        let text = print_ruleset(&rs);
        let back = parse("printed", text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .ruleset;
        assert_eq!(back, rs, "{text}");
        for t in rs.ipv4.iter().chain(&rs.ipv6) {
            for r in t.chains.iter().flat_map(|c| &c.rules) {
                for m in &r.matches {
                    let name = match m {
                        Match::Unknown { .. } => "(unknown)".to_string(),
                        known => known.name().to_string(),
                    };
                    *seen.entry(name).or_default() += 1;
                    // The JSON names the module as `-m` does.
                    let j = serde_json::to_value(m).unwrap();
                    let tag = j["module"].as_str().unwrap();
                    if !matches!(m, Match::Unknown { .. }) {
                        assert_eq!(tag, m.name());
                    }
                    let again: Match = serde_json::from_value(j).unwrap();
                    assert_eq!(&again, m);
                }
            }
        }
    }
    for m in MODULES {
        let n = seen.get(m.name).copied().unwrap_or(0);
        assert!(
            n >= 20,
            "the generator made `-m {}` {n} times (its GEN_SLOT is {}): {seen:?}",
            m.name,
            m.gen_slot
        );
    }
    assert!(
        seen.get("(unknown)").copied().unwrap_or(0) >= 20,
        "{seen:?}"
    );
    assert_eq!(seen.len(), MODULES.len() + 1, "{seen:?}");
}

#[test]
fn declarations_are_coherent() {
    let mut slots = BTreeSet::from([unknown::GEN_SLOT]);
    let mut implicit = BTreeSet::new();
    let mut names = BTreeSet::new();
    for m in MODULES {
        assert!(names.insert(m.name), "`{}` declared twice", m.name);
        assert!(
            slots.insert(m.gen_slot),
            "GEN_SLOT {} used twice",
            m.gen_slot
        );
        assert!(
            m.gen_slot < 32,
            "GEN_SLOT {} out of the selector's range",
            m.gen_slot
        );
        if let Some(p) = m.implicit_for {
            assert!(
                implicit.insert(p.0),
                "two modules load implicitly for {p:?}"
            );
        }
        let own = |o: &str| m.options.contains(&o);
        for (alias, option) in m.aliases {
            assert!(
                own(alias) && own(option),
                "`{}`: alias {alias} → {option}",
                m.name
            );
            assert_ne!(alias, option);
        }
        for (option, _) in m.repeated {
            assert!(own(option), "`{}`: repeated message for {option}", m.name);
        }
        for option in m.address_options {
            assert!(own(option), "`{}`: address option {option}", m.name);
        }
        for option in m.options {
            assert!(option.starts_with("--"), "`{}`: {option}", m.name);
            assert_eq!(m.key(option), m.key(m.key(option)));
        }
        // A new module of the right name.
        assert_eq!((m.new)().name(), m.name);
    }
    // What the model knows of modules it keeps verbatim never names one it interprets.
    for (name, _) in unknown::ADDRESS_OPTIONS {
        assert!(
            !names.contains(name),
            "`{name}` is a module: move its address options there"
        );
    }
    for name in unknown::CONNTRACK_MODULES {
        assert!(
            !names.contains(name),
            "`{name}` is a module: set its CONNTRACK there"
        );
    }
}

#[test]
fn the_fuzz_dictionary_names_every_module_and_target() {
    let dict = dictionary();
    for m in MODULES {
        let token = format!(" -m {}", m.name);
        assert!(
            in_dictionary(&dict, &token),
            "fuzz/iptables.dict lacks \"{token}\""
        );
    }
    for t in TARGETS {
        assert!(
            in_dictionary(&dict, t.name),
            "fuzz/iptables.dict lacks \"{}\"",
            t.name
        );
    }
}

#[test]
fn every_target_is_generated_and_round_trips() {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for rs in sample() {
        // The rulesets print and parse back (every_module_is_generated_and_round_trips).
        for t in rs.ipv4.iter().chain(&rs.ipv6) {
            for target in t
                .chains
                .iter()
                .flat_map(|c| &c.rules)
                .filter_map(|r| r.target.as_ref())
            {
                let Some(def) = target.def() else { continue };
                assert_eq!(def.name, target.name());
                assert!(TARGETS.iter().any(|d| d.name == def.name), "{}", def.name);
                *seen.entry(def.name).or_default() += 1;
            }
        }
    }
    for t in TARGETS {
        let n = seen.get(t.name).copied().unwrap_or(0);
        assert!(
            n >= 5,
            "the generator made `-j {}` {n} times: {seen:?}",
            t.name
        );
    }
}

#[test]
fn target_declarations_are_coherent() {
    let mut names = BTreeSet::new();
    for t in TARGETS {
        assert!(names.insert(t.name), "`{}` declared twice", t.name);
        let own = |o: &str| t.options.contains(&o);
        for list in [t.flags, t.verbatim, t.port_options] {
            for option in list {
                assert!(
                    own(option),
                    "`{}`: {option} is not among its options",
                    t.name
                );
            }
        }
        for option in t.options {
            assert!(option.starts_with("--"), "`{}`: {option}", t.name);
            assert_eq!(t.arity(option), usize::from(!t.flags.contains(option)));
        }
    }
    for name in targets::unknown::OTHER_TARGETS
        .iter()
        .chain(targets::unknown::CONNTRACK_TARGETS)
    {
        assert!(
            !names.contains(name),
            "`{name}` is interpreted: take it out of unknown.rs"
        );
    }
}
