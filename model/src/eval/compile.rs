//! Rules compiled for evaluation: each rule's generic part (`-s -d -i -o -p -f`) as masks and
//! one 128-bit key per interface name, checked before the rule itself is read.

use std::collections::HashMap;
use std::net::IpAddr;

use super::index::ChainIndex;
use super::{IfName, Packet};
use crate::ast::*;

/// A rule's generic part (`-s -d -i -o -p -f`) in a compact form, checked before its matches.
#[derive(Debug, Clone)]
pub(super) struct Head {
    src: AddrTest,
    dst: AddrTest,
    in_iface: IfTest,
    out_iface: IfTest,
    /// 0 for any protocol.
    proto: u8,
    proto_neg: bool,
    /// `-f`: never holds for a connection's packets.
    never: bool,
}

#[derive(Debug, Clone, Copy)]
enum AddrTest {
    Any,
    V4 { net: u32, mask: u32, neg: bool },
    V6 { net: u128, mask: u128, neg: bool },
}

#[derive(Debug, Clone, Copy)]
struct IfTest {
    /// Whether there is a test at all.
    on: bool,
    neg: bool,
    /// The pattern as [`IfName::key`] (for a `+` prefix: without the length byte).
    key: u128,
    /// Which bits of a name's key take part: all for an exact name, the prefix bytes for `+`.
    mask: u128,
}

impl AddrTest {
    fn new(c: &Option<Neg<Cidr>>) -> AddrTest {
        let Some(n) = c else { return AddrTest::Any };
        let p = u32::from(n.value.prefix);
        match n.value.addr {
            IpAddr::V4(a) => AddrTest::V4 {
                net: u32::from(a),
                mask: u32::MAX.checked_shl(32u32.saturating_sub(p)).unwrap_or(0),
                neg: n.negated,
            },
            IpAddr::V6(a) => AddrTest::V6 {
                net: u128::from(a),
                mask: u128::MAX.checked_shl(128u32.saturating_sub(p)).unwrap_or(0),
                neg: n.negated,
            },
        }
    }

    #[inline]
    fn holds(&self, a: IpAddr) -> bool {
        match (*self, a) {
            (AddrTest::Any, _) => true,
            (AddrTest::V4 { net, mask, neg }, IpAddr::V4(a)) => {
                ((u32::from(a) & mask) == net) != neg
            }
            (AddrTest::V6 { net, mask, neg }, IpAddr::V6(a)) => {
                ((u128::from(a) & mask) == net) != neg
            }
            // An address of the other family is never in the prefix.
            (AddrTest::V4 { neg, .. } | AddrTest::V6 { neg, .. }, _) => neg,
        }
    }
}

impl IfTest {
    fn new(i: &Option<Box<Neg<Iface>>>) -> IfTest {
        let Some(n) = i else {
            return IfTest {
                on: false,
                neg: false,
                key: 0,
                mask: 0,
            };
        };
        let b = n.value.0.as_bytes();
        let (pat, prefix) = match b.split_last() {
            Some((b'+', rest)) => (rest, true),
            _ => (b, false),
        };
        let name = IfName::new(std::str::from_utf8(pat).unwrap_or(""));
        let len = name.len();
        let mask = if prefix {
            // The prefix's bytes only.
            if len == 0 {
                0
            } else {
                u128::MAX >> (128 - 8 * len)
            }
        } else {
            u128::MAX
        };
        IfTest {
            on: true,
            neg: n.negated,
            key: name.key() & mask,
            mask,
        }
    }

    #[inline(always)]
    fn holds(&self, name: &Option<IfName>) -> bool {
        if !self.on {
            return true;
        }
        let m = match name {
            Some(n) => (n.key() & self.mask) == self.key,
            None => false,
        };
        m != self.neg
    }
}

impl Head {
    /// The rule's head in a table of `family`: a rule restricted to the other family never holds.
    pub(super) fn new(r: &Rule, family: Family) -> Head {
        Head {
            src: AddrTest::new(&r.src),
            dst: AddrTest::new(&r.dst),
            in_iface: IfTest::new(&r.in_iface),
            out_iface: IfTest::new(&r.out_iface),
            proto: r.proto.map_or(0, |p| p.value.0),
            proto_neg: r.proto.is_some_and(|p| p.negated),
            never: r.fragment == Some(true) || r.family.is_some_and(|f| f != family),
        }
    }

    #[inline(always)]
    pub(super) fn holds(&self, p: &Packet) -> bool {
        !self.never
            && (self.proto == 0 || (self.proto == p.proto) != self.proto_neg)
            && self.out_iface.holds(&p.out_iface)
            && self.in_iface.holds(&p.in_iface)
            && self.dst.holds(p.dst)
            && self.src.holds(p.src)
    }
}

/// A rule prepared for evaluation.
#[derive(Debug, Clone)]
pub(super) struct CRule {
    pub(super) head: Head,
    /// Whether the rule has `-m` matches to look at after its head.
    pub(super) has_matches: bool,
    /// The chain a jump or goto enters.
    pub(super) jump: Option<u32>,
}

/// A chain prepared for evaluation: its rules, and an index when it is long enough to have one.
#[derive(Debug, Clone)]
pub(super) struct CChain {
    pub(super) rules: Vec<CRule>,
    pub(super) index: Option<ChainIndex>,
}

/// The chains of table `t` of `family` prepared for evaluation; chains with at least
/// `index_min` keyed rules get an index ([`ChainIndex`]).
pub(super) fn compile_table(t: &Table, family: Family, index_min: usize) -> Vec<CChain> {
    // Jump targets by name: a node's table has 41,000 chains and 70,000 jumps, and
    // `Table::chain_index` searches the sorted names each time. Names are unique in a table
    // the parser made; when they are not, `chain_index` decides, as before.
    let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(t.chains.len());
    for (i, c) in t.chains.iter().enumerate() {
        by_name.entry(c.name.as_str()).or_insert(i);
    }
    let unique = by_name.len() == t.chains.len();
    let chain_index = |n: &str| {
        if unique {
            by_name.get(n).copied()
        } else {
            t.chain_index(n)
        }
    };
    t.chains
        .iter()
        .map(|c| CChain {
            rules: c
                .rules
                .iter()
                .map(|r| CRule {
                    head: Head::new(r, family),
                    has_matches: !r.matches.is_empty(),
                    jump: r
                        .target
                        .as_ref()
                        .and_then(Target::chain)
                        .and_then(chain_index)
                        .and_then(|i| u32::try_from(i).ok()),
                })
                .collect(),
            index: ChainIndex::build(&c.rules, family, index_min),
        })
        .collect()
}
