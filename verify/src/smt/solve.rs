//! Solving: solvers with a timeout, satisfiability queries in a scope of their own, assumptions
//! guarded by fresh literals, and models steered toward values a person recognises (the
//! profile's uids, addresses and ports), for `check` and `diff` alike.

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use sidecar_model::Family;
use z3::ast::Bool;
use z3::{Params, SatResult, Solver};

/// The whole run's deadline (`--deadline`), when one is set.
static DEADLINE: OnceLock<Instant> = OnceLock::new();

thread_local! {
    /// The per-query timeout the solvers of this thread were made with ([`solver`]).
    static TIMEOUT_MS: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// Sets the run's deadline (the first call wins): from then on every query ([`check`],
/// [`check_assuming`]) gets at most the time left, and once it has passed each is `unknown`
/// at once, so what was not decided by then is reported undecided, never as a pass.
pub fn set_deadline(at: Instant) {
    let _ = DEADLINE.set(at);
}

/// Why a query left for after the deadline is undecided.
pub const DEADLINE_PASSED: &str =
    "the run's deadline (--deadline) passed before the solver decided";

/// Whether the run's deadline has passed.
pub fn deadline_passed() -> bool {
    DEADLINE.get().is_some_and(|d| Instant::now() >= *d)
}

/// How long a hint of [`steer`] may take before it is left out, in milliseconds (a hint takes
/// about a millisecond on a pod's ruleset).
pub const HINT_MS: u32 = 300;

/// Gives `s` its own timeout, cut to the time left before the deadline and to `cap`; false
/// when no time is left.
fn arm(s: &Solver, cap: Option<u32>) -> bool {
    let mut t = TIMEOUT_MS.with(Cell::get);
    if let Some(d) = DEADLINE.get() {
        let left = d.saturating_duration_since(Instant::now()).as_millis();
        if left == 0 {
            return false;
        }
        t = t.min(u32::try_from(left).unwrap_or(u32::MAX));
    }
    if let Some(c) = cap {
        t = t.min(c);
    }
    let mut p = Params::new();
    p.set_u32("timeout", t.max(1));
    s.set_params(&p);
    true
}

/// `s.check_assumptions(a)` within `cap_ms` milliseconds (and the deadline).
fn check_within(s: &Solver, a: &[Bool], cap_ms: u32) -> SatResult {
    if arm(s, Some(cap_ms)) {
        s.check_assumptions(a)
    } else {
        SatResult::Unknown
    }
}

/// `s.check()` within the run's deadline.
pub fn check(s: &Solver) -> SatResult {
    if arm(s, None) {
        s.check()
    } else {
        SatResult::Unknown
    }
}

/// `s.check_assumptions(a)` within the run's deadline.
pub fn check_assuming(s: &Solver, a: &[Bool]) -> SatResult {
    if arm(s, None) {
        s.check_assumptions(a)
    } else {
        SatResult::Unknown
    }
}

use super::{bv, Encoder, SymPacket, GID_BITS, IF_BITS, IF_ETH0, PORT_BITS, PROTO_BITS, UID_BITS};

/// A solver whose every query gives up after `timeout_ms` milliseconds.
pub fn solver(timeout_ms: u32) -> Solver {
    TIMEOUT_MS.with(|t| t.set(timeout_ms));
    // QF_BV: Z3 then bit-blasts each query and runs its SAT solver (incremental, with
    // assumptions) instead of its general SMT core, which refutes a disjunction over thousands
    // of address and port equalities one conflict at a time: the classic ruleset plus 2,000
    // RETURN rules went from 28 s to 1.3 s, the classic ruleset from 150 ms to 70 ms
    // (docs/scale.md). Every term of the encoding is a bit-vector or a boolean.
    let s = Solver::new_for_logic("QF_BV").unwrap_or_default();
    let mut p = Params::new();
    p.set_u32("timeout", timeout_ms);
    s.set_params(&p);
    s
}

/// Whether `t` is satisfiable in `s` (left as it was), with a model when it is.
pub fn query(s: &Solver, t: &Bool) -> (SatResult, Option<z3::Model>) {
    s.push();
    s.assert(t);
    let r = check(s);
    let m = if r == SatResult::Sat {
        s.get_model()
    } else {
        None
    };
    s.pop(1);
    (r, m)
}

/// Why the last query was undecided, for a person.
pub fn unknown_reason(s: &Solver) -> String {
    if deadline_passed() {
        return DEADLINE_PASSED.into();
    }
    format!(
        "the solver gave up: {}",
        s.get_reason_unknown()
            .unwrap_or_else(|| "no reason given".into())
    )
}

/// A fresh literal standing for `t` (asserted as an implication in the current scope), for use
/// as an assumption.
pub fn guard(s: &Solver, t: &Bool) -> Bool {
    let a = Bool::fresh_const("assume");
    s.assert(a.implies(t));
    a
}

/// The profile's remote peer in the encoder's family.
fn peer(enc: &Encoder<'_>) -> IpAddr {
    match enc.family {
        Family::Ipv4 => enc.profile.remote_peer,
        Family::Ipv6 => IpAddr::V6(enc.profile.remote_peer_v6),
    }
}

/// 127.0.0.1 or ::1.
fn loopback(fam: Family) -> IpAddr {
    match fam {
        Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    }
}

/// Values a person recognises, tried in order as soft constraints on a witness.
pub fn hints(enc: &Encoder<'_>, p: &SymPacket, outside: &Bool) -> Vec<Bool> {
    let prof = enc.profile;
    let fam = enc.family;
    let mut h = vec![p.proto.eq(bv(6, PROTO_BITS)), outside.not()];
    for (u, g) in [
        (prof.app_uid, prof.app_gid),
        (prof.proxy_uid, prof.proxy_gid),
        (0, 0),
    ] {
        h.push(p.uid.eq(bv(u128::from(u), UID_BITS)));
        h.push(p.gid.eq(bv(u128::from(g), GID_BITS)));
    }
    let (peer, lo) = (peer(enc), loopback(fam));
    let primary = enc.pod.primary(fam);
    let addrs: Vec<IpAddr> = [Some(peer), primary, Some(lo)]
        .into_iter()
        .flatten()
        .collect();
    for a in &addrs {
        h.push(p.dst.eq(enc.addr(*a)));
    }
    for a in [primary, Some(peer), Some(lo)].into_iter().flatten() {
        h.push(p.src.eq(enc.addr(a)));
    }
    h.push(p.sport.eq(bv(40000, PORT_BITS)));
    let mut ports = vec![80u16, 8080];
    ports.extend(&prof.metrics_ports);
    ports.extend(&prof.exclude_inbound_ports);
    ports.extend(&prof.exclude_outbound_ports);
    ports.extend(&prof.proxy_ports);
    ports.push(53);
    for port in ports {
        h.push(p.dport.eq(bv(u128::from(port), PORT_BITS)));
    }
    // Interfaces as routing picks them (a connection routing never produces may have any).
    h.push(p.oif.eq(enc.route_oif(&p.dst)));
    h.push(
        outside
            .not()
            .implies(p.oif.eq(bv(u128::from(IF_ETH0), IF_BITS))),
    );
    h.push(outside.implies(p.iif.eq(bv(u128::from(IF_ETH0), IF_BITS))));
    h
}

/// How long each of [`check_guided`]'s candidates may take, in milliseconds.
pub const CANDIDATE_MS: u32 = 3_000;

/// Where a witness is likely: a TCP connection opened in the pod to the peer, the pod's own
/// address or loopback, on port 80 ([`hints`]' first values), one region each.
pub fn candidates(enc: &Encoder<'_>, p: &SymPacket, outside: &Bool) -> Vec<Bool> {
    let fam = enc.family;
    let (peer, lo) = (peer(enc), loopback(fam));
    [Some(peer), enc.pod.primary(fam), Some(lo)]
        .into_iter()
        .flatten()
        .map(|a| {
            super::all(&[
                p.proto.eq(bv(6, PROTO_BITS)),
                outside.not(),
                p.dst.eq(enc.addr(a)),
                p.dport.eq(bv(80, PORT_BITS)),
            ])
        })
        .collect()
}

/// `s.check()`, asked first under each of `candidates` in turn (each within [`CANDIDATE_MS`]):
/// `Sat` as soon as one is satisfiable (the model is one of it), otherwise the open query's
/// answer. A model inside a small region is a far smaller search than one anywhere: on two
/// journeys over 100 services the open query ran past 30 s where the first region gave a model
/// in 0.9 s. A candidate only narrows the search, so `Sat` under it is `Sat`; `Unsat` and
/// `Unknown` come from the open query alone.
pub fn check_guided(s: &Solver, candidates: &[Bool]) -> SatResult {
    for c in candidates {
        let lit = guard(s, c);
        if check_within(s, &[lit], CANDIDATE_MS) == SatResult::Sat {
            return SatResult::Sat;
        }
    }
    check(s)
}

/// Solves `assume` again with as many of `hints` (formulas, each guarded by a fresh literal
/// here) as stay satisfiable, taken in order; returns the model. A hint the last model already
/// satisfies is taken without asking the solver (that model, with the hint's literal set,
/// shows it satisfiable with the others): the profile's values are alternatives, so most hints
/// cost nothing.
pub fn steer(s: &Solver, assume: &mut Vec<Bool>, hints: Vec<Bool>) -> Option<z3::Model> {
    let mut last = if check_assuming(s, assume) == SatResult::Sat {
        s.get_model()
    } else {
        None
    };
    for hnt in hints {
        let lit = guard(s, &hnt);
        if last.as_ref().is_some_and(|m| super::truth(m, &hnt)) {
            assume.push(lit);
            continue;
        }
        assume.push(lit);
        // A hint only makes the witness easier to read: one the solver cannot decide quickly
        // (on a large ruleset, proving a value impossible can take seconds) is left out.
        if check_within(s, assume, HINT_MS) == SatResult::Sat {
            last = s.get_model();
        } else {
            assume.pop();
        }
    }
    if last.is_some() {
        return last;
    }
    if check_assuming(s, assume) == SatResult::Sat {
        s.get_model()
    } else {
        None
    }
}

/// Up to how many literals [`minimal_unsat_subset`] does without the solver's unsat cores,
/// whose choice among several minimal sets is the solver's and moves with any change of the
/// terms.
pub const CANONICAL_MAX: usize = 32;

/// The indices of a subset of `lits` under which `s` is unsatisfiable, shrunk until each is
/// needed or `budget` has passed (the flag says whether it finished); `None` when `s` is not
/// unsatisfiable under all of them. Each literal is dropped in turn from the last to the first
/// (kept when `s` becomes satisfiable without it): of several minimal sets, the one of the
/// earliest literals. Past [`CANONICAL_MAX`] literals the latest unsat core prunes first: only
/// its literals can be needed, and a literal found needed is in every unsat subset of what is
/// kept, so it stays. The rules a shadowed rule rests on and an invariant's support are found
/// this way.
pub fn minimal_unsat_subset(
    s: &Solver,
    lits: &[Bool],
    budget: std::time::Duration,
) -> Option<(Vec<usize>, bool)> {
    if check_assuming(s, lits) != SatResult::Unsat {
        return None;
    }
    let start = std::time::Instant::now();
    let cores = lits.len() > CANONICAL_MAX;
    let mut keep: Vec<usize> = (0..lits.len()).collect();
    let shrink = |keep: &mut Vec<usize>| {
        if cores {
            let core = s.get_unsat_core();
            keep.retain(|k| lits.get(*k).is_some_and(|l| core.contains(l)));
        }
    };
    shrink(&mut keep);
    let mut minimal = true;
    for k in keep.clone().into_iter().rev() {
        if !keep.contains(&k) {
            continue;
        }
        if start.elapsed() > budget {
            minimal = false;
            break;
        }
        let trial: Vec<Bool> = keep
            .iter()
            .filter(|&&x| x != k)
            .filter_map(|x| lits.get(*x).cloned())
            .collect();
        match check_assuming(s, &trial) {
            SatResult::Unsat => {
                keep.retain(|&x| x != k);
                shrink(&mut keep);
            }
            SatResult::Sat => {}
            SatResult::Unknown => minimal = false,
        }
    }
    Some((keep, minimal))
}
