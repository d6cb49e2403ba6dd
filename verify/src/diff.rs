//! `diff`: which connections behave differently between two rulesets.
//!
//! Both rulesets are encoded over one symbolic first packet ([`crate::smt`]); a connection
//! *behaves differently* when its journeys differ in what happens, not in which rules say so:
//! some hop exists in one and not the other, or a hop is dropped, delivered in the pod to
//! another port, or leaves for another address, or one journey loops there and the other does
//! not. Each satisfying connection is replayed through the evaluator on both rulesets (which
//! must confirm the difference, or the encoding is wrong), grouped into a class by the rules its
//! first hop hits on each side and the two outcomes, and that class is excluded before solving
//! again, up to a bound. Changes only unroutable packets can see are searched for separately
//! (with routing off and the routable ones excluded) and listed apart; they do not count.
//! Each class is put in words and ranked by impact in `diff/class.rs` (docs/diff.md); the changes are
//! listed most impact first.

use sidecar_model::pod::{Journey, Pod, Profile, Simulator};
use sidecar_model::{Family, Hook, Ruleset};
use z3::ast::Bool;
use z3::SatResult;

use crate::journey_text::journey_words;
use crate::prove::{self, families, ProveError};
use crate::results::Witness;
use crate::smt::encode::focus::{Focus as FocusOn, Region};
use crate::smt::shape::{differs, same_shape, Dest};
use crate::smt::solve::{hints, solver, steer};
use crate::smt::{
    addr_width, all, truth, EncodeError, Encoder, Ifaces, RuleId, SymJourney, SymPacket,
};

mod class;
mod sliced;

pub use class::{capture_ports, MAX_LIST, MAX_PREFIXES};

pub use crate::results::diff::{Change, Impact, Invariants, Report};

/// How to diff.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most change classes to enumerate per family and scope.
    pub max_classes: usize,
    /// Per-query solver timeout in milliseconds.
    pub timeout_ms: u32,
    /// Compare region by region when both rulesets' keyed chains hold at least this many keys
    /// (`diff/sliced.rs`; `usize::MAX`: never).
    pub slice_min_keys: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_classes: 32,
            timeout_ms: 30_000,
            slice_min_keys: prove::slice::MIN_KEYS,
        }
    }
}

/// Why `diff` could not give a result.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A ruleset cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The invariants of one side could not be proved.
    #[error(transparent)]
    Prove(#[from] ProveError),
    /// Z3 found a change the evaluator does not confirm.
    #[error("internal error: the SMT encoding and the evaluator disagree: the connection {0} behaves the same on both rulesets in the evaluator")]
    Disagreement(String),
}

/// The rules a journey's first hop hits (nat, or all when few), as "OUTPUT 1, ISTIO_OUTPUT 9".
fn first_rules(j: &Journey) -> String {
    let Some(h) = j.hops.first() else {
        return "no hop".into();
    };
    let rules: Vec<String> = h
        .matched
        .iter()
        .filter(|r| r.table == sidecar_model::TableKind::Nat || h.matched.len() < 6)
        .map(|r| format!("{} {}", r.chain, r.rule))
        .collect();
    if rules.is_empty() {
        "no rule".into()
    } else {
        rules.join(", ")
    }
}

struct Side<'a> {
    enc: Encoder<'a>,
    journey: SymJourney,
    sim: Simulator,
}

