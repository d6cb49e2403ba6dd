//! Masked mutants: a mutant whose every changed connection is one an invariant the ruleset
//! already violates reports on the ruleset. No invariant can kill it (killing needs an
//! invariant that holds on the ruleset), yet the catalog is not blind there: it already says
//! these connections are wrong. Fix the ruleset (or the profile) and the invariant speaks again.
//!
//! The test is one `diff` search that leaves those connections out ([`diff::Exclude`]), and the
//! connections to the proxy's own capture ports that loop before and after (every invariant
//! sets those ports aside): no routable change outside them makes the mutant masked. The region of an invariant of one
//! connection is its violation on the ruleset. For a relation of one family (identity
//! symmetry), a connection is in the region when it and a *counterpart* break the relation on
//! the ruleset; the counterpart is a function of the connection (the same connection opened as
//! another of the proxy's identities, with its own application credentials where it has them
//! and [`APP_UID`]/[`APP_GID`] where it has not), so the region is one quantifier-free term.
//! A counterpart the relation would pick differently only makes the region smaller: the test
//! can fail to show a mutant masked, never show one masked wrongly. Relations across families
//! (dual-stack parity) give no region.

use sidecar_model::pod::{Pod, Profile};
use z3::ast::{Bool, BV};

use crate::diff::{self, DiffError};
use crate::invariants::identity_symmetry::{proxy_identities, Identity};
use crate::invariants::{Id, SymPair, Symbolic};
use crate::diff::capture_ports;
use crate::smt::{
    all, any, bv, EncodeError, Encoder, SymJourney, SymPacket, GID_BITS, MARK_BITS, PORT_BITS,
    UID_BITS,
};

use sidecar_model::Ruleset;

/// The application uid a counterpart takes when the connection's uid is one of the proxy's.
pub const APP_UID: u32 = 1000;
/// The application gid a counterpart takes when the connection's gid is one of the proxy's.
pub const APP_GID: u32 = 1000;

/// Whether every routable change of `mutant` is in the region of the invariants `ids` (which
/// `rs` violates): `Some(true)` masked, `Some(false)` a change outside them, `None` undecided.
pub fn masked(
    rs: &Ruleset,
    mutant: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    ids: &[Id],
    opts: &diff::Options,
) -> Result<Option<bool>, DiffError> {
    let exclude = |enc: &mut Encoder,
                   first: &SymPacket,
                   outside: &Bool,
                   old: &SymJourney,
                   new: &SymJourney|
     -> Result<Bool, EncodeError> {
        // A connection to one of the proxy's own capture ports that loops before and after
        // is the proxy's business (every invariant sets those ports aside); how it loops is
        // not a change any invariant could speak about.
        let ports = capture_ports(profile);
        let to_capture = any(&ports
            .iter()
            .map(|p| first.dport.eq(bv(u128::from(*p), PORT_BITS)))
            .collect::<Vec<_>>());
        let loops_both = all(&[to_capture, old.looped.clone(), new.looped.clone()]);
        Ok(any(&[loops_both, region(enc, first, outside, old, profile, pod, ids)?]))
    };
    let d = diff::first_change_excluding(rs, mutant, pod, profile, opts, &exclude)?;
    Ok(if !d.changes.is_empty() {
        Some(false)
    } else if d.unknown {
        None
    } else {
        Some(true)
    })
}

/// The connections (on the ruleset `enc` encodes) that the invariants `ids` report.
fn region(
    enc: &mut Encoder,
    first: &SymPacket,
    outside: &Bool,
    journey: &SymJourney,
    profile: &Profile,
    pod: &Pod,
    ids: &[Id],
) -> Result<Bool, EncodeError> {
    let mut parts = Vec::new();
    // The counterparts' journeys first: the encoder is borrowed mutably to build them.
    let mut others = Vec::new();
    if ids.iter().any(|i| i.is_relation() && !i.cross_family()) {
        let all = proxy_identities(profile);
        for id in &all {
            let c = counterpart(first, *id, &all);
            let j = enc.journey(&c, outside)?;
            others.push((c, j));
        }
    }
    let enc: &Encoder = enc;
    let me = Symbolic {
        enc,
        first,
        outside,
        journey,
    };
    for id in ids {
        if !id.is_relation() {
            parts.push(id.violation(&me, profile));
            continue;
        }
        if id.cross_family() {
            continue;
        }
        for (c, j) in &others {
            let other = || Symbolic {
                enc,
                first: c,
                outside,
                journey: j,
            };
            let me = || Symbolic {
                enc,
                first,
                outside,
                journey,
            };
            for pr in [
                SymPair {
                    a: other(),
                    b: me(),
                },
                SymPair {
                    a: me(),
                    b: other(),
                },
            ] {
                if let Some(v) = id.pair_violation(&pr, profile, pod) {
                    parts.push(v);
                }
            }
        }
    }
    Ok(any(&parts))
}

/// `first` opened as the proxy identity `id`: the credentials `id` sets are its; the others are
/// `first`'s where they are an application's, else [`APP_UID`]/[`APP_GID`] (and no mark).
fn counterpart(first: &SymPacket, id: Identity, all: &[Identity]) -> SymPacket {
    let app = |v: &BV, ours: Vec<u32>, fallback: u32, bits: u32| -> BV {
        let is_ours = any(&ours.iter().map(|o| v.eq(bv(u128::from(*o), bits))).collect::<Vec<_>>());
        is_ours.ite(&bv(u128::from(fallback), bits), v)
    };
    let uids: Vec<u32> = all
        .iter()
        .filter_map(|i| match i {
            Identity::Uid(u) => Some(*u),
            _ => None,
        })
        .collect();
    let gids: Vec<u32> = all
        .iter()
        .filter_map(|i| match i {
            Identity::Gid(g) => Some(*g),
            _ => None,
        })
        .collect();
    let mut c = first.clone();
    c.uid = match id {
        Identity::Uid(u) => bv(u128::from(u), UID_BITS),
        _ => app(&first.uid, uids, APP_UID, UID_BITS),
    };
    c.gid = match id {
        Identity::Gid(g) => bv(u128::from(g), GID_BITS),
        _ => app(&first.gid, gids, APP_GID, GID_BITS),
    };
    let proxy_mark = any(&all
        .iter()
        .filter_map(|i| match i {
            Identity::Mark(m, k) => Some(
                first
                    .mark
                    .bvand(bv(u128::from(*k), MARK_BITS))
                    .eq(bv(u128::from(m & k), MARK_BITS)),
            ),
            _ => None,
        })
        .collect::<Vec<_>>());
    c.mark = match id {
        Identity::Mark(m, k) => bv(u128::from(m & k), MARK_BITS),
        _ => proxy_mark.ite(&bv(0, MARK_BITS), &first.mark),
    };
    c
}
