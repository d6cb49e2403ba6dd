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

use sidecar_model::pod::{Journey, Pod, Profile, Simulator};
use sidecar_model::{Family, Hook, Ruleset};
use z3::ast::Bool;
use z3::SatResult;

use crate::journey_text::outcome_words;
use crate::prove::{self, families, ProveError};
use crate::results::Witness;
use crate::smt::solve::{guard, hints, solver, steer};
use crate::smt::{
    addr_width, all, any, bits_addr, bv, truth, value, Concretize, EncodeError, Encoder, Ifaces,
    SymHop, SymJourney, SymPacket, GID_BITS, UID_BITS,
};

pub use crate::results::diff::{Change, Invariants, Report};

/// How to diff.
#[derive(Debug, Clone)]
pub struct Options {
    /// The most change classes to enumerate per family and scope.
    pub max_classes: usize,
    /// Per-query solver timeout in milliseconds.
    pub timeout_ms: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_classes: 32,
            timeout_ms: 30_000,
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

fn ne_bool(a: &Bool, b: &Bool) -> Bool {
    a.xor(b)
}

fn hop_same(a: &SymHop, b: &SymHop) -> Bool {
    let remote_a = all(&[a.dropped.not(), a.local.not()]);
    all(&[
        a.dropped.iff(&b.dropped),
        a.local.iff(&b.local),
        a.local.implies(a.port.eq(&b.port)),
        remote_a.implies(all(&[
            a.final_dst.eq(&b.final_dst),
            a.final_dport.eq(&b.final_dport),
        ])),
    ])
}

/// The journeys differ in what happens.
fn differs(a: &SymJourney, b: &SymJourney) -> Bool {
    let mut d = Vec::new();
    for n in 0..a.hops.len().min(b.hops.len()) {
        let (Some(ha), Some(hb), Some(ea), Some(eb)) = (
            a.hops.get(n),
            b.hops.get(n),
            a.exists.get(n),
            b.exists.get(n),
        ) else {
            continue;
        };
        let f = || Bool::from_bool(false);
        let la = a.loops.get(n).cloned().unwrap_or_else(f);
        let lb = b.loops.get(n).cloned().unwrap_or_else(f);
        d.push(ne_bool(ea, eb));
        d.push(all(&[
            ea.clone(),
            eb.clone(),
            any(&[hop_same(ha, hb).not(), ne_bool(&la, &lb)]),
        ]));
    }
    any(&d)
}

fn path(j: &Journey) -> String {
    let mut hops = Vec::new();
    for h in &j.hops {
        let rules: Vec<String> = h
            .matched
            .iter()
            .filter(|r| r.table == sidecar_model::TableKind::Nat || h.matched.len() < 6)
            .map(|r| format!("{} {}", r.chain, r.rule))
            .collect();
        let to = match h.delivered_to {
            sidecar_model::pod::Delivery::Listener(p) => format!("listener {p}"),
            sidecar_model::pod::Delivery::App(p) => format!("port {p}"),
            sidecar_model::pod::Delivery::Remote(a) => format!("remote {a}"),
            sidecar_model::pod::Delivery::Dropped => "dropped".into(),
        };
        hops.push(format!("[{}] → {to}", rules.join(", ")));
    }
    hops.join("; ")
}

fn describe(w: &Witness, pod: &Pod, old: &Journey, new: &Journey) -> String {
    let who = w.who();
    let dst = if w.dst.is_loopback() {
        "a loopback address".to_string()
    } else if pod.ips.contains(&w.dst) {
        "the pod IP".to_string()
    } else {
        "a remote address".to_string()
    };
    format!(
        "{} {who} to {dst} port {}: was {} ({}), now {} ({})",
        w.proto,
        w.dport,
        outcome_words(old.outcome),
        path(old),
        outcome_words(new.outcome),
        path(new)
    )
}

/// The class around a witness in words: field by field (the others fixed at the witness's
/// values), whether every value stays in the class, or which kind of values do.
fn shape(
    enc: &Encoder<'_>,
    p: &SymPacket,
    outside: &Bool,
    m: &z3::Model,
    class: &Bool,
    scope: &Bool,
    opts: &Options,
) -> String {
    let d = solver(opts.timeout_ms);
    d.assert(scope);
    let from_outside = truth(m, outside);
    let fields: Vec<(&str, &z3::ast::BV)> = vec![
        ("proto", &p.proto),
        ("uid", &p.uid),
        ("gid", &p.gid),
        ("src", &p.src),
        ("dst", &p.dst),
        ("sport", &p.sport),
        ("dport", &p.dport),
    ];
    let fixed = |skip: &str| -> Vec<Bool> {
        let mut v = vec![if from_outside {
            outside.clone()
        } else {
            outside.not()
        }];
        for (n, t) in &fields {
            if *n != skip {
                v.push((**t).eq(t.constant(m)));
            }
        }
        v
    };
    // Every value of the field that satisfies `pred` (and the scope) stays in the class, and
    // there is one.
    let covers = |name: &str, pred: &Bool| -> bool {
        let base = all(&fixed(name));
        d.push();
        d.assert(&base);
        d.assert(pred);
        let some = d.check() == SatResult::Sat;
        d.assert(class.not());
        let none_out = d.check() == SatResult::Unsat;
        d.pop(1);
        some && none_out
    };
    let t = Bool::from_bool(true);
    let fam = enc.family;
    let mut parts = vec![if from_outside {
        "from outside".to_string()
    } else {
        "opened in the pod".to_string()
    }];
    for (name, term) in &fields {
        if from_outside && matches!(*name, "uid" | "gid") {
            continue;
        }
        if covers(name, &t) {
            parts.push(format!("any {name}"));
            continue;
        }
        let v = value(m, term);
        let word = match *name {
            "proto" => Some(match v {
                6 => "tcp".to_string(),
                17 => "udp".to_string(),
                n => format!("protocol {n}"),
            }),
            "uid" | "gid" => {
                let (ids, width) = if *name == "uid" {
                    (enc.profile.all_proxy_uids(), UID_BITS)
                } else {
                    (enc.profile.all_proxy_gids(), GID_BITS)
                };
                let not_proxy = all(&ids
                    .iter()
                    .map(|i| (**term).eq(bv(u128::from(*i), width)).not())
                    .collect::<Vec<_>>());
                (truth(m, &not_proxy) && covers(name, &not_proxy)).then(|| {
                    let l: Vec<String> = ids.iter().map(ToString::to_string).collect();
                    format!("{name} not {}", l.join(" or "))
                })
            }
            "dst" => {
                let kinds = [
                    (enc.is_local(term).not(), "a non-local destination"),
                    (enc.is_loopback(term), "a loopback destination"),
                    (enc.is_pod_ip(term), "a pod IP"),
                ];
                kinds
                    .iter()
                    .find(|(pred, _)| truth(m, pred) && covers(name, pred))
                    .map(|(_, w)| format!("to {w}"))
            }
            _ => None,
        };
        parts.push(word.unwrap_or_else(|| match *name {
            "src" | "dst" => format!("{name} {}", bits_addr(v, fam)),
            _ => format!("{name} {v}"),
        }));
    }
    parts.join(", ")
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
    };
    let inv_old = prove::ruleset(old, pod, profile, &popts)?.invariants;
    let inv_new = prove::ruleset(new, pod, profile, &popts)?.invariants;
    let (old, new) = (profile.resolve_names(old), profile.resolve_names(new));
    let (old, new): (&Ruleset, &Ruleset) = (&old, &new);
    let mut report = Report {
        changes: Vec::new(),
        unroutable_changes: Vec::new(),
        invariants: Invariants {
            old: inv_old,
            new: inv_new,
        },
        truncated: false,
        unknown: false,
    };
    for fam in families(pod) {
        diff_family(old, new, fam, pod, profile, opts, false, &mut report)?;
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
    behaviour(old, new, pod, profile, opts, true)
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
    behaviour(old, new, pod, profile, opts, false)
}

fn behaviour(
    old: &Ruleset,
    new: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    first_only: bool,
) -> Result<Report, DiffError> {
    let (old, new) = (profile.resolve_names(old), profile.resolve_names(new));
    let mut report = Report {
        changes: Vec::new(),
        unroutable_changes: Vec::new(),
        invariants: Invariants {
            old: Vec::new(),
            new: Vec::new(),
        },
        truncated: false,
        unknown: false,
    };
    for fam in families(pod) {
        diff_family(&old, &new, fam, pod, profile, opts, first_only, &mut report)?;
        if first_only && !report.changes.is_empty() {
            break;
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn diff_family(
    old: &Ruleset,
    new: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    opts: &Options,
    first_only: bool,
    report: &mut Report,
) -> Result<(), DiffError> {
    let first = SymPacket::fresh("c", addr_width(fam));
    let outside = Bool::new_const("c_outside");
    let mut sides = Vec::new();
    // One interface enumeration for both sides: they share the symbolic first packet.
    let ifaces = Ifaces::with_names(&[old, new], &profile.virtual_interfaces)?;
    for rs in [old, new] {
        let mut enc = Encoder::with_ifaces(rs, fam, pod, profile, ifaces.clone())?;
        // Undecidable matches are taken as the evaluator takes them: a change is a change of
        // what the model computes.
        enc.undecided_free = false;
        let journey = enc.journey(&first, &outside)?;
        sides.push(Side {
            enc,
            journey,
            sim: Simulator::new(rs, pod.clone(), profile.clone()),
        });
    }
    let (Some(a), Some(b)) = (sides.first(), sides.get(1)) else {
        return Ok(());
    };
    let facts = a.enc.first_packet_facts(&first, &outside);
    let routable = a.enc.routable(&first, &outside);
    let differ = differs(&a.journey, &b.journey);

    let s = solver(opts.timeout_ms);
    s.assert(&facts);
    s.assert(&differ);
    // Classes found among routable connections are excluded from the unroutable search too.
    let mut blocks: Vec<Bool> = Vec::new();
    for scope_routable in [true, false] {
        if first_only && !scope_routable {
            break;
        }
        s.push();
        if scope_routable {
            s.assert(&routable);
        } else {
            s.assert(routable.not());
        }
        let mut found = 0;
        loop {
            match s.check() {
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
            let lits: Vec<Bool> = hints(&a.enc, &first, &outside)
                .iter()
                .map(|h| guard(&s, h))
                .collect();
            let m = steer(&s, &mut Vec::new(), lits);
            s.pop(1);
            let Some(m) = m else { break };
            let pkt = first.read(&m, &a.enc.ifaces, fam);
            let entry = if truth(&m, &outside) {
                Hook::Prerouting
            } else {
                Hook::Output
            };
            let jo = a.sim.journey_packet(entry, pkt);
            let jn = b.sim.journey_packet(entry, pkt);
            let w = Witness::of_packet(entry, &pkt);
            if same_behaviour(&jo, &jn) {
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
            let shape = shape(
                &a.enc,
                &first,
                &outside,
                &m,
                &class,
                &all(&[facts.clone(), scope]),
                opts,
            );
            let block = class.not();
            s.assert(&block);
            blocks.push(block);
            let change = Change {
                description: shape,
                effect: describe(&w, pod, &jo, &jn),
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

/// The evaluator's view: the journeys agree hop by hop in what happens.
fn same_behaviour(a: &Journey, b: &Journey) -> bool {
    a.outcome == b.outcome
        && a.hops.len() == b.hops.len()
        && a.hops
            .iter()
            .zip(&b.hops)
            .all(|(x, y)| x.delivered_to == y.delivered_to)
}
