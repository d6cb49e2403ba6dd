//! The SMT encoding: a ruleset, the pod around it and the proxy's re-connections as
//! quantifier-free bit-vector terms over one symbolic first packet (Z3, through the `z3` crate
//! and the system's libz3).
//!
//! The encoding mirrors the concrete evaluator ([`sidecar_model::eval`]) and the pod model
//! ([`sidecar_model::pod::Simulator::hop`]) decision for decision, so that a packet fixed in the
//! solver gives exactly the hits, verdict and delivery the evaluator computes (a property the test
//! suite checks on random rulesets and packets):
//!
//! * every header field is a bit-vector: addresses 32 or 128 bits (one family per encoding),
//!   ports 16, uid/gid/marks 32, protocol and TCP flags 8, the conntrack state 3;
//! * interfaces are a finite enumeration ([`Ifaces`]): "none", `lo`, `eth0`, every name the
//!   ruleset mentions, one name per `+` pattern that no listed name stands for, and one name
//!   that no pattern matches;
//! * a table is unrolled along its (acyclic) jump graph: each rule gets a `reach` term (control
//!   stands before it) and a `fires` term (its matches hold there); targets that change the
//!   packet (MARK, CONNMARK, REDIRECT, DNAT, TPROXY, …) update the symbolic state guarded by
//!   `fires`; jump, goto and RETURN follow the kernel's stack discipline; no depth limit beyond
//!   the size budget;
//! * nat runs only for NEW connections, and only when some rule turns connection tracking on
//!   ([`conntrack_active`]);
//! * a match the model cannot interpret (`-m socket`, `-m set`, `-m statistic`, unknown
//!   modules, owner names) is a fresh free boolean at each place it is tried, so a proof holds
//!   whichever way it goes; with [`Encoder::undecided_free`] off it is false, as the evaluator
//!   takes it.
//!
//! A hop runs the first packet through OUTPUT, POSTROUTING and, over lo, PREROUTING (no second
//! nat decision) and INPUT; or, from outside, PREROUTING and INPUT. A journey chains hops
//! through the proxy's listeners as [`sidecar_model::pod::Simulator::journey`] does, up to the
//! profile's hop bound plus one, with its loop detection.

use std::net::IpAddr;

use sidecar_model::eval::{conntrack_active, hook_tables, ConnState, IfName, Packet};
use sidecar_model::pod::{InboundSource, Pod, Profile, ETH0, LO};
use sidecar_model::{Family, Hook, Policy, Rule, Ruleset, TableKind, Target};
use z3::ast::{Bool, BV};

pub mod agree;
mod matches;
pub mod solve;

/// Why a ruleset could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The unrolled ruleset exceeds the size budget.
    #[error("the ruleset unrolls to more than {0} rule instances; too large to encode")]
    TooLarge(usize),
    /// More interface names than the enumeration holds.
    #[error("the ruleset names more than 60000 interfaces")]
    TooManyInterfaces,
}

