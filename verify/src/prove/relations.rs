//! Proofs of the relational invariants ([`crate::invariants::pair`]): two symbolic connections,
//! each with its journey (both of one family from one encoder, or an IPv4 one and an IPv6 one
//! from an encoder each), the scope asserted for both, and the relation's violation asserted
//! over the pair. A satisfiable query gives a pair; both are replayed through the evaluator,
//! whose journeys must violate the relation too ([`ConcPair`]), or the encoding is wrong
//! ([`ProveError::Disagreement`]). A relation no pair can meet the premise of (one proxy
//! identity, one family) is not solved: it is `vacuous`, with the reason.

use sidecar_model::pod::Simulator;
use sidecar_model::{Family, Hook, Ruleset};
use z3::ast::Bool;
use z3::SatResult;

use super::slice::Plan;
use super::{families, Options, ProveError};
use crate::invariants::pair::Field;
use crate::invariants::{ConcPair, Concrete, Id, SymPair, Symbolic};
use crate::results::{InvariantResult, PairWitness, Status, Witness};
use crate::smt::encode::focus::{Focus, Region};
use crate::smt::solve::{candidates, check_guided, guard, hints, solver, steer, unknown_reason};
use crate::smt::{all, truth, Encoder, SymPacket};

/// One side of a pair: its encoder's family, packet, direction and journey.
struct Side {
    family: Family,
    first: SymPacket,
    outside: Bool,
}

impl Side {
    /// Takes `other`'s terms for `fields` (of the same family): the relation's `same` of them
    /// is then true as a term, and both journeys share what they compute from them alone.
    fn share(&mut self, other: &Side, fields: &[Field]) {
        let (p, o) = (&mut self.first, &other.first);
        for f in fields {
            match f {
                Field::Outside => self.outside = other.outside.clone(),
                Field::Proto => p.proto = o.proto.clone(),
                Field::Sport => p.sport = o.sport.clone(),
                Field::Dport => p.dport = o.dport.clone(),
                Field::Uid => p.uid = o.uid.clone(),
                Field::Gid => p.gid = o.gid.clone(),
                Field::Mark => p.mark = o.mark.clone(),
                Field::Ifaces => {
                    p.iif = o.iif.clone();
                    p.oif = o.oif.clone();
                }
                Field::Src => p.src = o.src.clone(),
                Field::Dst => p.dst = o.dst.clone(),
            }
        }
    }
}

/// What every proof of one relation reads: the ruleset (names resolved), the options, the
/// simulator of that ruleset (which holds the pod and the profile) and the relation.
#[derive(Clone, Copy)]
struct Relation<'a> {
    rs: &'a Ruleset,
    opts: &'a Options,
    sim: &'a Simulator,
    id: Id,
}

/// Proves the relation `id` about `rs` (names resolved; `sim` simulates it in its pod with its
/// profile) and fills in `res`.
pub(super) fn prove_relation(
    rs: &Ruleset,
    opts: &Options,
    sim: &Simulator,
    id: Id,
    res: &mut InvariantResult,
    plans: &[(Family, Plan)],
) -> Result<(), ProveError> {
    let (pod, profile) = (&sim.pod, &sim.profile);
    let rel = Relation { rs, opts, sim, id };
    if let Some(why) = id.vacuous(rs, pod, profile) {
        res.status = Status::Vacuous;
        res.reason = Some(why);
        return Ok(());
    }
    // Past the deadline the pairs are not even encoded.
    if crate::smt::solve::deadline_passed() {
        res.status = Status::Unknown;
        res.reason = Some(crate::smt::solve::DEADLINE_PASSED.into());
        return Ok(());
    }
    let pairs: Vec<(Family, Family)> = if id.cross_family() {
        vec![(Family::Ipv4, Family::Ipv6)]
    } else {
        families(pod).into_iter().map(|f| (f, f)).collect()
    };
    for (fa, fb) in pairs {
        let r = match plan_for(plans, id, fa, fb) {
            Some(plan) => sliced(rel, fa, plan)?,
            None => None,
        };
        let r = match r {
            Some(r) => r,
            None => prove_pair(rel, fa, fb, None)?
                .unwrap_or_else(|| PairResult::with(Status::Unknown, None)),
        };
        if r.status.rank() > res.status.rank() {
            res.status = r.status;
            res.family = Some(fa);
            res.reason = r.reason;
            res.witness = r.witness;
            res.journey = r.journey;
            res.pair = r.pair;
        }
    }
    Ok(())
}

