//! The SMT encoding of each match module of [`sidecar_model::matches`], next to each other: one
//! `impl Encode` per module, and the dispatch over [`Match`] built from the model's list of
//! modules ([`sidecar_model::match_modules!`]), so that a module without an encoding does not
//! compile.
//!
//! Each encoding mirrors the module's `eval` decision for decision: a match is a pair (decided
//! false, undecided), the evaluator's `Some(false)` and `None`.

use std::net::IpAddr;

use sidecar_model::eval::ConnState;
use sidecar_model::matches::{
    AddrRange, AddrType, Addrtype, Comment, Connmark, Conntrack, CtState, IdSpec, Iprange, Mark,
    Multiport, Owner, PortDir, Set, Socket, State, Statistic, Tcp, Udp,
};
use sidecar_model::{Family, MarkMask, Match, Neg, PortRange};
use z3::ast::{Bool, BV};

use super::{
    all, and2, any, bv, ct_code, or2, Encoder, SymPacket, CT_BITS, GID_BITS, IPV4_BITS, MARK_BITS,
    PORT_BITS, PROTO_BITS, TCP_FLAGS_BITS, UID_BITS,
};

/// The encoding of one match module, over a symbolic packet.
trait Encode {
    /// The match on `p` as (decided false, undecided), as the evaluator's three-valued result:
    /// `Some(false)` is the first, `None` the second, `Some(true)` neither.
    fn encode(&self, enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool);

    /// Whether the match can be undecided (the model cannot interpret it, or not always).
    fn may_be_undecided(&self) -> bool {
        false
    }
}

macro_rules! encode_dispatch {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        impl Encoder<'_> {
            /// A match as (decided false, undecided), as the evaluator's three-valued result.
            pub(super) fn match3(&self, m: &Match, p: &SymPacket) -> (Bool, Bool) {
                match m {
                    $(Match::$variant(x) => <$ty as Encode>::encode(x, self, p),)*
                    Match::Unknown { .. } => undecided(),
                }
            }

            /// Whether a match can be undecided (the model cannot interpret it).
            pub(super) fn may_be_undecided(m: &Match) -> bool {
                match m {
                    $(Match::$variant(x) => <$ty as Encode>::may_be_undecided(x),)*
                    Match::Unknown { .. } => true,
                }
            }
        }
    };
}

sidecar_model::match_modules!(encode_dispatch);

/// A decided match that holds when `b` does.
fn holds(b: Bool) -> (Bool, Bool) {
    (b.not(), Bool::from_bool(false))
}

/// A match the model cannot decide.
fn undecided() -> (Bool, Bool) {
    (Bool::from_bool(false), Bool::from_bool(true))
}

fn port_in(v: &BV, r: &PortRange) -> Bool {
    if r.lo == r.hi {
        v.eq(bv(u128::from(r.lo), PORT_BITS))
    } else {
        and2(
            &v.bvuge(bv(u128::from(r.lo), PORT_BITS)),
            &v.bvule(bv(u128::from(r.hi), PORT_BITS)),
        )
    }
}

fn port_ok(r: &Option<Neg<PortRange>>, v: &BV) -> Bool {
    match r {
        None => Bool::from_bool(true),
        Some(n) => Encoder::neg(n.negated, port_in(v, &n.value)),
    }
}

impl Encode for Tcp {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        let f = match &self.flags {
            None => Bool::from_bool(true),
            Some(n) => Encoder::neg(
                n.negated,
                p.tcp_flags
                    .bvand(bv(u128::from(n.value.mask), TCP_FLAGS_BITS))
                    .eq(bv(u128::from(n.value.comp), TCP_FLAGS_BITS)),
            ),
        };
        holds(all(&[
            p.proto.eq(bv(6, PROTO_BITS)),
            port_ok(&self.sport, &p.sport),
            port_ok(&self.dport, &p.dport),
            f,
        ]))
    }
}

impl Encode for Udp {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        holds(all(&[
            p.proto.eq(bv(17, PROTO_BITS)),
            port_ok(&self.sport, &p.sport),
            port_ok(&self.dport, &p.dport),
        ]))
    }
}

impl Encode for Multiport {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        let anyp = |v: &BV| any(&self.ports.iter().map(|r| port_in(v, r)).collect::<Vec<_>>());
        let hit = match self.dir {
            PortDir::Source => anyp(&p.sport),
            PortDir::Destination => anyp(&p.dport),
            PortDir::Either => or2(&anyp(&p.sport), &anyp(&p.dport)),
        };
        holds(Encoder::neg(self.negated, hit))
    }
}

