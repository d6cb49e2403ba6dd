//! A table unrolled along its jump graph: each rule tried gets a `reach` and a `fires` term
//! ([`SymHit`]), targets update the symbolic packet, and `Encoder::pass` runs the tables of a
//! hook one after the other.

use sidecar_model::eval::{conntrack_active, hook_plan, ConnState};
use std::collections::HashMap;
use std::net::IpAddr;

use sidecar_model::{Hook, Policy, Rule, TableKind, Target};
use z3::ast::{Bool, BV};

use super::focus::SliceKey;
use super::{Encoder, BUDGET};
use crate::smt::{
    all, and2, any, bv, ct_code, or2, EncodeError, SymPacket, CT_BITS, IF_LO, MARK_BITS, PORT_BITS,
    PROTO_BITS,
};

/// A rule by table, chain index and rule index (0-based), within one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId {
    /// The table.
    pub table: TableKind,
    /// Which of the tables playing `table`'s part ([`sidecar_model::Ruleset::table_at`]).
    pub part: u8,
    /// Index of the chain in the table.
    pub chain: usize,
    /// Index of the rule in the chain.
    pub rule: usize,
}

/// One place a rule is tried: the terms for control standing before it and for it firing.
#[derive(Debug, Clone)]
pub struct SymHit {
    /// The rule.
    pub id: RuleId,
    /// The hook whose traversal tries it.
    pub hook: Hook,
    /// Which unrolled chain instance it belongs to (rules of one instance share it).
    pub frame: usize,
    /// Control reaches the rule.
    pub reach: Bool,
    /// The rule's matches hold on the packet as it is there (regardless of reach).
    pub matches: Bool,
    /// Reached and matching: the rule is hit (its counter moves).
    pub fires: Bool,
}

/// Effects of a hook pass besides the verdict.
#[derive(Debug, Clone)]
pub(super) struct Fx {
    /// The firing conditions of the nat rules that rewrote the destination (a flat list: a
    /// nested disjunction over thousands of DNAT rules is what Z3 flattens slowly).
    dnats: Vec<Bool>,
    /// The firing conditions of the TPROXY rules that took the packet.
    tproxies: Vec<Bool>,
    /// TPROXY's port.
    pub(super) tport: BV,
    /// The packet as targets that end the table leave it, with their firing condition
    /// (disjoint); applied when the table is done, so that later rules of the table are
    /// built on the packet as it reaches them.
    pub(super) ends: Vec<(Bool, SymPacket)>,
}

impl Fx {
    pub(super) fn new() -> Fx {
        Fx {
            dnats: Vec::new(),
            tproxies: Vec::new(),
            tport: bv(0, PORT_BITS),
            ends: Vec::new(),
        }
    }

    /// A nat rule rewrote the destination.
    pub(super) fn dnat(&self) -> Bool {
        any(&self.dnats)
    }

    /// TPROXY took the packet.
    pub(super) fn tproxy(&self) -> Bool {
        any(&self.tproxies)
    }
}

struct ChainOut {
    /// Control returns to the caller (end of chain, RETURN, or a goto'd chain returning).
    ret: Bool,
    drop: Bool,
    reject: Bool,
}

