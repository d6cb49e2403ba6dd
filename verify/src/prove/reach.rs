//! Reachability of every rule without one solver query per rule.
//!
//! A rule is `live` when a routable connection's first hop hits it, `unroutable` when only
//! other packets do, `shadowed` when packets reach it but none matches there, `unreachable`
//! when none reaches it (see [`super`]). Deciding that rule by rule costs a query each, and
//! each query re-reads the rule's reach term, which holds every earlier rule of its chain:
//! quadratic in the ruleset. Here:
//!
//! 1. **Concrete seeds.** For each rule not yet known live, packets are built from the matches
//!    of the rule and of the rules that jump to its chain ([`seeds`]), and run through the
//!    evaluator, with the undecided matches on that path taken as matching (the encoding
//!    gives each a free boolean, so that is one of its choices). Every rule a routable
//!    connection hits is live; every rule another packet hits fires in the wider scope. The
//!    evaluator agrees with the encoding hit for hit (tests of `smt::agree`), and whether a
//!    seed is routable is decided by [`routable`], the encoding's scope in Rust.
//! 2. **Symbolic rest.** The rules no seed settled are asked about together: "does some
//!    routable connection hit one of them?" When it does, every one of them the model hits is
//!    live, and the question is asked again about the others; when not, none is. The same
//!    for "some packet hits one" (unroutable) and "some packet reaches one" (shadowed, else
//!    unreachable). A query the solver cannot decide is split in halves down to single rules,
//!    which are then `unknown`.
//! 3. **Responsibility** (`by`) is an unsat core per shadowed or unreachable rule, as before:
//!    those are few.

use std::collections::HashMap;
use std::net::IpAddr;

use sidecar_model::eval::{ConnState, Hit, IfName, Packet};
use sidecar_model::matches::{AddrType, IdSpec, Match, PortDir};
use sidecar_model::pod::{Pod, Profile, Simulator, ETH0};
use sidecar_model::print::print_rule;
use sidecar_model::{Family, Hook, Rule, Ruleset, TableKind, Target};
use z3::ast::Bool;
use z3::{SatResult, Solver};

use super::{fam_name, responsible, rule_no, ProveError};
use crate::results::check::{RuleResult, RuleStatus};
use crate::smt::solve::{hints, query, solver, steer};
use crate::smt::{
    any, bv, truth, Encoder, RuleId, SymHit, SymPacket, CT_BITS, IF_BITS, IF_ETH0, IF_NONE,
    MARK_BITS,
};

/// Every rule of one family, in table, chain and rule order, with where to find it.
struct Rules {
    ids: Vec<RuleId>,
    /// Table index and chain index of each rule (by position in `ids`).
    at: Vec<(usize, usize)>,
    /// Position of a rule's first entry, by (table index, chain index).
    start: HashMap<(usize, usize), usize>,
    /// Table index and chain index by (table, part, chain name).
    by_name: HashMap<(TableKind, u8, String), (usize, usize)>,
}

impl Rules {
    fn new(rs: &Ruleset, fam: Family) -> Rules {
        let mut r = Rules {
            ids: Vec::new(),
            at: Vec::new(),
            start: HashMap::new(),
            by_name: HashMap::new(),
        };
        for (ti, t) in rs.tables(fam).iter().enumerate() {
            let part = rs.part_of(fam, ti);
            for (ci, c) in t.chains.iter().enumerate() {
                r.start.insert((ti, ci), r.ids.len());
                r.by_name.insert((t.kind, part, c.name.clone()), (ti, ci));
                for ri in 0..c.rules.len() {
                    r.ids.push(RuleId {
                        table: t.kind,
                        part,
                        chain: ci,
                        rule: ri,
                    });
                    r.at.push((ti, ci));
                }
            }
        }
        r
    }

    /// Position of a rule in `ids`.
    fn pos(&self, ti: usize, ci: usize, ri: usize) -> Option<usize> {
        self.start.get(&(ti, ci)).map(|s| s + ri)
    }
}

/// The disjunction of `f` over the places `id` is tried (false where it is tried nowhere).
fn term(
    at: &HashMap<RuleId, Vec<usize>>,
    hits: &[SymHit],
    id: Option<RuleId>,
    f: fn(&SymHit) -> Bool,
) -> Bool {
    let places: Vec<Bool> = id
        .and_then(|id| at.get(&id))
        .map(|v| v.iter().filter_map(|&i| hits.get(i)).map(f).collect())
        .unwrap_or_default();
    any(&places)
}

