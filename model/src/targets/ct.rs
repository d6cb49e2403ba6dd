//! `CT` (`--notrack`, a zone) and `NOTRACK`: exempt from connection tracking, in the raw table.

use std::fmt::Write as _;

use super::{Given, TargetDef};
use crate::ast::{CtZone, Hook, TableKind, Target};
use crate::parse::rule::values::parse_u32_tok;
use crate::parse::rule::{err_at, Res};

/// `-j CT`.
pub(crate) const CT: TargetDef = TargetDef {
    name: "CT",
    options: &[
        "--notrack",
        "--zone",
        "--zone-orig",
        "--zone-reply",
        "--helper",
        "--ctevents",
        "--expevents",
        "--timeout",
    ],
    flags: &["--notrack"],
    verbatim: &["--helper", "--ctevents", "--expevents", "--timeout"],
    port_options: &[],
    allowed: Some((TableKind::Raw, &[Hook::Prerouting, Hook::Output])),
    finish,
};

/// `-j NOTRACK`.
pub(crate) const NOTRACK: TargetDef = TargetDef {
    name: "NOTRACK",
    options: &[],
    flags: &[],
    verbatim: &[],
    finish: |_: &Given<'_>| -> Res<Target> { Ok(Target::Notrack) },
    ..CT
};

fn finish(g: &Given<'_>) -> Res<Target> {
    let mut zone = None;
    for (opt, orig) in [
        ("--zone", None),
        ("--zone-orig", Some(true)),
        ("--zone-reply", Some(false)),
    ] {
        if let Some((v, _)) = g.value(opt) {
            let t = g.value_token(opt, v);
            let id = u16::try_from(parse_u32_tok(&t)?)
                .map_err(|_| err_at(&t, format!("zone `{v}` out of range (0 to 65535)")))?;
            if zone.is_some() {
                return Err(err_at(&t, "`CT` takes one zone option"));
            }
            zone = Some(CtZone { id, orig });
        }
    }
    Ok(Target::Ct {
        notrack: g.has("--notrack"),
        zone: zone.filter(|z| z.id != 0 || z.orig.is_some()),
    })
}

pub(crate) fn print(s: &mut String, notrack: bool, zone: &Option<CtZone>) {
    if notrack {
        s.push_str(" --notrack");
    }
    if let Some(z) = zone {
        let opt = match z.orig {
            None => "--zone",
            Some(true) => "--zone-orig",
            Some(false) => "--zone-reply",
        };
        let _ = write!(s, " {opt} {}", z.id);
    }
}
