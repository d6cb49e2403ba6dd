//! Why an invariant holds: the rules its proof rests on (its *support*), and which invariants a
//! change of the ruleset touches (for `diff`). The semantics is written in docs/proofs.md
//! ("Why it holds").
//!
//! The ruleset is encoded a second time, in the encoder's tracked mode
//! ([`Encoder::track_rules`]): each rule's match, wherever it is tried, is a fresh boolean equal
//! to the real match only under the rule's tracking literal. An invariant that holds has an
//! unsatisfiable violation under all the literals. Up to `solve::CANONICAL_MAX` rules, each
//! literal is dropped in turn from the latest rule to the first (kept only if the violation
//! becomes satisfiable without it): the minimal set of the earliest rules, the same whatever
//! the solver chooses. Past that the unsat core names rules whose match the proof needs, and
//! the core is shrunk (each literal dropped in turn, the next core taken when it stays unsat).
//! Either way until every rule left is needed or [`MINIMISE_MS`] has passed (then the support
//! says it is not minimal). Without a rule's literal its match is free, independently at each place it is
//! tried: the invariant holds whatever the rules outside the support match, with their targets
//! as written (so deleting one, or making it match every packet, keeps the invariant).
//!
//! This runs after the proofs, on a solver and terms of its own, so that `check`'s results
//! and witnesses are exactly what they are without it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::print::print_rule;
use sidecar_model::{Family, Ruleset, TableKind};
use z3::ast::Bool;

use super::{families, Options, ProveError};
use crate::invariants::{Symbolic, ALL};
use crate::results::support::{Support, SupportRule, Touched};
use crate::results::{InvariantResult, Status};
use crate::smt::solve::solver;
use crate::smt::{Encoder, RuleId, SymPacket};

/// How long the minimisation of one invariant's support in one family may take, in
/// milliseconds; past it the support found so far is reported, marked not minimal.
pub const MINIMISE_MS: u64 = 2_000;

/// Fills in the support of every invariant of `invariants` (as [`super::ruleset`] returned
/// them for `rs`) that holds; the others are left without one. An invariant whose support query
/// the solver cannot decide is left without one too.
pub fn supports(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    invariants: &mut [InvariantResult],
) -> Result<(), ProveError> {
    let resolved = profile.resolve_names(rs);
    let rs: &Ruleset = &resolved;
    let wanted: Vec<usize> = invariants
        .iter()
        .enumerate()
        .filter(|(_, i)| i.status == Status::Holds)
        .map(|(n, _)| n)
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let ids: Vec<&'static str> = wanted
        .iter()
        .filter_map(|n| invariants.get(*n).map(|i| i.id))
        .collect();
    let mut found: Vec<Option<Support>> = ids
        .iter()
        .map(|_| {
            Some(Support {
                rules: Vec::new(),
                minimal: true,
            })
        })
        .collect();
    for fam in families(pod) {
        let per = family_supports(rs, fam, pod, profile, opts, &ids)?;
        for (acc, got) in found.iter_mut().zip(per) {
            match (acc.as_mut(), got) {
                (Some(a), Some((rules, minimal))) => {
                    a.rules
                        .extend(rules.iter().map(|r| support_rule(rs, fam, *r)));
                    a.minimal &= minimal;
                }
                _ => *acc = None,
            }
        }
    }
    for (n, s) in wanted.iter().zip(found) {
        if let Some(i) = invariants.get_mut(*n) {
            i.support = s;
        }
    }
    Ok(())
}

fn support_rule(rs: &Ruleset, fam: Family, id: RuleId) -> SupportRule {
    let chain = rs
        .table_at(fam, id.table, id.part)
        .and_then(|t| t.chains.get(id.chain));
    SupportRule {
        family: fam,
        table: id.table,
        part: id.part,
        chain: chain.map(|c| c.name.clone()).unwrap_or_default(),
        rule: super::rule_no(id.rule),
        text: chain
            .and_then(|c| c.rules.get(id.rule).map(|r| print_rule(fam, &c.name, r)))
            .unwrap_or_default(),
    }
}

type Found = Option<(Vec<RuleId>, bool)>;