/// Sets `v[k]` (nothing when `k` is out of range).
fn set<T>(v: &mut [T], k: usize, x: T) {
    if let Some(slot) = v.get_mut(k) {
        *slot = x;
    }
}

/// What is known of one rule so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Nothing,
    Live,
    /// Some packet (not a routable connection, as far as known) hits it.
    Fires,
    Shadowed,
    Unreachable,
    Unknown,
}

/// The rules' reachability in family `fam` (see the module doc). `routed` holds the routable
/// scope; `routed_hits` are the journey's first hop there.
#[allow(clippy::too_many_arguments)]
pub(super) fn reachability(
    rs: &Ruleset,
    fam: Family,
    enc: &mut Encoder<'_>,
    routed: &Solver,
    routed_hits: &[SymHit],
    sim: &Simulator,
    opts: &super::Options,
) -> Result<Vec<RuleResult>, ProveError> {
    let t0 = std::time::Instant::now();
    let lap = |what: &str| crate::progress::timing(&format!("reachability: {what}"), t0);
    // Any packet at all, entering here or from outside.
    let p = SymPacket::fresh("any", enc.width);
    let outside = Bool::new_const("any_outside");
    let hop = enc.hop(&p, &outside, true)?;
    let facts = any_packet(enc, &p, &outside);
    let s = solver(opts.timeout_ms);
    s.assert(&facts);

    let rules = Rules::new(rs, fam);
    let n = rules.ids.len();
    crate::progress::phase(&format!("which rules can match, {}", fam_name(fam)), n);
    let group = |hits: &[SymHit]| {
        let mut g: HashMap<RuleId, Vec<usize>> = HashMap::new();
        for (i, h) in hits.iter().enumerate() {
            g.entry(h.id).or_default().push(i);
        }
        g
    };
    let routed_at = group(routed_hits);
    let any_at = group(&hop.hits);
    let mut known = vec![Known::Nothing; n];
    let mut packets: Vec<Option<Packet>> = vec![None; n];
    // A rule of a chain no built-in chain reaches is in no hop's encoding: unreachable by
    // structure, and nothing earlier is responsible.
    for (k, id) in known.iter_mut().zip(&rules.ids) {
        if !any_at.contains_key(id) {
            *k = Known::Unreachable;
        }
    }

    lap("encoded");
    // 1. Concrete seeds.
    seed(rs, fam, sim, &rules, &mut known, &mut packets, opts);
    lap("seeds");
    // 2. The rest, symbolically: live among those no seed showed live.
    let id_of = |k: usize| rules.ids.get(k).copied();
    let fires_routed = |k: usize| term(&routed_at, routed_hits, id_of(k), |h| h.fires.clone());
    settle(
        routed,
        &mut known,
        &[Known::Nothing, Known::Fires],
        Known::Live,
        &fires_routed,
    );
    // Unroutable: some packet hits it. (Their packets are steered to readable values below,
    // rule by rule: seeds found most.)
    let fires_any = |k: usize| term(&any_at, &hop.hits, id_of(k), |h| h.fires.clone());
    settle(&s, &mut known, &[Known::Nothing], Known::Fires, &fires_any);
    // Shadowed: some packet reaches it.
    let reach_any = |k: usize| term(&any_at, &hop.hits, id_of(k), |h| h.reach.clone());
    settle(
        &s,
        &mut known,
        &[Known::Nothing],
        Known::Shadowed,
        &reach_any,
    );
    for k in known.iter_mut().filter(|k| **k == Known::Nothing) {
        *k = Known::Unreachable;
    }

    lap("settled");
    let mut out = Vec::with_capacity(n);
    for (k, ((&id, &(ti, ci)), (&st, pkt))) in rules
        .ids
        .iter()
        .zip(&rules.at)
        .zip(known.iter().zip(&packets))
        .enumerate()
    {
        crate::progress::step();
        let Some(mut res) = rule_result(rs, fam, id, ti, ci) else {
            continue;
        };
        res.status = match st {
            Known::Live => RuleStatus::Live,
            Known::Fires => {
                res.packet = pkt.or_else(|| {
                    readable(&s, enc, &p, &outside, &fires_any(k))
                        .map(|m| p.read(&m, &enc.ifaces, fam))
                });
                RuleStatus::Unroutable
            }
            Known::Shadowed | Known::Unreachable => {
                let shadowed = st == Known::Shadowed;
                if any_at.contains_key(&id) {
                    res.by = responsible(rs, fam, &s, &hop.hits, id, shadowed);
                }
                if shadowed {
                    RuleStatus::Shadowed
                } else {
                    RuleStatus::Unreachable
                }
            }
            Known::Unknown | Known::Nothing => RuleStatus::Unknown,
        };
        out.push(res);
    }
    lap("results");
    Ok(out)
}

