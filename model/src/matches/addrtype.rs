//! `-m addrtype`: the routing type (LOCAL, UNICAST, …) of the source or destination address.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::{Hook, Neg};
use crate::eval::Packet;
use crate::gen::subset;
use crate::parse::lex::Token;
use crate::parse::rule::{err_at, Res};
use crate::print::list_opt;

/// `-m addrtype`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Addrtype {
    /// `--src-type`.
    pub src: Option<Neg<Vec<AddrType>>>,
    /// `--dst-type`.
    pub dst: Option<Neg<Vec<AddrType>>>,
    /// `--limit-iface-in`.
    pub limit_iface_in: bool,
    /// `--limit-iface-out`.
    pub limit_iface_out: bool,
}

/// An address type of `-m addrtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum AddrType {
    Unspec,
    Unicast,
    Local,
    Broadcast,
    Anycast,
    Multicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Nat,
    Xresolve,
}

impl AddrType {
    /// All types, in the kernel's bit order (which is also the order `iptables-save` prints).
    pub const ALL: [AddrType; 12] = [
        AddrType::Unspec,
        AddrType::Unicast,
        AddrType::Local,
        AddrType::Broadcast,
        AddrType::Anycast,
        AddrType::Multicast,
        AddrType::Blackhole,
        AddrType::Unreachable,
        AddrType::Prohibit,
        AddrType::Throw,
        AddrType::Nat,
        AddrType::Xresolve,
    ];
    /// The name as iptables spells it.
    pub fn name(self) -> &'static str {
        match self {
            AddrType::Unspec => "UNSPEC",
            AddrType::Unicast => "UNICAST",
            AddrType::Local => "LOCAL",
            AddrType::Broadcast => "BROADCAST",
            AddrType::Anycast => "ANYCAST",
            AddrType::Multicast => "MULTICAST",
            AddrType::Blackhole => "BLACKHOLE",
            AddrType::Unreachable => "UNREACHABLE",
            AddrType::Prohibit => "PROHIBIT",
            AddrType::Throw => "THROW",
            AddrType::Nat => "NAT",
            AddrType::Xresolve => "XRESOLVE",
        }
    }

    /// The type of `a` on a host whose own addresses are `local` (besides the loopback ranges).
    pub fn of(a: IpAddr, local: &[IpAddr]) -> AddrType {
        let is_local = match a {
            IpAddr::V4(v) => v.is_loopback(),
            IpAddr::V6(v) => v.is_loopback(),
        } || local.contains(&a);
        if is_local {
            return AddrType::Local;
        }
        match a {
            IpAddr::V4(v) if v.is_broadcast() => AddrType::Broadcast,
            IpAddr::V4(v) if v.is_multicast() => AddrType::Multicast,
            IpAddr::V6(v) if v.is_multicast() => AddrType::Multicast,
            IpAddr::V4(v) if v.is_unspecified() => AddrType::Unspec,
            IpAddr::V6(v) if v.is_unspecified() => AddrType::Unspec,
            _ => AddrType::Unicast,
        }
    }
}

fn parse_addrtypes(t: &Token) -> Res<Vec<AddrType>> {
    let mut v = Vec::new();
    for s in t.text.split(',') {
        let a = AddrType::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| err_at(t, format!("unknown address type `{s}`")))?;
        if !v.contains(&a) {
            v.push(a);
        }
    }
    v.sort();
    Ok(v)
}

fn print_types(s: &mut String, opt: &str, spec: &Option<Neg<Vec<AddrType>>>) {
    if let Some(n) = spec {
        list_opt(s, opt, n, &AddrType::ALL, AddrType::name);
    }
}

impl MatchModule for Addrtype {
    const NAME: &'static str = "addrtype";
    const OPTIONS: &'static [&'static str] = &[
        "--src-type",
        "--dst-type",
        "--limit-iface-in",
        "--limit-iface-out",
    ];
    const GEN_SLOT: u32 = 10;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        let negated = o.negated();
        match o.name() {
            "--src-type" => self.src = Some(Neg::new(negated, parse_addrtypes(o.value()?)?)),
            "--dst-type" => self.dst = Some(Neg::new(negated, parse_addrtypes(o.value()?)?)),
            "--limit-iface-in" => self.limit_iface_in = true,
            "--limit-iface-out" => self.limit_iface_out = true,
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if self.src.is_none() && self.dst.is_none() {
            return Err(cx.fail("match `addrtype` needs `--src-type` or `--dst-type`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        print_types(s, "--src-type", &self.src);
        print_types(s, "--dst-type", &self.dst);
        if self.limit_iface_in {
            s.push_str(" --limit-iface-in");
        }
        if self.limit_iface_out {
            s.push_str(" --limit-iface-out");
        }
    }

    #[inline]
    fn eval(&self, p: &Packet, env: &Env<'_>) -> Option<bool> {
        let ok = |spec: &Option<Neg<Vec<AddrType>>>, a: IpAddr| {
            spec.as_ref()
                .is_none_or(|n| n.value.contains(&AddrType::of(a, env.local)) != n.negated)
        };
        Some(ok(&self.src, p.src) && ok(&self.dst, p.dst))
    }

    fn generate(g: &GenCx<'_>) -> Option<Addrtype> {
        let v = g.v;
        Some(Addrtype {
            src: (v & 1 == 1).then(|| Neg::new(v & 2 == 2, subset(&AddrType::ALL, v >> 4))),
            dst: (v & 1 == 0).then(|| Neg::new(v & 4 == 4, subset(&AddrType::ALL, v >> 8))),
            limit_iface_in: v & 8 == 8 && !matches!(g.hook, Some(Hook::Output | Hook::Postrouting)),
            limit_iface_out: false,
        })
    }
}