/// The support of each invariant of `ids` (which hold) in one family.
fn family_supports(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    ids: &[&'static str],
) -> Result<Vec<Found>, ProveError> {
    let mut enc = Encoder::new(rs, fam, pod, profile)?;
    enc.track_rules();
    let first = SymPacket::fresh("why", enc.width);
    let outside = Bool::new_const("why_outside");
    let journey = enc.journey(&first, &outside)?;
    let scope = enc.scope(&first, &outside, opts.routing);
    let s = solver(opts.timeout_ms);
    s.assert(&scope);
    let (rules, lits): (Vec<RuleId>, Vec<Bool>) = match enc.tracking() {
        Some(t) => {
            for tie in &t.ties {
                s.assert(tie);
            }
            t.literals.iter().map(|(r, l)| (*r, l.clone())).unzip()
        }
        None => (Vec::new(), Vec::new()),
    };
    let sym = Symbolic {
        enc: &enc,
        first: &first,
        outside: &outside,
        journey: &journey,
    };
    let mut out = Vec::new();
    for name in ids {
        let Some(id) = ALL.iter().find(|i| i.name() == *name) else {
            out.push(None);
            continue;
        };
        let v = id.violation(&sym, profile);
        s.push();
        s.assert(&v);
        let core =
            crate::smt::solve::minimal_unsat_subset(&s, &lits, Duration::from_millis(MINIMISE_MS));
        s.pop(1);
        out.push(core.map(|(keep, minimal)| {
            let mut r: Vec<RuleId> = keep.iter().filter_map(|k| rules.get(*k).copied()).collect();
            r.sort();
            (r, minimal)
        }));
    }
    Ok(out)
}

/// The invariants (of `old`'s results) whose supporting rules `new` changes or removes.
///
/// Rules are matched by their text within their chain (same family, table and chain name): the
/// longest common subsequence of the two chains' rule texts pairs the rules that stay, in
/// order; an old rule left out of it is changed, moved past another or removed. A rule only
/// added in `new` touches no support (it is in no proof of `old`); `diff`'s classes say what it
/// changes. `old` and `new` are the rulesets the supports were computed on (names resolved).
pub fn touched(old: &Ruleset, new: &Ruleset, invariants: &[InvariantResult]) -> Vec<Touched> {
    let gone = changed_rules(old, new);
    invariants
        .iter()
        .filter_map(|i| {
            let s = i.support.as_ref()?;
            let rules: Vec<SupportRule> = s
                .rules
                .iter()
                .filter(|r| gone.contains(&(r.family, r.table, r.part, r.chain.clone(), r.rule)))
                .cloned()
                .collect();
            (!rules.is_empty()).then_some(Touched { id: i.id, rules })
        })
        .collect()
}

type Place = (Family, TableKind, u8, String, u32);

/// The rules of `old` (family, table, chain, 1-based number) that `new` does not keep.
fn changed_rules(old: &Ruleset, new: &Ruleset) -> BTreeSet<Place> {
    let mut gone = BTreeSet::new();
    for fam in [Family::Ipv4, Family::Ipv6] {
        for (ti, t) in old.tables(fam).iter().enumerate() {
            let part = old.part_of(fam, ti);
            let new_chains: BTreeMap<&str, Vec<String>> = new
                .table_at(fam, t.kind, part)
                .map(|nt| {
                    nt.chains
                        .iter()
                        .map(|c| {
                            let texts = c.rules.iter().map(|r| print_rule(fam, &c.name, r));
                            (c.name.as_str(), texts.collect())
                        })
                        .collect()
                })
                .unwrap_or_default();
            for c in &t.chains {
                let a: Vec<String> = c
                    .rules
                    .iter()
                    .map(|r| print_rule(fam, &c.name, r))
                    .collect();
                let b = new_chains.get(c.name.as_str()).cloned().unwrap_or_default();
                let kept = lcs_kept(&a, &b);
                for (n, k) in kept.iter().enumerate() {
                    if !k {
                        gone.insert((fam, t.kind, part, c.name.clone(), super::rule_no(n)));
                    }
                }
            }
        }
    }
    gone
}

/// For each element of `a`, whether a longest common subsequence of `a` and `b` keeps it.
fn lcs_kept(a: &[String], b: &[String]) -> Vec<bool> {
    let m = b.len();
    // at(i, j): the LCS length of a[i..] and b[j..], in a table of (a.len() + 1) rows.
    let mut len = vec![0usize; (a.len() + 1) * (m + 1)];
    let at = |len: &[usize], i: usize, j: usize| len.get(i * (m + 1) + j).copied().unwrap_or(0);
    for (i, x) in a.iter().enumerate().rev() {
        for (j, y) in b.iter().enumerate().rev() {
            let v = if x == y {
                1 + at(&len, i + 1, j + 1)
            } else {
                at(&len, i + 1, j).max(at(&len, i, j + 1))
            };
            if let Some(c) = len.get_mut(i * (m + 1) + j) {
                *c = v;
            }
        }
    }
    let mut kept = Vec::with_capacity(a.len());
    let mut j = 0;
    for (i, x) in a.iter().enumerate() {
        // Skip elements of b that a longest subsequence leaves out here.
        while j < m && b.get(j) != Some(x) && at(&len, i, j + 1) >= at(&len, i + 1, j) {
            j += 1;
        }
        let take = j < m && b.get(j) == Some(x);
        kept.push(take);
        if take {
            j += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::lcs_kept;

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_common_subsequence_keeps_unchanged_rules_in_order() {
        assert_eq!(lcs_kept(&v("a b c"), &v("a b c")), vec![true, true, true]);
        assert_eq!(lcs_kept(&v("a b c"), &v("a c")), vec![true, false, true]);
        assert_eq!(lcs_kept(&v("a b c"), &v("a x b c")), vec![true, true, true]);
        assert_eq!(lcs_kept(&v("a b c"), &v("a B c")), vec![true, false, true]);
        // A swap keeps one of the two in order; the other moved.
        assert_eq!(
            lcs_kept(&v("a b c"), &v("b a c"))
                .iter()
                .filter(|k| **k)
                .count(),
            2
        );
        assert_eq!(lcs_kept(&v("a b"), &[]), vec![false, false]);
    }
}
