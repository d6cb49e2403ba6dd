//! One hop: a connection's first packet through the pod, generated here (OUTPUT, reroute,
//! POSTROUTING, and over lo PREROUTING and INPUT) or from outside (PREROUTING, then INPUT when it
//! is for the pod); the facts every first packet has, and the routing scope.

use sidecar_model::eval::ConnState;
use sidecar_model::pod::{Profile, ETH0};
use sidecar_model::Hook;
use z3::ast::{Bool, BV};

use super::chain::{Fx, SymHit};
use super::Encoder;
use crate::smt::{
    all, and2, any, bv, ct_code, or2, EncodeError, SymPacket, CT_BITS, GID_BITS, IF_BITS, IF_ETH0,
    IF_LO, IF_NONE, MARK_BITS, PORT_BITS, PROTO_BITS, TCP_FLAGS_BITS, UID_BITS,
};

/// One hop: a connection's first packet through the pod, symbolically.
#[derive(Debug, Clone)]
pub struct SymHop {
    /// The packet came in on eth0 (PREROUTING) instead of being generated here (OUTPUT).
    pub outside: Bool,
    /// The packet as it entered.
    pub entered: SymPacket,
    /// Every place a rule is tried, in evaluation order.
    pub hits: Vec<SymHit>,
    /// Dropped or rejected.
    pub dropped: Bool,
    /// Rejected.
    pub rejected: Bool,
    /// Delivered in the pod (not dropped).
    pub local: Bool,
    /// The port it was delivered to (TPROXY's port, or the final destination port).
    pub port: BV,
    /// The final destination address.
    pub final_dst: BV,
    /// The final destination port.
    pub final_dport: BV,
    /// A nat rule rewrote the destination.
    pub dnat: Bool,
    /// TPROXY took it.
    pub tproxy: Bool,
}

impl SymHop {
    /// Not dropped and either translated or taken by TPROXY.
    pub fn redirected(&self) -> Bool {
        all(&[self.dropped.not(), or2(&self.dnat, &self.tproxy)])
    }

    /// Delivered in the pod to `port`.
    pub fn delivered_local(&self, port: u16) -> Bool {
        and2(&self.local, &self.port.eq(bv(u128::from(port), PORT_BITS)))
    }

    /// Delivered to the proxy listener `port` (a port of the profile's proxy ports).
    pub fn listener(&self, port: u16, profile: &Profile) -> Bool {
        if profile.proxy_ports.contains(&port) {
            self.delivered_local(port)
        } else {
            Bool::from_bool(false)
        }
    }
}

