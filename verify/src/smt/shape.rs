//! A journey's shape, and when two journeys differ in it: some hop exists in one and not the
//! other, or a hop is dropped, delivered in the pod to another port, or leaves for another
//! address or port, or one journey loops there and the other does not. The same comparison is
//! written twice, over Z3 terms ([`differs`]) and over the evaluator's journeys
//! ([`same_shape`]), so that a pair Z3 finds is replayed and confirmed. `diff` compares the
//! journeys of one connection on two rulesets; the relational invariants (identity symmetry,
//! dual-stack parity) compare the journeys of two connections on one ruleset.
//!
//! Where a hop leaves the pod is compared by [`Dest`]: by address when both journeys are of one
//! family, and by whether it leaves for the connection's own destination across families (an
//! IPv4 address and an IPv6 one are never equal; the counterpart of a connection's destination
//! is its destination, so "to the destination asked for" vs "elsewhere" is the shape compared).

use std::net::IpAddr;

use sidecar_model::pod::{Delivery, Journey};
use z3::ast::Bool;

use super::{all, any, SymHop, SymJourney};

/// How two hops leaving the pod are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// The same address (one family).
    Address,
    /// Both to their connection's own destination, or both elsewhere (across families).
    Role,
}

fn hop_same(a: &SymHop, b: &SymHop, dest: Dest) -> Bool {
    let remote_a = all(&[a.dropped.not(), a.local.not()]);
    let same_dst = match dest {
        Dest::Address => a.final_dst.eq(&b.final_dst),
        Dest::Role => a
            .final_dst
            .eq(&a.entered.dst)
            .iff(b.final_dst.eq(&b.entered.dst)),
    };
    all(&[
        a.dropped.iff(&b.dropped),
        a.local.iff(&b.local),
        a.local.implies(a.port.eq(&b.port)),
        remote_a.implies(all(&[same_dst, a.final_dport.eq(&b.final_dport)])),
    ])
}

/// The journeys differ in shape (see the module doc).
pub fn differs(a: &SymJourney, b: &SymJourney, dest: Dest) -> Bool {
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
        d.push(ea.xor(eb));
        d.push(all(&[
            ea.clone(),
            eb.clone(),
            any(&[hop_same(ha, hb, dest).not(), la.xor(&lb)]),
        ]));
    }
    any(&d)
}

/// The evaluator's view: the journeys agree hop by hop in what happens ([`differs`]'s
/// negation, for journeys the evaluator computed).
pub fn same_shape(a: &Journey, b: &Journey, dest: Dest) -> bool {
    let dst = |j: &Journey| -> Option<IpAddr> { j.hops.first().map(|h| h.packet.dst) };
    let (da, db) = (dst(a), dst(b));
    a.outcome == b.outcome
        && a.hops.len() == b.hops.len()
        && a.hops
            .iter()
            .zip(&b.hops)
            .all(|(x, y)| match (x.delivered_to, y.delivered_to) {
                (Delivery::Remote(p), Delivery::Remote(q)) => {
                    p.port() == q.port()
                        && match dest {
                            Dest::Address => p.ip() == q.ip(),
                            Dest::Role => (Some(p.ip()) == da) == (Some(q.ip()) == db),
                        }
                }
                (p, q) => p == q,
            })
}
