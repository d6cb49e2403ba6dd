//! Encoding: a ruleset in a pod as terms over a symbolic packet ([`Encoder`]). This file holds
//! the encoder and its address and routing predicates; [`chain`] unrolls the tables and runs a
//! hook's tables, [`hop`] a first packet through the pod, [`journey`] the hops through the
//! proxy's listeners. The match modules' encodings are in `smt/matches.rs`.

use std::net::IpAddr;

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{Family, Ruleset};
use z3::ast::{Bool, BV};

use super::{
    addr_bits, addr_width, any, bv, or2, EncodeError, Ifaces, RuleId, IF_BITS, IF_ETH0, IF_LO,
    IPV4_BITS,
};

pub mod chain;
pub mod focus;
pub mod hop;
pub mod journey;
pub mod track;

/// Builds the terms for one family of a ruleset in a pod.
pub struct Encoder<'a> {
    rs: &'a Ruleset,
    /// The family encoded.
    pub family: Family,
    /// Address width ([`addr_width`] of the family).
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
    /// The tracked mode's literals and ties ([`track`]); `None` in the normal mode.
    tracking: Option<track::Tracking>,
    /// The region the encoding is confined to ([`focus`]); `None`: every packet.
    focus: Option<focus::Focus>,
    /// Rules the focus excludes that had to be encoded all the same ([`Encoder::leaks`]).
    leaks: usize,
    /// With `undecided_free` off: a rule whose only undecidable matches are samples
    /// (`-m statistic`) is a *draw* all the same, a boolean named by its place (hop, table,
    /// chain name, rule), so that two encoders of one context share it ([`Encoder::draws`]).
    pub named_draws: bool,
    /// The hop being encoded (0 for the first), for the draws' names.
    hop_index: usize,
    /// The draws named so far, with how many places each was tried at.
    draws: std::collections::BTreeMap<String, usize>,
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
            width: addr_width(family),
            pod,
            profile,
            ifaces,
            undecided_free: true,
            free: Vec::new(),
            undecided_rules: Vec::new(),
            budget: BUDGET,
            frames: 0,
            tracking: None,
            focus: None,
            leaks: 0,
            named_draws: false,
            hop_index: 0,
            draws: std::collections::BTreeMap::new(),
        })
    }

    /// Whether every match of rule `id` the model cannot interpret is a sample (`-m statistic`):
    /// its free boolean is a draw of chance, the same whoever opens the connection, so the two
    /// connections of a relational invariant may share it.
    pub fn random_only(&self, id: RuleId) -> bool {
        self.chain_rule(id).is_some_and(|(_, r)| {
            r.matches.iter().all(|m| {
                matches!(m, sidecar_model::matches::Match::Statistic(_))
                    || !Self::may_be_undecided(m)
            })
        })
    }

    /// Rule `id` of this family, with its chain.
    fn chain_rule(
        &self,
        id: RuleId,
    ) -> Option<(&'a sidecar_model::Chain, &'a sidecar_model::Rule)> {
        let chain = self
            .rs
            .table_at(self.family, id.table, id.part)?
            .chains
            .get(id.chain)?;
        Some((chain, chain.rules.get(id.rule)?))
    }

    /// The draws named so far ([`Encoder::named_draws`]), with how many places each is tried
    /// at (places of one hop share the draw: see `diff`, which checks that no packet passes
    /// two of them).
    pub fn draws(&self) -> &std::collections::BTreeMap<String, usize> {
        &self.draws
    }

    /// The name of the draw of rule `id` in hop `hop` ([`Encoder::named_draws`]).
    pub fn draw_name(&self, hop: usize, id: RuleId) -> Option<String> {
        let (chain, _) = self.chain_rule(id)?;
        Some(format!(
            "draw|{hop}|{}|{}|{}|{}",
            id.table.name(),
            id.part,
            chain.name,
            id.rule
        ))
    }

    /// The boolean of a draw of rule `id` at the hop being encoded, counted.
    pub(super) fn draw(&mut self, id: RuleId) -> Option<Bool> {
        let name = self.draw_name(self.hop_index, id)?;
        *self.draws.entry(name.clone()).or_insert(0) += 1;
        Some(Bool::new_const(name))
    }

    /// The rules encoded so far with a random sample (`-m statistic`), as "chain rule-number".
    pub fn samples(&self) -> Vec<String> {
        self.undecided_rules
            .iter()
            .filter_map(|id| {
                let (chain, rule) = self.chain_rule(*id)?;
                rule.matches
                    .iter()
                    .any(|m| matches!(m, sidecar_model::matches::Match::Statistic(_)))
                    .then(|| format!("{} {} {}", id.table.name(), chain.name, id.rule + 1))
            })
            .collect()
    }

    /// The ruleset.
    pub fn ruleset(&self) -> &Ruleset {
        self.rs
    }

    /// An address constant of this family.
    pub fn addr(&self, a: IpAddr) -> BV {
        bv(addr_bits(a), self.width)
    }

    /// Whether `a` is of the family encoded.
    pub(in crate::smt) fn is_family(&self, a: &IpAddr) -> bool {
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
        let mask = if w == IPV4_BITS {
            mask & 0xffff_ffff
        } else {
            mask
        };
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

    /// `b`, or its negation when `n` (a `!` before an option).
    pub(super) fn neg(n: bool, b: Bool) -> Bool {
        if n {
            b.not()
        } else {
            b
        }
    }
}
