//! Reachability region by region ([`crate::prove::slice`]): the concrete seeds as for the whole
//! ruleset, then per region (the rest, each class's representative) the first hop encoded
//! twice, for routable connections and for any packet, each confined to the region, and the
//! grouped questions of [`super::settle`] asked about the rules that hop tries. What a
//! representative's region says of a rule of its own part holds for the same rule of every
//! member of its class (`σ` maps the one onto the other, see the slicing's module doc); an
//! example packet and the rules responsible are mapped with it. Over the regions a rule is
//! live when it is in one, unknown when it is nowhere live and undecided in one, unroutable
//! when some packet hits it in one, shadowed when one reaches it, and unreachable otherwise.

use std::collections::HashMap;

use sidecar_model::eval::Packet;
use sidecar_model::pod::{Pod, Profile, Simulator};
use sidecar_model::{Family, Ruleset};
use z3::ast::Bool;

use super::{any_packet, readable, rule_result, seed, settle, term, Known, Rules};
use crate::prove::slice::{map_packet, Class, Plan};
use crate::prove::{chain_name, responsible, rule_no, ProveError};
use crate::results::check::{RuleAt, RuleAtTable, RuleResult, RuleStatus};
use crate::smt::encode::focus::Focus;
use crate::smt::solve::solver;
use crate::smt::{all, Encoder, RuleId, SymHit, SymPacket};

/// Every rule's result, and the rules with matches the model cannot interpret.
type Reached = (Vec<RuleResult>, Vec<RuleAtTable>);

/// What the regions said of one rule.
#[derive(Debug, Clone, Default)]
struct Seen {
    live: bool,
    unknown: bool,
    fires: bool,
    shadowed: bool,
    packet: Option<Packet>,
    /// The rules responsible where it is shadowed, and where it is unreachable.
    by_shadowed: Vec<RuleAt>,
    by_unreachable: Vec<RuleAt>,
}