/// Rule `id` (table index `ti`, chain index `ci`) as reported, its status not yet known.
fn rule_result(rs: &Ruleset, fam: Family, id: RuleId, ti: usize, ci: usize) -> Option<RuleResult> {
    let c = rs.tables(fam).get(ti)?.chains.get(ci)?;
    let rule = c.rules.get(id.rule)?;
    Some(RuleResult {
        family: fam,
        table: id.table,
        part: id.part,
        chain: c.name.clone(),
        rule: rule_no(id.rule),
        text: print_rule(fam, &c.name, rule),
        status: RuleStatus::Unknown,
        by: Vec::new(),
        packet: None,
    })
}

/// Concrete seeds (step 1 of the module doc): for each rule not yet known live or unreachable,
/// packets built from its path's matches run through the evaluator; every rule a routable one
/// hits is live, every rule another hits fires (with that packet).
fn seed(
    rs: &Ruleset,
    fam: Family,
    sim: &Simulator,
    rules: &Rules,
    known: &mut [Known],
    packets: &mut [Option<Packet>],
    opts: &super::Options,
) {
    let n = rules.ids.len();
    let callers = callers(rs, fam, rules);
    for k in 0..n {
        // Past the deadline the rest is left to `settle`, which reports it unknown.
        if crate::smt::solve::deadline_passed() {
            break;
        }
        if matches!(known.get(k), None | Some(Known::Live | Known::Unreachable)) {
            continue;
        }
        let Some(path) = path_to(rs, fam, rules, &callers, k) else {
            continue;
        };
        let on_path: Vec<Hit> = path
            .iter()
            .filter_map(|&q| rules.ids.get(q))
            .map(|id| hit_of(*id))
            .collect();
        for (entry, pkt, in_scope) in seeds(rs, fam, sim, rules, &path, opts.routing) {
            let report = sim.hop_packet_deciding(entry, pkt, &mut |h| on_path.contains(&h));
            for r in &report.matched {
                let Some(&(ti, ci)) = rules.by_name.get(&(r.table, r.part, r.chain.clone())) else {
                    continue;
                };
                let Some(q) = rules.pos(ti, ci, (r.rule as usize).saturating_sub(1)) else {
                    continue;
                };
                if in_scope {
                    set(known, q, Known::Live);
                } else if known.get(q) == Some(&Known::Nothing) {
                    set(known, q, Known::Fires);
                    set(packets, q, Some(pkt));
                }
            }
            if known.get(k) == Some(&Known::Live) {
                break;
            }
        }
    }
}

/// The scope "any packet at all": valid interfaces, and from outside no out interface, an in
/// interface and no socket; generated here no in interface and an out one.
pub(super) fn any_packet(enc: &Encoder<'_>, p: &SymPacket, outside: &Bool) -> Bool {
    let none = |v: &z3::ast::BV| v.eq(bv(u128::from(IF_NONE), IF_BITS));
    crate::smt::all(&[
        enc.ifaces.valid(&p.iif),
        enc.ifaces.valid(&p.oif),
        outside.ite(
            &crate::smt::all(&[none(&p.oif), none(&p.iif).not(), p.has_socket.not()]),
            &crate::smt::all(&[none(&p.iif), none(&p.oif).not()]),
        ),
    ])
}

/// A model of `t` in `s` steered toward values a person recognises, as the witnesses of
/// invariants are.
fn readable(
    s: &Solver,
    enc: &Encoder<'_>,
    p: &SymPacket,
    outside: &Bool,
    t: &Bool,
) -> Option<z3::Model> {
    s.push();
    s.assert(t);
    let mut hs: Vec<Bool> = vec![
        p.has_socket.clone(),
        p.oif.eq(bv(u128::from(IF_ETH0), IF_BITS)),
        p.iif.eq(bv(u128::from(IF_ETH0), IF_BITS)),
    ];
    hs.extend(hints(enc, p, outside));
    hs.push(p.ctstate.eq(bv(0, CT_BITS)));
    hs.push(p.mark.eq(bv(0, MARK_BITS)));
    let m = steer(s, &mut Vec::new(), hs);
    s.pop(1);
    m
}