/// Diffs `old` and `new` in `pod` with `profile`.
pub fn diff(
    old: &Ruleset,
    new: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Report, DiffError> {
    let popts = prove::Options {
        routing: true,
        timeout_ms: opts.timeout_ms,
        slice_min_keys: opts.slice_min_keys,
    };
    let (old, new) = (profile.resolve_names(old), profile.resolve_names(new));
    let sides = Sides::new(&old, &new, pod, profile, opts);
    let (old, new) = (sides.old, sides.new);
    // The invariants of each side, without the rules' reachability `check` adds (diff does
    // not report it).
    let inv_old = prove::invariants_with(old, pod, profile, &popts, &sides.plans[0])?;
    let inv_new = prove::invariants_with(new, pod, profile, &popts, &sides.plans[1])?;
    let mut report = Report {
        changes: Vec::new(),
        unroutable_changes: Vec::new(),
        invariants: Invariants {
            old: inv_old,
            new: inv_new,
        },
        capture_ports: capture_ports(profile),
        truncated: false,
        unknown: false,
        samples: Vec::new(),
        touched: Vec::new(),
        touched_skipped: None,
    };
    crate::progress::phase("comparing the journeys", 0);
    for fam in families(pod) {
        diff_family(&sides, fam, false, None, &mut report)?;
    }
    rank(&mut report);
    // Last, so that nothing above depends on it: the old side's supports, and the invariants
    // whose supporting rules the change touches.
    let keys = families(pod)
        .into_iter()
        .map(|fam| prove::slice::keys(old, fam, opts.slice_min_keys))
        .max()
        .unwrap_or(0);
    if keys >= opts.slice_min_keys {
        report.touched_skipped = Some(format!(
            "the old ruleset's keyed chains hold {keys} keys; the rules its proofs rest on are not computed at that size yet (docs/scale.md)"
        ));
    } else {
        crate::progress::phase("what the proofs rest on", 0);
        prove::support::supports(old, pod, profile, &popts, &mut report.invariants.old)?;
        report.touched = prove::support::touched(old, new, &report.invariants.old);
    }
    Ok(report)
}

/// The first class of routable connections that behaves differently between `old` and `new`
/// (family by family), without proving either side's invariants or looking further: what
/// `mutate` needs to tell an equivalent mutant from one that changes behaviour. `unknown` in the
/// report says a query was undecided (so no class found does not mean none exists).
pub fn first_change(
    old: &Ruleset,
    new: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Report, DiffError> {
    behaviour(old, new, pod, profile, opts, true, None)
}

/// Connections a search leaves out: a condition over the two sides' encoders (old, new; either
/// may encode further journeys), the first packet, its direction, and its old and new journeys.
/// `mutate` leaves out the connections an invariant the old ruleset already violates reports,
/// to tell a mutant that changes only those (*masked*) from one the catalog is blind to, and
/// keeps only the new violations of such an invariant, to find one that kills the mutant.
pub type Exclude<'x> = &'x dyn Fn(
    &mut Encoder,
    &mut Encoder,
    &SymPacket,
    &Bool,
    &SymJourney,
    &SymJourney,
) -> Result<Bool, EncodeError>;

/// [`first_change`] among the connections `exclude` does not name.
pub fn first_change_excluding(
    old: &Ruleset,
    new: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    exclude: Exclude,
) -> Result<Report, DiffError> {
    behaviour(old, new, pod, profile, opts, true, Some(exclude))
}

/// Every class of connections that behaves differently (up to the bound), as [`diff`] finds
/// them, without proving either side's invariants.
pub fn changes(
    old: &Ruleset,
    new: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Report, DiffError> {
    behaviour(old, new, pod, profile, opts, false, None)
}

fn behaviour(
    old: &Ruleset,
    new: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    first_only: bool,
    exclude: Option<Exclude>,
) -> Result<Report, DiffError> {
    let (old, new) = (profile.resolve_names(old), profile.resolve_names(new));
    let mut report = Report {
        changes: Vec::new(),
        unroutable_changes: Vec::new(),
        invariants: Invariants {
            old: Vec::new(),
            new: Vec::new(),
        },
        capture_ports: capture_ports(profile),
        truncated: false,
        unknown: false,
        samples: Vec::new(),
        touched: Vec::new(),
        touched_skipped: None,
    };
    let sides = Sides::new(&old, &new, pod, profile, opts);
    for fam in families(pod) {
        diff_family(&sides, fam, first_only, exclude, &mut report)?;
        if first_only && !report.changes.is_empty() {
            break;
        }
    }
    rank(&mut report);
    Ok(report)
}

/// The random samples of `enc`'s journey that one packet may pass twice in a hop (`q` holds the
/// first packets in scope), as "table chain rule-number": their shared draw is not exact.
fn shared_draws(enc: &Encoder<'_>, journey: &SymJourney, q: &z3::Solver) -> Vec<String> {
    let mut out = Vec::new();
    let undecided: std::collections::HashSet<&RuleId> = enc.undecided_rules.iter().collect();
    for hop in &journey.hops {
        let mut places: std::collections::BTreeMap<RuleId, Vec<&Bool>> = Default::default();
        for h in &hop.hits {
            if undecided.contains(&h.id) && enc.random_only(h.id) {
                places.entry(h.id).or_default().push(&h.reach);
            }
        }
        for (id, reach) in places.iter().filter(|(_, v)| v.len() > 1) {
            let twice = reach.iter().enumerate().any(|(i, x)| {
                reach.iter().skip(i + 1).any(|y| {
                    crate::smt::solve::query(q, &all(&[(*x).clone(), (*y).clone()])).0
                        != SatResult::Unsat
                })
            });
            let at = format!(
                "{} {}",
                id.table.name(),
                prove::chain_name(enc.ruleset(), enc.family, *id)
            );
            let at = format!("{at} {}", id.rule + 1);
            if twice && !out.contains(&at) {
                out.push(at);
            }
        }
    }
    out
}

/// Most impact first; within an impact by description, first-hop rules and effect, so that
/// the order does not depend on which class the solver happened to find first.
fn rank(report: &mut Report) {
    let key = |c: &Change| {
        (
            c.impact,
            c.description.clone(),
            c.rules.clone(),
            c.effect.clone(),
        )
    };
    report.changes.sort_by_cached_key(key);
    report.unroutable_changes.sort_by_cached_key(key);
}

/// One `diff`'s inputs, which every search reads: both rulesets (owner names resolved), the pod,
/// the profile, the options, and each side's slicing plans ([`prove::plans`], made once: half a
/// second each for a node's table).
struct Sides<'a> {
    old: &'a Ruleset,
    new: &'a Ruleset,
    pod: &'a Pod,
    profile: &'a Profile,
    opts: &'a Options,
    /// Old's and new's, by family.
    plans: [Vec<(Family, prove::slice::Plan)>; 2],
}

impl<'a> Sides<'a> {
    fn new(
        old: &'a Ruleset,
        new: &'a Ruleset,
        pod: &'a Pod,
        profile: &'a Profile,
        opts: &'a Options,
    ) -> Sides<'a> {
        let plans = [old, new].map(|rs| prove::plans(rs, pod, profile, opts.slice_min_keys));
        Sides {
            old,
            new,
            pod,
            profile,
            opts,
            plans,
        }
    }

    /// Side `side`'s plan (0: old, 1: new) for `fam`, if it is sliced.
    fn plan(&self, side: usize, fam: Family) -> Option<&prove::slice::Plan> {
        let plans = self.plans.get(side)?;
        plans.iter().find(|(f, _)| *f == fam).map(|(_, p)| p)
    }
}

fn diff_family(
    sides: &Sides<'_>,
    fam: Family,
    first_only: bool,
    exclude: Option<Exclude>,
    report: &mut Report,
) -> Result<(), DiffError> {
    if exclude.is_none() {
        if let Some((regions, keyed)) = sliced::regions(sides, fam)? {
            for region in &regions {
                let focus = Focus {
                    region,
                    keyed: [keyed[0].clone(), keyed[1].clone()],
                };
                diff_scope(sides, fam, first_only, None, report, Some(&focus))?;
                if first_only && !report.changes.is_empty() {
                    break;
                }
            }
            return Ok(());
        }
    }
    diff_scope(sides, fam, first_only, exclude, report, None)
}

/// The changes among the connections of one region, each side's encoder confined to it.
struct Focus<'r> {
    region: &'r Region,
    /// The keyed chains of old and new.
    keyed: [std::sync::Arc<std::collections::HashSet<(usize, usize)>>; 2],
}

