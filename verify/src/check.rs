//! `check`: every invariant of the catalog proved over all connections (or refuted with a
//! concrete one, replayed through the evaluator), and every rule's reachability.
//!
//! Each family the pod has an address of is encoded once ([`crate::smt::Encoder`]): a symbolic
//! first packet, its journey, and the scope (the first-packet facts, and routing unless
//! `--no-routing`). An invariant's violation is one query. A satisfiable one is solved again
//! with every undecidable match taken as not matching (as the evaluator takes them): if that is
//! unsatisfiable the result is `unknown` (it depends on matches the model cannot interpret);
//! otherwise the witness is steered toward values a person recognises (the profile's uids,
//! addresses, ports) and replayed through [`Simulator::journey_packet`], which must violate the
//! invariant too.
//!
//! Reachability ranges over two scopes: routable first packets (as above), and any packet at
//! all (any interface, source, conntrack state, marks, flags: plain iptables semantics). A rule
//! is `live` when a routable connection hits it, `unroutable` when only other packets do,
//! `shadowed` when packets reach it but none matches there, `unreachable` when none reaches
//! it. For the last two, `by` names the earlier rules of the chain responsible: a minimal set
//! whose matches, taken as intercepting, leave nothing for the rule (an unsat core).

use std::net::IpAddr;

use serde::Serialize;
use sidecar_model::eval::Packet;
use sidecar_model::pod::{Journey, Pod, Profile, Simulator};
use sidecar_model::print::print_rule;
use sidecar_model::{Family, Hook, Ruleset, TableKind, Target};
use z3::ast::{Bool, BV};
use z3::{Params, SatResult, Solver};

use crate::invariants::{Concrete, Id, Symbolic, ALL};
use crate::smt::{all, any, bv, EncodeError, Encoder, RuleId, SymHit, SymPacket, IF_BITS, IF_NONE};

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// Range over routable connections only (the default).
    pub routing: bool,
    /// Per-query solver timeout in milliseconds.
    pub timeout_ms: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            routing: true,
            timeout_ms: 30_000,
        }
    }
}

/// Why `check` could not give a result.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
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

/// The result of an invariant or a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Proved for every connection in scope.
    Holds,
    /// A connection violates it.
    Violated,
    /// The solver gave up, or the answer depends on matches the model cannot interpret.
    Unknown,
}

/// A concrete connection: what `trace` and `kernel` replay (its source bound as given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    /// The opening process's uid (0 from outside).
    pub uid: u32,
    /// The opening process's gid.
    pub gid: u32,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// `tcp`, `udp` or the protocol number.
    pub proto: String,
    /// It arrives on eth0 from outside.
    pub from_outside: bool,
    /// The interface it crosses first: out (generated here) or in (from outside).
    pub iface: String,
    /// The socket's mark (SO_MARK), when it has one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mark: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Witness {
    /// `PROTO SRC:SPORT -> DST:DPORT`.
    pub fn connection_words(&self) -> String {
        format!(
            "{} {} -> {}",
            self.proto,
            std::net::SocketAddr::new(self.src, self.sport),
            std::net::SocketAddr::new(self.dst, self.dport)
        )
    }

    /// Who opens it and the interface it crosses first: `uid U gid G, out IFACE` or `from
    /// outside, in IFACE`.
    pub fn context_words(&self) -> String {
        if self.from_outside {
            format!("from outside, in {}", self.iface)
        } else {
            format!("{}, out {}", self.who(), self.iface)
        }
    }

    /// The connection `trace` replays for this witness.
    pub fn connection(&self) -> sidecar_model::pod::Connection {
        sidecar_model::pod::Connection {
            proto: match self.proto.as_str() {
                "tcp" => 6,
                "udp" => 17,
                n => n.parse().unwrap_or(0),
            },
            src: Some(self.src),
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            uid: self.uid,
            gid: self.gid,
            from_outside: self.from_outside,
            mark: self.mark,
            iface: (self.from_outside
                && self.iface != sidecar_model::pod::ETH0
                && !self.iface.is_empty())
            .then(|| sidecar_model::eval::IfName::new(&self.iface)),
        }
    }

    /// Who opens it: `from outside` (`from outside on IFACE` off eth0), or `uid U gid G` (and
    /// `mark M` when its socket has one).
    pub fn who(&self) -> String {
        if self.from_outside {
            if self.iface == sidecar_model::pod::ETH0 || self.iface.is_empty() {
                "from outside".into()
            } else {
                format!("from outside on {}", self.iface)
            }
        } else if self.mark != 0 {
            format!("uid {} gid {} mark {:#x}", self.uid, self.gid, self.mark)
        } else {
            format!("uid {} gid {}", self.uid, self.gid)
        }
    }

    /// The witness of a first packet entering at `entry`.
    pub fn of_packet(entry: Hook, p: &Packet) -> Witness {
        let iface = if entry == Hook::Output {
            p.out_iface
        } else {
            p.in_iface
        };
        Witness {
            uid: p.uid,
            gid: p.gid,
            src: p.src,
            dst: p.dst,
            sport: p.sport,
            dport: p.dport,
            proto: match p.proto {
                6 => "tcp".into(),
                17 => "udp".into(),
                n => n.to_string(),
            },
            from_outside: entry != Hook::Output,
            iface: iface.map(|i| i.as_str().to_string()).unwrap_or_default(),
            mark: if entry == Hook::Output { p.mark } else { 0 },
        }
    }
}