impl Encode for Owner {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        let no = || Bool::from_bool(false);
        let all_inverted = self.uid.as_ref().is_none_or(|n| n.negated)
            && self.gid.as_ref().is_none_or(|n| n.negated)
            && self.socket_exists.as_ref().is_none_or(|n| n.negated);
        // With a socket: uid, then gid, then --socket-exists, each ending the match early with
        // "false" (mismatch) or "undecided" (a name).
        let mut f = Bool::from_bool(self.socket_exists.as_ref().is_some_and(|n| n.negated));
        let mut u = no();
        for (spec, var, width) in [(&self.gid, &p.gid, GID_BITS), (&self.uid, &p.uid, UID_BITS)] {
            let Some(n) = spec else { continue };
            match &n.value {
                IdSpec::Name(_) => {
                    f = no();
                    u = Bool::from_bool(true);
                }
                IdSpec::Range { lo, hi } => {
                    let inr = and2(
                        &var.bvuge(bv(u128::from(*lo), width)),
                        &var.bvule(bv(u128::from(*hi), width)),
                    );
                    let mismatch = if n.negated { inr } else { inr.not() };
                    f = or2(&mismatch, &f);
                    u = and2(&mismatch.not(), &u);
                }
            }
        }
        (
            p.has_socket.ite(&f, &Bool::from_bool(!all_inverted)),
            and2(&p.has_socket, &u),
        )
    }

    fn may_be_undecided(&self) -> bool {
        [&self.uid, &self.gid]
            .into_iter()
            .flatten()
            .any(|n| matches!(n.value, IdSpec::Name(_)))
    }
}

/// `(mark & mask) == value`, with its `!`.
fn mark_holds(n: &Neg<MarkMask>, mark: &BV) -> (Bool, Bool) {
    holds(Encoder::neg(
        n.negated,
        mark.bvand(bv(u128::from(n.value.mask), MARK_BITS))
            .eq(bv(u128::from(n.value.value), MARK_BITS)),
    ))
}

impl Encode for Mark {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        mark_holds(&self.0, &p.mark)
    }
}

impl Encode for Connmark {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        mark_holds(&self.0, &p.ctmark)
    }
}

fn state_holds(p: &SymPacket, s: CtState) -> Bool {
    let is = |c: ConnState| p.ctstate.eq(bv(ct_code(c), CT_BITS));
    match s {
        CtState::New => is(ConnState::New),
        CtState::Established => is(ConnState::Established),
        CtState::Related => is(ConnState::Related),
        CtState::Invalid => is(ConnState::Invalid),
        CtState::Untracked => is(ConnState::Untracked),
        CtState::Snat => p.snat_done.clone(),
        CtState::Dnat => p.dnat_done.clone(),
    }
}

/// One of the states, with its `!`.
fn states_hold(n: &Neg<Vec<CtState>>, p: &SymPacket) -> (Bool, Bool) {
    let hit = any(&n
        .value
        .iter()
        .map(|s| state_holds(p, *s))
        .collect::<Vec<_>>());
    holds(Encoder::neg(n.negated, hit))
}

impl Encode for Conntrack {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        states_hold(&self.ctstate, p)
    }
}

impl Encode for State {
    fn encode(&self, _enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        states_hold(&self.0, p)
    }
}

impl Encode for Comment {
    fn encode(&self, _enc: &Encoder<'_>, _p: &SymPacket) -> (Bool, Bool) {
        holds(Bool::from_bool(true))
    }
}

impl Encoder<'_> {
    fn addr_type_is(&self, a: &BV, t: AddrType) -> Bool {
        // As the evaluator: local first (loopback, the pod's addresses), then by value.
        let local = or2(&self.is_loopback(a), &self.is_pod_ip(a));
        let v4 = self.family == Family::Ipv4;
        let bcast = if v4 {
            a.eq(bv(0xffff_ffff, IPV4_BITS))
        } else {
            Bool::from_bool(false)
        };
        let mcast = if v4 {
            self.in_net(a, IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 0)), 4)
        } else {
            self.in_net(
                a,
                IpAddr::V6(std::net::Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
                8,
            )
        };
        let unspec = a.eq(bv(0, self.width));
        let nl = local.not();
        match t {
            AddrType::Local => local,
            AddrType::Broadcast => and2(&nl, &bcast),
            AddrType::Multicast => all(&[nl, bcast.not(), mcast]),
            AddrType::Unspec => all(&[nl, bcast.not(), mcast.not(), unspec]),
            AddrType::Unicast => all(&[nl, bcast.not(), mcast.not(), unspec.not()]),
            _ => Bool::from_bool(false),
        }
    }
}

