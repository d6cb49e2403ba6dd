//! A journey: hops chained through the proxy's listeners as
//! [`sidecar_model::pod::Simulator::journey`] chains them, up to the profile's hop bound plus one,
//! with its loop detection.

use sidecar_model::eval::ConnState;
use sidecar_model::pod::{InboundSource, Profile};
use z3::ast::{Bool, BV};
use z3::Solver;

use super::hop::SymHop;
use super::Encoder;
use crate::smt::{
    all, and2, any, bv, ct_code, or2, EncodeError, SymPacket, CT_BITS, GID_BITS, HOP_COUNT_BITS,
    IF_BITS, IF_NONE, MARK_BITS, PORT_BITS, PROTO_BITS, TCP_FLAGS_BITS, UID_BITS,
};

/// The hop by which a journey's state has repeated, if it got that far (see
/// [`Encoder::journey`]): hops 0 to 3 are all a journey can have.
pub const REPEAT_BY: usize = 4;

/// A journey: hops chained through the proxy's listeners, symbolically.
#[derive(Debug, Clone)]
pub struct SymJourney {
    /// The hops, the first one the query's connection; `hops[n]` exists iff `exists[n]`.
    pub hops: Vec<SymHop>,
    /// Which hops happen.
    pub exists: Vec<Bool>,
    /// A hop state repeated or the hop bound was passed.
    pub looped: Bool,
    /// Per hop: the journey is found looping at this hop.
    pub loops: Vec<Bool>,
}

impl SymJourney {
    /// How the journey ends: (app, remote, drop, loop), as [`sidecar_model::pod::Outcome`].
    pub fn outcome(&self, profile: &Profile) -> [Bool; 4] {
        let (mut app, mut remote, mut drop) = (Vec::new(), Vec::new(), Vec::new());
        for (n, (h, e)) in self.hops.iter().zip(&self.exists).enumerate() {
            let lp = self
                .loops
                .get(n)
                .cloned()
                .unwrap_or_else(|| Bool::from_bool(false));
            let alive = and2(e, &lp.not());
            let via_out = h.listener(profile.outbound_port, profile);
            let via_in = h.listener(profile.inbound_port, profile);
            drop.push(and2(&alive, &h.dropped));
            remote.push(all(&[alive.clone(), h.dropped.not(), h.local.not()]));
            app.push(all(&[alive, h.local.clone(), via_out.not(), via_in.not()]));
        }
        [any(&app), any(&remote), any(&drop), self.looped.clone()]
    }

    /// Exactly `n` hops (that happen) are delivered to the proxy listener `port`.
    pub fn passes(&self, port: u16, n: u8, profile: &Profile) -> Bool {
        let one = bv(1, HOP_COUNT_BITS);
        let zero = bv(0, HOP_COUNT_BITS);
        let mut sum = bv(0, HOP_COUNT_BITS);
        for (h, e) in self.hops.iter().zip(&self.exists) {
            let c = and2(e, &h.listener(port, profile));
            sum = sum.bvadd(c.ite(&one, &zero));
        }
        sum.eq(bv(u128::from(n), HOP_COUNT_BITS))
    }
}

impl SymJourney {
    /// The journey with each hop's outcome (dropped, delivered, to which port and address,
    /// translated) and each hop's existence and loop replaced by a constant defined in `s`, at
    /// its current scope, as that term. Queries built on it stay small, and the solver takes
    /// the journey's terms in once instead of once per query. The hops' rule hits are left as
    /// they are.
    pub fn named(&self, s: &Solver, prefix: &str) -> SymJourney {
        let mut n = Namer { s, prefix, n: 0 };
        let hops = self
            .hops
            .iter()
            .map(|h| SymHop {
                outside: h.outside.clone(),
                entered: h.entered.clone(),
                hits: h.hits.clone(),
                dropped: n.bool(&h.dropped),
                rejected: n.bool(&h.rejected),
                local: n.bool(&h.local),
                port: n.bv(&h.port),
                final_dst: n.bv(&h.final_dst),
                final_dport: n.bv(&h.final_dport),
                dnat: n.bool(&h.dnat),
                tproxy: n.bool(&h.tproxy),
            })
            .collect();
        SymJourney {
            hops,
            exists: self.exists.iter().map(|e| n.bool(e)).collect(),
            looped: n.bool(&self.looped),
            loops: self.loops.iter().map(|l| n.bool(l)).collect(),
        }
    }
}

/// Names terms by constants defined in a solver.
struct Namer<'s> {
    s: &'s Solver,
    prefix: &'s str,
    n: usize,
}

impl Namer<'_> {
    fn bool(&mut self, t: &Bool) -> Bool {
        if t.as_bool().is_some() {
            return t.clone();
        }
        self.n += 1;
        let c = Bool::new_const(format!("{}_{}", self.prefix, self.n));
        self.s.assert(c.iff(t));
        c
    }

    fn bv(&mut self, t: &BV) -> BV {
        if t.as_u64().is_some() {
            return t.clone();
        }
        self.n += 1;
        let c = BV::new_const(format!("{}_{}", self.prefix, self.n), t.get_size());
        self.s.assert(c.eq(t));
        c
    }
}