/// One invariant's result.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantResult {
    /// Stable id.
    pub id: &'static str,
    /// One-line statement with the profile's values.
    pub statement: String,
    /// The profile values it uses.
    pub uses: Vec<String>,
    /// The result.
    pub status: Status,
    /// The family the witness (or the unknown) is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// A connection that violates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    /// The witness's journey, as `trace --json` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey: Option<Journey>,
    /// Why the result is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rule's reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// A routable connection hits it.
    Live,
    /// Only packets routing never produces (or later packets of a connection) hit it.
    Unroutable,
    /// Packets reach it, but none matches there.
    Shadowed,
    /// No packet reaches it.
    Unreachable,
    /// The solver gave up.
    Unknown,
}

/// A rule by chain and 1-based number (within the reported rule's table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAt {
    /// The chain.
    pub chain: String,
    /// 1-based rule number.
    pub rule: u32,
}

/// One rule's reachability.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// The family.
    pub family: Family,
    /// The table.
    pub table: TableKind,
    /// The chain.
    pub chain: String,
    /// 1-based rule number.
    pub rule: u32,
    /// The rule as iptables-save prints it.
    pub text: String,
    /// Its status.
    pub status: RuleStatus,
    /// The earlier rules responsible (shadowed, unreachable).
    pub by: Vec<RuleAt>,
    /// For an unroutable rule: a packet that hits it (routing never produces it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet: Option<Packet>,
}

/// Facts about the ruleset checked.
#[derive(Debug, Clone, Serialize)]
pub struct RulesetInfo {
    /// SHA-256 of the canonical print.
    pub sha256: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The ruleset.
    pub ruleset: RulesetInfo,
    /// The profile's name.
    pub profile: String,
    /// The pod's addresses.
    pub pod_ips: Vec<IpAddr>,
    /// Whether the proofs range over routable connections only.
    pub routing: bool,
    /// The invariants.
    pub invariants: Vec<InvariantResult>,
    /// Every rule's reachability.
    pub rules: Vec<RuleResult>,
    /// Rules with matches or targets the model cannot interpret (free in the proofs).
    pub undecided: Vec<RuleAtTable>,
}

/// A rule by family, table, chain and number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleAtTable {
    /// The family.
    pub family: Family,
    /// The table.
    pub table: TableKind,
    /// The chain.
    pub chain: String,
    /// 1-based rule number.
    pub rule: u32,
}

