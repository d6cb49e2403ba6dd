//! `ACCEPT`, `DROP` and `RETURN`: no options.

use super::{Given, TargetDef};
use crate::ast::Target;
use crate::parse::rule::Res;

/// `-j ACCEPT`.
pub(crate) const ACCEPT: TargetDef = TargetDef {
    name: "ACCEPT",
    options: &[],
    flags: &[],
    verbatim: &[],
    port_options: &[],
    allowed: None,
    finish: |_: &Given<'_>| -> Res<Target> { Ok(Target::Accept) },
};

/// `-j DROP`.
pub(crate) const DROP: TargetDef = TargetDef {
    name: "DROP",
    finish: |_: &Given<'_>| -> Res<Target> { Ok(Target::Drop) },
    ..ACCEPT
};

/// `-j RETURN`.
pub(crate) const RETURN: TargetDef = TargetDef {
    name: "RETURN",
    finish: |_: &Given<'_>| -> Res<Target> { Ok(Target::Return) },
    ..ACCEPT
};
