//! Where a `diff` class comes from: the rule whose change makes the witness's two journeys part,
//! so that a code-scanning result points at a line the pull request changed.
//!
//! The two rulesets are aligned chain by chain (same family, table, part and chain name): a
//! diff of the chains' canonical rule texts (Myers, as `git diff` does) pairs the rules that
//! stay; a rule of the old chain left out is *removed*, and when the same hunk adds rules in
//! its place it is *changed* (paired with the added rule at the same offset in the hunk, or the
//! hunk's last); a rule of the new chain left out is *added* (or the new text of a changed one).
//!
//! The witness's two journeys' hits (every hop's matched rules in order, each named by hop,
//! hook, table, part, chain and the rule's text) are compared from the start. At the first that
//! differs:
//! 1. the new journey's rule there, when the new ruleset added or changed it: the new file's
//!    line ([`Kind::Added`]);
//! 2. else the old journey's rule there, when the new ruleset does not keep it: the new text of
//!    a changed rule in the new file ([`Kind::Changed`]), or, when nothing took its place, the
//!    old file's line ([`Kind::Deleted`]);
//! 3. else the first rule, from there on, that the new journey hits and the new ruleset added
//!    or changed, then the first the old journey hits and the new ruleset dropped (as in 1 and 2);
//! 4. else the new journey's rule where they part, kept by both ([`Kind::Kept`]: a rule moved,
//!    or something outside the rules, as a chain's policy, changed).
//!
//! No cause when the hits are the same on both sides (a policy changed, say): the SARIF
//! renderer then points at the rule deciding the new side's first hop.

use std::collections::BTreeMap;

use sidecar_model::pod::{Journey, RuleRef};
use sidecar_model::print::print_rule;
use sidecar_model::{Family, Hook, Rule, Ruleset, TableKind};

/// Which ruleset a cause is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The old ruleset.
    Old,
    /// The new ruleset.
    New,
}

/// What happened to the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only in the new ruleset (added, or the new text of a changed rule the journeys meet
    /// there).
    Added,
    /// The old journey's rule, changed: the cause is its new text.
    Changed,
    /// The old journey's rule, removed with nothing in its place: the cause is in the old file.
    Deleted,
    /// Kept by both: where the journeys part, with no added or removed rule on them.
    Kept,
}

impl Kind {
    /// In words, for a message.
    pub fn words(self) -> &'static str {
        match self {
            Kind::Added => "added",
            Kind::Changed => "changed",
            Kind::Deleted => "deleted",
            Kind::Kept => "where the journeys part",
        }
    }
}

/// The rule a class comes from.
#[derive(Debug, Clone)]
pub struct Cause<'a> {
    /// The ruleset it is in.
    pub side: Side,
    /// What happened to it.
    pub kind: Kind,
    /// The rule (its origin has its line).
    pub rule: &'a Rule,
    /// `table chain number` in that ruleset.
    pub at: String,
    /// Its canonical text.
    pub text: String,
}

/// A chain: family, table, part, name.
type ChainKey = (Family, TableKind, u8, String);

/// One chain's alignment: for each old rule its new counterpart (kept, or the new text of a
/// changed rule) and whether it is kept; for each new rule whether it is kept.
#[derive(Debug, Default)]
struct Alignment {
    old: Vec<Fate>,
    new_kept: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    /// Changed: the 0-based index of its new text.
    Changed(usize),
    Removed,
}

fn texts(rs: &Ruleset, key: &ChainKey) -> Vec<String> {
    let (fam, table, part, name) = key;
    rs.table_at(*fam, *table, *part)
        .and_then(|t| t.chain(name))
        .map(|c| c.rules.iter().map(|r| print_rule(*fam, name, r)).collect())
        .unwrap_or_default()
}

/// How long one chain's diff may take before it settles for a coarser one.
const ALIGN_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

fn align(old: &Ruleset, new: &Ruleset, key: &ChainKey) -> Alignment {
    use similar::DiffOp;
    let (a, b) = (texts(old, key), texts(new, key));
    let mut al = Alignment {
        old: vec![Fate::Removed; a.len()],
        new_kept: vec![false; b.len()],
    };
    let deadline = std::time::Instant::now() + ALIGN_DEADLINE;
    for op in
        similar::capture_diff_slices_deadline(similar::Algorithm::Myers, &a, &b, Some(deadline))
    {
        match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                for k in 0..len {
                    if let Some(f) = al.old.get_mut(old_index + k) {
                        *f = Fate::Kept;
                    }
                    if let Some(n) = al.new_kept.get_mut(new_index + k) {
                        *n = true;
                    }
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                for k in 0..old_len {
                    if let Some(f) = al.old.get_mut(old_index + k) {
                        *f = Fate::Changed(new_index + k.min(new_len.saturating_sub(1)));
                    }
                }
            }
            DiffOp::Delete { .. } | DiffOp::Insert { .. } => {}
        }
    }
    al
}

