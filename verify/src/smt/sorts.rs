//! Sorts: what the terms of the encoding are. Every header field is a bit-vector of a width
//! named here once, the interfaces are an enumeration ([`Ifaces`]), and [`SymPacket`] carries
//! them all; with the small term helpers every phase builds on ([`bv`], [`all`], [`any`],
//! [`and2`]).

use std::net::IpAddr;

use sidecar_model::eval::{ConnState, IfName, Packet};
use sidecar_model::pod::{ETH0, LO};
use sidecar_model::{Family, Ruleset};
use z3::ast::{Ast, Bool, BV};

use super::EncodeError;

/// Width of an IPv4 address: the address as one number, as [`std::net::Ipv4Addr`] is a `u32`.
pub const IPV4_BITS: u32 = u32::BITS;
/// Width of an IPv6 address: the address as one number, as [`std::net::Ipv6Addr`] is a `u128`.
pub const IPV6_BITS: u32 = u128::BITS;
/// Width of a port (`Packet::sport`, `Packet::dport`: `u16`).
pub const PORT_BITS: u32 = u16::BITS;
/// Width of a user id (`Packet::uid`: `u32`, the kernel's `kuid_t`).
pub const UID_BITS: u32 = u32::BITS;
/// Width of a group id (`Packet::gid`: `u32`, the kernel's `kgid_t`).
pub const GID_BITS: u32 = u32::BITS;
/// Width of a packet mark and a connection mark (`Packet::mark`, `Packet::ctmark`: `u32`, as
/// `skb->mark` and `ct->mark`).
pub const MARK_BITS: u32 = u32::BITS;
/// Width of the protocol number (`Packet::proto`: `u8`, the IP header's protocol field).
pub const PROTO_BITS: u32 = u8::BITS;
/// Width of the TCP flags (`Packet::tcp_flags`: `u8`, FIN to CWR).
pub const TCP_FLAGS_BITS: u32 = u8::BITS;
/// Width of the conntrack state: a code per [`ConnState`] (five of them).
pub const CT_BITS: u32 = 3;
/// Width of an interface variable: an index into [`Ifaces::names`].
pub const IF_BITS: u32 = 16;
/// Width of the count of a journey's hops through one listener
/// ([`super::SymJourney::passes`]), which compares it with a `u8`. It counts exactly while a
/// journey has fewer than 256 hops: a symbolic journey has at most the profile's `max_hops` + 1
/// (8 + 1 in the built-in profiles).
pub const HOP_COUNT_BITS: u32 = u8::BITS;

/// The most names an interface enumeration holds ([`EncodeError::TooManyInterfaces`] beyond).
pub const MAX_IFACES: usize = 60_000;

// What the two widths of our own carry, checked by the compiler: every conntrack code (the
// largest is UNTRACKED's) and every interface index fits its field.
const _: () = assert!(ct_code(ConnState::Untracked) < 1 << CT_BITS);
const _: () = assert!(MAX_IFACES < 1 << IF_BITS);

/// The address width of `family`: [`IPV4_BITS`] or [`IPV6_BITS`].
pub fn addr_width(family: Family) -> u32 {
    if family == Family::Ipv4 {
        IPV4_BITS
    } else {
        IPV6_BITS
    }
}

/// The interface enumeration: index 0 is "no interface".
///
/// An interface variable ([`SymPacket::iif`], [`SymPacket::oif`]) is an index into
/// [`Ifaces::names`], [`IF_BITS`] wide. Invariant: there are at most [`MAX_IFACES`] names, so
/// every index fits; a variable that stays below `names.len()` ([`Ifaces::valid`], which the
/// first-packet facts assert) names an interface, and the indices [`IF_NONE`], [`IF_LO`] and
/// [`IF_ETH0`] are the same in every enumeration.
#[derive(Debug, Clone)]
pub struct Ifaces {
    /// The names; `names[0]` is empty (no interface).
    pub names: Vec<String>,
}

