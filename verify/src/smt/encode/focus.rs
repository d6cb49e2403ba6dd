//! A region of first packets that a proof is confined to, and the rules the encoder leaves out
//! there ([`Focus`]; the regions and why they are sound are `prove/slice.rs`'s).
//!
//! A rule of a *keyed chain* (kube-proxy's `KUBE-SERVICES`, `KUBE-NODEPORTS`) pins the packet's
//! destination address, or its protocol and destination port ([`SliceKey`]). Every hop of a
//! journey is a connection to the first packet's original destination, protocol and port, so
//! where a hop's packet still carries them (the very terms of the first packet, unchanged by any
//! earlier rewrite) a rule whose key no packet of the region has cannot match: the encoder skips
//! it, and the chains only it jumps to are never built. Where the packet's fields are other terms
//! (after a DNAT of an earlier table) the rule is encoded as usual and counted as a *leak*: the
//! encoding is still exact, but no longer the slice the region's analysis assumed, and the caller
//! must not use it in place of another region's.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use sidecar_model::matches::Match;
use sidecar_model::Rule;
use z3::ast::{Bool, BV};

use super::Encoder;
use crate::smt::{all, bv, SymPacket, PORT_BITS, PROTO_BITS};

/// What a rule's matches pin a packet to: its destination (`-d` of a single address, no `!`),
/// and its protocol (`-p`, no `!`) with the destination port (`--dport P` of `-m tcp` or
/// `-m udp`, no `!`). A rule has a key when it pins the address, or the protocol and the port;
/// every packet the rule matches has the key's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SliceKey {
    /// The destination address.
    pub dst: Option<IpAddr>,
    /// The protocol number.
    pub proto: Option<u8>,
    /// The destination port (only with a protocol).
    pub dport: Option<u16>,
}

impl SliceKey {
    /// The key of rule `r`, if it has one.
    pub fn of(r: &Rule) -> Option<SliceKey> {
        let dst = r
            .dst
            .as_ref()
            .filter(|d| !d.negated)
            .filter(|d| d.value.prefix == if d.value.addr.is_ipv4() { 32 } else { 128 })
            .map(|d| d.value.addr);
        let proto = r.proto.as_ref().filter(|p| !p.negated).map(|p| p.value.0);
        let dport = r
            .matches
            .iter()
            .find_map(|m| match m {
                Match::Tcp(t) if proto == Some(6) => t.dport.as_ref(),
                Match::Udp(u) if proto == Some(17) => u.dport.as_ref(),
                _ => None,
            })
            .filter(|d| !d.negated && d.value.lo == d.value.hi)
            .map(|d| d.value.lo);
        let k = SliceKey { dst, proto, dport };
        (dst.is_some() || dport.is_some()).then_some(k)
    }

    /// No packet has both keys' fields.
    pub fn disjoint(self, o: SliceKey) -> bool {
        fn differ<T: PartialEq>(a: Option<T>, b: Option<T>) -> bool {
            matches!((a, b), (Some(x), Some(y)) if x != y)
        }
        differ(self.dst, o.dst) || differ(self.proto, o.proto) || differ(self.dport, o.dport)
    }
}

/// Which first packets a proof ranges over.
#[derive(Debug, Clone)]
pub enum Region {
    /// Those that have no key of the set (every key of the keyed chains' rules).
    Rest(Arc<HashSet<SliceKey>>),
    /// Those that have this key's fields.
    Key(SliceKey),
}

impl Region {
    /// Whether no packet of the region has key `k` (so a rule with that key never matches
    /// one).
    pub fn excludes(&self, k: SliceKey) -> bool {
        match self {
            Region::Rest(keys) => keys.contains(&k),
            Region::Key(r) => r.disjoint(k),
        }
    }
}

/// The region an encoder is confined to, and where it may leave rules out.
#[derive(Debug, Clone)]
pub struct Focus {
    /// The keyed chains, by table index (within the family) and chain index.
    pub keyed: Arc<HashSet<(usize, usize)>>,
    /// The region.
    pub region: Region,
    /// The first packet's destination, protocol and port: the terms a hop's packet must still
    /// carry for a rule to be left out.
    pub(super) dst: BV,
    pub(super) proto: BV,
    pub(super) dport: BV,
}

impl Focus {
    /// A focus on `region` for journeys from `first`.
    pub fn new(keyed: Arc<HashSet<(usize, usize)>>, region: Region, first: &SymPacket) -> Focus {
        Focus {
            keyed,
            region,
            dst: first.dst.clone(),
            proto: first.proto.clone(),
            dport: first.dport.clone(),
        }
    }
}

impl Encoder<'_> {
    /// Confines the encoding to `focus`'s region (see the module's documentation). Terms built
    /// before stay as they are.
    pub fn set_focus(&mut self, focus: Focus) {
        self.focus = Some(focus);
    }

    /// How many times a rule the region excludes had to be encoded because the packet there no
    /// longer carried the first packet's fields: 0 means the encoding is exactly the slice.
    pub fn leaks(&self) -> usize {
        self.leaks
    }

    /// Whether rule `r` (table `ti`, chain `ci`) is left out for packet `p`; counts a leak when
    /// the region excludes it but `p` is not the first packet's there.
    pub(super) fn left_out(&mut self, ti: usize, ci: usize, r: &Rule, p: &SymPacket) -> bool {
        let Some(f) = &self.focus else { return false };
        if !f.keyed.contains(&(ti, ci)) {
            return false;
        }
        let Some(k) = SliceKey::of(r) else {
            return false;
        };
        if !f.region.excludes(k) {
            return false;
        }
        // The same term (Z3's structural identity), so the same value in every model.
        let original = (k.dst.is_none() || p.dst == f.dst)
            && (k.proto.is_none() || p.proto == f.proto)
            && (k.dport.is_none() || p.dport == f.dport);
        if !original {
            self.leaks += 1;
        }
        original
    }

    /// Packet `p` has key `k`'s fields.
    pub fn has_key(&self, p: &SymPacket, k: SliceKey) -> Bool {
        let mut c = Vec::new();
        if let Some(a) = k.dst {
            c.push(if self.is_family(&a) {
                p.dst.eq(self.addr(a))
            } else {
                Bool::from_bool(false)
            });
        }
        if let Some(n) = k.proto {
            c.push(p.proto.eq(bv(u128::from(n), PROTO_BITS)));
        }
        if let Some(n) = k.dport {
            c.push(p.dport.eq(bv(u128::from(n), PORT_BITS)));
        }
        all(&c)
    }

    /// The first packet `p` lies in `region`.
    pub fn in_region(&self, p: &SymPacket, region: &Region) -> Bool {
        match region {
            Region::Key(k) => self.has_key(p, *k),
            Region::Rest(keys) => {
                let mut sorted: Vec<&SliceKey> = keys.iter().collect();
                sorted.sort();
                let v: Vec<Bool> = sorted.iter().map(|k| self.has_key(p, **k).not()).collect();
                all(&v)
            }
        }
    }
}