struct PairResult {
    status: Status,
    reason: Option<String>,
    witness: Option<Witness>,
    journey: Option<sidecar_model::pod::Journey>,
    pair: Option<PairWitness>,
}

impl PairResult {
    fn with(status: Status, reason: Option<String>) -> PairResult {
        PairResult {
            status,
            reason,
            witness: None,
            journey: None,
            pair: None,
        }
    }
}

/// The slicing plan for a relation over two connections of family `fa` and `fb`: when both
/// are of one family that has one, and the relation's connections have the same destination,
/// protocol and port (so both journeys lie in one region).
fn plan_for(plans: &[(Family, Plan)], id: Id, fa: Family, fb: Family) -> Option<&Plan> {
    let same = id.pair_same();
    let one_region = [Field::Dst, Field::Proto, Field::Dport]
        .iter()
        .all(|f| same.contains(f));
    if fa != fb || !one_region {
        return None;
    }
    plans.iter().find(|(f, _)| *f == fa).map(|(_, p)| p)
}

/// The relation over the regions of `plan` (the worst result wins; a violation ends it);
/// `None` when a representative's encoding leaked (the caller proves the pair whole).
fn sliced(rel: Relation<'_>, fam: Family, plan: &Plan) -> Result<Option<PairResult>, ProveError> {
    let id = rel.id;
    let mut worst: Option<PairResult> = None;
    for (region, class) in plan.regions() {
        let members = class.map_or(1, |c| c.members.len());
        let t0 = std::time::Instant::now();
        let Some(mut r) = prove_pair(rel, fam, fam, Some((plan, &region, members)))? else {
            return Ok(None);
        };
        if r.status == Status::Unknown {
            r.reason = Some(format!(
                "{} (first packets {})",
                r.reason.unwrap_or_default(),
                super::regions::describe(&region)
            ));
        }
        crate::progress::timing(
            &format!(
                "{} {:?}, first packets {} ({members} keys)",
                id.name(),
                r.status,
                super::regions::describe(&region)
            ),
            t0,
        );
        if worst
            .as_ref()
            .is_none_or(|w| r.status.rank() > w.status.rank())
        {
            worst = Some(r);
        }
        if worst.as_ref().is_some_and(|w| w.status == Status::Violated) {
            break;
        }
    }
    Ok(worst)
}