/// The interface enumeration: index 0 is "no interface".
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
/// Width of an interface variable.
pub const IF_BITS: u32 = 16;

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
        if names.len() > 60_000 {
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

    fn matches(&self, var: &BV, pat: &sidecar_model::Iface) -> Bool {
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

/// The value of a bit-vector in a model (0 when the model leaves it open).
pub fn value(m: &z3::Model, v: &BV) -> u128 {
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

/// The value of a boolean in a model (false when the model leaves it open).
pub fn truth(m: &z3::Model, b: &Bool) -> bool {
    m.eval(b, true).and_then(|x| x.as_bool()).unwrap_or(false)
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

fn or2(a: &Bool, b: &Bool) -> Bool {
    Bool::or(&[a.clone(), b.clone()])
}

/// Conntrack states as encoded (3 bits).
fn ct_code(s: ConnState) -> u128 {
    match s {
        ConnState::New => 0,
        ConnState::Established => 1,
        ConnState::Related => 2,
        ConnState::Invalid => 3,
        ConnState::Untracked => 4,
    }
}

fn ct_state(code: u128) -> ConnState {
    match code {
        1 => ConnState::Established,
        2 => ConnState::Related,
        3 => ConnState::Invalid,
        4 => ConnState::Untracked,
        _ => ConnState::New,
    }
}

/// A packet as netfilter sees it, symbolically (the fields of [`Packet`] but the supplementary
/// groups, which connections here never have).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct SymPacket {
    pub proto: BV,
    pub src: BV,
    pub dst: BV,
    pub sport: BV,
    pub dport: BV,
    pub iif: BV,
    pub oif: BV,
    pub has_socket: Bool,
    pub uid: BV,
    pub gid: BV,
    pub mark: BV,
    pub ctmark: BV,
    pub ctstate: BV,
    pub dnat_done: Bool,
    pub snat_done: Bool,
    pub tcp_flags: BV,
}

impl SymPacket {
    /// A packet of fresh variables named after `prefix`.
    pub fn fresh(prefix: &str, width: u32) -> SymPacket {
        let b = |n: &str, w: u32| BV::new_const(format!("{prefix}_{n}"), w);
        SymPacket {
            proto: b("proto", 8),
            src: b("src", width),
            dst: b("dst", width),
            sport: b("sport", 16),
            dport: b("dport", 16),
            iif: b("iif", IF_BITS),
            oif: b("oif", IF_BITS),
            has_socket: Bool::new_const(format!("{prefix}_has_socket")),
            uid: b("uid", 32),
            gid: b("gid", 32),
            mark: b("mark", 32),
            ctmark: b("ctmark", 32),
            ctstate: b("ctstate", 3),
            dnat_done: Bool::new_const(format!("{prefix}_dnat_done")),
            snat_done: Bool::new_const(format!("{prefix}_snat_done")),
            tcp_flags: b("tcp_flags", 8),
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
            proto: bv(u128::from(p.proto), 8),
            src: bv(addr_bits(p.src), width),
            dst: bv(addr_bits(p.dst), width),
            sport: bv(u128::from(p.sport), 16),
            dport: bv(u128::from(p.dport), 16),
            iif: ifv(&p.in_iface),
            oif: ifv(&p.out_iface),
            has_socket: Bool::from_bool(p.has_socket),
            uid: bv(u128::from(p.uid), 32),
            gid: bv(u128::from(p.gid), 32),
            mark: bv(u128::from(p.mark), 32),
            ctmark: bv(u128::from(p.ctmark), 32),
            ctstate: bv(ct_code(p.ctstate), 3),
            dnat_done: Bool::from_bool(p.dnat_done),
            snat_done: Bool::from_bool(p.snat_done),
            tcp_flags: bv(u128::from(p.tcp_flags), 8),
        }
    }

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

    fn ite(c: &Bool, a: &SymPacket, b: &SymPacket) -> SymPacket {
        SymPacket {
            proto: c.ite(&a.proto, &b.proto),
            src: c.ite(&a.src, &b.src),
            dst: c.ite(&a.dst, &b.dst),
            sport: c.ite(&a.sport, &b.sport),
            dport: c.ite(&a.dport, &b.dport),
            iif: c.ite(&a.iif, &b.iif),
            oif: c.ite(&a.oif, &b.oif),
            has_socket: c.ite(&a.has_socket, &b.has_socket),
            uid: c.ite(&a.uid, &b.uid),
            gid: c.ite(&a.gid, &b.gid),
            mark: c.ite(&a.mark, &b.mark),
            ctmark: c.ite(&a.ctmark, &b.ctmark),
            ctstate: c.ite(&a.ctstate, &b.ctstate),
            dnat_done: c.ite(&a.dnat_done, &b.dnat_done),
            snat_done: c.ite(&a.snat_done, &b.snat_done),
            tcp_flags: c.ite(&a.tcp_flags, &b.tcp_flags),
        }
    }
}

/// An address as an unsigned number (IPv4 in the low 32 bits).
pub fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The address of a number in `family`.
pub fn bits_addr(v: u128, family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::from(v as u32)),
        Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::from(v)),
    }
}

/// A rule by table, chain index and rule index (0-based), within one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId {
    /// The table.
    pub table: TableKind,
    /// Index of the chain in the table.
    pub chain: usize,
    /// Index of the rule in the chain.
    pub rule: usize,
}