impl Encoder<'_> {
    /// A journey from `first`: hops chained through the proxy's listeners up to the profile's
    /// hop bound plus one.
    pub fn journey(
        &mut self,
        first: &SymPacket,
        outside: &Bool,
    ) -> Result<SymJourney, EncodeError> {
        self.journey_within(first, outside, REPEAT_BY)
    }

    /// [`Encoder::journey`] unrolled to hop `bound` (or the profile's bound) instead of
    /// [`REPEAT_BY`]: for the test that no journey needs more.
    pub fn journey_within(
        &mut self,
        first: &SymPacket,
        outside: &Bool,
        bound: usize,
    ) -> Result<SymJourney, EncodeError> {
        let profile = self.profile;
        let max = profile.max_hops;
        self.hop_index = 0;
        let h1 = self.hop(first, outside, true)?;
        let mut hops = vec![h1];
        let mut exists = vec![Bool::from_bool(true)];
        let mut loops: Vec<Bool> = Vec::new();
        let key = |h: &SymHop| {
            (
                h.outside.clone(),
                h.entered.src.clone(),
                h.entered.dst.clone(),
                h.entered.dport.clone(),
                h.entered.uid.clone(),
                h.entered.gid.clone(),
                h.entered.mark.clone(),
            )
        };
        for n in 1..=max + 1 {
            let (Some(h), Some(e)) = (hops.get(n - 1), exists.get(n - 1)) else {
                break;
            };
            let k = key(h);
            let repeated: Vec<Bool> = hops
                .iter()
                .take(n - 1)
                .map(|o| {
                    let ko = key(o);
                    all(&[
                        ko.0.iff(&k.0),
                        ko.1.eq(&k.1),
                        ko.2.eq(&k.2),
                        ko.3.eq(&k.3),
                        ko.4.eq(&k.4),
                        ko.5.eq(&k.5),
                        ko.6.eq(&k.6),
                    ])
                })
                .collect();
            let lp = if n > max {
                e.clone()
            } else {
                and2(e, &any(&repeated))
            };
            loops.push(lp.clone());
            // Every re-connection goes to the first hop's original destination, as the proxy,
            // from one of at most two sources (the route's, or the inbound listener's: the
            // passthrough address, or for `original` the source of a hop in that same set): at
            // most two hop states after the first. Of hops 1, 2 and 3 two share a state, so a
            // journey that reaches hop 3 is found looping there at the latest, and hop 4 never
            // happens: unrolling further adds terms that are all false (the evaluator's
            // journey is the same; `journeys_never_need_a_fifth_hop` checks it).
            if n > max || n >= bound {
                break;
            }
            let via_out = h.listener(profile.outbound_port, profile);
            let via_in = and2(&via_out.not(), &h.listener(profile.inbound_port, profile));
            let next_exists = all(&[e.clone(), lp.not(), or2(&via_out, &via_in)]);
            // The proxy's connection: to the original destination, as the proxy; from the
            // passthrough source after the inbound listener.
            let mut p = SymPacket::fresh(&format!("hop{}", n + 1), self.width);
            p.proto = hops
                .first()
                .map_or_else(|| bv(6, PROTO_BITS), |h| h.entered.proto.clone());
            p.dst = h.entered.dst.clone();
            p.dport = h.entered.dport.clone();
            p.sport = bv(40000 + n as u128, PORT_BITS);
            p.uid = bv(u128::from(profile.proxy_uid), UID_BITS);
            p.gid = bv(u128::from(profile.proxy_gid), GID_BITS);
            let inbound_src = match profile.inbound_source {
                InboundSource::Passthrough => self.addr(profile.passthrough(self.family)),
                InboundSource::Original => h.entered.src.clone(),
                InboundSource::Route => self.route_src(&p.dst),
            };
            p.src = via_in.ite(&inbound_src, &self.route_src(&p.dst));
            p.iif = bv(u128::from(IF_NONE), IF_BITS);
            p.oif = self.route_oif(&p.dst);
            p.has_socket = Bool::from_bool(true);
            p.mark = bv(u128::from(profile.reconnect_mark()), MARK_BITS);
            p.ctmark = bv(0, MARK_BITS);
            p.ctstate = bv(ct_code(ConnState::New), CT_BITS);
            p.dnat_done = Bool::from_bool(false);
            p.snat_done = Bool::from_bool(false);
            p.tcp_flags = p
                .proto
                .eq(bv(6, PROTO_BITS))
                .ite(&bv(2, TCP_FLAGS_BITS), &bv(0, TCP_FLAGS_BITS));
            self.hop_index = n;
            let hn = self.hop(&p, &Bool::from_bool(false), false)?;
            hops.push(hn);
            exists.push(next_exists);
        }
        Ok(SymJourney {
            hops,
            exists,
            looped: any(&loops),
            loops,
        })
    }
}