impl Encode for Addrtype {
    fn encode(&self, enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        let ok = |spec: &Option<Neg<Vec<AddrType>>>, a: &BV| match spec {
            None => Bool::from_bool(true),
            Some(n) => Encoder::neg(
                n.negated,
                any(&n
                    .value
                    .iter()
                    .map(|t| enc.addr_type_is(a, *t))
                    .collect::<Vec<_>>()),
            ),
        };
        holds(and2(&ok(&self.src, &p.src), &ok(&self.dst, &p.dst)))
    }
}

impl Encoder<'_> {
    /// `a` lies in `r`, compared unsigned as xt_iprange does (false for a range of another
    /// family than the encoder's, as the evaluator's [`AddrRange::contains`]).
    fn in_range(&self, a: &BV, r: &AddrRange) -> Bool {
        if !(self.is_family(&r.lo) && self.is_family(&r.hi)) {
            return Bool::from_bool(false);
        }
        and2(&a.bvuge(self.addr(r.lo)), &a.bvule(self.addr(r.hi)))
    }
}

impl Encode for Iprange {
    fn encode(&self, enc: &Encoder<'_>, p: &SymPacket) -> (Bool, Bool) {
        let ok = |spec: &Option<Neg<AddrRange>>, a: &BV| match spec {
            None => Bool::from_bool(true),
            Some(n) => Encoder::neg(n.negated, enc.in_range(a, &n.value)),
        };
        holds(and2(&ok(&self.src, &p.src), &ok(&self.dst, &p.dst)))
    }
}

/// Modules the model never decides: a free boolean (or false) wherever they are tried.
macro_rules! undecidable {
    ($($ty:ty),*) => {
        $(
            impl Encode for $ty {
                fn encode(&self, _enc: &Encoder<'_>, _p: &SymPacket) -> (Bool, Bool) {
                    undecided()
                }
                fn may_be_undecided(&self) -> bool {
                    true
                }
            }
        )*
    };
}

undecidable!(Socket, Set, Statistic);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use std::collections::BTreeMap;

    use sidecar_model::eval::Packet;
    use sidecar_model::gen::{packet, sample};
    use sidecar_model::matches::{Env, MODULES};
    use sidecar_model::pod::{Pod, Profile};
    use sidecar_model::{Family, Hook, Match};

    use super::super::{truth, Encoder, SymPacket};

    /// Every module of the model's table, on generated rules and packets: the encoding of the
    /// match with the packet fixed is the evaluator's three-valued result.
    #[test]
    fn every_module_encodes_as_it_evaluates() {
        let pod = Pod::new(&["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()]);
        let profile = Profile::istio();
        let env = Env { local: &pod.ips };
        let model = z3::Model::new();
        let mut compared: BTreeMap<String, usize> = BTreeMap::new();
        for (i, rs) in sample(40, 3).iter().enumerate() {
            for family in [Family::Ipv4, Family::Ipv6] {
                let enc = Encoder::new(rs, family, &pod, &profile).unwrap();
                let names: Vec<&str> = enc
                    .ifaces
                    .names
                    .iter()
                    .skip(1)
                    .map(String::as_str)
                    .collect();
                let rules = rs
                    .tables(family)
                    .iter()
                    .flat_map(|t| &t.chains)
                    .flat_map(|c| &c.rules);
                for (j, m) in rules.flat_map(|r| &r.matches).enumerate() {
                    for k in 0..4u32 {
                        let seed = [
                            i as u32,
                            j as u32,
                            k,
                            k ^ 7,
                            j as u32 * 31,
                            k * 17,
                            5,
                            k,
                            j as u32,
                            k,
                            i as u32 + k,
                            3,
                        ];
                        let (_, pkt): (Hook, Packet) = packet(&seed, family, &Hook::ALL, &names);
                        let want = m.eval(&pkt, &env);
                        let (f, u) =
                            enc.match3(m, &SymPacket::concrete(&pkt, &enc.ifaces, enc.width));
                        let got = (truth(&model, &f), truth(&model, &u));
                        assert_eq!(
                            got,
                            (want == Some(false), want.is_none()),
                            "{m:?} on {pkt:?}: eval {want:?}"
                        );
                        assert!(want.is_some() || Encoder::may_be_undecided(m), "{m:?}");
                        let name = match m {
                            Match::Unknown { .. } => "(unknown)",
                            known => known.name(),
                        };
                        *compared.entry(name.to_string()).or_default() += 1;
                    }
                }
            }
        }
        for m in MODULES {
            let n = compared.get(m.name).copied().unwrap_or(0);
            assert!(n >= 40, "`-m {}` compared {n} times: {compared:?}", m.name);
        }
        assert!(compared.contains_key("(unknown)"), "{compared:?}");
    }
}
