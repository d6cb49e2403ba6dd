//! Relational invariants: properties of two connections and their journeys, not of one (the
//! proxy's identities treated alike; a connection and its counterpart in the other family
//! alike). A [`Relation`] writes its violation once over [`Pair`] (two [`Dom`]s, and the facts
//! that tie them: a field equal in both, their journeys differing in shape), evaluated over Z3
//! terms ([`SymPair`]: one query over every pair) and over two evaluator journeys
//! ([`ConcPair`]: every pair Z3 finds is replayed, and must differ there too).
//!
//! The journey shape is [`crate::smt::shape`]'s, the one `diff` uses.

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::Ruleset;
use z3::ast::Bool;

use super::{Concrete, Dom, Part, Symbolic, Words};
use crate::smt::all;
use crate::smt::shape::{differs, same_shape, Dest};

/// A field of the first packet two connections can agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Both arrive from outside, or both are opened here.
    Outside,
    /// The protocol.
    Proto,
    /// The source port.
    Sport,
    /// The destination port.
    Dport,
    /// The opening process's uid.
    Uid,
    /// The opening process's gid.
    Gid,
    /// The socket's mark.
    Mark,
    /// The interfaces the first packet crosses (in, out).
    Ifaces,
    /// The source address (one family only: false across families).
    Src,
    /// The destination address (one family only: false across families).
    Dst,
}

/// Two connections (`a`, `b`) and their journeys, in one domain of truth values.
pub trait Pair {
    /// The domain of each connection.
    type D: Dom;
    /// The first connection.
    fn a(&self) -> &Self::D;
    /// The second connection.
    fn b(&self) -> &Self::D;
    /// Both connections have the same `f`.
    fn same(&self, f: Field) -> <Self::D as Dom>::B;
    /// Their journeys differ in shape ([`crate::smt::shape`]).
    fn differ(&self) -> <Self::D as Dom>::B;
    /// Every field of `fs` is the same in both.
    fn same_all(&self, fs: &[Field]) -> <Self::D as Dom>::B {
        self.a().and(fs.iter().map(|f| self.same(*f)).collect())
    }
}

/// One relational invariant: its id, statement and profile values, and its violation over a
/// [`Pair`].
///
/// Its contract: asserted over the scope of a proof for both connections, the violation is
/// unsatisfiable if and only if no pair of connections in scope breaks the invariant; evaluated
/// over two concrete journeys it is true if and only if that pair breaks it.
pub trait Relation {
    /// The stable id (`kebab-case`; the file is named after it).
    const ID: &'static str;
    /// The profile values it uses when the profile sets them, besides its own lines.
    const ALSO_USES: &'static [Part];
    /// Whether the two connections are of different families (IPv4 `a`, IPv6 `b`).
    const CROSS_FAMILY: bool;
    /// The fields the two connections always share: the violation says `same_all` of them
    /// whatever else it says. The prover builds the second connection with the first's terms
    /// for these fields (one family only), so that what both journeys compute from them alone
    /// is one term.
    const SAME: &'static [Field] = &[];
    /// The one-line statement, with the profile's values.
    fn statement(p: &Profile, w: &Words) -> String;
    /// The profile values it always uses, as `name = value` lines.
    fn uses(p: &Profile) -> Vec<String>;
    /// Why no pair can meet its premise in `pod` for the ruleset `rs` (nothing to compare),
    /// or none when some pair can.
    fn vacuous(rs: &Ruleset, pod: &Pod, p: &Profile) -> Option<String>;
    /// The condition under which the pair violates the invariant, in `pod` (whose addresses
    /// may play a role).
    fn violation<P: Pair>(pr: &P, p: &Profile, pod: &Pod) -> <P::D as Dom>::B;
}

/// A pair of symbolic journeys (one encoder each, or the same one twice).
pub struct SymPair<'a, 'e> {
    /// The first connection.
    pub a: Symbolic<'a, 'e>,
    /// The second connection.
    pub b: Symbolic<'a, 'e>,
}

impl<'a, 'e> Pair for SymPair<'a, 'e> {
    type D = Symbolic<'a, 'e>;
    fn a(&self) -> &Symbolic<'a, 'e> {
        &self.a
    }
    fn b(&self) -> &Symbolic<'a, 'e> {
        &self.b
    }
    fn same(&self, f: Field) -> Bool {
        let (x, y) = (self.a.first, self.b.first);
        let one_family = self.a.enc.family == self.b.enc.family;
        match f {
            Field::Outside => self.a.outside.iff(self.b.outside),
            Field::Proto => x.proto.eq(&y.proto),
            Field::Sport => x.sport.eq(&y.sport),
            Field::Dport => x.dport.eq(&y.dport),
            Field::Uid => x.uid.eq(&y.uid),
            Field::Gid => x.gid.eq(&y.gid),
            Field::Mark => x.mark.eq(&y.mark),
            // The two encoders enumerate interfaces alike (`Ifaces::with_names` over the
            // ruleset's two families and the profile's names).
            Field::Ifaces => all(&[x.iif.eq(&y.iif), x.oif.eq(&y.oif)]),
            Field::Src if one_family => x.src.eq(&y.src),
            Field::Dst if one_family => x.dst.eq(&y.dst),
            Field::Src | Field::Dst => Bool::from_bool(false),
        }
    }
    fn differ(&self) -> Bool {
        differs(self.a.journey, self.b.journey, self.dest())
    }
}

impl SymPair<'_, '_> {
    fn dest(&self) -> Dest {
        if self.a.enc.family == self.b.enc.family {
            Dest::Address
        } else {
            Dest::Role
        }
    }
}

/// A pair of concrete journeys (the evaluator's).
pub struct ConcPair<'a> {
    /// The first connection.
    pub a: Concrete<'a>,
    /// The second connection.
    pub b: Concrete<'a>,
}

impl<'a> Pair for ConcPair<'a> {
    type D = Concrete<'a>;
    fn a(&self) -> &Concrete<'a> {
        &self.a
    }
    fn b(&self) -> &Concrete<'a> {
        &self.b
    }
    fn same(&self, f: Field) -> bool {
        let (x, y) = (&self.a.first, &self.b.first);
        let one_family = x.family() == y.family();
        match f {
            Field::Outside => self.a.outside() == self.b.outside(),
            Field::Proto => x.proto == y.proto,
            Field::Sport => x.sport == y.sport,
            Field::Dport => x.dport == y.dport,
            Field::Uid => x.uid == y.uid,
            Field::Gid => x.gid == y.gid,
            Field::Mark => x.mark == y.mark,
            Field::Ifaces => x.in_iface == y.in_iface && x.out_iface == y.out_iface,
            Field::Src => one_family && x.src == y.src,
            Field::Dst => one_family && x.dst == y.dst,
        }
    }
    fn differ(&self) -> bool {
        let dest = if self.a.first.family() == self.b.first.family() {
            Dest::Address
        } else {
            Dest::Role
        };
        !same_shape(self.a.journey, self.b.journey, dest)
    }
}