impl Encoder<'_> {
    /// The rule's matches hold on `p` (an undecidable match: a fresh free boolean, or false).
    fn rule_matches(&mut self, r: &Rule, p: &SymPacket, id: RuleId) -> Bool {
        let mut conj: Vec<Bool> = Vec::new();
        for (spec, var) in [(&r.src, &p.src), (&r.dst, &p.dst)] {
            if let Some(n) = spec {
                conj.push(Self::neg(
                    n.negated,
                    self.in_net(var, n.value.addr, n.value.prefix),
                ));
            }
        }
        for (spec, var) in [(&r.in_iface, &p.iif), (&r.out_iface, &p.oif)] {
            if let Some(n) = spec {
                conj.push(Self::neg(n.negated, self.ifaces.matches(var, &n.value)));
            }
        }
        if let Some(n) = &r.proto {
            conj.push(Self::neg(
                n.negated,
                p.proto.eq(bv(u128::from(n.value.0), PROTO_BITS)),
            ));
        }
        if r.fragment == Some(true) {
            conj.push(Bool::from_bool(false));
        }
        let mut fs = Vec::new();
        let mut us = Vec::new();
        for m in &r.matches {
            let (f, u) = self.match3(m, p);
            fs.push(f);
            us.push(u);
        }
        if r.matches.iter().any(Self::may_be_undecided) && !self.undecided_rules.contains(&id) {
            self.undecided_rules.push(id);
        }
        let any_u = any(&us);
        let undecided = r.matches.iter().any(Self::may_be_undecided);
        let free = if self.undecided_free && undecided {
            let b = Bool::fresh_const("undecided");
            self.free.push((id, b.clone()));
            b
        } else if self.named_draws && undecided && self.random_only(id) {
            self.draw(id).unwrap_or_else(|| Bool::from_bool(false))
        } else {
            Bool::from_bool(false)
        };
        conj.push(any(&fs).not());
        conj.push(or2(&any_u.not(), &free));
        all(&conj)
    }

    fn redirect_addr(&self, hook: Hook, p: &SymPacket) -> BV {
        let lo = self.loopback_addr();
        if hook == Hook::Output {
            return lo;
        }
        let other = self
            .pod
            .ips
            .iter()
            .find(|a| self.is_family(a) && !a.is_loopback())
            .map_or_else(|| lo.clone(), |a| self.addr(*a));
        Self::iface_is(&p.iif, IF_LO).ite(&lo, &other)
    }

    #[allow(clippy::too_many_arguments)]
    fn chain(
        &mut self,
        ti: usize,
        ci: usize,
        hook: Hook,
        p: &mut SymPacket,
        live_in: &Bool,
        fx: &mut Fx,
        hits: &mut Vec<SymHit>,
        depth: usize,
    ) -> Result<ChainOut, EncodeError> {
        let rs = self.rs;
        let Some(table) = rs.tables(self.family).get(ti) else {
            return Ok(ChainOut {
                ret: live_in.clone(),
                drop: Bool::from_bool(false),
                reject: Bool::from_bool(false),
            });
        };
        let kind = table.kind;
        let part = rs.part_of(self.family, ti);
        let frame = self.frames;
        self.frames += 1;
        let mut live = live_in.clone();
        let mut ret_early: Vec<Bool> = Vec::new();
        let mut drops: Vec<Bool> = Vec::new();
        let mut rejects: Vec<Bool> = Vec::new();
        let Some(chain) = table.chains.get(ci) else {
            return Ok(ChainOut {
                ret: live,
                drop: Bool::from_bool(false),
                reject: Bool::from_bool(false),
            });
        };
        if depth > table.chains.len() {
            // Only a cyclic jump graph gets here; validation refuses those.
            return Err(EncodeError::TooLarge(self.budget));
        }
        // The run of rules with pairwise disjoint keys the loop is in, if any (see `Run`). Not
        // in the tracked mode, whose matches are free and so not disjoint.
        let mut run: Option<Run> = None;
        for (ri, rule) in chain.rules.iter().enumerate() {
            if self.left_out(ti, ci, rule, p) {
                continue;
            }
            if self.budget == 0 {
                return Err(EncodeError::TooLarge(BUDGET));
            }
            self.budget -= 1;
            let id = RuleId {
                table: kind,
                part,
                chain: ci,
                rule: ri,
            };
            // An nft rule that reads the other family's header never matches, and its target
            // (with that family's addresses) is not encoded (see `Rule::family`).
            let other_family = rule.family.is_some_and(|f| f != self.family);
            let key = SliceKey::of(rule)
                .filter(|k| k.dst.is_some() && !other_family && self.tracking.is_none());
            let joins = match (run.as_mut(), key) {
                (Some(r), Some(k)) => r.admits(k),
                _ => false,
            };
            if !joins {
                if let Some(r) = run.take() {
                    live = r.close();
                }
                run = key.map(|k| Run::new(&live, k));
            }
            let m = if other_family {
                Bool::from_bool(false)
            } else {
                self.rule_matches(rule, p, id)
            };
            let m = self.tracked_match(id, m);
            // In a run, no earlier rule of the run matched a packet this one matches: it fires
            // exactly when control entered the run and it matches.
            let fires = and2(run.as_ref().map_or(&live, |r| &r.live_in), &m);
            if let Some(r) = run.as_mut() {
                r.tried(rule.target.as_ref(), &m);
            }
            hits.push(SymHit {
                id,
                hook,
                frame,
                reach: live.clone(),
                matches: m,
                fires: fires.clone(),
            });
            let Some(target) = rule.target.as_ref().filter(|_| !other_family) else {
                continue;
            };
            let stop = |live: &mut Bool| *live = and2(live, &fires.not());
            let upd = |old: &mut BV, new: BV| *old = fires.ite(&new, old);
            match target {
                Target::Accept => stop(&mut live),
                Target::Drop => {
                    drops.push(fires.clone());
                    stop(&mut live);
                }
                Target::Reject { .. } => {
                    rejects.push(fires.clone());
                    stop(&mut live);
                }
                Target::Return => {
                    ret_early.push(fires.clone());
                    stop(&mut live);
                }
                Target::Jump { chain: name } | Target::Goto { chain: name } => {
                    let Some(to) = table.chain_index(name) else {
                        continue;
                    };
                    let out = self.chain(ti, to, hook, p, &fires, fx, hits, depth + 1)?;
                    drops.push(out.drop);
                    rejects.push(out.reject);
                    if let Some(r) = run.as_mut() {
                        r.stopped.push(fires.clone());
                    }
                    if matches!(target, Target::Jump { .. }) {
                        if let Some(r) = run.as_mut() {
                            r.rets.push(out.ret.clone());
                        }
                        live = or2(&and2(&live, &fires.not()), &out.ret);
                    } else {
                        ret_early.push(out.ret);
                        stop(&mut live);
                    }
                }
                Target::Redirect { ports, .. } => {
                    let mut q = p.clone();
                    q.dst = self.redirect_addr(hook, p);
                    if let Some(r) = ports {
                        q.dport = bv(u128::from(r.lo), PORT_BITS);
                    }
                    q.dnat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    fx.dnats.push(fires.clone());
                    stop(&mut live);
                }
                Target::Dnat { to, .. } => {
                    let mut q = p.clone();
                    if let Some(a) = to.addr_lo {
                        q.dst = self.addr(a);
                    }
                    if let Some(r) = to.ports {
                        q.dport = bv(u128::from(r.lo), PORT_BITS);
                    }
                    q.dnat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    fx.dnats.push(fires.clone());
                    stop(&mut live);
                }
                Target::Snat { to, .. } => {
                    let mut q = p.clone();
                    if let Some(a) = to.addr_lo {
                        q.src = self.addr(a);
                    }
                    if let Some(r) = to.ports {
                        q.sport = bv(u128::from(r.lo), PORT_BITS);
                    }
                    q.snat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    stop(&mut live);
                }
                Target::Masquerade { ports, .. } => {
                    let mut q = p.clone();
                    if let Some(r) = ports {
                        q.sport = bv(u128::from(r.lo), PORT_BITS);
                    }
                    q.snat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    stop(&mut live);
                }
                Target::Tproxy { on_port, mark, .. } => {
                    let mut q = p.clone();
                    q.mark = xmark(&p.mark, mark.value, mark.mask);
                    fx.ends.push((fires.clone(), q));
                    let port = if *on_port == 0 {
                        p.dport.clone()
                    } else {
                        bv(u128::from(*on_port), PORT_BITS)
                    };
                    fx.tport = fires.ite(&port, &fx.tport);
                    fx.tproxies.push(fires.clone());
                    stop(&mut live);
                }
                Target::Mark(m) => {
                    let nm = xmark(&p.mark, m.value, m.mask);
                    upd(&mut p.mark, nm);
                }
                Target::ConnmarkSet(m) => {
                    let nm = xmark(&p.ctmark, m.value, m.mask);
                    upd(&mut p.ctmark, nm);
                }
                Target::ConnmarkSave { nfmask, ctmask } => {
                    let nm = p
                        .ctmark
                        .bvand(bv(u128::from(!ctmask), MARK_BITS))
                        .bvxor(p.mark.bvand(bv(u128::from(*nfmask), MARK_BITS)));
                    upd(&mut p.ctmark, nm);
                }
                Target::ConnmarkRestore { nfmask, ctmask } => {
                    let nm = p
                        .mark
                        .bvand(bv(u128::from(!nfmask), MARK_BITS))
                        .bvxor(p.ctmark.bvand(bv(u128::from(*ctmask), MARK_BITS)));
                    upd(&mut p.mark, nm);
                }
                Target::Ct { notrack, .. } => {
                    if *notrack {
                        upd(&mut p.ctstate, bv(ct_code(ConnState::Untracked), CT_BITS));
                    }
                }
                Target::Notrack => upd(&mut p.ctstate, bv(ct_code(ConnState::Untracked), CT_BITS)),
                Target::Log { .. } | Target::Nflog { .. } => {}
                Target::Unknown { .. } => {
                    if !self.undecided_rules.contains(&id) {
                        self.undecided_rules.push(id);
                    }
                }
            }
        }
        if let Some(r) = run.take() {
            live = r.close();
        }
        ret_early.push(live);
        Ok(ChainOut {
            ret: any(&ret_early),
            drop: any(&drops),
            reject: any(&rejects),
        })
    }

    /// Runs every table of `hook` from `live`; returns (dropped, rejected), both within `live`.
    pub(super) fn pass(
        &mut self,
        hook: Hook,
        p: &mut SymPacket,
        live: &Bool,
        skip_nat: bool,
        fx: &mut Fx,
        hits: &mut Vec<SymHit>,
    ) -> Result<(Bool, Bool), EncodeError> {
        let mut live = live.clone();
        let mut drops = Vec::new();
        let mut rejects = Vec::new();
        let tracked = conntrack_active(self.rs, self.family);
        // The nat chains of a hook run until one binds the connection (`eval::hook_plan`).
        let bound = |p: &SymPacket| match hook {
            Hook::Prerouting | Hook::Output => p.dnat_done.clone(),
            _ => p.snat_done.clone(),
        };
        let bound_at_entry = bound(p);
        let mut nat_before = false;
        let rs = self.rs;
        for e in hook_plan(rs, self.family, hook) {
            if e.nat && (skip_nat || !tracked) {
                continue;
            }
            let (ti, ci) = (e.table, e.chain);
            let Some(table) = rs.tables(self.family).get(ti) else {
                continue;
            };
            let guard = if e.nat {
                let new = and2(&live, &p.ctstate.eq(bv(ct_code(ConnState::New), CT_BITS)));
                // After another nat table: not when that one bound the connection. (The first
                // one's guard is left as it was before several tables were possible.)
                let guard = if nat_before {
                    and2(&new, &and2(&bound(p), &bound_at_entry.not()).not())
                } else {
                    new
                };
                nat_before = true;
                guard
            } else {
                live.clone()
            };
            let out = self.chain(ti, ci, hook, p, &guard, fx, hits, 0)?;
            for (c, q) in std::mem::take(&mut fx.ends) {
                *p = SymPacket::ite(&c, &q, p);
            }
            let policy_drop = table.chains.get(ci).and_then(|c| c.policy) == Some(Policy::Drop);
            let d = if policy_drop {
                or2(&out.drop, &out.ret)
            } else {
                out.drop
            };
            live = all(&[live, d.not(), out.reject.not()]);
            drops.push(d);
            rejects.push(out.reject);
        }
        Ok((any(&drops), any(&rejects)))
    }
}

