//! `-m statistic`: a random or every-nth sample of packets (undecided: the model follows one
//! connection, not a count).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::eval::Packet;
use crate::parse::rule::values::parse_u32_tok;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::neg;

/// `-m statistic`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Statistic {
    /// `!` before `--mode`'s condition.
    pub negated: bool,
    /// The mode and its parameters.
    pub mode: StatisticMode,
}

/// The mode of `-m statistic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "lowercase")]
pub enum StatisticMode {
    /// `--mode random --probability P`, with P stored as the kernel does: P × 2³¹ rounded.
    Random {
        /// The probability in units of 2⁻³¹.
        probability: u32,
    },
    /// `--mode nth --every N --packet P`, stored as the kernel does (every − 1).
    Nth {
        /// `--every` minus one.
        every: u32,
        /// `--packet`.
        packet: u32,
    },
}

/// `--mode nth` before `--every`: the kernel's `every` cannot be `u32::MAX`, so that marks it
/// unset.
const NTH_UNSET: StatisticMode = StatisticMode::Nth {
    every: u32::MAX,
    packet: 0,
};

/// Before `--mode`: `nth` without `--every` (the finish checks refuse it).
impl Default for Statistic {
    fn default() -> Statistic {
        Statistic {
            negated: false,
            mode: NTH_UNSET,
        }
    }
}

impl MatchModule for Statistic {
    const NAME: &'static str = "statistic";
    const OPTIONS: &'static [&'static str] = &["--mode", "--probability", "--every", "--packet"];
    const GEN_SLOT: u32 = 11;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        let negated = o.negated();
        match o.name() {
            "--mode" => {
                let v = o.value()?;
                self.mode = match v.text.as_str() {
                    "random" => StatisticMode::Random { probability: 0 },
                    "nth" => NTH_UNSET,
                    other => {
                        return Err(err_at(v, format!("unknown statistic mode `{other}`"))
                            .with_help("expected `random` or `nth`"))
                    }
                };
            }
            "--probability" => {
                let v = o.value()?;
                let p: f64 = v
                    .text
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..=1.0).contains(p))
                    .ok_or_else(|| {
                        err_at(v, format!("invalid probability `{}`", v.text))
                            .with_help("expected a number from 0 to 1")
                    })?;
                self.negated |= negated;
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "p is in [0, 1], so the product fits in u32"
                )]
                let prob = (p * f64::from(0x8000_0000u32)).round() as u32;
                self.mode = StatisticMode::Random { probability: prob };
            }
            "--every" => {
                let v = o.value()?;
                let e = parse_u32_tok(v)?;
                if e == 0 {
                    return Err(err_at(v, "`--every` must be at least 1"));
                }
                self.negated |= negated;
                let packet = match self.mode {
                    StatisticMode::Nth { packet, .. } => packet,
                    StatisticMode::Random { .. } => 0,
                };
                self.mode = StatisticMode::Nth {
                    every: e - 1,
                    packet,
                };
            }
            "--packet" => {
                let v = o.value()?;
                let p = parse_u32_tok(v)?;
                if let StatisticMode::Nth { packet, .. } = &mut self.mode {
                    *packet = p;
                }
            }
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if !cx.given("--mode") {
            return Err(cx.fail("match `statistic` needs `--mode`"));
        }
        if let StatisticMode::Nth {
            every: u32::MAX, ..
        } = self.mode
        {
            return Err(cx.fail("`--mode nth` needs `--every`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        match self.mode {
            StatisticMode::Random { probability } => {
                s.push_str(" --mode random");
                neg(s, self.negated);
                let _ = write!(
                    s,
                    " --probability {:.11}",
                    f64::from(probability) / f64::from(0x8000_0000u32)
                );
            }
            StatisticMode::Nth { every, packet } => {
                s.push_str(" --mode nth");
                neg(s, self.negated);
                let _ = write!(s, " --every {} --packet {packet}", u64::from(every) + 1);
            }
        }
    }

    #[inline]
    fn eval(&self, _p: &Packet, _env: &Env<'_>) -> Option<bool> {
        None
    }

    fn generate(g: &GenCx<'_>) -> Option<Statistic> {
        let (v, s) = (g.v, g.s);
        Some(Statistic {
            negated: v & 1 == 1,
            mode: if v & 2 == 0 {
                StatisticMode::Random {
                    probability: s[10] % 0x8000_0001,
                }
            } else {
                StatisticMode::Nth {
                    every: s[10] % 1000,
                    packet: s[11] % 1000,
                }
            },
        })
    }
}
