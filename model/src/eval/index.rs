//! The index of a long chain: which of its rules can match a packet, found from the packet's
//! destination address, protocol and destination port instead of by trying every rule.
//!
//! A rule is *keyed* when one of its tests pins a packet field to one value: `-d A` of a single
//! address (/32 or /128, without `!`), or else a `-m tcp` / `-m udp` `--dport P` of a single
//! port (without `!`). A keyed rule cannot match a packet whose field differs, and its result for
//! such a packet is "no match", never "undecided": its head fails, or its tcp/udp match is
//! false, which decides the rule whatever its other matches say. A rule whose head can never
//! hold (`-f`, another family's nft rule) is in no list at all. Every other rule is *open*: a
//! candidate for every packet. The next rule to try at or after position `i` is the smallest of
//! three ascending lists: the open rules, the rules keyed by the packet's destination, the rules
//! keyed by its protocol and port. The candidates are tried as before, in the chain's order, so
//! the first match, the hits and the undecided rules are exactly those of a scan of every rule.
//!
//! kube-proxy's `KUBE-SERVICES` (one `-d VIP/32 -p tcp -m tcp --dport P -j KUBE-SVC-…` rule per
//! service port) and `KUBE-NODEPORTS` (one `--dport` rule per node port) are such chains.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use super::Packet;
use crate::ast::{Family, Rule};
use crate::matches::Match;

/// Chains with at least this many keyed rules get an index ([`super::Engine::with_index_min`]).
pub const DEFAULT_INDEX_MIN: usize = 16;

/// What a rule is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// Its destination address ([`addr_key`]).
    Dst(u128),
    /// Its protocol and destination port ([`port_key`]).
    Port(u32),
    /// Nothing: a candidate for every packet.
    Open,
    /// Its head never holds: a candidate for no packet.
    Never,
}

/// An address as a number; the two families may share numbers (an index only lists
/// candidates, each tried in full, and a table's packets are of its own family).
#[inline(always)]
fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A protocol and a port as one number.
#[inline(always)]
fn port_key(proto: u8, port: u16) -> u32 {
    (u32::from(proto) << 16) | u32::from(port)
}

/// What `r`, in a table of `family`, is found by.
fn key(r: &Rule, family: Family) -> Key {
    if r.fragment == Some(true) || r.family.is_some_and(|f| f != family) {
        return Key::Never;
    }
    if let Some(d) = &r.dst {
        let width = if d.value.addr.is_ipv4() { 32 } else { 128 };
        if !d.negated && d.value.prefix >= width {
            return Key::Dst(addr_key(d.value.addr));
        }
    }
    for m in &r.matches {
        let (proto, dport) = match m {
            Match::Tcp(t) => (6, &t.dport),
            Match::Udp(u) => (17, &u.dport),
            _ => continue,
        };
        if let Some(d) = dport {
            if !d.negated && d.value.lo == d.value.hi {
                return Key::Port(port_key(proto, d.value.lo));
            }
        }
    }
    Key::Open
}

/// A multiply-and-fold hash for the index's integer keys (`std`'s default hash is built to
/// resist chosen keys, at several times the cost; a ruleset is the user's own input).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FoldHasher(u64);

impl FoldHasher {
    #[inline(always)]
    fn mix(&mut self, v: u64) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let m = u128::from(self.0 ^ v) * u128::from(K);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.mix(u64::from(*b));
        }
    }
    #[inline(always)]
    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }
    #[inline(always)]
    fn write_u128(&mut self, v: u128) {
        self.mix(v as u64);
        self.mix((v >> 64) as u64);
    }
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0
    }
}

type Map<K> = HashMap<K, (u32, u32), BuildHasherDefault<FoldHasher>>;

/// A chain's rules by what they are found by.
#[derive(Debug, Clone)]
pub(super) struct ChainIndex {
    /// The open rules, ascending.
    open: Box<[u32]>,
    /// Per destination address: a range of `pool`.
    by_dst: Map<u128>,
    /// Per protocol and port: a range of `pool`.
    by_port: Map<u32>,
    /// The keyed rules, grouped by key, each group ascending.
    pool: Box<[u32]>,
}

/// How big an engine's indexes are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Chains with an index.
    pub chains: usize,
    /// Rules found through an index (keyed).
    pub keyed: usize,
    /// Rules of indexed chains tried for every packet (open).
    pub open: usize,
    /// Distinct keys (addresses, protocol and port pairs).
    pub keys: usize,
    /// Approximate heap bytes of the indexes (lists and hash tables at their capacity).
    pub bytes: usize,
}

impl ChainIndex {
    /// The index of a chain with `rules`, in a table of `family`, when at least `min` of them
    /// are keyed.
    pub(super) fn build(rules: &[Rule], family: Family, min: usize) -> Option<ChainIndex> {
        let keys: Vec<Key> = rules.iter().map(|r| key(r, family)).collect();
        let keyed = keys
            .iter()
            .filter(|k| matches!(k, Key::Dst(_) | Key::Port(_)))
            .count();
        if keyed < min.max(1) || u32::try_from(rules.len()).is_err() {
            return None;
        }
        let mut open = Vec::new();
        let mut dst: Map<u128> = Map::default();
        let mut port: Map<u32> = Map::default();
        // First pass: how many rules each key has (its range's length, in `.1`).
        for k in &keys {
            match k {
                Key::Dst(a) => dst.entry(*a).or_default().1 += 1,
                Key::Port(p) => port.entry(*p).or_default().1 += 1,
                Key::Open | Key::Never => {}
            }
        }
        // Each key's range: start at the running total, `.1` counts up to its end as it fills.
        let mut next = 0u32;
        for r in dst.values_mut().chain(port.values_mut()) {
            let len = r.1;
            *r = (next, next);
            next += len;
        }
        let mut pool = vec![0u32; next as usize];
        for (i, k) in (0u32..).zip(&keys) {
            let range = match k {
                Key::Dst(a) => dst.get_mut(a),
                Key::Port(p) => port.get_mut(p),
                Key::Open => {
                    open.push(i);
                    None
                }
                Key::Never => None,
            };
            if let Some(r) = range {
                if let Some(slot) = pool.get_mut(r.1 as usize) {
                    *slot = i;
                }
                r.1 += 1;
            }
        }
        Some(ChainIndex {
            open: open.into(),
            by_dst: dst,
            by_port: port,
            pool: pool.into(),
        })
    }