/// A run of consecutive rules whose keys ([`SliceKey`], each with an address) are pairwise
/// disjoint (kube-proxy's `KUBE-SERVICES`: one cluster IP and port per rule). Nothing in a table
/// changes a packet's destination, protocol or port before the table is done (DNAT and REDIRECT
/// take effect at its end), so a packet matches at most one of them, and a rule of the run
/// fires when control entered the run and it matches, and control leaves the run unless the
/// packet matched a rule whose target stops it (or came back from a jump): flat terms, where
/// the rule-by-rule encoding nests each rule's reach in the previous one's, a term Z3 flattens
/// in time quadratic in the run. The rules' `reach` terms stay the nested ones (exact, and
/// asked about only by reachability).
struct Run {
    live_in: Bool,
    /// The keys so far, by address (a handful per address at most in practice).
    keys: HashMap<Option<IpAddr>, Vec<SliceKey>>,
    /// The matches (or firing conditions) of the rules whose target stops control in the
    /// chain.
    stopped: Vec<Bool>,
    /// Control coming back from the run's jumps.
    rets: Vec<Bool>,
}

impl Run {
    fn new(live_in: &Bool, k: SliceKey) -> Run {
        let mut keys = HashMap::new();
        keys.insert(k.dst, vec![k]);
        Run {
            live_in: live_in.clone(),
            keys,
            stopped: Vec::new(),
            rets: Vec::new(),
        }
    }

    /// Takes `k` into the run if it is disjoint from every key in it.
    fn admits(&mut self, k: SliceKey) -> bool {
        let same = self.keys.entry(k.dst).or_default();
        if same.iter().all(|o| o.disjoint(k)) {
            same.push(k);
            true
        } else {
            false
        }
    }

    /// A rule of the run with `target` was tried and matches when `m`. A jump or goto is
    /// counted where the chain it enters is found (as the rule-by-rule encoding does).
    fn tried(&mut self, target: Option<&Target>, m: &Bool) {
        if target.is_some_and(|t| !t.continues() && t.chain().is_none()) {
            self.stopped.push(m.clone());
        }
    }

    /// Control after the run.
    fn close(self) -> Bool {
        or2(
            &and2(&self.live_in, &any(&self.stopped).not()),
            &any(&self.rets),
        )
    }
}

/// `old` with the bits of `mask` set to `value` (MARK's `--set-xmark`).
fn xmark(old: &BV, value: u32, mask: u32) -> BV {
    old.bvand(bv(u128::from(!mask), MARK_BITS))
        .bvxor(bv(u128::from(value), MARK_BITS))
}
