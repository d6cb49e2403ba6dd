//! [`Dom`] over Z3 terms: a violation built here is one query over every connection in scope.

use std::net::IpAddr;

use ipnet::IpNet;
use sidecar_model::Family;
use z3::ast::Bool;

use super::Dom;
use crate::smt::{
    all, and2, any, bv, Encoder, SymHop, SymJourney, SymPacket, GID_BITS, IF_BITS, IF_LO,
    MARK_BITS, PORT_BITS, PROTO_BITS, UID_BITS,
};

/// The facts of a symbolic journey (Z3 terms).
pub struct Symbolic<'a, 'e> {
    /// The encoder (family, pod, profile).
    pub enc: &'a Encoder<'e>,
    /// The first packet.
    pub first: &'a SymPacket,
    /// Whether it arrives from outside.
    pub outside: &'a Bool,
    /// The journey (its first hop is the connection's).
    pub journey: &'a SymJourney,
}

impl Symbolic<'_, '_> {
    fn hop1(&self) -> Option<&SymHop> {
        self.journey.hops.first()
    }
}

impl Dom for Symbolic<'_, '_> {
    type B = Bool;
    fn lit(&self, b: bool) -> Bool {
        Bool::from_bool(b)
    }
    fn and(&self, v: Vec<Bool>) -> Bool {
        all(&v)
    }
    fn or(&self, v: Vec<Bool>) -> Bool {
        any(&v)
    }
    fn not(&self, b: Bool) -> Bool {
        b.not()
    }
    fn family(&self) -> Family {
        self.enc.family
    }
    fn outside(&self) -> Bool {
        self.outside.clone()
    }
    fn tcp(&self) -> Bool {
        self.first.proto.eq(bv(6, PROTO_BITS))
    }
    fn udp(&self) -> Bool {
        self.first.proto.eq(bv(17, PROTO_BITS))
    }
    fn uid_is(&self, v: u32) -> Bool {
        self.first.uid.eq(bv(u128::from(v), UID_BITS))
    }
    fn gid_is(&self, v: u32) -> Bool {
        self.first.gid.eq(bv(u128::from(v), GID_BITS))
    }
    fn src_is(&self, a: IpAddr) -> Bool {
        if a.is_ipv4() != (self.enc.family == Family::Ipv4) {
            return Bool::from_bool(false);
        }
        self.first.src.eq(self.enc.addr(a))
    }
    fn src_in(&self, net: &IpNet) -> Bool {
        self.enc
            .in_net(&self.first.src, net.network(), net.prefix_len())
    }
    fn mark_is(&self, value: u32, mask: u32) -> Bool {
        self.first
            .mark
            .bvand(bv(u128::from(mask), MARK_BITS))
            .eq(bv(u128::from(value & mask), MARK_BITS))
    }
    fn in_iface(&self, name: &str) -> Bool {
        self.enc.ifaces.index(name).map_or_else(
            || Bool::from_bool(false),
            |i| and2(self.outside, &self.first.iif.eq(bv(u128::from(i), IF_BITS))),
        )
    }
    fn dst_in(&self, net: &IpNet) -> Bool {
        self.enc
            .in_net(&self.first.dst, net.network(), net.prefix_len())
    }
    fn dst_local(&self) -> Bool {
        self.enc.is_local(&self.first.dst)
    }
    fn dst_loopback(&self) -> Bool {
        self.enc.is_loopback(&self.first.dst)
    }
    fn src_local(&self) -> Bool {
        self.enc.is_local(&self.first.src)
    }
    fn dport_is(&self, p: u16) -> Bool {
        self.first.dport.eq(bv(u128::from(p), PORT_BITS))
    }
    fn out_lo(&self) -> Bool {
        self.first.oif.eq(bv(u128::from(IF_LO), IF_BITS))
    }
    fn redirected(&self) -> Bool {
        self.hop1()
            .map_or_else(|| Bool::from_bool(false), SymHop::redirected)
    }
    fn delivered(&self, port: u16) -> Bool {
        self.hop1()
            .map_or_else(|| Bool::from_bool(false), |h| h.delivered_local(port))
    }
    fn loops(&self) -> Bool {
        self.journey.looped.clone()
    }
    fn passes(&self, port: u16, n: u8) -> Bool {
        self.journey.passes(port, n, self.enc.profile)
    }
}