    /// The rules that may match `p`, as three ascending lists.
    #[inline]
    pub(super) fn candidates(&self, p: &Packet) -> Candidates<'_> {
        let range = |r: Option<&(u32, u32)>| {
            r.and_then(|&(a, b)| self.pool.get(a as usize..b as usize))
                .unwrap_or(&[])
        };
        let dst = if self.by_dst.is_empty() {
            &[]
        } else {
            range(self.by_dst.get(&addr_key(p.dst)))
        };
        let port = if self.by_port.is_empty() {
            &[]
        } else {
            range(self.by_port.get(&port_key(p.proto, p.dport)))
        };
        Candidates {
            lists: [&self.open, dst, port],
        }
    }

    /// Adds this index's size to `s`.
    pub(super) fn add_stats(&self, s: &mut IndexStats) {
        // A hashbrown table: per slot the entry and one control byte.
        fn table<K>(m: &Map<K>) -> usize {
            m.capacity() * (std::mem::size_of::<(K, (u32, u32))>() + 1)
        }
        s.chains += 1;
        s.keyed += self.pool.len();
        s.open += self.open.len();
        s.keys += self.by_dst.len() + self.by_port.len();
        s.bytes += std::mem::size_of::<ChainIndex>()
            + 4 * (self.open.len() + self.pool.len())
            + table(&self.by_dst)
            + table(&self.by_port);
    }
}

/// The candidates of one packet in one chain: ascending lists, consumed from the front.
pub(super) struct Candidates<'a> {
    lists: [&'a [u32]; 3],
}

impl Candidates<'_> {
    /// The smallest candidate at or after rule `from`.
    #[inline]
    pub(super) fn next(&mut self, from: u32) -> Option<u32> {
        let mut best: Option<u32> = None;
        for l in &mut self.lists {
            if l.first().is_some_and(|&r| r < from) {
                let k = l.partition_point(|&r| r < from);
                *l = l.get(k..).unwrap_or(&[]);
            }
            if let Some(&r) = l.first() {
                best = Some(best.map_or(r, |b| b.min(r)));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn chain(text: &str) -> Vec<Rule> {
        let rs = parse("t", text.as_bytes()).unwrap().ruleset;
        let t = &rs.ipv4[0];
        t.chains
            .iter()
            .find(|c| c.name == "C")
            .unwrap()
            .rules
            .clone()
    }

    fn all(c: &mut Candidates<'_>) -> Vec<u32> {
        let mut v = Vec::new();
        let mut from = 0;
        while let Some(r) = c.next(from) {
            v.push(r);
            from = r + 1;
        }
        v
    }

    #[test]
    fn candidates_are_the_rules_that_can_match_in_order() {
        let rules = chain(
            "*nat\n:C - [0:0]\n\
             -A C -d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j RETURN\n\
             -A C -d 10.0.0.0/24 -j RETURN\n\
             -A C -d 10.0.0.2/32 -p tcp -m tcp --dport 80 -j RETURN\n\
             -A C -p udp -m udp --dport 53 -j RETURN\n\
             -A C -f -j RETURN\n\
             -A C ! -d 10.0.0.1/32 -j RETURN\n\
             -A C -d 10.0.0.1/32 -p udp -j RETURN\n\
             -A C -p tcp -m tcp ! --dport 80 -j RETURN\n\
             COMMIT\n",
        );
        let ix = ChainIndex::build(&rules, Family::Ipv4, 1).unwrap();
        let mut p = Packet::tcp_out(
            "10.0.0.9".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            40000,
            80,
            0,
            0,
        );
        assert_eq!(all(&mut ix.candidates(&p)), vec![0, 1, 5, 6, 7]);
        p.dst = "10.0.0.3".parse().unwrap();
        assert_eq!(all(&mut ix.candidates(&p)), vec![1, 5, 7]);
        p.proto = 17;
        p.dport = 53;
        assert_eq!(all(&mut ix.candidates(&p)), vec![1, 3, 5, 7]);
        // From the middle (back from a jump): the candidates after it.
        assert_eq!(ix.candidates(&p).next(4), Some(5));
        assert_eq!(ix.candidates(&p).next(8), None);
    }

    #[test]
    fn short_chains_get_no_index() {
        let rules =
            chain("*nat\n:C - [0:0]\n-A C -d 10.0.0.1/32 -j RETURN\n-A C -j RETURN\nCOMMIT\n");
        assert!(ChainIndex::build(&rules, Family::Ipv4, 2).is_none());
        let ix = ChainIndex::build(&rules, Family::Ipv4, 1).unwrap();
        let mut s = IndexStats::default();
        ix.add_stats(&mut s);
        assert_eq!((s.chains, s.keyed, s.open, s.keys), (1, 1, 1, 1));
        assert!(s.bytes > 0);
    }
}
