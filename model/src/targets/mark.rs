//! `MARK` and `CONNMARK`: set the packet's or the connection's mark (every form reduced to
//! `--set-xmark`), or copy one into the other.

use std::fmt::Write as _;

use super::{Given, TargetDef};
use crate::ast::{MarkMask, Target};
use crate::parse::rule::values::{parse_mark_mask, parse_u32_tok};
use crate::parse::rule::Res;

/// The MARK-style operations, each reduced to `--set-xmark`.
const OPS: [&str; 5] = [
    "--set-mark",
    "--set-xmark",
    "--and-mark",
    "--or-mark",
    "--xor-mark",
];

/// `-j MARK`.
pub(crate) const MARK: TargetDef = TargetDef {
    name: "MARK",
    options: &OPS,
    flags: &[],
    verbatim: &[],
    port_options: &[],
    allowed: None,
    finish: finish_mark,
};

/// `-j CONNMARK`.
pub(crate) const CONNMARK: TargetDef = TargetDef {
    name: "CONNMARK",
    options: &[
        "--set-mark",
        "--set-xmark",
        "--and-mark",
        "--or-mark",
        "--xor-mark",
        "--save-mark",
        "--restore-mark",
        "--mask",
        "--nfmask",
        "--ctmask",
    ],
    flags: &["--save-mark", "--restore-mark"],
    finish: finish_connmark,
    ..MARK
};

fn finish_mark(g: &Given<'_>) -> Res<Target> {
    match mark_op(g)? {
        Some(m) => Ok(Target::Mark(m)),
        None => Err(g.fail(
            "`MARK` needs `--set-mark`, `--set-xmark`, `--and-mark`, `--or-mark` or `--xor-mark`",
        )),
    }
}

fn finish_connmark(g: &Given<'_>) -> Res<Target> {
    if let Some(m) = mark_op(g)? {
        return Ok(Target::ConnmarkSet(m));
    }
    let mask = match g.value("--mask") {
        Some((v, _)) => Some(parse_u32_tok(&g.value_token("--mask", v))?),
        None => None,
    };
    let nfmask = match g.value("--nfmask") {
        Some((v, _)) => parse_u32_tok(&g.value_token("--nfmask", v))?,
        None => mask.unwrap_or(u32::MAX),
    };
    let ctmask = match g.value("--ctmask") {
        Some((v, _)) => parse_u32_tok(&g.value_token("--ctmask", v))?,
        None => mask.unwrap_or(u32::MAX),
    };
    if g.has("--save-mark") && g.has("--restore-mark") {
        return Err(g.fail("`CONNMARK` takes one of `--save-mark` and `--restore-mark`"));
    }
    if g.has("--save-mark") {
        Ok(Target::ConnmarkSave { nfmask, ctmask })
    } else if g.has("--restore-mark") {
        Ok(Target::ConnmarkRestore { nfmask, ctmask })
    } else {
        Err(g.fail(
            "`CONNMARK` needs `--set-xmark`, `--set-mark`, `--save-mark` or `--restore-mark`",
        ))
    }
}

/// MARK-style operations reduced to `(value, mask)` of `--set-xmark`.
fn mark_op(g: &Given<'_>) -> Res<Option<MarkMask>> {
    let given: Vec<&str> = OPS.into_iter().filter(|o| g.has(o)).collect();
    if given.len() > 1 {
        return Err(g.fail(format!("`{}` takes only one of {}", g.name, OPS.join(", "))));
    }
    let Some(op) = given.first() else {
        return Ok(None);
    };
    let Some((v, t)) = g.value(op) else {
        return Ok(None);
    };
    let tok = crate::parse::lex::Token {
        text: v.into(),
        start: t.start,
        end: t.end,
    };
    Ok(Some(match *op {
        "--set-xmark" => parse_mark_mask(&tok, u32::MAX)?,
        "--set-mark" => {
            let m = parse_mark_mask(&tok, u32::MAX)?;
            MarkMask {
                value: m.value,
                mask: m.value | m.mask,
            }
        }
        "--and-mark" => MarkMask {
            value: 0,
            mask: !parse_u32_tok(&tok)?,
        },
        "--or-mark" => {
            let v = parse_u32_tok(&tok)?;
            MarkMask { value: v, mask: v }
        }
        _ => MarkMask {
            value: parse_u32_tok(&tok)?,
            mask: 0,
        },
    }))
}

/// ` --set-xmark V/M`.
pub(crate) fn print_xmark(s: &mut String, m: &MarkMask) {
    let _ = write!(s, " --set-xmark 0x{:x}/0x{:x}", m.value, m.mask);
}

/// ` --save-mark` or ` --restore-mark`, with both masks.
pub(crate) fn print_connmark(s: &mut String, op: &str, nfmask: u32, ctmask: u32) {
    let _ = write!(s, " {op} --nfmask 0x{nfmask:x} --ctmask 0x{ctmask:x}");
}