/// The enumeration index of "no interface".
pub const IF_NONE: u64 = 0;
/// The enumeration index of `lo`.
pub const IF_LO: u64 = 1;
/// The enumeration index of `eth0`.
pub const IF_ETH0: u64 = 2;

impl Ifaces {
    /// The enumeration for a ruleset (both families' tables).
    pub fn new(rs: &Ruleset) -> Result<Ifaces, EncodeError> {
        Ifaces::with_names(&[rs], &[])
    }

    /// One enumeration for several rulesets (the sides of a diff share their symbolic packet, so
    /// an index must name the same interface on both) with `extra` names enumerated too (a
    /// profile's virtual interfaces), right after lo and eth0.
    pub fn with_names(rss: &[&Ruleset], extra: &[String]) -> Result<Ifaces, EncodeError> {
        let mut names = vec![String::new(), LO.to_string(), ETH0.to_string()];
        for n in extra {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let mut patterns: Vec<String> = Vec::new();
        for (rs, fam) in rss
            .iter()
            .flat_map(|rs| [(rs, Family::Ipv4), (rs, Family::Ipv6)])
        {
            for t in rs.tables(fam) {
                for c in &t.chains {
                    for r in &c.rules {
                        for i in [&r.in_iface, &r.out_iface].into_iter().flatten() {
                            if !patterns.contains(&i.value.0) {
                                patterns.push(i.value.0.clone());
                            }
                        }
                    }
                }
            }
        }
        for p in &patterns {
            if !p.ends_with('+') && !names.contains(p) {
                names.push(p.clone());
            }
        }
        // A name for each `+` pattern beyond the listed ones: the prefix and a character no
        // listed name continues with.
        for p in &patterns {
            if let Some(prefix) = p.strip_suffix('+') {
                let rep = (0u8..=255)
                    .map(|n| format!("{prefix}~{n}"))
                    .find(|cand| cand.len() <= 15 && !names.contains(cand));
                if let Some(rep) = rep {
                    names.push(rep);
                } else if !names.iter().any(|n| n == prefix) && !prefix.is_empty() {
                    names.push(prefix.to_string());
                }
            }
        }
        let pats: Vec<sidecar_model::Iface> = patterns
            .iter()
            .map(|p| sidecar_model::Iface(p.clone()))
            .collect();
        if let Some(other) = (0u32..100_000)
            .map(|n| format!("x{n}"))
            .find(|n| !names.contains(n) && !pats.iter().any(|p| p.matches(n)))
        {
            names.push(other);
        }
        if names.len() > MAX_IFACES {
            return Err(EncodeError::TooManyInterfaces);
        }
        Ok(Ifaces { names })
    }

    /// The index of a name, if enumerated.
    pub fn index(&self, name: &str) -> Option<u64> {
        self.names.iter().position(|n| n == name).map(|i| i as u64)
    }

    /// The name at an index ("" for none).
    pub fn name(&self, i: u64) -> &str {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("", String::as_str)
    }

    /// `var` names an interface `pat` matches.
    pub(super) fn matches(&self, var: &BV, pat: &sidecar_model::Iface) -> Bool {
        let hits: Vec<Bool> = self
            .names
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, n)| pat.matches(n))
            .map(|(i, _)| var.eq(bv(i as u128, IF_BITS)))
            .collect();
        any(&hits)
    }

    /// The bound every interface variable stays within.
    pub fn valid(&self, var: &BV) -> Bool {
        var.bvult(bv(self.names.len() as u128, IF_BITS))
    }
}

/// A bit-vector constant.
pub fn bv(v: u128, width: u32) -> BV {
    if width <= 64 {
        BV::from_u64(
            u64::try_from(v & ((1u128 << width) - 1)).unwrap_or(0),
            width,
        )
    } else {
        let hi = BV::from_u64(u64::try_from(v >> 64).unwrap_or(0), width - 64);
        let lo = BV::from_u64(u64::try_from(v & u128::from(u64::MAX)).unwrap_or(0), 64);
        hi.concat(&lo)
    }
}

