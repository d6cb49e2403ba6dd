//! [`Dom`] over a concrete journey (the evaluator's): for sampling connections, and for
//! replaying every counterexample the solver finds.

use std::net::IpAddr;

use ipnet::IpNet;
use sidecar_model::eval::Packet;
use sidecar_model::pod::{Delivery, HopVerdict, Journey, Outcome, Pod, LO};
use sidecar_model::{Family, Hook};

use super::Dom;

/// The facts of a concrete journey (the evaluator's).
pub struct Concrete<'a> {
    /// Where the first packet entered.
    pub entry: Hook,
    /// The first packet.
    pub first: Packet,
    /// Its journey.
    pub journey: &'a Journey,
    /// The pod.
    pub pod: &'a Pod,
}

impl Concrete<'_> {
    fn hop1(&self) -> Option<&sidecar_model::pod::HopReport> {
        self.journey.hops.first()
    }
}

impl Dom for Concrete<'_> {
    type B = bool;
    fn lit(&self, b: bool) -> bool {
        b
    }
    fn and(&self, v: Vec<bool>) -> bool {
        v.into_iter().all(|b| b)
    }
    fn or(&self, v: Vec<bool>) -> bool {
        v.into_iter().any(|b| b)
    }
    fn not(&self, b: bool) -> bool {
        !b
    }
    fn family(&self) -> Family {
        self.first.family()
    }
    fn outside(&self) -> bool {
        self.entry != Hook::Output
    }
    fn tcp(&self) -> bool {
        self.first.proto == 6
    }
    fn udp(&self) -> bool {
        self.first.proto == 17
    }
    fn uid_is(&self, v: u32) -> bool {
        self.first.uid == v
    }
    fn gid_is(&self, v: u32) -> bool {
        self.first.gid == v
    }
    fn src_is(&self, a: IpAddr) -> bool {
        self.first.src == a
    }
    fn src_in(&self, net: &IpNet) -> bool {
        net.contains(&self.first.src)
    }
    fn mark_is(&self, value: u32, mask: u32) -> bool {
        self.first.mark & mask == value & mask
    }
    fn in_iface(&self, name: &str) -> bool {
        self.entry != Hook::Output && self.first.in_iface.is_some_and(|i| i.as_str() == name)
    }
    fn dst_in(&self, net: &IpNet) -> bool {
        net.contains(&self.first.dst)
    }
    fn dst_local(&self) -> bool {
        self.pod.is_local(self.first.dst)
    }
    fn dst_loopback(&self) -> bool {
        self.first.dst.is_loopback()
    }
    fn src_local(&self) -> bool {
        self.pod.is_local(self.first.src)
    }
    fn dport_is(&self, p: u16) -> bool {
        self.first.dport == p
    }
    fn out_lo(&self) -> bool {
        self.first.out_iface.is_some_and(|i| i.as_str() == LO)
    }
    fn redirected(&self) -> bool {
        self.hop1().is_some_and(|h| {
            matches!(
                h.verdict,
                HopVerdict::Redirect(_) | HopVerdict::Dnat(_) | HopVerdict::Tproxy(_)
            )
        })
    }
    fn delivered(&self, port: u16) -> bool {
        self.hop1().is_some_and(
            |h| matches!(h.delivered_to, Delivery::Listener(p) | Delivery::App(p) if p == port),
        )
    }
    fn loops(&self) -> bool {
        self.journey.outcome == Outcome::Loop
    }
    fn passes(&self, port: u16, n: u8) -> bool {
        self.journey
            .hops
            .iter()
            .filter(|h| h.delivered_to == Delivery::Listener(port))
            .count()
            == usize::from(n)
    }
}