/// Asks whether some model of `s` makes `term(k)` true for some rule `k` whose status is one
/// of `from`; each rule a model makes true becomes `to`, and the question is asked again about
/// the others, until none is left or the rest are unsatisfiable together. An undecided query
/// is split in halves; a single undecided rule, and past the deadline every rule left, becomes
/// `Unknown`.
fn settle(
    s: &Solver,
    known: &mut [Known],
    from: &[Known],
    to: Known,
    term: &dyn Fn(usize) -> Bool,
) {
    let pending: Vec<usize> = (0..known.len())
        .filter(|&k| known.get(k).is_some_and(|x| from.contains(x)))
        .collect();
    let mut todo: Vec<Vec<usize>> = vec![pending];
    while let Some(mut set) = todo.pop() {
        if set.is_empty() {
            continue;
        }
        if crate::smt::solve::deadline_passed() {
            for k in set {
                self::set(known, k, Known::Unknown);
            }
            continue;
        }
        let terms: Vec<Bool> = set.iter().map(|&k| term(k)).collect();
        match query(s, &any(&terms)) {
            (SatResult::Unsat, _) => {}
            (SatResult::Sat, Some(m)) => {
                let mut rest = Vec::new();
                for (k, t) in set.drain(..).zip(terms) {
                    if truth(&m, &t) {
                        self::set(known, k, to);
                    } else {
                        rest.push(k);
                    }
                }
                todo.push(rest);
            }
            _ if set.len() == 1 => {
                for k in set {
                    self::set(known, k, Known::Unknown);
                }
            }
            _ => {
                let back = set.split_off(set.len() / 2);
                todo.push(set);
                todo.push(back);
            }
        }
    }
}

fn hit_of(id: RuleId) -> Hit {
    Hit {
        table: id.table,
        part: id.part,
        chain: u32::try_from(id.chain).unwrap_or(u32::MAX),
        rule: u32::try_from(id.rule).unwrap_or(u32::MAX),
    }
}

/// For each (table index, chain index): the rules (positions) that jump or go to it.
fn callers(rs: &Ruleset, fam: Family, rules: &Rules) -> HashMap<(usize, usize), Vec<usize>> {
    let mut m: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (ti, t) in rs.tables(fam).iter().enumerate() {
        for (ci, c) in t.chains.iter().enumerate() {
            for (ri, r) in c.rules.iter().enumerate() {
                if let Some(Target::Jump { chain } | Target::Goto { chain }) = &r.target {
                    if let (Some(to), Some(q)) = (t.chain_index(chain), rules.pos(ti, ci, ri)) {
                        m.entry((ti, to)).or_default().push(q);
                    }
                }
            }
        }
    }
    m
}

/// The rules from a built-in chain down to rule `k`: the first caller of each chain on the way
/// (`k` last); `None` when the chain is reached by no caller and is not built in.
fn path_to(
    rs: &Ruleset,
    fam: Family,
    rules: &Rules,
    callers: &HashMap<(usize, usize), Vec<usize>>,
    k: usize,
) -> Option<Vec<usize>> {
    let mut path = vec![k];
    let (mut ti, mut ci) = *rules.at.get(k)?;
    let tables = rs.tables(fam);
    for _ in 0..=tables.get(ti).map_or(0, |t| t.chains.len()) {
        let chain = tables.get(ti)?.chains.get(ci)?;
        if chain.policy.is_some() || chain.hook().is_some() {
            path.reverse();
            return Some(path);
        }
        let q = *callers.get(&(ti, ci))?.first()?;
        path.push(q);
        (ti, ci) = *rules.at.get(q)?;
    }
    None
}

/// What the rules on a path ask of a packet, as far as seeds need it.
#[derive(Debug, Default, Clone)]
struct Wants {
    proto: Option<u8>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    uid: Option<u32>,
    gid: Option<u32>,
    iif: Option<String>,
    oif: Option<String>,
    mark: Option<u32>,
    /// `-m addrtype --dst-type LOCAL` (kube-proxy's way to its node ports): the pod's address.
    dst_local: bool,
}