impl Report {
    /// Whether every invariant holds.
    pub fn all_hold(&self) -> bool {
        self.invariants.iter().all(|i| i.status == Status::Holds)
    }
}

/// The families the pod has addresses of.
pub fn families(pod: &Pod) -> Vec<Family> {
    let mut v = Vec::new();
    if pod.ips.iter().any(IpAddr::is_ipv4) {
        v.push(Family::Ipv4);
    }
    if pod.ips.iter().any(IpAddr::is_ipv6) {
        v.push(Family::Ipv6);
    }
    v
}

fn solver(timeout_ms: u32) -> Solver {
    let s = Solver::new();
    let mut p = Params::new();
    p.set_u32("timeout", timeout_ms);
    s.set_params(&p);
    s
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(text.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn chain_name(rs: &Ruleset, fam: Family, id: RuleId) -> String {
    rs.table(fam, id.table)
        .and_then(|t| t.chains.get(id.chain))
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

fn rule_no(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// Values a person recognises, tried in order as soft constraints on a witness.
pub(crate) fn hints(enc: &Encoder<'_>, p: &SymPacket, outside: &Bool) -> Vec<Bool> {
    let prof = enc.profile;
    let fam = enc.family;
    let mut h = vec![p.proto.eq(bv(6, 8)), outside.not()];
    for (u, g) in [
        (prof.app_uid, prof.app_gid),
        (prof.proxy_uid, prof.proxy_gid),
        (0, 0),
    ] {
        h.push(p.uid.eq(bv(u128::from(u), 32)));
        h.push(p.gid.eq(bv(u128::from(g), 32)));
    }
    let peer = match fam {
        Family::Ipv4 => prof.remote_peer,
        Family::Ipv6 => IpAddr::V6(prof.remote_peer_v6),
    };
    let lo = match fam {
        Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    };
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
    h.push(p.sport.eq(bv(40000, 16)));
    let mut ports = vec![80u16, 8080];
    ports.extend(&prof.metrics_ports);
    ports.extend(&prof.exclude_inbound_ports);
    ports.extend(&prof.exclude_outbound_ports);
    ports.extend(&prof.proxy_ports);
    ports.push(53);
    for port in ports {
        h.push(p.dport.eq(bv(u128::from(port), 16)));
    }
    h
}

/// Solves `assume` again with as many hints as stay satisfiable; returns the model.
pub(crate) fn steer(s: &Solver, assume: &mut Vec<Bool>, hints: Vec<Bool>) -> Option<z3::Model> {
    for hnt in hints {
        assume.push(hnt);
        if s.check_assumptions(assume) != SatResult::Sat {
            assume.pop();
        }
    }
    if s.check_assumptions(assume) == SatResult::Sat {
        s.get_model()
    } else {
        None
    }
}

struct FamilyResult {
    invariants: Vec<Proved>,
    rules: Vec<RuleResult>,
    undecided: Vec<RuleAtTable>,
}

fn unknown_reason(s: &Solver) -> String {
    format!(
        "the solver gave up: {}",
        s.get_reason_unknown()
            .unwrap_or_else(|| "no reason given".into())
    )
}

/// A fresh literal standing for `t` (asserted as an implication in the current scope), for use
/// as an assumption.
pub(crate) fn guard(s: &Solver, t: &Bool) -> Bool {
    let a = Bool::fresh_const("assume");
    s.assert(a.implies(t));
    a
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
) -> Result<Proved, CheckError> {
    s.assert(v);
    match s.check() {
        SatResult::Unsat => return Ok((id, Status::Holds, None, None)),
        SatResult::Unknown => return Ok((id, Status::Unknown, None, Some(unknown_reason(s)))),
        SatResult::Sat => {}
    }
    let decided: Vec<Bool> = enc.free.iter().map(|(_, b)| b.not()).collect();
    let mut assume = vec![guard(s, &all(&decided))];
    match s.check_assumptions(&assume) {
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
    let entry = if crate::smt::truth(&m, outside) {
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
        return Err(CheckError::Disagreement {
            id: id.name(),
            witness: serde_json::to_string(&w).unwrap_or_default(),
        });
    }
    Ok((id, Status::Violated, Some((w, j)), None))
}

fn check_family(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    sim: &Simulator,
) -> Result<FamilyResult, CheckError> {
    let mut enc = Encoder::new(rs, fam, pod, profile)?;
    let first = SymPacket::fresh("c", enc.width);
    let outside = Bool::new_const("c_outside");
    let journey = enc.journey(&first, &outside)?;
    let facts = enc.first_packet_facts(&first, &outside);
    let scope = if opts.routing {
        all(&[facts, enc.routable(&first, &outside)])
    } else {
        facts
    };
    let s = solver(opts.timeout_ms);
    s.assert(&scope);

    let mut invariants = Vec::new();
    {
        let sym = Symbolic {
            enc: &enc,
            first: &first,
            outside: &outside,
            journey: &journey,
        };
        for id in ALL {
            let v = id.violation(&sym, profile);
            s.push();
            let r = prove(
                rs, fam, &enc, &s, &v, &first, &outside, sim, pod, profile, id,
            );
            s.pop(1);
            invariants.push(r?);
        }
    }

    let routed_hits: Vec<SymHit> = journey
        .hops
        .first()
        .map(|h| h.hits.clone())
        .unwrap_or_default();
    let rules = reachability(rs, fam, &mut enc, &s, &routed_hits, opts)?;
    let undecided = enc
        .undecided_rules
        .iter()
        .map(|r| RuleAtTable {
            family: fam,
            table: r.table,
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

/// Whether `t` is satisfiable in `s` (left as it was), with a model when it is.
fn query(s: &Solver, t: &Bool) -> (SatResult, Option<z3::Model>) {
    s.push();
    s.assert(t);
    let r = s.check();
    let m = if r == SatResult::Sat {
        s.get_model()
    } else {
        None
    };
    s.pop(1);
    (r, m)
}

fn stops(t: Option<&Target>) -> bool {
    !matches!(
        t,
        None | Some(
            Target::Mark(_)
                | Target::ConnmarkSet(_)
                | Target::ConnmarkSave { .. }
                | Target::ConnmarkRestore { .. }
                | Target::Ct { .. }
                | Target::Notrack
                | Target::Log { .. }
                | Target::Nflog { .. }
                | Target::Unknown { .. }
        )
    )
}

fn reachability(
    rs: &Ruleset,
    fam: Family,
    enc: &mut Encoder<'_>,
    routed: &Solver,
    routed_hits: &[SymHit],
    opts: &Options,
) -> Result<Vec<RuleResult>, CheckError> {
    // Any packet at all, entering here or from outside.
    let p = SymPacket::fresh("any", enc.width);
    let outside = Bool::new_const("any_outside");
    let hop = enc.hop(&p, &outside, true)?;
    let none = |v: &BV| v.eq(bv(u128::from(IF_NONE), IF_BITS));
    let facts = all(&[
        enc.ifaces.valid(&p.iif),
        enc.ifaces.valid(&p.oif),
        outside.ite(
            &all(&[none(&p.oif), none(&p.iif).not(), p.has_socket.not()]),
            &all(&[none(&p.iif), none(&p.oif).not()]),
        ),
    ]);
    let s = solver(opts.timeout_ms);
    s.assert(&facts);

    let mut out = Vec::new();
    for t in rs.tables(fam) {
        for (ci, c) in t.chains.iter().enumerate() {
            for (ri, rule) in c.rules.iter().enumerate() {
                let id = RuleId {
                    table: t.kind,
                    chain: ci,
                    rule: ri,
                };
                let of = |hits: &[SymHit], f: fn(&SymHit) -> Bool| {
                    any(&hits
                        .iter()
                        .filter(|h| h.id == id)
                        .map(f)
                        .collect::<Vec<_>>())
                };
                let mut res = RuleResult {
                    family: fam,
                    table: t.kind,
                    chain: c.name.clone(),
                    rule: rule_no(ri),
                    text: print_rule(fam, &c.name, rule),
                    status: RuleStatus::Unknown,
                    by: Vec::new(),
                    packet: None,
                };
                // A rule of a chain no built-in chain reaches is in no hop's encoding: it is
                // unreachable by structure, and nothing earlier is responsible.
                if !hop.hits.iter().any(|h| h.id == id) {
                    res.status = RuleStatus::Unreachable;
                    out.push(res);
                    continue;
                }
                let live = of(routed_hits, |h| h.fires.clone());
                res.status = match query(routed, &live).0 {
                    SatResult::Sat => RuleStatus::Live,
                    SatResult::Unknown => RuleStatus::Unknown,
                    SatResult::Unsat => {
                        let fires = of(&hop.hits, |h| h.fires.clone());
                        match query(&s, &fires).0 {
                            SatResult::Sat => {
                                s.push();
                                s.assert(&fires);
                                let mut hs: Vec<Bool> = vec![
                                    p.has_socket.clone(),
                                    p.oif.eq(bv(u128::from(crate::smt::IF_ETH0), IF_BITS)),
                                    p.iif.eq(bv(u128::from(crate::smt::IF_ETH0), IF_BITS)),
                                ];
                                hs.extend(hints(enc, &p, &outside));
                                hs.push(p.ctstate.eq(bv(0, 3)));
                                hs.push(p.mark.eq(bv(0, 32)));
                                let lits: Vec<Bool> = hs.iter().map(|h| guard(&s, h)).collect();
                                let m = steer(&s, &mut Vec::new(), lits);
                                res.packet = m.map(|m| p.read(&m, &enc.ifaces, fam));
                                s.pop(1);
                                RuleStatus::Unroutable
                            }
                            SatResult::Unknown => RuleStatus::Unknown,
                            SatResult::Unsat => {
                                let reach = of(&hop.hits, |h| h.reach.clone());
                                let st = match query(&s, &reach).0 {
                                    SatResult::Sat => RuleStatus::Shadowed,
                                    SatResult::Unsat => RuleStatus::Unreachable,
                                    SatResult::Unknown => RuleStatus::Unknown,
                                };
                                if st != RuleStatus::Unknown {
                                    res.by = responsible(
                                        rs,
                                        fam,
                                        &s,
                                        &hop.hits,
                                        id,
                                        st == RuleStatus::Shadowed,
                                    );
                                }
                                st
                            }
                        }
                    }
                };
                out.push(res);
            }
        }
    }
    Ok(out)
}

/// The earlier rules of the chain that leave nothing for `id`: per place the rule is tried, a
/// minimal unsat core of "these earlier rules intercept" over the chain's entry condition and
/// (when `with_match`) the rule's own match.
fn responsible(
    rs: &Ruleset,
    fam: Family,
    s: &Solver,
    hits: &[SymHit],
    id: RuleId,
    with_match: bool,
) -> Vec<RuleAt> {
    let mut by: Vec<RuleAt> = Vec::new();
    let rule_of = |r: RuleId| {
        rs.table(fam, r.table)
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
        if s.check_assumptions(&lits) == SatResult::Unsat {
            // Shrink to a minimal set: drop each literal that is not needed.
            let mut keep: Vec<usize> = (0..lits.len()).collect();
            let core = s.get_unsat_core();
            keep.retain(|k| lits.get(*k).is_some_and(|l| core.contains(l)));
            let mut j = 0;
            while j < keep.len() {
                let trial: Vec<Bool> = keep
                    .iter()
                    .enumerate()
                    .filter(|(n, _)| *n != j)
                    .filter_map(|(_, k)| lits.get(*k).cloned())
                    .collect();
                if s.check_assumptions(&trial) == SatResult::Unsat {
                    keep.remove(j);
                } else {
                    j += 1;
                }
            }
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

/// Checks `rs` in `pod` with `profile`: every invariant, every rule.
pub fn check(
    rs: &Ruleset,
    canonical: &str,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
) -> Result<Report, CheckError> {
    let resolved = profile.resolve_names(rs);
    let rs: &Ruleset = &resolved;
    let sim = Simulator::new(rs, pod.clone(), profile.clone());
    let mut invariants: Vec<InvariantResult> = ALL
        .iter()
        .map(|id| InvariantResult {
            id: id.name(),
            statement: id.statement(profile),
            uses: id.uses(profile),
            status: Status::Holds,
            family: None,
            witness: None,
            journey: None,
            reason: None,
        })
        .collect();
    let mut rules = Vec::new();
    let mut undecided = Vec::new();
    for fam in families(pod) {
        let fr = check_family(rs, fam, pod, profile, opts, &sim)?;
        for (res, (_, st, w, reason)) in invariants.iter_mut().zip(fr.invariants) {
            let rank = |s: Status| match s {
                Status::Holds => 0,
                Status::Unknown => 1,
                Status::Violated => 2,
            };
            if rank(st) > rank(res.status) {
                res.status = st;
                res.family = Some(fam);
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
    Ok(Report {
        ruleset: RulesetInfo {
            sha256: sha256_hex(canonical),
        },
        profile: profile.name.clone(),
        pod_ips: pod.ips.clone(),
        routing: opts.routing,
        invariants,
        rules,
        undecided,
    })
}

/// The `sidecar-verify` arguments that replay a witness: `trace RULES …` with the same
/// connection (and the pod's addresses when they are not the default).
pub fn replay_args(rules: &str, pod: &Pod, w: &Witness) -> Vec<String> {
    let mut opts: Vec<(&str, String)> = Vec::new();
    if w.from_outside {
        if w.iface != sidecar_model::pod::ETH0 && !w.iface.is_empty() {
            opts.push(("--iface", w.iface.clone()));
        }
    } else {
        opts.push(("--uid", w.uid.to_string()));
        opts.push(("--gid", w.gid.to_string()));
        if w.mark != 0 {
            opts.push(("--mark", format!("{:#x}", w.mark)));
        }
    }
    opts.push(("--src", w.src.to_string()));
    opts.push(("--sport", w.sport.to_string()));
    opts.push(("--dst", w.dst.to_string()));
    opts.push(("--dport", w.dport.to_string()));
    if w.proto != "tcp" {
        opts.push(("--proto", w.proto.clone()));
    }
    if pod.ips != Pod::default().ips {
        opts.extend(pod.ips.iter().map(|ip| ("--pod-ip", ip.to_string())));
    }
    let mut a = vec!["trace".to_string(), rules.to_string()];
    if w.from_outside {
        a.push("--from-outside".into());
    }
    for (name, value) in opts {
        a.push(name.to_string());
        a.push(value);
    }
    a
}

/// The replay command for a witness: `sidecar-verify trace …` ([`replay_args`]).
pub fn replay_command(rules: &str, pod: &Pod, w: &Witness) -> String {
    format!("sidecar-verify {}", replay_args(rules, pod, w).join(" "))
}

fn witness_text(w: &Witness) -> String {
    format!("{} ({})", w.connection_words(), w.context_words())
}

fn packet_text(p: &Packet) -> String {
    let mut s = format!(
        "proto {} {} -> {}",
        p.proto,
        std::net::SocketAddr::new(p.src, p.sport),
        std::net::SocketAddr::new(p.dst, p.dport)
    );
    if let Some(i) = p.in_iface {
        s.push_str(&format!(" in {}", i.as_str()));
    }
    if let Some(o) = p.out_iface {
        s.push_str(&format!(" out {}", o.as_str()));
    }
    if p.has_socket {
        s.push_str(&format!(" uid {} gid {}", p.uid, p.gid));
    } else {
        s.push_str(" (no socket)");
    }
    if p.ctstate != sidecar_model::eval::ConnState::New {
        s.push_str(&format!(" ctstate {:?}", p.ctstate));
    }
    if p.mark != 0 {
        s.push_str(&format!(" mark {:#x}", p.mark));
    }
    s
}

/// The report for a person.
pub fn text(report: &Report, rs: &Ruleset, rules_arg: &str, pod: &Pod) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let ips: Vec<String> = report.pod_ips.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        s,
        "ruleset sha256 {}; profile {}; pod {}; {}",
        report.ruleset.sha256,
        report.profile,
        ips.join(", "),
        if report.routing {
            "routable connections"
        } else {
            "every header combination (--no-routing)"
        }
    );
    let _ = writeln!(s, "\ninvariants");
    for i in &report.invariants {
        let st = match i.status {
            Status::Holds => "holds",
            Status::Violated => "VIOLATED",
            Status::Unknown => "UNKNOWN",
        };
        let _ = writeln!(s, "  {st:<9} {:<27} {}", i.id, i.statement);
        if let Some(r) = &i.reason {
            let _ = writeln!(s, "            reason: {r}");
        }
        if let Some(w) = &i.witness {
            let _ = writeln!(s, "            witness: {}", witness_text(w));
            let _ = writeln!(
                s,
                "            replay:  {}",
                replay_command(rules_arg, pod, w)
            );
        }
        if let Some(j) = &i.journey {
            for line in crate::journey_text::journey_text(rs, j).lines() {
                let _ = writeln!(s, "              {line}");
            }
        }
    }
    let _ = writeln!(s, "\nrules");
    let mut counts = [0usize; 5];
    for r in &report.rules {
        let (n, word) = match r.status {
            RuleStatus::Live => (0, "live"),
            RuleStatus::Unroutable => (1, "unroutable"),
            RuleStatus::Shadowed => (2, "shadowed"),
            RuleStatus::Unreachable => (3, "unreachable"),
            RuleStatus::Unknown => (4, "unknown"),
        };
        if let Some(c) = counts.get_mut(n) {
            *c += 1;
        }
        if r.status == RuleStatus::Live {
            continue;
        }
        let fam = if r.family == Family::Ipv6 {
            " (IPv6)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {word:<11} {} {} {}{fam}  {}",
            r.table.name(),
            r.chain,
            r.rule,
            r.text
        );
        if !r.by.is_empty() {
            let by: Vec<String> =
                r.by.iter()
                    .map(|b| format!("{} {}", b.chain, b.rule))
                    .collect();
            let _ = writeln!(s, "              by {}", by.join(", "));
        }
        if let Some(p) = &r.packet {
            let _ = writeln!(
                s,
                "              hit only by packets like: {}",
                packet_text(p)
            );
        }
    }
    let [live, unroutable, shadowed, unreachable, unknown] = counts;
    let _ = writeln!(
        s,
        "  {live} live, {unroutable} unroutable, {shadowed} shadowed, {unreachable} unreachable{}",
        if unknown > 0 {
            format!(", {unknown} unknown")
        } else {
            String::new()
        }
    );
    if !report.undecided.is_empty() {
        let _ = writeln!(
            s,
            "\nmatches the model cannot interpret (free in the proofs)"
        );
        for u in &report.undecided {
            let fam = if u.family == Family::Ipv6 {
                "ip6tables"
            } else {
                "iptables"
            };
            let _ = writeln!(s, "  {fam} {} {} {}", u.table.name(), u.chain, u.rule);
        }
    }
    let held = report
        .invariants
        .iter()
        .filter(|i| i.status == Status::Holds)
        .count();
    let violated = report
        .invariants
        .iter()
        .filter(|i| i.status == Status::Violated)
        .count();
    let _ = writeln!(
        s,
        "\n{} invariants: {held} hold, {violated} violated, {} unknown",
        report.invariants.len(),
        report.invariants.len() - held - violated
    );
    s
}