/// One place a rule is tried: the terms for control standing before it and for it firing.
#[derive(Debug, Clone)]
pub struct SymHit {
    /// The rule.
    pub id: RuleId,
    /// The hook whose traversal tries it.
    pub hook: Hook,
    /// Which unrolled chain instance it belongs to (rules of one instance share it).
    pub frame: usize,
    /// Control reaches the rule.
    pub reach: Bool,
    /// The rule's matches hold on the packet as it is there (regardless of reach).
    pub matches: Bool,
    /// Reached and matching: the rule is hit (its counter moves).
    pub fires: Bool,
}

/// Effects of a hook pass besides the verdict.
#[derive(Debug, Clone)]
struct Fx {
    dnat: Bool,
    tproxy: Bool,
    tport: BV,
    /// The packet as targets that end the table leave it, with their firing condition
    /// (disjoint); applied when the table is done, so that later rules of the table are
    /// built on the packet as it reaches them.
    ends: Vec<(Bool, SymPacket)>,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            dnat: Bool::from_bool(false),
            tproxy: Bool::from_bool(false),
            tport: bv(0, 16),
            ends: Vec::new(),
        }
    }
}

struct ChainOut {
    /// Control returns to the caller (end of chain, RETURN, or a goto'd chain returning).
    ret: Bool,
    drop: Bool,
    reject: Bool,
}

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
        and2(&self.local, &self.port.eq(bv(u128::from(port), 16)))
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
        let one = bv(1, 8);
        let zero = bv(0, 8);
        let mut sum = bv(0, 8);
        for (h, e) in self.hops.iter().zip(&self.exists) {
            let c = and2(e, &h.listener(port, profile));
            sum = sum.bvadd(c.ite(&one, &zero));
        }
        sum.eq(bv(u128::from(n), 8))
    }
}

/// Builds the terms for one family of a ruleset in a pod.
pub struct Encoder<'a> {
    rs: &'a Ruleset,
    /// The family encoded.
    pub family: Family,
    /// Address width (32 or 128).
    pub width: u32,
    /// The pod.
    pub pod: &'a Pod,
    /// The mesh profile.
    pub profile: &'a Profile,
    /// The interface enumeration.
    pub ifaces: Ifaces,
    /// Undecidable matches are free booleans (true) or false as the evaluator takes them.
    pub undecided_free: bool,
    /// The free booleans made for undecidable matches, with their rule.
    pub free: Vec<(RuleId, Bool)>,
    /// Rules with a match (or target) the model cannot interpret.
    pub undecided_rules: Vec<RuleId>,
    budget: usize,
    frames: usize,
}

/// The default budget of rule instances per encoder.
pub const BUDGET: usize = 2_000_000;

