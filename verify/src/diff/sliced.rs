//! `diff` region by region ([`crate::prove::slice`]): when both rulesets slice the same way
//! (the same keys, the same keyed chains, the same common part), a region whose key has the
//! same own part on both sides is encoded alike on both (the common part plus that own part),
//! so no connection in it behaves differently; neither does one in the rest region (the common
//! part alone). Only the regions of the keys whose own parts differ are searched, each with
//! both encoders confined to it. Two guards keep "encoded alike" true: no own part jumps back
//! into a chain that leads to a keyed chain (`Plan::reenters`), and the rest region's encoding
//! of each side tries no door where the packet is no longer the first one's (no leak). Either
//! failing, or the rulesets slicing differently, `diff` compares them whole.

use std::collections::HashSet;
use std::sync::Arc;

use sidecar_model::pod::{Pod, Profile};
use sidecar_model::{Family, Ruleset};
use z3::ast::Bool;

use super::{DiffError, Sides};
use crate::prove::slice::Plan;
use crate::smt::encode::focus::{Focus, Region};
use crate::smt::{Encoder, SymPacket};

/// Keyed chains by table and chain index.
type Keyed = Arc<HashSet<(usize, usize)>>;

/// The regions to search, and each side's keyed chains.
type Slices = (Vec<Region>, [Keyed; 2]);

/// The regions to search, and each side's keyed chains; `None` when the rulesets must be
/// compared whole.
pub(super) fn regions(sides: &Sides<'_>, fam: Family) -> Result<Option<Slices>, DiffError> {
    let t0 = std::time::Instant::now();
    let (old, new, pod, profile) = (sides.old, sides.new, sides.pod, sides.profile);
    let (Some(a), Some(b)) = (sides.plan(0, fam), sides.plan(1, fam)) else {
        return Ok(None);
    };
    let named = |rs: &Ruleset, p: &Plan| {
        let mut v: Vec<String> = p
            .keyed
            .iter()
            .filter_map(|&(ti, ci)| {
                let t = rs.tables(fam).get(ti)?;
                Some(format!(
                    "{} {} {}",
                    t.kind.name(),
                    rs.part_of(fam, ti),
                    t.chains.get(ci)?.name
                ))
            })
            .collect();
        v.sort();
        v
    };
    if a.keys != b.keys
        || a.common != b.common
        || a.reenters
        || b.reenters
        || named(old, a) != named(new, b)
        || leaks(old, fam, pod, profile, a)?
        || leaks(new, fam, pod, profile, b)?
    {
        crate::progress::timing("diff: compared whole (the rulesets slice differently)", t0);
        return Ok(None);
    }
    let mut differ: Vec<_> = a
        .own
        .iter()
        .filter(|(k, text)| b.own.get(k) != Some(text))
        .map(|(k, _)| *k)
        .collect();
    differ.sort();
    crate::progress::timing(
        &format!(
            "diff: {} of {} keys differ; the rest is alike",
            differ.len(),
            a.keys.len()
        ),
        t0,
    );
    Ok(Some((
        differ.into_iter().map(Region::Key).collect(),
        [a.keyed.clone(), b.keyed.clone()],
    )))
}

/// Whether the rest region's journeys of `rs` try a door where the packet is no longer the
/// first one's.
fn leaks(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    p: &Plan,
) -> Result<bool, DiffError> {
    let mut enc = Encoder::new(rs, fam, pod, profile)?;
    let first = SymPacket::fresh("c", enc.width);
    let outside = Bool::new_const("c_outside");
    enc.set_focus(Focus::new(
        p.keyed.clone(),
        Region::Rest(p.keys.clone()),
        &first,
    ));
    enc.journey(&first, &outside)?;
    Ok(enc.leaks() > 0)
}
