//! Proofs about one ruleset (properties turned into queries): every invariant of the catalog
//! proved over all connections (or refuted with a concrete one, replayed through the
//! evaluator), and every rule's reachability. `check` reports them; `diff` reports the
//! invariants of both its rulesets.
//!
//! Each family the pod has an address of is encoded once ([`crate::smt::Encoder`]): a symbolic
//! first packet, its journey, and the scope (the first-packet facts, and routing unless
//! `--no-routing`). An invariant's violation is one query. A satisfiable one is solved again
//! with every undecidable match taken as not matching (as the evaluator takes them): if that is
//! unsatisfiable the result is `unknown` (it depends on matches the model cannot interpret);
//! otherwise the witness is steered toward values a person recognises (the profile's uids,
//! addresses, ports) and replayed through [`Simulator::journey_packet`], which must violate the
//! invariant too. An unsatisfiable violation is asked about the invariant's premise in the
//! same scope: `holds` when a connection meets it, `vacuous` when none does, `unknown` when the
//! solver cannot tell (an undecided premise is no evidence that anything was checked). Across
//! families the worst wins: violated > unknown > holds > vacuous.
//!
//! Reachability ranges over two scopes: routable first packets (as above), and any packet at
//! all (any interface, source, conntrack state, marks, flags: plain iptables semantics). A rule
//! is `live` when a routable connection hits it, `unroutable` when only other packets do,
//! `shadowed` when packets reach it but none matches there, `unreachable` when none reaches
//! it. For the last two, `by` names the earlier rules of the chain responsible: a minimal set
//! whose matches, taken as intercepting, leave nothing for the rule (an unsat core).

pub mod support;

use sidecar_model::pod::{Journey, Pod, Profile, Simulator};
use sidecar_model::{Family, Hook, Ruleset, Target};
use z3::ast::Bool;
use z3::{SatResult, Solver};

mod reach;
mod regions;
mod relations;
pub mod slice;

use crate::invariants::{Concrete, Id, Symbolic, ALL};
use crate::results::check::{RuleAt, RuleAtTable, RuleResult};
use crate::results::{InvariantResult, Status, Witness};
use crate::smt::solve::{guard, hints, solver, steer, unknown_reason};
use crate::smt::{all, truth, EncodeError, Encoder, RuleId, SymHit, SymPacket};

/// How to prove.
#[derive(Debug, Clone)]
pub struct Options {
    /// Range over routable connections only (the default).
    pub routing: bool,
    /// Per-query solver timeout in milliseconds.
    pub timeout_ms: u32,
    /// Prove a family region by region ([`slice`]) when its keyed chains hold at least this
    /// many keys ([`slice::MIN_KEYS`]; `usize::MAX`: never).
    pub slice_min_keys: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            routing: true,
            timeout_ms: 30_000,
            slice_min_keys: slice::MIN_KEYS,
        }
    }
}

/// Why the proofs could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The ruleset cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Z3 found a counterexample the evaluator does not confirm: the encoding is wrong.
    #[error("internal error: the SMT encoding and the evaluator disagree on invariant `{id}` for the connection {witness}; the evaluator's journey does not violate it")]
    Disagreement {
        /// The invariant.
        id: &'static str,
        /// The connection, as JSON.
        witness: String,
    },
}

/// The families the pod has addresses of ([`Pod::families`]; the commands' pod has every family
/// its rulesets hold tables for, [`Pod::for_rulesets`]).
pub fn families(pod: &Pod) -> Vec<Family> {
    pod.families()
}