/// A name an interface pattern matches (`veth+` → `veth0`).
fn iface_name(pattern: &str) -> String {
    match pattern.strip_suffix('+') {
        Some(p) => format!("{p}0"),
        None => pattern.to_string(),
    }
}

fn wants(rs: &Ruleset, fam: Family, rules: &Rules, path: &[usize]) -> Wants {
    let mut w = Wants::default();
    let set_addr = |slot: &mut Option<IpAddr>, net: &sidecar_model::Neg<sidecar_model::Cidr>| {
        if !net.negated && (net.value.addr.is_ipv4() == (fam == Family::Ipv4)) {
            let inside = slot.is_some_and(|a| net.value.contains(a));
            if !inside && net.value.prefix > 0 {
                *slot = Some(net.value.addr);
            }
        }
    };
    for &q in path {
        let (Some(id), Some(&(ti, ci))) = (rules.ids.get(q), rules.at.get(q)) else {
            continue;
        };
        let Some(r): Option<&Rule> = rs
            .tables(fam)
            .get(ti)
            .and_then(|t| t.chains.get(ci))
            .and_then(|c| c.rules.get(id.rule))
        else {
            continue;
        };
        if let Some(n) = &r.src {
            set_addr(&mut w.src, n);
        }
        if let Some(n) = &r.dst {
            set_addr(&mut w.dst, n);
        }
        if let Some(p) = r.proto.filter(|p| !p.negated) {
            w.proto = Some(p.value.0);
        }
        if let Some(i) = r.in_iface.as_ref().filter(|i| !i.negated) {
            w.iif = Some(iface_name(&i.value.0));
        }
        if let Some(i) = r.out_iface.as_ref().filter(|i| !i.negated) {
            w.oif = Some(iface_name(&i.value.0));
        }
        for m in &r.matches {
            let port = |p: &Option<sidecar_model::Neg<sidecar_model::PortRange>>| {
                p.filter(|p| !p.negated).map(|p| p.value.lo)
            };
            match m {
                Match::Tcp(t) => {
                    w.sport = port(&t.sport).or(w.sport);
                    w.dport = port(&t.dport).or(w.dport);
                }
                Match::Udp(u) => {
                    w.sport = port(&u.sport).or(w.sport);
                    w.dport = port(&u.dport).or(w.dport);
                }
                Match::Multiport(mp) if !mp.negated => {
                    if let Some(first) = mp.ports.first() {
                        match mp.dir {
                            PortDir::Source => w.sport = Some(first.lo),
                            PortDir::Destination | PortDir::Either => w.dport = Some(first.lo),
                        }
                    }
                }
                Match::Owner(o) => {
                    if let Some(IdSpec::Range { lo, .. }) =
                        o.uid.as_ref().filter(|u| !u.negated).map(|u| &u.value)
                    {
                        w.uid = Some(*lo);
                    }
                    if let Some(IdSpec::Range { lo, .. }) =
                        o.gid.as_ref().filter(|g| !g.negated).map(|g| &g.value)
                    {
                        w.gid = Some(*lo);
                    }
                }
                Match::Mark(mk) if !mk.0.negated => {
                    w.mark = Some(mk.0.value.value);
                }
                Match::Addrtype(a) => {
                    w.dst_local |= a
                        .dst
                        .as_ref()
                        .is_some_and(|t| !t.negated && t.value.contains(&AddrType::Local));
                }
                _ => {}
            }
        }
    }
    w
}