impl Encoder<'_> {
    /// One hop of a first packet `first` (entering at OUTPUT unless `outside`). When
    /// `may_be_outside` is false, `outside` must be false and the PREROUTING entry is not built.
    pub fn hop(
        &mut self,
        first: &SymPacket,
        outside: &Bool,
        may_be_outside: bool,
    ) -> Result<SymHop, EncodeError> {
        let none = bv(u128::from(IF_NONE), IF_BITS);
        let lo = bv(u128::from(IF_LO), IF_BITS);
        let mut hits = Vec::new();

        // Generated here: OUTPUT, reroute, POSTROUTING, then over lo PREROUTING and INPUT.
        let mut a = first.clone();
        let la = outside.not();
        let mut fx = Fx::new();
        let (d1, r1) = self.pass(Hook::Output, &mut a, &la, false, &mut fx, &mut hits)?;
        let live1 = all(&[la.clone(), d1.not(), r1.not()]);
        a.oif = fx.dnat().ite(&self.route_oif(&a.dst), &a.oif);
        let mut fx_post = Fx::new();
        let (d2, r2) = self.pass(
            Hook::Postrouting,
            &mut a,
            &live1,
            false,
            &mut fx_post,
            &mut hits,
        )?;
        let live2 = all(&[live1, d2.not(), r2.not()]);
        let looped = and2(&live2, &Self::iface_is(&a.oif, IF_LO));
        a.iif = looped.ite(&lo, &a.iif);
        a.oif = looped.ite(&none, &a.oif);
        let mut fx_pre = Fx::new();
        let (d3, r3) = self.pass(
            Hook::Prerouting,
            &mut a,
            &looped,
            true,
            &mut fx_pre,
            &mut hits,
        )?;
        let local_a = all(&[looped, d3.not(), r3.not()]);
        let mut fx_in = Fx::new();
        let (d4, r4) = self.pass(Hook::Input, &mut a, &local_a, true, &mut fx_in, &mut hits)?;
        let rej_a = any(&[r1, r2, r3, r4]);
        let drop_a = any(&[d1, d2, d3, d4, rej_a.clone()]);
        let dnat_a = fx.dnat();
        let tproxy_a = fx_pre.tproxy();
        let tport_a = fx_pre.tport;

        if !may_be_outside {
            let port = tproxy_a.ite(&tport_a, &a.dport);
            return Ok(SymHop {
                outside: outside.clone(),
                entered: first.clone(),
                hits,
                local: and2(&local_a, &drop_a.not()),
                dropped: drop_a,
                rejected: rej_a,
                port,
                final_dst: a.dst,
                final_dport: a.dport,
                dnat: dnat_a,
                tproxy: tproxy_a,
            });
        }

        // From outside: PREROUTING, then INPUT when it is for the pod.
        let mut b = first.clone();
        let mut fxb = Fx::new();
        let (e1, s1) = self.pass(
            Hook::Prerouting,
            &mut b,
            outside,
            false,
            &mut fxb,
            &mut hits,
        )?;
        let blive = all(&[outside.clone(), e1.not(), s1.not()]);
        let local_b = and2(&blive, &or2(&fxb.tproxy(), &self.is_local(&b.dst)));
        let fwd = and2(&blive, &local_b.not());
        b.oif = local_b.ite(&none, &b.oif);
        let mut fxb_in = Fx::new();
        let (e2, s2) = self.pass(Hook::Input, &mut b, &local_b, false, &mut fxb_in, &mut hits)?;
        let rej_b = or2(&s1, &s2);
        let drop_b = any(&[e1, e2, fwd, rej_b.clone()]);

        let m = SymPacket::ite(outside, &b, &a);
        let dropped = outside.ite(&drop_b, &drop_a);
        let local = and2(&outside.ite(&local_b, &local_a), &dropped.not());
        let tproxy = outside.ite(&fxb.tproxy(), &tproxy_a);
        let tport = outside.ite(&fxb.tport, &tport_a);
        Ok(SymHop {
            outside: outside.clone(),
            entered: first.clone(),
            hits,
            local,
            rejected: outside.ite(&rej_b, &rej_a),
            dropped,
            port: tproxy.ite(&tport, &m.dport),
            final_dst: m.dst,
            final_dport: m.dport,
            dnat: outside.ite(&fxb.dnat(), &dnat_a),
            tproxy,
        })
    }

    /// The first-packet facts every connection's first packet has (mark 0, conntrack NEW, the
    /// SYN flag for TCP, no interface on the side it has not crossed yet, a socket iff local).
    pub fn first_packet_facts(&self, p: &SymPacket, outside: &Bool) -> Bool {
        let none = |v: &BV| Self::iface_is(v, IF_NONE);
        // Applications' sockets carry no mark; the proxy's carry its mark when the profile
        // identifies it by one (and its connections are generated here).
        let mark = match self.profile.proxy_mark {
            Some(m) => or2(
                &p.mark.eq(bv(0, MARK_BITS)),
                &and2(&outside.not(), &p.mark.eq(bv(u128::from(m), MARK_BITS))),
            ),
            None => p.mark.eq(bv(0, MARK_BITS)),
        };
        all(&[
            self.ifaces.valid(&p.iif),
            self.ifaces.valid(&p.oif),
            mark,
            p.ctmark.eq(bv(0, MARK_BITS)),
            p.ctstate.eq(bv(ct_code(ConnState::New), CT_BITS)),
            p.dnat_done.not(),
            p.snat_done.not(),
            p.tcp_flags.eq(p
                .proto
                .eq(bv(6, PROTO_BITS))
                .ite(&bv(2, TCP_FLAGS_BITS), &bv(0, TCP_FLAGS_BITS))),
            outside.ite(
                &all(&[
                    none(&p.oif),
                    none(&p.iif).not(),
                    p.has_socket.not(),
                    p.uid.eq(bv(0, UID_BITS)),
                    p.gid.eq(bv(0, GID_BITS)),
                ]),
                &all(&[none(&p.iif), none(&p.oif).not(), p.has_socket.clone()]),
            ),
        ])
    }

    /// The scope of a proof about the first packet `p`: its facts, and routing
    /// ([`Encoder::routable`]) when `routing` (the default; `--no-routing` leaves it out).
    pub fn scope(&self, p: &SymPacket, outside: &Bool, routing: bool) -> Bool {
        let facts = self.first_packet_facts(p, outside);
        if routing {
            super::super::all(&[facts, self.routable(p, outside)])
        } else {
            facts
        }
    }

    /// Routing: the packet is one the pod produces. Generated here: TCP or UDP, out by lo iff
    /// the destination is local, from a local address (a pod IP for a non-local destination;
    /// the passthrough source counts as local). From outside: on eth0, to a pod IP, from a
    /// non-local address.
    pub fn routable(&self, p: &SymPacket, outside: &Bool) -> Bool {
        let pass = self.addr(self.profile.passthrough(self.family));
        let dst_local = self.is_local(&p.dst);
        let src_ok = dst_local.ite(
            &or2(&self.is_local(&p.src), &p.src.eq(&pass)),
            &self.is_pod_ip(&p.src),
        );
        all(&[
            or2(
                &p.proto.eq(bv(6, PROTO_BITS)),
                &p.proto.eq(bv(17, PROTO_BITS)),
            ),
            outside.ite(
                &all(&[
                    self.is_local(&p.src).not(),
                    p.src.eq(&pass).not(),
                    or2(
                        // On eth0, for the pod (unless eth0 is a VM's interface).
                        &if self.profile.virtual_interfaces.iter().any(|v| v == ETH0) {
                            Bool::from_bool(false)
                        } else {
                            and2(&Self::iface_is(&p.iif, IF_ETH0), &self.is_pod_ip(&p.dst))
                        },
                        // On a VM's virtual interface, to anywhere but loopback (a
                        // martian destination off lo).
                        &and2(
                            &self.is_loopback(&p.dst).not(),
                            &any(&self
                                .profile
                                .virtual_interfaces
                                .iter()
                                .filter_map(|v| self.ifaces.index(v))
                                .map(|i| Self::iface_is(&p.iif, i))
                                .collect::<Vec<_>>()),
                        ),
                    ),
                ]),
                &and2(&p.oif.eq(self.route_oif(&p.dst)), &src_ok),
            ),
        ])
    }
}