pub(crate) fn chain_name(rs: &Ruleset, fam: Family, id: RuleId) -> String {
    rs.table_at(fam, id.table, id.part)
        .and_then(|t| t.chains.get(id.chain))
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

pub(crate) fn rule_no(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// What the proofs found about one ruleset.
#[derive(Debug, Clone)]
pub struct Proofs {
    /// Every invariant of the catalog, in its order.
    pub invariants: Vec<InvariantResult>,
    /// Every rule's reachability, family by family.
    pub rules: Vec<RuleResult>,
    /// Rules with matches or targets the model cannot interpret (free in the proofs).
    pub undecided: Vec<RuleAtTable>,
}

struct FamilyResult {
    invariants: Vec<Proved>,
    rules: Vec<RuleResult>,
    undecided: Vec<RuleAtTable>,
}

type Proved = (Id, Status, Option<(Witness, Journey)>, Option<String>);

/// One invariant in one family: the violation `v` is asserted in a scope the caller pops.
#[allow(clippy::too_many_arguments)]
fn prove(
    rs: &Ruleset,
    fam: Family,
    enc: &Encoder<'_>,
    s: &Solver,
    v: &Bool,
    first: &SymPacket,
    outside: &Bool,
    sim: &Simulator,
    pod: &Pod,
    profile: &Profile,
    id: Id,
) -> Result<Proved, ProveError> {
    s.assert(v);
    match crate::smt::solve::check(s) {
        SatResult::Unsat => return Ok((id, Status::Holds, None, None)),
        SatResult::Unknown => return Ok((id, Status::Unknown, None, Some(unknown_reason(s)))),
        SatResult::Sat => {}
    }
    let decided: Vec<Bool> = enc.free.iter().map(|(_, b)| b.not()).collect();
    let mut assume = vec![guard(s, &all(&decided))];
    match crate::smt::solve::check_assuming(s, &assume) {
        SatResult::Sat => {}
        SatResult::Unknown => return Ok((id, Status::Unknown, None, Some(unknown_reason(s)))),
        SatResult::Unsat => {
            let rules: Vec<String> = enc
                .undecided_rules
                .iter()
                .map(|r| {
                    format!(
                        "{} {} rule {}",
                        r.table.name(),
                        chain_name(rs, fam, *r),
                        r.rule + 1
                    )
                })
                .collect();
            return Ok((
                id,
                Status::Unknown,
                None,
                Some(format!(
                    "violated only if a match the model cannot interpret holds ({})",
                    rules.join("; ")
                )),
            ));
        }
    }
    let hs: Vec<Bool> = hints(enc, first, outside)
        .iter()
        .map(|h| guard(s, h))
        .collect();
    let Some(m) = steer(s, &mut assume, hs) else {
        return Ok((id, Status::Unknown, None, Some(unknown_reason(s))));
    };
    let pkt = first.read(&m, &enc.ifaces, fam);
    let entry = if truth(&m, outside) {
        Hook::Prerouting
    } else {
        Hook::Output
    };
    let j = sim.journey_packet(entry, pkt);
    let conc = Concrete {
        entry,
        first: pkt,
        journey: &j,
        pod,
    };
    let w = Witness::of_packet(entry, &pkt);
    if !id.violation(&conc, profile) {
        return Err(ProveError::Disagreement {
            id: id.name(),
            witness: serde_json::to_string(&w).unwrap_or_default(),
        });
    }
    Ok((id, Status::Violated, Some((w, j)), None))
}

/// An invariant whose violation is unsatisfiable: `holds` when some connection in scope meets
/// its premise, `vacuous` when none does, and `unknown` when the solver cannot tell (a premise
/// left undecided must not pass as holds: nothing says anything was checked).
fn premise_met(s: &Solver, premise: &Bool) -> (Status, Option<String>) {
    s.push();
    s.assert(premise);
    let r = crate::smt::solve::check(s);
    let why = (r == SatResult::Unknown).then(|| unknown_reason(s));
    s.pop(1);
    match r {
        SatResult::Sat => (Status::Holds, None),
        SatResult::Unsat => (
            Status::Vacuous,
            Some("no connection in scope is one it speaks about (its premise is unsatisfiable): nothing to check".into()),
        ),
        SatResult::Unknown => (
            Status::Unknown,
            Some(format!(
                "no connection violates it, but whether any meets its premise is undecided ({})",
                why.unwrap_or_default()
            )),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_family(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    sim: &Simulator,
    with_rules: bool,
    plan: Option<&slice::Plan>,
) -> Result<FamilyResult, ProveError> {
    let sliced = match plan {
        Some(plan) => regions::invariants(rs, fam, pod, profile, opts, sim, plan)?,
        None => None,
    };
    if let (Some(invariants), Some(plan)) = (&sliced, plan) {
        if !with_rules {
            return Ok(FamilyResult {
                invariants: invariants.clone(),
                rules: Vec::new(),
                undecided: Vec::new(),
            });
        }
        if let Some((rules, undecided)) =
            reach::reachability_sliced(rs, fam, pod, profile, sim, opts, plan)?
        {
            return Ok(FamilyResult {
                invariants: invariants.clone(),
                rules,
                undecided,
            });
        }
    }
    crate::progress::phase(&format!("encoding the journey, {}", fam_name(fam)), 0);
    let mut enc = Encoder::new(rs, fam, pod, profile)?;
    let first = SymPacket::fresh("c", enc.width);
    let outside = Bool::new_const("c_outside");
    let journey = enc.journey(&first, &outside)?;
    let scope = enc.scope(&first, &outside, opts.routing);
    let s = solver(opts.timeout_ms);
    s.assert(&scope);
    let journey = journey.named(&s, "journey");

    let mut invariants = sliced.unwrap_or_default();
    if invariants.is_empty() {
        let sym = Symbolic {
            enc: &enc,
            first: &first,
            outside: &outside,
            journey: &journey,
        };
        crate::progress::phase(
            &format!("proving the invariants, {}", fam_name(fam)),
            ALL.len(),
        );
        for id in ALL {
            crate::progress::step();
            // A relation is proved over pairs ([`relations`]), after the families.
            if id.is_relation() {
                invariants.push((id, Status::Holds, None, None));
                continue;
            }
            let t0 = std::time::Instant::now();
            let v = id.violation(&sym, profile);
            s.push();
            let r = prove(
                rs, fam, &enc, &s, &v, &first, &outside, sim, pod, profile, id,
            );
            s.pop(1);
            let mut r = r?;
            if r.1 == Status::Holds {
                let (st, reason) = premise_met(&s, &id.premise(&sym, profile));
                r.1 = st;
                r.3 = reason;
            }
            crate::progress::timing(&format!("{} {:?}", id.name(), r.1), t0);
            invariants.push(r);
        }
    }

    let routed_hits: Vec<SymHit> = journey
        .hops
        .first()
        .map(|h| h.hits.clone())
        .unwrap_or_default();
    let rules = if with_rules {
        reach::reachability(rs, fam, &mut enc, &s, &routed_hits, sim, opts)?
    } else {
        Vec::new()
    };
    let undecided = enc
        .undecided_rules
        .iter()
        .map(|r| RuleAtTable {
            family: fam,
            table: r.table,
            part: r.part,
            chain: chain_name(rs, fam, *r),
            rule: rule_no(r.rule),
        })
        .collect();
    Ok(FamilyResult {
        invariants,
        rules,
        undecided,
    })
}

fn stops(t: Option<&Target>) -> bool {
    t.is_some_and(|t| !t.continues())
}

/// A family as progress names it.
pub(crate) fn fam_name(fam: Family) -> &'static str {
    match fam {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// The earlier rules of the chain that leave nothing for `id`: per place the rule is tried, a
/// minimal unsat core of "these earlier rules intercept" over the chain's entry condition and
/// (when `with_match`) the rule's own match.
pub(crate) fn responsible(
    rs: &Ruleset,
    fam: Family,
    s: &Solver,
    hits: &[SymHit],
    id: RuleId,
    with_match: bool,
) -> Vec<RuleAt> {
    let mut by: Vec<RuleAt> = Vec::new();
    let rule_of = |r: RuleId| {
        rs.table_at(fam, r.table, r.part)
            .and_then(|t| t.chains.get(r.chain))
            .and_then(|c| c.rules.get(r.rule))
    };
    for (i, h) in hits.iter().enumerate().filter(|(_, h)| h.id == id) {
        let Some(entry) = hits.iter().find(|e| e.frame == h.frame) else {
            continue;
        };
        let earlier: Vec<&SymHit> = hits
            .iter()
            .take(i)
            .filter(|e| e.frame == h.frame && stops(rule_of(e.id).and_then(|r| r.target.as_ref())))
            .collect();
        s.push();
        s.assert(&entry.reach);
        if with_match {
            s.assert(&h.matches);
        }
        let lits: Vec<Bool> = earlier
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let a = Bool::new_const(format!("intercepts_{}_{}_{k}", h.frame, e.id.rule));
                s.assert(a.implies(e.matches.not()));
                a
            })
            .collect();
        let budget = std::time::Duration::from_millis(support::MINIMISE_MS);
        if let Some((keep, _)) = crate::smt::solve::minimal_unsat_subset(s, &lits, budget) {
            for k in keep {
                if let Some(e) = earlier.get(k) {
                    let at = RuleAt {
                        chain: chain_name(rs, fam, e.id),
                        rule: rule_no(e.id.rule),
                    };
                    if !by.contains(&at) {
                        by.push(at);
                    }
                }
            }
        }
        s.pop(1);
    }
    by
}

/// Proves every invariant of the catalog about `rs` in `pod` with `profile`, and every rule's
/// reachability, family by family; an invariant's result is its worst over the families.
pub fn ruleset(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Proofs, ProveError> {
    proofs(rs, pod, profile, opts, true, None)
}

/// Proves every invariant of the catalog about `rs`, as [`ruleset`] does, without the rules'
/// reachability (what `mutate` needs of each mutant).
pub fn invariants(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Vec<InvariantResult>, ProveError> {
    Ok(proofs(rs, pod, profile, opts, false, None)?.invariants)
}

/// [`invariants`] with the slicing plans of `rs` made already ([`plans`]), as `diff` does: it
/// needs them too, and a node's table takes half a second each.
pub fn invariants_with(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    plans: &[(Family, slice::Plan)],
) -> Result<Vec<InvariantResult>, ProveError> {
    Ok(proofs(rs, pod, profile, opts, false, Some(plans))?.invariants)
}

/// The families of `rs` (owner names resolved, [`Profile::resolve_names`]) that are proved
/// region by region, each with its plan ([`slice::plan`]).
pub fn plans(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    min_keys: usize,
) -> Vec<(Family, slice::Plan)> {
    let mut plans = Vec::new();
    for fam in families(pod) {
        let t0 = std::time::Instant::now();
        if let Some(plan) = slice::plan(rs, fam, pod, profile, min_keys) {
            crate::progress::timing(
                &format!(
                    "slicing {}: {} keys in {} classes",
                    fam_name(fam),
                    plan.keys.len(),
                    plan.classes.len()
                ),
                t0,
            );
            plans.push((fam, plan));
        }
    }
    plans
}

/// Every proof of `rs`; `plans`: its slicing plans when made already.
fn proofs(
    rs: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    with_rules: bool,
    plans: Option<&[(Family, slice::Plan)]>,
) -> Result<Proofs, ProveError> {
    let resolved = profile.resolve_names(rs);
    let rs: &Ruleset = &resolved;
    let sim = Simulator::new(rs, pod.clone(), profile.clone());
    let mut invariants: Vec<InvariantResult> = ALL
        .iter()
        .map(|id| InvariantResult {
            id: id.name(),
            statement: id.statement(profile),
            uses: id.uses(profile),
            status: Status::Vacuous,
            family: None,
            witness: None,
            journey: None,
            reason: None,
            pair: None,
            support: None,
        })
        .collect();
    let mut rules = Vec::new();
    let mut undecided = Vec::new();
    // The families sliced by destination ([`slice`]).
    let made;
    let plans = match plans {
        Some(p) => p,
        None => {
            made = self::plans(rs, pod, profile, opts.slice_min_keys);
            made.as_slice()
        }
    };
    for (n, fam) in families(pod).into_iter().enumerate() {
        let plan = plans.iter().find(|(f, _)| *f == fam).map(|(_, p)| p);
        let fr = check_family(rs, fam, pod, profile, opts, &sim, with_rules, plan)?;
        for (res, (_, st, w, reason)) in invariants.iter_mut().zip(fr.invariants) {
            // The first family sets it (so a vacuous one keeps its reason); later ones only
            // when worse (holds in one family and vacuous in the other is holds).
            if n == 0 || st.rank() > res.status.rank() {
                res.status = st;
                // The family named is the one that decided a failure.
                res.family = (!st.passes()).then_some(fam);
                res.reason = reason;
                if let Some((w, j)) = w {
                    res.witness = Some(w);
                    res.journey = Some(j);
                }
            }
        }
        rules.extend(fr.rules);
        undecided.extend(fr.undecided);
    }
    let relations = ALL.iter().filter(|id| id.is_relation()).count();
    crate::progress::phase("proving the relations", relations);
    for (id, res) in ALL.iter().zip(invariants.iter_mut()) {
        if id.is_relation() {
            crate::progress::step();
            relations::prove_relation(rs, opts, &sim, *id, res, plans)?;
        }
    }
    Ok(Proofs {
        invariants,
        rules,
        undecided,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smt::solve::query;
    use sidecar_model::{parse, DEFAULT_RULESET};

    /// Every invariant's violation implies its premise (so an unsatisfiable premise leaves
    /// nothing to violate, and `vacuous` is never hiding a violation), over every connection in
    /// scope, with the istio, ambient and a uid-only profile, on the classic ruleset and the
    /// ambient one.
    #[test]
    fn every_violation_implies_its_premise() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
        let ambient_rules = std::fs::read(corpus.join("rulesets/ambient-inpod.rules")).unwrap();
        let classic = parse("classic", DEFAULT_RULESET.as_bytes())
            .unwrap()
            .ruleset;
        let ambient = parse("ambient", &ambient_rules).unwrap().ruleset;
        let uid_only = Profile::from_toml(
            "proxy_identity = [\"uid\"]\nproxy_uid = 5678\ninbound_ports = []\nmetrics_ports = []\n",
        )
        .unwrap();
        let pod = Pod::new(&[]);
        for (rs, profile) in [
            (&classic, Profile::istio()),
            (&classic, uid_only),
            (&ambient, Profile::ambient()),
        ] {
            let mut enc = Encoder::new(rs, Family::Ipv4, &pod, &profile).unwrap();
            let first = SymPacket::fresh("c", enc.width);
            let outside = Bool::new_const("c_outside");
            let journey = enc.journey(&first, &outside).unwrap();
            let s = solver(30_000);
            s.assert(all(&[
                enc.first_packet_facts(&first, &outside),
                enc.routable(&first, &outside),
            ]));
            let sym = Symbolic {
                enc: &enc,
                first: &first,
                outside: &outside,
                journey: &journey,
            };
            for id in ALL {
                let v = id.violation(&sym, &profile);
                let p = id.premise(&sym, &profile);
                let escapes = all(&[v, p.not()]);
                assert_eq!(
                    query(&s, &escapes).0,
                    SatResult::Unsat,
                    "{} with profile {}",
                    id.name(),
                    profile.name
                );
            }
        }
    }
}