/// Packets that may hit the last rule of `path`, each with where it enters and whether it is
/// a routable connection's first packet ([`routable`]): connections opened here by the
/// application and by the proxy, one from outside, and the same headers as any packet (the
/// rule's own addresses and interfaces, whatever routing would do).
fn seeds(
    rs: &Ruleset,
    fam: Family,
    sim: &Simulator,
    rules: &Rules,
    path: &[usize],
    routing: bool,
) -> Vec<(Hook, Packet, bool)> {
    let w = wants(rs, fam, rules, path);
    let prof = &sim.profile;
    let pod = &sim.pod;
    let peer = match fam {
        Family::Ipv4 => prof.remote_peer,
        Family::Ipv6 => IpAddr::V6(prof.remote_peer_v6),
    };
    let proto = match w.proto {
        Some(6) | Some(17) | None => w.proto.unwrap_or(6),
        Some(p) => p,
    };
    let dst = w
        .dst
        .or_else(|| pod.primary(fam).filter(|_| w.dst_local))
        .unwrap_or(peer);
    let sport = w.sport.unwrap_or(40000);
    let dport = w.dport.unwrap_or(80);
    let mut out = Vec::new();
    let mut owners = vec![(w.uid.unwrap_or(prof.app_uid), w.gid.unwrap_or(prof.app_gid))];
    if w.uid.is_none() && w.gid.is_none() {
        owners.push((prof.proxy_uid, prof.proxy_gid));
        owners.push((0, 0));
    }
    for (uid, gid) in owners {
        // Opened here, routed.
        let (out_if, src) = pod.route(dst, w.src.filter(|a| pod.is_local(*a)));
        let mut p = Packet::tcp_out(src, dst, sport, dport, uid, gid);
        p.proto = proto;
        p.tcp_flags = if proto == 6 { 0x02 } else { 0 };
        p.mark = w.mark.unwrap_or(0);
        p.out_iface = Some(IfName::new(out_if));
        out.push((
            Hook::Output,
            p,
            routable(&p, false, pod, prof, fam, routing),
        ));
        // The same header as any packet: the rule's own source and out interface.
        if w.src.is_some() || w.oif.is_some() {
            let mut q = p;
            q.src = w.src.unwrap_or(p.src);
            if let Some(o) = &w.oif {
                q.out_iface = Some(IfName::new(o));
            }
            out.push((
                Hook::Output,
                q,
                routable(&q, false, pod, prof, fam, routing),
            ));
        }
    }
    // From outside: to the pod (routable) and to the rule's destination.
    let primary = pod.primary(fam);
    for to in [
        primary.filter(|_| w.dst.is_none_or(|d| pod.is_local(d))),
        w.dst,
    ]
    .into_iter()
    .flatten()
    {
        let src = w.src.filter(|a| !pod.is_local(*a)).unwrap_or(peer);
        let mut p = Packet::tcp_out(src, to, sport, dport, 0, 0);
        p.proto = proto;
        p.tcp_flags = if proto == 6 { 0x02 } else { 0 };
        p.has_socket = false;
        p.in_iface = Some(IfName::new(w.iif.as_deref().unwrap_or(ETH0)));
        out.push((
            Hook::Prerouting,
            p,
            routable(&p, true, pod, prof, fam, routing),
        ));
    }
    out
}

/// Whether `p`, entering at OUTPUT (or from outside), is a first packet in the scope of the
/// proofs: [`Encoder::first_packet_facts`], and [`Encoder::routable`] when `routing`, in Rust.
pub(super) fn routable(
    p: &Packet,
    outside: bool,
    pod: &Pod,
    prof: &Profile,
    fam: Family,
    routing: bool,
) -> bool {
    if p.family() != fam {
        return false;
    }
    let flags_ok = p.tcp_flags == if p.proto == 6 { 0x02 } else { 0 };
    let facts = p.ctmark == 0
        && p.ctstate == ConnState::New
        && !p.dnat_done
        && !p.snat_done
        && flags_ok
        && if outside {
            p.mark == 0
                && p.out_iface.is_none()
                && p.in_iface.is_some()
                && !p.has_socket
                && p.uid == 0
                && p.gid == 0
        } else {
            (p.mark == 0 || prof.proxy_mark == Some(p.mark))
                && p.in_iface.is_none()
                && p.out_iface.is_some()
                && p.has_socket
        };
    if !facts || !routing {
        return facts;
    }
    if !(p.proto == 6 || p.proto == 17) {
        return false;
    }
    let pass = prof.passthrough(fam);
    if outside {
        let on_eth0 = p.in_iface.is_some_and(|i| i.as_str() == ETH0)
            && !prof.virtual_interfaces.iter().any(|v| v == ETH0)
            && pod.ips.contains(&p.dst);
        let on_vm = p
            .in_iface
            .is_some_and(|i| prof.virtual_interfaces.iter().any(|v| v == i.as_str()))
            && !p.dst.is_loopback();
        !pod.is_local(p.src) && p.src != pass && (on_eth0 || on_vm)
    } else {
        let (oif, _) = pod.route(p.dst, None);
        let src_ok = if pod.is_local(p.dst) {
            pod.is_local(p.src) || p.src == pass
        } else {
            pod.ips.contains(&p.src)
        };
        p.out_iface.is_some_and(|i| i.as_str() == oif) && src_ok
    }
}

mod sliced;
pub(super) use sliced::reachability_sliced;

#[cfg(test)]
mod tests;
