//! `-m mark` and `-m connmark`: the packet's or the connection's mark under a mask.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::{MarkMask, Neg};
use crate::eval::Packet;
use crate::parse::rule::values::parse_mark_mask;
use crate::parse::rule::Res;
use crate::print::{mark_mask, neg};

/// `-m mark --mark VALUE[/MASK]`: `(mark & mask) == value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(transparent)]
pub struct Mark(pub Neg<MarkMask>);

/// `-m connmark --mark VALUE[/MASK]`: `(ctmark & mask) == value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(transparent)]
pub struct Connmark(pub Neg<MarkMask>);

/// Before `--mark`, which the finish check requires.
impl Default for Mark {
    fn default() -> Mark {
        Mark(UNSET)
    }
}

/// Before `--mark`, which the finish check requires.
impl Default for Connmark {
    fn default() -> Connmark {
        Connmark(UNSET)
    }
}

const UNSET: Neg<MarkMask> = Neg {
    negated: false,
    value: MarkMask {
        value: 0,
        mask: u32::MAX,
    },
};

fn option(n: &mut Neg<MarkMask>, o: &mut OptArgs<'_, '_>) -> Res<Take> {
    match o.name() {
        "--mark" => *n = Neg::new(o.negated(), parse_mark_mask(o.value()?, u32::MAX)?),
        _ => return Ok(Take::NotMine),
    }
    Ok(Take::Done)
}

fn finish(cx: &Finish<'_>) -> Res<()> {
    if !cx.given("--mark") {
        return Err(cx.fail(format!("match `{}` needs `--mark`", cx.name)));
    }
    Ok(())
}

fn print(s: &mut String, n: &Neg<MarkMask>) {
    neg(s, n.negated);
    let _ = write!(s, " --mark {}", mark_mask(&n.value));
}

#[inline]
fn holds(n: &Neg<MarkMask>, mark: u32) -> bool {
    ((mark & n.value.mask) == n.value.value) != n.negated
}

/// A generated mark test: `value`, and `mask` unless `v` says all ones.
fn generate(v: u32, value: u32, mask: u32) -> Neg<MarkMask> {
    Neg::new(
        v & 1 == 1,
        MarkMask {
            value,
            mask: if v & 2 == 0 { u32::MAX } else { mask },
        },
    )
}

/// The module `$ty` called `$name`, testing the packet field `$field`; the generator takes
/// its value and mask from the seed's numbers `$value` and `$mask`.
macro_rules! mark_module {
    ($ty:ident, $name:literal, conntrack: $ct:literal, slot: $slot:literal, $field:ident, seed: $value:literal, $mask:literal) => {
        impl MatchModule for $ty {
            const NAME: &'static str = $name;
            const OPTIONS: &'static [&'static str] = &["--mark"];
            const CONNTRACK: bool = $ct;
            const GEN_SLOT: u32 = $slot;

            fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
                option(&mut self.0, o)
            }
            fn finish(&self, cx: &Finish<'_>) -> Res<()> {
                finish(cx)
            }
            fn print(&self, s: &mut String) {
                print(s, &self.0);
            }
            #[inline]
            fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
                Some(holds(&self.0, p.$field))
            }
            fn generate(g: &GenCx<'_>) -> Option<$ty> {
                Some($ty(generate(g.v, g.s[$value], g.s[$mask])))
            }
        }
    };
}

mark_module!(Mark, "mark", conntrack: false, slot: 4, mark, seed: 8, 9);
mark_module!(Connmark, "connmark", conntrack: true, slot: 5, ctmark, seed: 9, 8);