/// Every rule's reachability in family `fam` over the regions of `plan`, and the rules with
/// matches the model cannot interpret; `None` when a representative's encoding leaked (the
/// caller then decides the family whole).
#[allow(clippy::too_many_arguments)]
pub(in crate::prove) fn reachability_sliced(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    sim: &Simulator,
    opts: &crate::prove::Options,
    plan: &Plan,
) -> Result<Option<Reached>, ProveError> {
    let t0 = std::time::Instant::now();
    let rules = Rules::new(rs, fam);
    let n = rules.ids.len();
    let pos: HashMap<RuleId, usize> = rules
        .ids
        .iter()
        .enumerate()
        .map(|(k, id)| (*id, k))
        .collect();
    let mut known = vec![Known::Nothing; n];
    let mut packets: Vec<Option<Packet>> = vec![None; n];
    seed(rs, fam, sim, &rules, &mut known, &mut packets, opts);
    crate::progress::timing("reachability: seeds", t0);
    let mut seen: Vec<Seen> = known
        .iter()
        .zip(&packets)
        .map(|(k, p)| Seen {
            live: *k == Known::Live,
            fires: *k == Known::Fires,
            packet: *p,
            ..Seen::default()
        })
        .collect();
    let mut undecided: Vec<RuleId> = Vec::new();
    let regions = plan.regions();
    crate::progress::phase(
        &format!(
            "which rules can match, {}, {} regions",
            crate::prove::fam_name(fam),
            regions.len()
        ),
        regions.len(),
    );
    for (region, class) in &regions {
        let class = *class;
        crate::progress::step();
        let mut enc = Encoder::new(rs, fam, pod, profile)?;
        let first = SymPacket::fresh("c", enc.width);
        let outside = Bool::new_const("c_outside");
        enc.set_focus(Focus::new(plan.keyed.clone(), region.clone(), &first));
        let routed_hop = enc.hop(&first, &outside, true)?;
        let p = SymPacket::fresh("any", enc.width);
        let any_outside = Bool::new_const("any_outside");
        enc.set_focus(Focus::new(plan.keyed.clone(), region.clone(), &p));
        let hop = enc.hop(&p, &any_outside, true)?;
        if enc.leaks() > 0 && class.is_some_and(|c| c.members.len() > 1) {
            return Ok(None);
        }
        let routed = solver(opts.timeout_ms);
        routed.assert(all(&[
            enc.scope(&first, &outside, opts.routing),
            enc.in_region(&first, region),
        ]));
        let s = solver(opts.timeout_ms);
        s.assert(all(&[
            any_packet(&enc, &p, &any_outside),
            enc.in_region(&p, region),
        ]));
        let group = |hits: &[SymHit]| {
            let mut g: HashMap<RuleId, Vec<usize>> = HashMap::new();
            for (i, h) in hits.iter().enumerate() {
                g.entry(h.id).or_default().push(i);
            }
            g
        };
        let routed_at = group(&routed_hop.hits);
        let any_at = group(&hop.hits);
        // The rules this region tries, with what is known of them so far.
        let mut local: Vec<RuleId> = any_at.keys().copied().collect();
        local.sort();
        let mut lk: Vec<Known> = local
            .iter()
            .map(|id| {
                let g = pos.get(id).and_then(|k| seen.get(*k));
                match g {
                    Some(x) if x.live => Known::Live,
                    Some(x) if x.fires => Known::Fires,
                    _ => Known::Nothing,
                }
            })
            .collect();
        let id_of = |k: usize| local.get(k).copied();
        let fires_routed =
            |k: usize| term(&routed_at, &routed_hop.hits, id_of(k), |h| h.fires.clone());
        settle(
            &routed,
            &mut lk,
            &[Known::Nothing, Known::Fires],
            Known::Live,
            &fires_routed,
        );
        let fires_any = |k: usize| term(&any_at, &hop.hits, id_of(k), |h| h.fires.clone());
        settle(&s, &mut lk, &[Known::Nothing], Known::Fires, &fires_any);
        let reach_any = |k: usize| term(&any_at, &hop.hits, id_of(k), |h| h.reach.clone());
        settle(&s, &mut lk, &[Known::Nothing], Known::Shadowed, &reach_any);

        // Where a rule of the representative's own part stands in its list.
        let own: HashMap<RuleId, usize> = class
            .and_then(|c| c.members.first())
            .map(|r| r.rules.iter().enumerate().map(|(i, id)| (*id, i)).collect())
            .unwrap_or_default();
        for (k, (&id, &st)) in local.iter().zip(&lk).enumerate() {
            let Some(&at) = pos.get(&id) else { continue };
            let already = seen.get(at).cloned().unwrap_or_default();
            // What this region adds about the rule, found once in the representative's terms.
            let packet = match st {
                Known::Fires if !already.live && already.packet.is_none() => {
                    readable(&s, &enc, &p, &any_outside, &fires_any(k))
                        .map(|m| p.read(&m, &enc.ifaces, fam))
                }
                _ => None,
            };
            let by = match st {
                Known::Shadowed | Known::Nothing => {
                    responsible(rs, fam, &s, &hop.hits, id, st == Known::Shadowed)
                }
                _ => Vec::new(),
            };
            // The rule itself, and the same rule of every other member of the class.
            let targets = mapped(class, own.get(&id).copied(), id);
            for (target, member) in targets {
                let Some(&t) = pos.get(&target) else { continue };
                let Some(x) = seen.get_mut(t) else { continue };
                let from = class.and_then(|c| c.members.first());
                let to = member.and_then(|m| class.and_then(|c| c.members.get(m)));
                let pk = match (packet, from, to) {
                    (Some(pk), Some(f), Some(tm)) => Some(map_packet(&pk, f, tm)),
                    (pk, _, _) => pk,
                };
                let by_m: Vec<RuleAt> = by
                    .iter()
                    .map(|b| map_at(rs, fam, class, b, member))
                    .collect();
                match st {
                    Known::Live => x.live = true,
                    Known::Unknown => x.unknown = true,
                    Known::Fires => {
                        x.fires = true;
                        if x.packet.is_none() {
                            x.packet = pk;
                        }
                    }
                    Known::Shadowed => {
                        x.shadowed = true;
                        extend(&mut x.by_shadowed, by_m);
                    }
                    Known::Nothing | Known::Unreachable => extend(&mut x.by_unreachable, by_m),
                }
            }
        }
        for id in &enc.undecided_rules {
            for (target, _) in mapped(class, own.get(id).copied(), *id) {
                if !undecided.contains(&target) {
                    undecided.push(target);
                }
            }
        }
    }
    crate::progress::timing("reachability: regions", t0);

    let mut out = Vec::with_capacity(n);
    for ((&id, &(ti, ci)), x) in rules.ids.iter().zip(&rules.at).zip(seen) {
        let Some(mut res) = rule_result(rs, fam, id, ti, ci) else {
            continue;
        };
        res.status = if x.live {
            RuleStatus::Live
        } else if x.unknown {
            RuleStatus::Unknown
        } else if x.fires {
            res.packet = x.packet;
            RuleStatus::Unroutable
        } else if x.shadowed {
            res.by = x.by_shadowed;
            RuleStatus::Shadowed
        } else {
            res.by = x.by_unreachable;
            RuleStatus::Unreachable
        };
        out.push(res);
    }
    undecided.sort();
    let undecided = undecided
        .into_iter()
        .map(|r| RuleAtTable {
            family: fam,
            table: r.table,
            part: r.part,
            chain: chain_name(rs, fam, r),
            rule: rule_no(r.rule),
        })
        .collect();
    Ok(Some((out, undecided)))
}

/// Rule `id` and, when it is the `own`-th rule of the representative's own part, the same
/// rule of every other member of `class` (with the member's index).
fn mapped(class: Option<&Class>, own: Option<usize>, id: RuleId) -> Vec<(RuleId, Option<usize>)> {
    let mut v = vec![(id, Some(0))];
    if let (Some(c), Some(i)) = (class, own) {
        for (m, member) in c.members.iter().enumerate().skip(1) {
            if let Some(r) = member.rules.get(i) {
                v.push((*r, Some(m)));
            }
        }
    }
    v
}

/// A rule named in the representative's terms (`b`) as member `member` names it: a rule of
/// the representative's own part becomes the member's same rule; any other stays.
fn map_at(
    rs: &Ruleset,
    fam: Family,
    class: Option<&Class>,
    b: &RuleAt,
    member: Option<usize>,
) -> RuleAt {
    let (Some(c), Some(m)) = (class, member) else {
        return b.clone();
    };
    let (Some(rep), Some(to)) = (c.members.first(), c.members.get(m)) else {
        return b.clone();
    };
    rep.rules
        .iter()
        .position(|r| chain_name(rs, fam, *r) == b.chain && rule_no(r.rule) == b.rule)
        .and_then(|i| to.rules.get(i))
        .map_or_else(
            || b.clone(),
            |r| RuleAt {
                chain: chain_name(rs, fam, *r),
                rule: rule_no(r.rule),
            },
        )
}

fn extend(v: &mut Vec<RuleAt>, more: Vec<RuleAt>) {
    for b in more {
        if !v.contains(&b) {
            v.push(b);
        }
    }
}