fn diff_scope(
    sides: &Sides<'_>,
    fam: Family,
    first_only: bool,
    exclude: Option<Exclude>,
    report: &mut Report,
    focus: Option<&Focus<'_>>,
) -> Result<(), DiffError> {
    let (old, new, pod, profile, opts) =
        (sides.old, sides.new, sides.pod, sides.profile, sides.opts);
    let first = SymPacket::fresh("c", addr_width(fam));
    let outside = Bool::new_const("c_outside");
    let mut sides: Vec<Side> = Vec::new();
    // One interface enumeration for both sides: they share the symbolic first packet.
    let ifaces = Ifaces::with_names(&[old, new], &profile.virtual_interfaces)?;
    for (side, rs) in [old, new].into_iter().enumerate() {
        let mut enc = Encoder::with_ifaces(rs, fam, pod, profile, ifaces.clone())?;
        // Undecidable matches are taken as the evaluator takes them: a change is a change of
        // what the model computes.
        enc.undecided_free = false;
        // Random samples are draws, the same one on both sides at the same place.
        enc.named_draws = true;
        if let Some(f) = focus {
            let keyed = f.keyed.get(side).cloned().unwrap_or_default();
            enc.set_focus(FocusOn::new(keyed, f.region.clone(), &first));
        }
        let journey = enc.journey(&first, &outside)?;
        sides.push(Side {
            enc,
            journey,
            sim: Simulator::new(rs, pod.clone(), profile.clone()),
        });
    }
    let excluded = match (exclude, sides.split_first_mut()) {
        (Some(f), Some((a, [b]))) => Some(f(
            &mut a.enc, &mut b.enc, &first, &outside, &a.journey, &b.journey,
        )?),
        _ => None,
    };
    let (Some(a), Some(b)) = (sides.first(), sides.get(1)) else {
        return Ok(());
    };
    let facts = match focus {
        Some(f) => all(&[
            a.enc.first_packet_facts(&first, &outside),
            a.enc.in_region(&first, f.region),
        ]),
        None => a.enc.first_packet_facts(&first, &outside),
    };
    // Samples are compared draw for draw: one draw per rule and hop, shared by the places the
    // rule is tried at in that hop. That is exact unless one packet passes two of those places
    // (the kernel draws at each); such a rule is listed and the report is undecided.
    let q = solver(opts.timeout_ms);
    q.assert(&facts);
    for (side, name) in [(a, "old"), (b, "new")] {
        for at in shared_draws(&side.enc, &side.journey, &q) {
            let line = format!("{name} {at}");
            if !report.samples.contains(&line) {
                report.samples.push(line);
            }
        }
    }
    report.unknown |= !report.samples.is_empty();
    let routable = a.enc.routable(&first, &outside);
    let differ = differs(&a.journey, &b.journey, Dest::Address);

    let s = solver(opts.timeout_ms);
    s.assert(&facts);
    s.assert(&differ);
    if let Some(x) = &excluded {
        s.assert(x.not());
    }
    // Classes found among routable connections are excluded from the unroutable search too.
    let mut blocks: Vec<Bool> = Vec::new();
    for scope_routable in [true, false] {
        if first_only && !scope_routable {
            break;
        }
        // One solver for the classes of this scope, made when the first is found.
        let mut shared: Option<z3::Solver> = None;
        s.push();
        if scope_routable {
            s.assert(&routable);
        } else {
            s.assert(routable.not());
        }
        let mut found = 0;
        loop {
            match crate::smt::solve::check(&s) {
                SatResult::Unsat => break,
                SatResult::Unknown => {
                    report.unknown = true;
                    break;
                }
                SatResult::Sat => {}
            }
            if found >= opts.max_classes {
                report.truncated = true;
                break;
            }
            // A witness a person recognises: the profile's uids, addresses and ports first.
            s.push();
            let m = steer(&s, &mut Vec::new(), hints(&a.enc, &first, &outside));
            s.pop(1);
            let Some(m) = m else { break };
            let pkt = first.read(&m, &a.enc.ifaces, fam);
            let entry = if truth(&m, &outside) {
                Hook::Prerouting
            } else {
                Hook::Output
            };
            // Replayed with the model's draws.
            let replay = |side: &Side| {
                side.sim.journey_packet_deciding(entry, pkt, &mut |hop, h| {
                    let id = RuleId {
                        table: h.table,
                        part: h.part,
                        chain: h.chain as usize,
                        rule: h.rule as usize,
                    };
                    side.enc
                        .draw_name(hop, id)
                        .filter(|n| side.enc.draws().contains_key(n))
                        .is_some_and(|n| truth(&m, &Bool::new_const(n)))
                })
            };
            let jo = replay(a);
            let jn = replay(b);
            let w = Witness::of_packet(entry, &pkt);
            if same_shape(&jo, &jn, Dest::Address) {
                return Err(DiffError::Disagreement(
                    serde_json::to_string(&w).unwrap_or_default(),
                ));
            }
            // Exclude this class: the same first-hop rule hits on both sides and the same
            // outcomes.
            let mut same = Vec::new();
            for side in [a, b] {
                if let Some(h) = side.journey.hops.first() {
                    for hit in &h.hits {
                        same.push(if truth(&m, &hit.fires) {
                            hit.fires.clone()
                        } else {
                            hit.fires.not()
                        });
                    }
                }
                for o in side.journey.outcome(profile) {
                    same.push(if truth(&m, &o) { o.clone() } else { o.not() });
                }
            }
            let class = all(&same);
            let scope = if scope_routable {
                routable.clone()
            } else {
                routable.not()
            };
            let d = shared.get_or_insert_with(|| {
                let d = solver(opts.timeout_ms);
                d.assert(all(&[facts.clone(), scope]));
                d
            });
            let (shape, impact) = {
                let found = class::Class::new(&a.enc, &first, &outside, &a.journey, &m, &class, d);
                let impact = class::rank(
                    found.has_application(profile),
                    found.addressed_to(&capture_ports(profile)),
                    &jo,
                    &jn,
                );
                (found.words(), impact)
            };
            let block = class.not();
            s.assert(&block);
            blocks.push(block);
            let (before, after) = (journey_words(&jo), journey_words(&jn));
            let change = Change {
                impact,
                description: shape,
                effect: format!("before: {before}; after: {after}"),
                before,
                after,
                rules: format!("before {}; after {}", first_rules(&jo), first_rules(&jn)),
                witness: w,
                old: jo,
                new: jn,
            };
            if scope_routable {
                report.changes.push(change);
            } else {
                report.unroutable_changes.push(change);
            }
            found += 1;
            if first_only {
                break;
            }
        }
        s.pop(1);
        for b in &blocks {
            s.assert(b);
        }
    }
    Ok(())
}
