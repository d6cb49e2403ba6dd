//! The invariants of one family proved region by region ([`super::slice`]): the rest region
//! first (the mesh's own rules, where most violations are), then each class's representative.
//! Per invariant the worst result over the regions wins (violated > unknown > holds >
//! vacuous); a region is not asked about an invariant already violated, nor about its premise
//! once one region has met it.

use sidecar_model::pod::{Pod, Profile, Simulator};
use sidecar_model::{Family, Ruleset};
use z3::ast::Bool;

use super::slice::Plan;
use super::{premise_met, prove, ProveError, Proved};
use crate::invariants::{Symbolic, ALL};
use crate::results::Status;
use crate::smt::encode::focus::{Focus, Region, SliceKey};
use crate::smt::solve::solver;
use crate::smt::{all, Encoder, SymPacket};

/// Every invariant of the catalog (relations as `holds`, proved later over pairs) over the
/// regions of `plan`; `None` when a representative's encoding leaked (the caller then proves
/// the family whole).
#[allow(clippy::too_many_arguments)]
pub(super) fn invariants(
    rs: &Ruleset,
    fam: Family,
    pod: &Pod,
    profile: &Profile,
    opts: &super::Options,
    sim: &Simulator,
    plan: &Plan,
) -> Result<Option<Vec<Proved>>, ProveError> {
    let mut out: Vec<Option<Proved>> = ALL.iter().map(|_| None).collect();
    let regions = plan.regions();
    crate::progress::phase(
        &format!(
            "proving the invariants, {}, {} regions",
            super::fam_name(fam),
            regions.len()
        ),
        regions.len(),
    );
    for (region, class) in &regions {
        let members = class.map_or(1, |c| c.members.len());
        crate::progress::step();
        let t0 = std::time::Instant::now();
        let mut enc = Encoder::new(rs, fam, pod, profile)?;
        let first = SymPacket::fresh("c", enc.width);
        let outside = Bool::new_const("c_outside");
        enc.set_focus(Focus::new(plan.keyed.clone(), region.clone(), &first));
        let journey = enc.journey(&first, &outside)?;
        if enc.leaks() > 0 && members > 1 {
            crate::progress::timing(
                &format!(
                    "slicing abandoned: {} leaks in {}",
                    enc.leaks(),
                    describe(region)
                ),
                t0,
            );
            return Ok(None);
        }
        let scope = all(&[
            enc.scope(&first, &outside, opts.routing),
            enc.in_region(&first, region),
        ]);
        let s = solver(opts.timeout_ms);
        s.assert(&scope);
        let journey = journey.named(&s, "journey");
        let sym = Symbolic {
            enc: &enc,
            first: &first,
            outside: &outside,
            journey: &journey,
        };
        for (slot, id) in out.iter_mut().zip(ALL) {
            if id.is_relation() {
                *slot = Some((id, Status::Holds, None, None));
                continue;
            }
            let before = slot.as_ref().map(|p| p.1);
            if before == Some(Status::Violated) {
                continue;
            }
            let v = id.violation(&sym, profile);
            s.push();
            let r = prove(
                rs, fam, &enc, &s, &v, &first, &outside, sim, pod, profile, id,
            );
            s.pop(1);
            let mut r = r?;
            if r.1 == Status::Holds && before != Some(Status::Holds) {
                let (st, reason) = premise_met(&s, &id.premise(&sym, profile));
                r.1 = st;
                r.3 = reason;
            }
            if r.1 == Status::Unknown {
                r.3 = Some(format!(
                    "{} (first packets {})",
                    r.3.unwrap_or_default(),
                    describe(region)
                ));
            }
            if before.is_none_or(|b| r.1.rank() > b.rank()) {
                *slot = Some(r);
            }
        }
        crate::progress::timing(&format!("region {} ({members} keys)", describe(region)), t0);
    }
    Ok(Some(out.into_iter().flatten().collect()))
}

/// A region as a person reads it.
pub(super) fn describe(region: &Region) -> String {
    match region {
        Region::Rest(keys) => format!("to none of the {} service keys", keys.len()),
        Region::Key(k) => format!("with the key {}", key_text(*k)),
    }
}

/// `10.96.0.1 tcp 80`, `tcp 30080`: a key's fields.
pub fn key_text(k: SliceKey) -> String {
    let mut parts = Vec::new();
    if let Some(a) = k.dst {
        parts.push(a.to_string());
    }
    if let Some(p) = k.proto {
        parts.push(match p {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            n => format!("proto {n}"),
        });
    }
    if let Some(d) = k.dport {
        parts.push(format!("port {d}"));
    }
    parts.join(" ")
}