/// One rule a journey hits, as both sides can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    hop: usize,
    hook: Hook,
    chain: ChainKey,
    text: String,
}

struct Hits<'a> {
    hits: Vec<(Hit, &'a Rule, &'a RuleRef)>,
}

fn hits<'a>(rs: &'a Ruleset, family: Family, j: &'a Journey) -> Hits<'a> {
    let mut hits = Vec::new();
    for (hop, h) in j.hops.iter().enumerate() {
        for r in &h.matched {
            let Some(rule) = find(rs, family, r) else {
                continue;
            };
            let chain = (family, r.table, r.part, r.chain.clone());
            hits.push((
                Hit {
                    hop,
                    hook: r.hook,
                    text: print_rule(family, &r.chain, rule),
                    chain,
                },
                rule,
                r,
            ));
        }
    }
    Hits { hits }
}

fn find<'a>(rs: &'a Ruleset, family: Family, r: &RuleRef) -> Option<&'a Rule> {
    let index = usize::try_from(r.rule.checked_sub(1)?).ok()?;
    rs.table_at(family, r.table, r.part)?
        .chain(&r.chain)?
        .rules
        .get(index)
}

/// The rule the class of the witness whose journeys are `old_j` and `new_j` comes from (module
/// docs); `None` when both journeys hit the same rules.
pub fn cause<'a>(
    old: &'a Ruleset,
    new: &'a Ruleset,
    family: Family,
    old_j: &'a Journey,
    new_j: &'a Journey,
) -> Option<Cause<'a>> {
    let o = hits(old, family, old_j).hits;
    let n = hits(new, family, new_j).hits;
    let p = o
        .iter()
        .zip(&n)
        .position(|((a, ..), (b, ..))| a != b)
        .unwrap_or_else(|| o.len().min(n.len()));
    if p == o.len() && p == n.len() {
        return None;
    }
    let mut al = Aligner {
        old,
        new,
        cache: BTreeMap::new(),
    };
    if let Some(c) = n.get(p).and_then(|h| al.added(h)) {
        return Some(c);
    }
    if let Some(c) = o.get(p).and_then(|h| al.dropped(h)) {
        return Some(c);
    }
    let later_added = n.iter().skip(p).find_map(|h| al.added(h));
    if later_added.is_some() {
        return later_added;
    }
    let later_dropped = o.iter().skip(p).find_map(|h| al.dropped(h));
    if later_dropped.is_some() {
        return later_dropped;
    }
    n.get(p).map(|(h, rule, r)| Cause {
        side: Side::New,
        kind: Kind::Kept,
        rule,
        at: at(r, r.rule),
        text: h.text.clone(),
    })
}

fn index(r: &RuleRef) -> usize {
    usize::try_from(r.rule.saturating_sub(1)).unwrap_or(usize::MAX)
}

fn at(r: &RuleRef, number: u32) -> String {
    format!("{} {} {}", r.table, r.chain, number)
}

/// The chains' alignments, each made when first asked for.
struct Aligner<'a> {
    old: &'a Ruleset,
    new: &'a Ruleset,
    cache: BTreeMap<ChainKey, Alignment>,
}

impl<'a> Aligner<'a> {
    fn of(&mut self, key: &ChainKey) -> &Alignment {
        let (old, new) = (self.old, self.new);
        self.cache
            .entry(key.clone())
            .or_insert_with(|| align(old, new, key))
    }

    /// A new journey's hit that the new ruleset added (or changed).
    fn added(&mut self, (h, rule, r): &(Hit, &'a Rule, &RuleRef)) -> Option<Cause<'a>> {
        let kept = self.of(&h.chain).new_kept.get(index(r)).copied();
        (kept == Some(false)).then(|| Cause {
            side: Side::New,
            kind: Kind::Added,
            rule,
            at: at(r, r.rule),
            text: h.text.clone(),
        })
    }

    /// An old journey's hit that the new ruleset does not keep: its new text, or itself in the
    /// old file.
    fn dropped(&mut self, (h, rule, r): &(Hit, &'a Rule, &RuleRef)) -> Option<Cause<'a>> {
        let fate = self.of(&h.chain).old.get(index(r)).copied()?;
        match fate {
            Fate::Kept => None,
            Fate::Changed(k) => {
                let (fam, table, part, name) = &h.chain;
                let chain = self.new.table_at(*fam, *table, *part)?.chain(name)?;
                let rule = chain.rules.get(k)?;
                let number = u32::try_from(k + 1).unwrap_or(u32::MAX);
                Some(Cause {
                    side: Side::New,
                    kind: Kind::Changed,
                    rule,
                    at: at(r, number),
                    text: print_rule(*fam, name, rule),
                })
            }
            Fate::Removed => Some(Cause {
                side: Side::Old,
                kind: Kind::Deleted,
                rule,
                at: at(r, r.rule),
                text: h.text.clone(),
            }),
        }
    }
}
