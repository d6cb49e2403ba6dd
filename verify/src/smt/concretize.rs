//! Concretizing: values out of Z3 models, and back into the model crate's terms for the
//! evaluator to replay. A model is read only through [`Concretize`] (a term's value, completed);
//! the rest of this file names those values: addresses ([`bits_addr`]), conntrack states,
//! interfaces and whole packets ([`SymPacket::read`]).

use std::net::IpAddr;

use sidecar_model::eval::{ConnState, IfName, Packet};
use sidecar_model::Family;
use z3::ast::{Bool, BV};

use super::{bv, Ifaces, SymPacket, IF_NONE};

/// A term whose value a model gives.
pub trait Concretize: Sized {
    /// The value.
    type Value;

    /// The value `m` gives the term, completed: what the model leaves open reads as 0 (false).
    fn concretize(&self, m: &z3::Model) -> Self::Value;

    /// That value as a constant of the term's sort (the term pinned to the model's choice).
    fn constant(&self, m: &z3::Model) -> Self;
}

impl Concretize for BV {
    type Value = u128;

    fn concretize(&self, m: &z3::Model) -> u128 {
        let v = self;
        let w = v.get_size();
        if w <= 64 {
            m.eval(v, true)
                .and_then(|x| x.as_u64())
                .map_or(0, u128::from)
        } else {
            let hi = m
                .eval(&v.extract(w - 1, 64), true)
                .and_then(|x| x.as_u64())
                .unwrap_or(0);
            let lo = m
                .eval(&v.extract(63, 0), true)
                .and_then(|x| x.as_u64())
                .unwrap_or(0);
            (u128::from(hi) << 64) | u128::from(lo)
        }
    }

    fn constant(&self, m: &z3::Model) -> BV {
        bv(self.concretize(m), self.get_size())
    }
}

impl Concretize for Bool {
    type Value = bool;

    fn concretize(&self, m: &z3::Model) -> bool {
        m.eval(self, true)
            .and_then(|x| x.as_bool())
            .unwrap_or(false)
    }

    fn constant(&self, m: &z3::Model) -> Bool {
        Bool::from_bool(self.concretize(m))
    }
}

/// The value of a bit-vector in a model (0 when the model leaves it open).
pub fn value(m: &z3::Model, v: &BV) -> u128 {
    v.concretize(m)
}

/// The value of a boolean in a model (false when the model leaves it open).
pub fn truth(m: &z3::Model, b: &Bool) -> bool {
    b.concretize(m)
}

/// The conntrack state of a code (`ct_code`'s inverse; a code above them reads as NEW).
fn ct_state(code: u128) -> ConnState {
    match code {
        1 => ConnState::Established,
        2 => ConnState::Related,
        3 => ConnState::Invalid,
        4 => ConnState::Untracked,
        _ => ConnState::New,
    }
}

/// The address of a number in `family`.
pub fn bits_addr(v: u128, family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::from(v as u32)),
        Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::from(v)),
    }
}

impl SymPacket {
    /// The concrete packet a model gives these terms.
    pub fn read(&self, m: &z3::Model, ifaces: &Ifaces, family: Family) -> Packet {
        let u = |v: &BV| value(m, v);
        let ifname = |v: &BV| {
            let i = u64::try_from(u(v)).unwrap_or(0);
            (i != IF_NONE).then(|| IfName::new(ifaces.name(i)))
        };
        Packet {
            proto: u(&self.proto) as u8,
            src: bits_addr(u(&self.src), family),
            dst: bits_addr(u(&self.dst), family),
            sport: u(&self.sport) as u16,
            dport: u(&self.dport) as u16,
            in_iface: ifname(&self.iif),
            out_iface: ifname(&self.oif),
            has_socket: truth(m, &self.has_socket),
            uid: u(&self.uid) as u32,
            gid: u(&self.gid) as u32,
            suppl: [0; 4],
            suppl_len: 0,
            mark: u(&self.mark) as u32,
            ctmark: u(&self.ctmark) as u32,
            ctstate: ct_state(u(&self.ctstate)),
            dnat_done: truth(m, &self.dnat_done),
            snat_done: truth(m, &self.snat_done),
            tcp_flags: u(&self.tcp_flags) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use sidecar_model::eval::{ConnState, IfName, Packet};
    use sidecar_model::Family;

    use super::super::{addr_width, Ifaces, SymPacket};

    const STATES: [ConnState; 5] = [
        ConnState::New,
        ConnState::Established,
        ConnState::Related,
        ConnState::Invalid,
        ConnState::Untracked,
    ];

    /// A packet with any value in every field the symbolic packet carries; interfaces among
    /// `lo`, `eth0` and none.
    fn packet() -> impl Strategy<Value = (Packet, Family)> {
        let addrs = prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(s, d)| (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                Family::Ipv4
            )),
            (any::<u128>(), any::<u128>()).prop_map(|(s, d)| (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                Family::Ipv6
            )),
        ];
        let iface = prop_oneof![Just(None), Just(Some("lo")), Just(Some("eth0"))];
        (
            addrs,
            (any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>()),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
            (iface.clone(), iface, 0..STATES.len()),
            (any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (src, dst, family),
                    (proto, sport, dport, tcp_flags),
                    (uid, gid, mark, ctmark),
                    (i, o, st),
                    (has_socket, dnat_done, snat_done),
                )| {
                    let packet = Packet {
                        proto,
                        src,
                        dst,
                        sport,
                        dport,
                        in_iface: i.map(IfName::new),
                        out_iface: o.map(IfName::new),
                        has_socket,
                        uid,
                        gid,
                        suppl: [0; 4],
                        suppl_len: 0,
                        mark,
                        ctmark,
                        ctstate: STATES.get(st).copied().unwrap(),
                        dnat_done,
                        snat_done,
                        tcp_flags,
                    };
                    (packet, family)
                },
            )
    }

    proptest! {
        /// What `SymPacket` promises of its widths: any packet (without supplementary groups,
        /// with enumerated interfaces) made into terms and read back out of a model is itself,
        /// every field at its extremes included.
        #[test]
        fn a_packet_made_terms_reads_back_unchanged((pkt, family) in packet()) {
            let ifaces = Ifaces::with_names(&[], &[]).unwrap();
            let terms = SymPacket::concrete(&pkt, &ifaces, addr_width(family));
            // Closed terms: the empty model evaluates them.
            let read = terms.read(&z3::Model::new(), &ifaces, family);
            prop_assert_eq!(read, pkt);
        }
    }
}