/// Conjunction (true when empty).
pub fn all(v: &[Bool]) -> Bool {
    if v.is_empty() {
        Bool::from_bool(true)
    } else {
        Bool::and(v)
    }
}

/// Disjunction (false when empty).
pub fn any(v: &[Bool]) -> Bool {
    if v.is_empty() {
        Bool::from_bool(false)
    } else {
        Bool::or(v)
    }
}

/// `a` and `b`.
pub fn and2(a: &Bool, b: &Bool) -> Bool {
    Bool::and(&[a.clone(), b.clone()])
}

/// `a` or `b`.
pub(super) fn or2(a: &Bool, b: &Bool) -> Bool {
    Bool::or(&[a.clone(), b.clone()])
}

/// Conntrack states as encoded ([`CT_BITS`] wide; `concretize::ct_state` reads them back).
pub(super) const fn ct_code(s: ConnState) -> u128 {
    match s {
        ConnState::New => 0,
        ConnState::Established => 1,
        ConnState::Related => 2,
        ConnState::Invalid => 3,
        ConnState::Untracked => 4,
    }
}

/// A packet as netfilter sees it, symbolically (the fields of [`Packet`] but the supplementary
/// groups, which connections here never have).
///
/// Each field is a boolean or a bit-vector of the width named for it above, which is that of its
/// [`Packet`] field. Invariants: both addresses have the width of the encoding's family
/// ([`addr_width`]), so the packets of one encoding compare field by field; every value of a
/// [`Packet`] field is a value of its term and back, so that [`SymPacket::concrete`] and
/// [`SymPacket::read`] lose nothing, but for interfaces, which are indices into the encoder's
/// [`Ifaces`] (a name it does not list stands as its last name, the one no pattern matches), and
/// the conntrack state, which is a code that fits [`CT_BITS`].
#[derive(Debug, Clone)]
pub struct SymPacket {
    /// The protocol number, [`PROTO_BITS`] wide.
    pub proto: BV,
    /// The source address, [`IPV4_BITS`] or [`IPV6_BITS`] wide.
    pub src: BV,
    /// The destination address, [`IPV4_BITS`] or [`IPV6_BITS`] wide.
    pub dst: BV,
    /// The source port, [`PORT_BITS`] wide.
    pub sport: BV,
    /// The destination port, [`PORT_BITS`] wide.
    pub dport: BV,
    /// The incoming interface, an index into [`Ifaces`], [`IF_BITS`] wide.
    pub iif: BV,
    /// The outgoing interface, an index into [`Ifaces`], [`IF_BITS`] wide.
    pub oif: BV,
    /// The packet has a local socket (it was generated here).
    pub has_socket: Bool,
    /// The socket's user id, [`UID_BITS`] wide.
    pub uid: BV,
    /// The socket's group id, [`GID_BITS`] wide.
    pub gid: BV,
    /// The packet mark, [`MARK_BITS`] wide.
    pub mark: BV,
    /// The connection mark, [`MARK_BITS`] wide.
    pub ctmark: BV,
    /// The conntrack state's code, [`CT_BITS`] wide.
    pub ctstate: BV,
    /// The connection's destination was translated (`--ctstate DNAT`).
    pub dnat_done: Bool,
    /// The connection's source was translated (`--ctstate SNAT`).
    pub snat_done: Bool,
    /// The TCP flags, [`TCP_FLAGS_BITS`] wide.
    pub tcp_flags: BV,
}

