//! What an invariant the ruleset already violates can still say about a mutant. Such an
//! invariant cannot kill it the usual way (violated on the ruleset, violated on the mutant), yet
//! the catalog is not blind to what it reports:
//!
//! - **masked**: every connection the mutant changes is one the invariant already reports on
//!   the ruleset. Fix the ruleset (or the profile) and the invariant speaks again.
//! - **killed by a new violation**: the mutant breaks the invariant at a connection where the
//!   ruleset keeps it ([`new_violation`]).
//!
//! Both are one `diff` search over the two rulesets ([`diff::Exclude`]). The *report* of an
//! invariant of one connection at a connection is its violation there. For a relation of one
//! family (identity symmetry), it is the relation broken by the connection and a
//! *counterpart*, a function of the connection (the same connection opened as another of the
//! proxy's identities, with its own application credentials where it has them and
//! [`APP_UID`]/[`APP_GID`] where it has not), so each report is one quantifier-free term, and
//! the same counterparts serve both rulesets. A counterpart the relation would pick differently
//! only makes a report smaller: masking can fail to show a mutant masked, never show one masked
//! wrongly; a new violation is a pair the mutant breaks and the ruleset keeps, so it is one.
//! Relations across families (dual-stack parity) report nothing here. Connections to the
//! proxy's own capture ports that loop before and after are left out of masking's search too
//! (every invariant sets those ports aside).

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::Ruleset;
use z3::ast::{Bool, BV};

use crate::diff::{self, capture_ports, DiffError};
use crate::invariants::identity_symmetry::{proxy_identities, Identity};
use crate::invariants::{Id, SymPair, Symbolic};
use crate::results::Witness;
use crate::smt::{
    all, any, bv, EncodeError, Encoder, SymJourney, SymPacket, GID_BITS, MARK_BITS, PORT_BITS,
    UID_BITS,
};

/// The application uid a counterpart takes when the connection's uid is one of the proxy's.
pub const APP_UID: u32 = 1000;
/// The application gid a counterpart takes when the connection's gid is one of the proxy's.
pub const APP_GID: u32 = 1000;

/// Whether every routable change of `mutant` is one the invariants `ids` (which `rs` violates)
/// report on `rs`: `Some(true)` masked, `Some(false)` a change outside them, `None` undecided.
pub fn masked(
    rs: &Ruleset,
    mutant: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    ids: &[Id],
    opts: &diff::Options,
) -> Result<Option<bool>, DiffError> {
    let exclude = |old_enc: &mut Encoder,
                   _: &mut Encoder,
                   first: &SymPacket,
                   outside: &Bool,
                   old: &SymJourney,
                   new: &SymJourney|
     -> Result<Bool, EncodeError> {
        let ports = capture_ports(profile);
        let to_capture = any(&ports
            .iter()
            .map(|p| first.dport.eq(bv(u128::from(*p), PORT_BITS)))
            .collect::<Vec<_>>());
        let mut v = vec![all(&[to_capture, old.looped.clone(), new.looped.clone()])];
        for id in ids {
            v.extend(reports(old_enc, first, outside, old, profile, pod, *id)?);
        }
        Ok(any(&v))
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

/// A changed connection that `mutant` violates `id` at and `rs` does not (for a relation: a
/// pair with one of its counterparts), with a witness; `Ok(None)` when there is none (or the
/// search was undecided: no kill is claimed then).
pub fn new_violation(
    rs: &Ruleset,
    mutant: &Ruleset,
    pod: &Pod,
    profile: &Profile,
    id: Id,
    opts: &diff::Options,
) -> Result<Option<Witness>, DiffError> {
    let exclude = |old_enc: &mut Encoder,
                   new_enc: &mut Encoder,
                   first: &SymPacket,
                   outside: &Bool,
                   old: &SymJourney,
                   new: &SymJourney|
     -> Result<Bool, EncodeError> {
        let was = reports(old_enc, first, outside, old, profile, pod, id)?;
        let now = reports(new_enc, first, outside, new, profile, pod, id)?;
        let fresh: Vec<Bool> = now
            .iter()
            .zip(&was)
            .map(|(n, w)| all(&[n.clone(), w.not()]))
            .collect();
        Ok(any(&fresh).not())
    };
    let d = diff::first_change_excluding(rs, mutant, pod, profile, opts, &exclude)?;
    Ok(d.changes.into_iter().next().map(|c| c.witness))
}

/// What `id` reports at the connection `first` on the ruleset `enc` encodes, as a list of terms
/// in an order that depends only on the profile (so that the lists of two rulesets align): its
/// violation, for an invariant of one connection; for a relation of one family, the relation
/// broken by the connection and each counterpart, either way round; nothing for a relation
/// across families.
fn reports(
    enc: &mut Encoder,
    first: &SymPacket,
    outside: &Bool,
    journey: &SymJourney,
    profile: &Profile,
    pod: &Pod,
    id: Id,
) -> Result<Vec<Bool>, EncodeError> {
    if !id.is_relation() {
        let me = Symbolic {
            enc,
            first,
            outside,
            journey,
        };
        return Ok(vec![id.violation(&me, profile)]);
    }
    if id.cross_family() {
        return Ok(Vec::new());
    }
    // The counterparts' journeys first: the encoder is borrowed mutably to build them.
    let ids = proxy_identities(profile);
    let mut others = Vec::new();
    for x in &ids {
        let c = counterpart(first, *x, &ids);
        let j = enc.journey(&c, outside)?;
        others.push((c, j));
    }
    let enc: &Encoder = enc;
    let mut v = Vec::new();
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
            v.push(
                id.pair_violation(&pr, profile, pod)
                    .unwrap_or_else(|| Bool::from_bool(false)),
            );
        }
    }
    Ok(v)
}

/// `first` opened as the proxy identity `id`: the credentials `id` sets are its; the others are
/// `first`'s where they are an application's, else [`APP_UID`]/[`APP_GID`]; the mark is the
/// mark identity's, or `first`'s unless it is one of the proxy's (then none).
fn counterpart(first: &SymPacket, id: Identity, all: &[Identity]) -> SymPacket {
    let app = |v: &BV, ours: Vec<u32>, fallback: u32, bits: u32| -> BV {
        let is_ours = any(&ours
            .iter()
            .map(|o| v.eq(bv(u128::from(*o), bits)))
            .collect::<Vec<_>>());
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