impl<'a> Encoder<'a> {
    /// An encoder for `family` of `rs`.
    pub fn new(
        rs: &'a Ruleset,
        family: Family,
        pod: &'a Pod,
        profile: &'a Profile,
    ) -> Result<Encoder<'a>, EncodeError> {
        let ifaces = Ifaces::with_names(&[rs], &profile.virtual_interfaces)?;
        Encoder::with_ifaces(rs, family, pod, profile, ifaces)
    }

    /// An encoder for `family` of `rs` over a given interface enumeration (one that
    /// [`Ifaces::with_names`] made for `rs` among others).
    pub fn with_ifaces(
        rs: &'a Ruleset,
        family: Family,
        pod: &'a Pod,
        profile: &'a Profile,
        ifaces: Ifaces,
    ) -> Result<Encoder<'a>, EncodeError> {
        Ok(Encoder {
            rs,
            family,
            width: if family == Family::Ipv4 { 32 } else { 128 },
            pod,
            profile,
            ifaces,
            undecided_free: true,
            free: Vec::new(),
            undecided_rules: Vec::new(),
            budget: BUDGET,
            frames: 0,
        })
    }

    /// The ruleset.
    pub fn ruleset(&self) -> &Ruleset {
        self.rs
    }

    /// An address constant of this family.
    pub fn addr(&self, a: IpAddr) -> BV {
        bv(addr_bits(a), self.width)
    }

    fn is_family(&self, a: &IpAddr) -> bool {
        a.is_ipv4() == (self.family == Family::Ipv4)
    }

    /// `a` lies in `net` (false for a network of the other family).
    pub fn in_net(&self, a: &BV, net: IpAddr, prefix: u8) -> Bool {
        if !self.is_family(&net) {
            return Bool::from_bool(false);
        }
        let w = self.width;
        let prefix = u32::from(prefix).min(w);
        let mask: u128 = if prefix == 0 {
            0
        } else {
            (u128::MAX << (128 - prefix)) >> (128 - w)
        };
        let mask = if w == 32 { mask & 0xffff_ffff } else { mask };
        a.bvand(bv(mask, w)).eq(bv(addr_bits(net) & mask, w))
    }

    /// `a` is in the loopback range (127/8, ::1).
    pub fn is_loopback(&self, a: &BV) -> Bool {
        match self.family {
            Family::Ipv4 => self.in_net(a, IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), 8),
            Family::Ipv6 => a.eq(self.addr(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))),
        }
    }

    /// `a` is one of the pod's IPs (of this family).
    pub fn is_pod_ip(&self, a: &BV) -> Bool {
        let v: Vec<Bool> = self
            .pod
            .ips
            .iter()
            .filter(|ip| self.is_family(ip))
            .map(|ip| a.eq(self.addr(*ip)))
            .collect();
        any(&v)
    }

    /// `a` is the pod's: loopback or a pod IP ([`Pod::is_local`]).
    pub fn is_local(&self, a: &BV) -> Bool {
        or2(&self.is_loopback(a), &self.is_pod_ip(a))
    }

    fn loopback_addr(&self) -> BV {
        match self.family {
            Family::Ipv4 => self.addr(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            Family::Ipv6 => self.addr(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
        }
    }

    /// The source routing picks for an unbound connection to `dst` ([`Pod::route`]).
    pub fn route_src(&self, dst: &BV) -> BV {
        let primary = self
            .pod
            .primary(self.family)
            .map_or_else(|| self.loopback_addr(), |a| self.addr(a));
        self.is_loopback(dst).ite(
            &self.loopback_addr(),
            &self.is_pod_ip(dst).ite(dst, &primary),
        )
    }

    /// The out interface routing picks for `dst`.
    pub fn route_oif(&self, dst: &BV) -> BV {
        self.is_local(dst).ite(
            &bv(u128::from(IF_LO), IF_BITS),
            &bv(u128::from(IF_ETH0), IF_BITS),
        )
    }

    fn iface_is(v: &BV, i: u64) -> Bool {
        v.eq(bv(u128::from(i), IF_BITS))
    }

    fn neg(n: bool, b: Bool) -> Bool {
        if n {
            b.not()
        } else {
            b
        }
    }

    /// The rule's matches hold on `p` (an undecidable match: a fresh free boolean, or false).
    fn rule_matches(&mut self, r: &Rule, p: &SymPacket, id: RuleId) -> Bool {
        let mut conj: Vec<Bool> = Vec::new();
        for (spec, var) in [(&r.src, &p.src), (&r.dst, &p.dst)] {
            if let Some(n) = spec {
                conj.push(Self::neg(
                    n.negated,
                    self.in_net(var, n.value.addr, n.value.prefix),
                ));
            }
        }
        for (spec, var) in [(&r.in_iface, &p.iif), (&r.out_iface, &p.oif)] {
            if let Some(n) = spec {
                conj.push(Self::neg(n.negated, self.ifaces.matches(var, &n.value)));
            }
        }
        if let Some(n) = &r.proto {
            conj.push(Self::neg(
                n.negated,
                p.proto.eq(bv(u128::from(n.value.0), 8)),
            ));
        }
        if r.fragment == Some(true) {
            conj.push(Bool::from_bool(false));
        }
        let mut fs = Vec::new();
        let mut us = Vec::new();
        for m in &r.matches {
            let (f, u) = self.match3(m, p);
            fs.push(f);
            us.push(u);
        }
        if r.matches.iter().any(Self::may_be_undecided) && !self.undecided_rules.contains(&id) {
            self.undecided_rules.push(id);
        }
        let any_u = any(&us);
        let free = if self.undecided_free && r.matches.iter().any(Self::may_be_undecided) {
            let b = Bool::fresh_const("undecided");
            self.free.push((id, b.clone()));
            b
        } else {
            Bool::from_bool(false)
        };
        conj.push(any(&fs).not());
        conj.push(or2(&any_u.not(), &free));
        all(&conj)
    }

    fn redirect_addr(&self, hook: Hook, p: &SymPacket) -> BV {
        let lo = self.loopback_addr();
        if hook == Hook::Output {
            return lo;
        }
        let other = self
            .pod
            .ips
            .iter()
            .find(|a| self.is_family(a) && !a.is_loopback())
            .map_or_else(|| lo.clone(), |a| self.addr(*a));
        Self::iface_is(&p.iif, IF_LO).ite(&lo, &other)
    }

    #[allow(clippy::too_many_arguments)]
    fn chain(
        &mut self,
        ti: usize,
        ci: usize,
        hook: Hook,
        p: &mut SymPacket,
        live_in: &Bool,
        fx: &mut Fx,
        hits: &mut Vec<SymHit>,
        depth: usize,
    ) -> Result<ChainOut, EncodeError> {
        let rs = self.rs;
        let Some(table) = rs.tables(self.family).get(ti) else {
            return Ok(ChainOut {
                ret: live_in.clone(),
                drop: Bool::from_bool(false),
                reject: Bool::from_bool(false),
            });
        };
        let kind = table.kind;
        let frame = self.frames;
        self.frames += 1;
        let mut live = live_in.clone();
        let mut ret_early: Vec<Bool> = Vec::new();
        let mut drops: Vec<Bool> = Vec::new();
        let mut rejects: Vec<Bool> = Vec::new();
        let Some(chain) = table.chains.get(ci) else {
            return Ok(ChainOut {
                ret: live,
                drop: Bool::from_bool(false),
                reject: Bool::from_bool(false),
            });
        };
        if depth > table.chains.len() {
            // Only a cyclic jump graph gets here; validation refuses those.
            return Err(EncodeError::TooLarge(self.budget));
        }
        for (ri, rule) in chain.rules.iter().enumerate() {
            if self.budget == 0 {
                return Err(EncodeError::TooLarge(BUDGET));
            }
            self.budget -= 1;
            let id = RuleId {
                table: kind,
                chain: ci,
                rule: ri,
            };
            let m = self.rule_matches(rule, p, id);
            let fires = and2(&live, &m);
            hits.push(SymHit {
                id,
                hook,
                frame,
                reach: live.clone(),
                matches: m,
                fires: fires.clone(),
            });
            let Some(target) = &rule.target else { continue };
            let stop = |live: &mut Bool| *live = and2(live, &fires.not());
            let upd = |old: &mut BV, new: BV| *old = fires.ite(&new, old);
            match target {
                Target::Accept => stop(&mut live),
                Target::Drop => {
                    drops.push(fires.clone());
                    stop(&mut live);
                }
                Target::Reject { .. } => {
                    rejects.push(fires.clone());
                    stop(&mut live);
                }
                Target::Return => {
                    ret_early.push(fires.clone());
                    stop(&mut live);
                }
                Target::Jump { chain: name } | Target::Goto { chain: name } => {
                    let Some(to) = table.chain_index(name) else {
                        continue;
                    };
                    let out = self.chain(ti, to, hook, p, &fires, fx, hits, depth + 1)?;
                    drops.push(out.drop);
                    rejects.push(out.reject);
                    if matches!(target, Target::Jump { .. }) {
                        live = or2(&and2(&live, &fires.not()), &out.ret);
                    } else {
                        ret_early.push(out.ret);
                        stop(&mut live);
                    }
                }
                Target::Redirect { ports, .. } => {
                    let mut q = p.clone();
                    q.dst = self.redirect_addr(hook, p);
                    if let Some(r) = ports {
                        q.dport = bv(u128::from(r.lo), 16);
                    }
                    q.dnat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    fx.dnat = or2(&fx.dnat, &fires);
                    stop(&mut live);
                }
                Target::Dnat { to, .. } => {
                    let mut q = p.clone();
                    if let Some(a) = to.addr_lo {
                        q.dst = self.addr(a);
                    }
                    if let Some(r) = to.ports {
                        q.dport = bv(u128::from(r.lo), 16);
                    }
                    q.dnat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    fx.dnat = or2(&fx.dnat, &fires);
                    stop(&mut live);
                }
                Target::Snat { to, .. } => {
                    let mut q = p.clone();
                    if let Some(a) = to.addr_lo {
                        q.src = self.addr(a);
                    }
                    if let Some(r) = to.ports {
                        q.sport = bv(u128::from(r.lo), 16);
                    }
                    q.snat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    stop(&mut live);
                }
                Target::Masquerade { ports, .. } => {
                    let mut q = p.clone();
                    if let Some(r) = ports {
                        q.sport = bv(u128::from(r.lo), 16);
                    }
                    q.snat_done = Bool::from_bool(true);
                    fx.ends.push((fires.clone(), q));
                    stop(&mut live);
                }
                Target::Tproxy { on_port, mark, .. } => {
                    let mut q = p.clone();
                    q.mark = xmark(&p.mark, mark.value, mark.mask);
                    fx.ends.push((fires.clone(), q));
                    let port = if *on_port == 0 {
                        p.dport.clone()
                    } else {
                        bv(u128::from(*on_port), 16)
                    };
                    fx.tport = fires.ite(&port, &fx.tport);
                    fx.tproxy = or2(&fx.tproxy, &fires);
                    stop(&mut live);
                }
                Target::Mark(m) => {
                    let nm = xmark(&p.mark, m.value, m.mask);
                    upd(&mut p.mark, nm);
                }
                Target::ConnmarkSet(m) => {
                    let nm = xmark(&p.ctmark, m.value, m.mask);
                    upd(&mut p.ctmark, nm);
                }
                Target::ConnmarkSave { nfmask, ctmask } => {
                    let nm = p
                        .ctmark
                        .bvand(bv(u128::from(!ctmask), 32))
                        .bvxor(p.mark.bvand(bv(u128::from(*nfmask), 32)));
                    upd(&mut p.ctmark, nm);
                }
                Target::ConnmarkRestore { nfmask, ctmask } => {
                    let nm = p
                        .mark
                        .bvand(bv(u128::from(!nfmask), 32))
                        .bvxor(p.ctmark.bvand(bv(u128::from(*ctmask), 32)));
                    upd(&mut p.mark, nm);
                }
                Target::Ct { notrack, .. } => {
                    if *notrack {
                        upd(&mut p.ctstate, bv(ct_code(ConnState::Untracked), 3));
                    }
                }
                Target::Notrack => upd(&mut p.ctstate, bv(ct_code(ConnState::Untracked), 3)),
                Target::Log { .. } | Target::Nflog { .. } => {}
                Target::Unknown { .. } => {
                    if !self.undecided_rules.contains(&id) {
                        self.undecided_rules.push(id);
                    }
                }
            }
        }
        ret_early.push(live);
        Ok(ChainOut {
            ret: any(&ret_early),
            drop: any(&drops),
            reject: any(&rejects),
        })
    }

    /// Runs every table of `hook` from `live`; returns (dropped, rejected), both within `live`.
    fn pass(
        &mut self,
        hook: Hook,
        p: &mut SymPacket,
        live: &Bool,
        skip_nat: bool,
        fx: &mut Fx,
        hits: &mut Vec<SymHit>,
    ) -> Result<(Bool, Bool), EncodeError> {
        let mut live = live.clone();
        let mut drops = Vec::new();
        let mut rejects = Vec::new();
        let tracked = conntrack_active(self.rs, self.family);
        for &kind in hook_tables(hook) {
            if kind == TableKind::Nat && (skip_nat || !tracked) {
                continue;
            }
            let rs = self.rs;
            let Some((ti, table)) = rs
                .tables(self.family)
                .iter()
                .enumerate()
                .find(|(_, t)| t.kind == kind)
            else {
                continue;
            };
            let Some(ci) = table
                .chains
                .iter()
                .position(|c| c.is_builtin() && c.name == hook.name())
            else {
                continue;
            };
            let guard = if kind == TableKind::Nat {
                and2(&live, &p.ctstate.eq(bv(ct_code(ConnState::New), 3)))
            } else {
                live.clone()
            };
            let out = self.chain(ti, ci, hook, p, &guard, fx, hits, 0)?;
            for (c, q) in std::mem::take(&mut fx.ends) {
                *p = SymPacket::ite(&c, &q, p);
            }
            let policy_drop = table.chains.get(ci).and_then(|c| c.policy) == Some(Policy::Drop);
            let d = if policy_drop {
                or2(&out.drop, &out.ret)
            } else {
                out.drop
            };
            live = all(&[live, d.not(), out.reject.not()]);
            drops.push(d);
            rejects.push(out.reject);
        }
        Ok((any(&drops), any(&rejects)))
    }

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
        a.oif = fx.dnat.ite(&self.route_oif(&a.dst), &a.oif);
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
        let dnat_a = fx.dnat;
        let tproxy_a = fx_pre.tproxy;
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
        let local_b = and2(&blive, &or2(&fxb.tproxy, &self.is_local(&b.dst)));
        let fwd = and2(&blive, &local_b.not());
        b.oif = local_b.ite(&none, &b.oif);
        let mut fxb_in = Fx::new();
        let (e2, s2) = self.pass(Hook::Input, &mut b, &local_b, false, &mut fxb_in, &mut hits)?;
        let rej_b = or2(&s1, &s2);
        let drop_b = any(&[e1, e2, fwd, rej_b.clone()]);

        let m = SymPacket::ite(outside, &b, &a);
        let dropped = outside.ite(&drop_b, &drop_a);
        let local = and2(&outside.ite(&local_b, &local_a), &dropped.not());
        let tproxy = outside.ite(&fxb.tproxy, &tproxy_a);
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
            dnat: outside.ite(&fxb.dnat, &dnat_a),
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
                &p.mark.eq(bv(0, 32)),
                &and2(&outside.not(), &p.mark.eq(bv(u128::from(m), 32))),
            ),
            None => p.mark.eq(bv(0, 32)),
        };
        all(&[
            self.ifaces.valid(&p.iif),
            self.ifaces.valid(&p.oif),
            mark,
            p.ctmark.eq(bv(0, 32)),
            p.ctstate.eq(bv(ct_code(ConnState::New), 3)),
            p.dnat_done.not(),
            p.snat_done.not(),
            p.tcp_flags
                .eq(p.proto.eq(bv(6, 8)).ite(&bv(2, 8), &bv(0, 8))),
            outside.ite(
                &all(&[
                    none(&p.oif),
                    none(&p.iif).not(),
                    p.has_socket.not(),
                    p.uid.eq(bv(0, 32)),
                    p.gid.eq(bv(0, 32)),
                ]),
                &all(&[none(&p.iif), none(&p.oif).not(), p.has_socket.clone()]),
            ),
        ])
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
            or2(&p.proto.eq(bv(6, 8)), &p.proto.eq(bv(17, 8))),
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

    /// A journey from `first`: hops chained through the proxy's listeners up to the profile's
    /// hop bound plus one.
    pub fn journey(
        &mut self,
        first: &SymPacket,
        outside: &Bool,
    ) -> Result<SymJourney, EncodeError> {
        let profile = self.profile;
        let max = profile.max_hops;
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
            if n > max {
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
                .map_or_else(|| bv(6, 8), |h| h.entered.proto.clone());
            p.dst = h.entered.dst.clone();
            p.dport = h.entered.dport.clone();
            p.sport = bv(40000 + n as u128, 16);
            p.uid = bv(u128::from(profile.proxy_uid), 32);
            p.gid = bv(u128::from(profile.proxy_gid), 32);
            let inbound_src = match profile.inbound_source {
                InboundSource::Passthrough => self.addr(profile.passthrough(self.family)),
                InboundSource::Original => h.entered.src.clone(),
            };
            p.src = via_in.ite(&inbound_src, &self.route_src(&p.dst));
            p.iif = bv(u128::from(IF_NONE), IF_BITS);
            p.oif = self.route_oif(&p.dst);
            p.has_socket = Bool::from_bool(true);
            p.mark = bv(u128::from(profile.reconnect_mark()), 32);
            p.ctmark = bv(0, 32);
            p.ctstate = bv(ct_code(ConnState::New), 3);
            p.dnat_done = Bool::from_bool(false);
            p.snat_done = Bool::from_bool(false);
            p.tcp_flags = p.proto.eq(bv(6, 8)).ite(&bv(2, 8), &bv(0, 8));
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

fn xmark(old: &BV, value: u32, mask: u32) -> BV {
    old.bvand(bv(u128::from(!mask), 32))
        .bvxor(bv(u128::from(value), 32))
}