/// The pair's proof, over every connection or (`region`) those of one region of a plan, with
/// how many keys the region stands for; `None` when that region's encoding leaked and it
/// stands for more than itself.
#[allow(clippy::too_many_arguments)]
fn prove_pair(
    rel: Relation<'_>,
    fa: Family,
    fb: Family,
    region: Option<(&Plan, &Region, usize)>,
) -> Result<Option<PairResult>, ProveError> {
    let Relation { rs, opts, sim, id } = rel;
    let (pod, profile) = (&sim.pod, &sim.profile);
    let mut ea = Encoder::new(rs, fa, pod, profile)?;
    let mut eb_own = if fa == fb {
        None
    } else {
        Some(Encoder::new(rs, fb, pod, profile)?)
    };
    let sa = Side {
        family: fa,
        first: SymPacket::fresh("a", ea.width),
        outside: Bool::new_const("a_outside"),
    };
    let mut sb = Side {
        family: fb,
        first: SymPacket::fresh("b", eb_own.as_ref().map_or(ea.width, |e| e.width)),
        outside: Bool::new_const("b_outside"),
    };
    if fa == fb {
        sb.share(&sa, id.pair_same());
    }
    if let Some((plan, r, _)) = region {
        ea.set_focus(Focus::new(plan.keyed.clone(), r.clone(), &sa.first));
    }
    let ja = ea.journey(&sa.first, &sa.outside)?;
    let free_a = ea.free.len();
    let jb = match eb_own.as_mut() {
        Some(e) => e.journey(&sb.first, &sb.outside)?,
        None => ea.journey(&sb.first, &sb.outside)?,
    };
    // One encoder built both journeys alike, place by place: a sample (`-m statistic`) tried
    // at the same place is one draw for both connections, which differ only in who opens them
    // (a kube-proxy service picks the same endpoint for both). Other undecided matches stay
    // apart: they may depend on the owner.
    let mut same_draws = Vec::new();
    if eb_own.is_none() {
        let (a, b) = ea.free.split_at(free_a);
        for ((ida, fa_), (idb, fb_)) in a.iter().zip(b) {
            if ida == idb && ea.random_only(*ida) {
                same_draws.push(fa_.eq(fb_));
            }
        }
    }
    if region.is_some_and(|(_, _, members)| members > 1) && ea.leaks() > 0 {
        return Ok(None);
    }
    let eb: &Encoder<'_> = eb_own.as_ref().unwrap_or(&ea);
    let scope = |e: &Encoder<'_>, side: &Side| e.scope(&side.first, &side.outside, opts.routing);
    let s = solver(opts.timeout_ms);
    s.assert(scope(&ea, &sa));
    s.assert(scope(eb, &sb));
    s.assert(all(&same_draws));
    if let Some((_, r, _)) = region {
        s.assert(ea.in_region(&sa.first, r));
    }
    let sym = SymPair {
        a: Symbolic {
            enc: &ea,
            first: &sa.first,
            outside: &sa.outside,
            journey: &ja,
        },
        b: Symbolic {
            enc: eb,
            first: &sb.first,
            outside: &sb.outside,
            journey: &jb,
        },
    };
    let Some(v) = id.pair_violation(&sym, profile, pod) else {
        return Ok(Some(PairResult::with(Status::Holds, None)));
    };
    s.assert(&v);
    let unknown = |s: &z3::Solver| PairResult::with(Status::Unknown, Some(unknown_reason(s)));
    // Two journeys over a node's table are a large search: the solver is pointed first at the
    // connections a person would try (docs/scale.md, "Guided first queries").
    let likely = candidates(&ea, &sa.first, &sa.outside);
    match check_guided(&s, &likely) {
        SatResult::Unsat => return Ok(Some(PairResult::with(Status::Holds, None))),
        SatResult::Unknown => return Ok(Some(unknown(&s))),
        SatResult::Sat => {}
    }
    // As the evaluator takes them: every match the model cannot interpret as not matching.
    let mut free: Vec<Bool> = ea.free.iter().map(|(_, b)| b.not()).collect();
    if let Some(e) = &eb_own {
        free.extend(e.free.iter().map(|(_, b)| b.not()));
    }
    let mut assume = vec![guard(&s, &all(&free))];
    match crate::smt::solve::check_assuming(&s, &assume) {
        SatResult::Sat => {}
        SatResult::Unknown => return Ok(Some(unknown(&s))),
        SatResult::Unsat => {
            return Ok(Some(PairResult::with(
                Status::Unknown,
                Some("violated only if a match the model cannot interpret holds".to_string()),
            )))
        }
    }
    let mut hs: Vec<Bool> = hints(&ea, &sa.first, &sa.outside);
    hs.extend(hints(eb, &sb.first, &sb.outside));
    let Some(m) = steer(&s, &mut assume, hs) else {
        return Ok(Some(unknown(&s)));
    };
    let read = |e: &Encoder<'_>, side: &Side| {
        let pkt = side.first.read(&m, &e.ifaces, side.family);
        let entry = if truth(&m, &side.outside) {
            Hook::Prerouting
        } else {
            Hook::Output
        };
        (entry, pkt)
    };
    let (entry_a, pa) = read(&ea, &sa);
    let (entry_b, pb) = read(eb, &sb);
    let (ja, jb) = (
        sim.journey_packet(entry_a, pa),
        sim.journey_packet(entry_b, pb),
    );
    let (wa, wb) = (
        Witness::of_packet(entry_a, &pa),
        Witness::of_packet(entry_b, &pb),
    );
    let conc = ConcPair {
        a: Concrete {
            entry: entry_a,
            first: pa,
            journey: &ja,
            pod,
        },
        b: Concrete {
            entry: entry_b,
            first: pb,
            journey: &jb,
            pod,
        },
    };
    if id.pair_violation(&conc, profile, pod) != Some(true) {
        return Err(ProveError::Disagreement {
            id: id.name(),
            witness: format!(
                "{} and {}",
                serde_json::to_string(&wa).unwrap_or_default(),
                serde_json::to_string(&wb).unwrap_or_default()
            ),
        });
    }
    Ok(Some(PairResult {
        status: Status::Violated,
        reason: None,
        witness: Some(wa),
        journey: Some(ja),
        pair: Some(PairWitness {
            family: fb,
            witness: wb,
            journey: jb,
        }),
    }))
}