impl SymPacket {
    /// A packet of fresh variables named after `prefix`.
    pub fn fresh(prefix: &str, width: u32) -> SymPacket {
        let b = |n: &str, w: u32| BV::new_const(format!("{prefix}_{n}"), w);
        SymPacket {
            proto: b("proto", PROTO_BITS),
            src: b("src", width),
            dst: b("dst", width),
            sport: b("sport", PORT_BITS),
            dport: b("dport", PORT_BITS),
            iif: b("iif", IF_BITS),
            oif: b("oif", IF_BITS),
            has_socket: Bool::new_const(format!("{prefix}_has_socket")),
            uid: b("uid", UID_BITS),
            gid: b("gid", GID_BITS),
            mark: b("mark", MARK_BITS),
            ctmark: b("ctmark", MARK_BITS),
            ctstate: b("ctstate", CT_BITS),
            dnat_done: Bool::new_const(format!("{prefix}_dnat_done")),
            snat_done: Bool::new_const(format!("{prefix}_snat_done")),
            tcp_flags: b("tcp_flags", TCP_FLAGS_BITS),
        }
    }

    /// The terms of a concrete packet.
    pub fn concrete(p: &Packet, ifaces: &Ifaces, width: u32) -> SymPacket {
        let ifv = |n: &Option<IfName>| {
            let i = n
                .as_ref()
                .map_or(Some(IF_NONE), |n| ifaces.index(n.as_str()));
            bv(
                u128::from(i.unwrap_or(ifaces.names.len() as u64 - 1)),
                IF_BITS,
            )
        };
        SymPacket {
            proto: bv(u128::from(p.proto), PROTO_BITS),
            src: bv(addr_bits(p.src), width),
            dst: bv(addr_bits(p.dst), width),
            sport: bv(u128::from(p.sport), PORT_BITS),
            dport: bv(u128::from(p.dport), PORT_BITS),
            iif: ifv(&p.in_iface),
            oif: ifv(&p.out_iface),
            has_socket: Bool::from_bool(p.has_socket),
            uid: bv(u128::from(p.uid), UID_BITS),
            gid: bv(u128::from(p.gid), GID_BITS),
            mark: bv(u128::from(p.mark), MARK_BITS),
            ctmark: bv(u128::from(p.ctmark), MARK_BITS),
            ctstate: bv(ct_code(p.ctstate), CT_BITS),
            dnat_done: Bool::from_bool(p.dnat_done),
            snat_done: Bool::from_bool(p.snat_done),
            tcp_flags: bv(u128::from(p.tcp_flags), TCP_FLAGS_BITS),
        }
    }

    /// `a` where `c` holds, else `b`, field by field (a field that is the same term in both
    /// stays that term: an unchanged field keeps its identity, which `encode::focus` relies on,
    /// and the terms stay small).
    pub(super) fn ite(c: &Bool, a: &SymPacket, b: &SymPacket) -> SymPacket {
        fn pick<T: Ast + Clone + PartialEq>(c: &Bool, a: &T, b: &T) -> T {
            if a == b {
                b.clone()
            } else {
                c.ite(a, b)
            }
        }
        SymPacket {
            proto: pick(c, &a.proto, &b.proto),
            src: pick(c, &a.src, &b.src),
            dst: pick(c, &a.dst, &b.dst),
            sport: pick(c, &a.sport, &b.sport),
            dport: pick(c, &a.dport, &b.dport),
            iif: pick(c, &a.iif, &b.iif),
            oif: pick(c, &a.oif, &b.oif),
            has_socket: pick(c, &a.has_socket, &b.has_socket),
            uid: pick(c, &a.uid, &b.uid),
            gid: pick(c, &a.gid, &b.gid),
            mark: pick(c, &a.mark, &b.mark),
            ctmark: pick(c, &a.ctmark, &b.ctmark),
            ctstate: pick(c, &a.ctstate, &b.ctstate),
            dnat_done: pick(c, &a.dnat_done, &b.dnat_done),
            snat_done: pick(c, &a.snat_done, &b.snat_done),
            tcp_flags: pick(c, &a.tcp_flags, &b.tcp_flags),
        }
    }
}

/// An address as an unsigned number (IPv4 in the low [`IPV4_BITS`]).
pub fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}
