//! `-m conntrack --ctstate` and `-m state --state`: the connection's tracking state.

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::Neg;
use crate::eval::{ConnState, Packet};
use crate::gen::subset;
use crate::parse::lex::Token;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::list_opt;

/// `-m conntrack`; of its options the model interprets `--ctstate` (any other keeps the match
/// verbatim).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Conntrack {
    /// `--ctstate`, sorted in kernel print order.
    pub ctstate: Neg<Vec<CtState>>,
}

/// `-m state --state`, sorted in kernel print order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(transparent)]
pub struct State(pub Neg<Vec<CtState>>);

/// A conntrack state bit as `--ctstate` / `--state` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "UPPERCASE")]
pub enum CtState {
    /// A packet conntrack could not classify.
    Invalid,
    /// The first packet of a connection.
    New,
    /// A connection related to an existing one.
    Related,
    /// A packet of a connection seen in both directions.
    Established,
    /// A packet exempted from tracking.
    Untracked,
    /// A connection whose source was translated (conntrack only).
    Snat,
    /// A connection whose destination was translated (conntrack only).
    Dnat,
}

impl CtState {
    /// The order `iptables-save` prints `--ctstate` in.
    pub const CT_ORDER: [CtState; 7] = [
        CtState::Invalid,
        CtState::New,
        CtState::Related,
        CtState::Established,
        CtState::Untracked,
        CtState::Snat,
        CtState::Dnat,
    ];
    /// The name as iptables spells it.
    pub fn name(self) -> &'static str {
        match self {
            CtState::Invalid => "INVALID",
            CtState::New => "NEW",
            CtState::Related => "RELATED",
            CtState::Established => "ESTABLISHED",
            CtState::Untracked => "UNTRACKED",
            CtState::Snat => "SNAT",
            CtState::Dnat => "DNAT",
        }
    }

    /// Whether the packet's connection is in this state.
    #[inline]
    pub fn holds(self, p: &Packet) -> bool {
        match self {
            CtState::New => p.ctstate == ConnState::New,
            CtState::Established => p.ctstate == ConnState::Established,
            CtState::Related => p.ctstate == ConnState::Related,
            CtState::Invalid => p.ctstate == ConnState::Invalid,
            CtState::Untracked => p.ctstate == ConnState::Untracked,
            CtState::Snat => p.snat_done,
            CtState::Dnat => p.dnat_done,
        }
    }
}

fn parse_states(t: &Token, conntrack: bool) -> Res<Vec<CtState>> {
    let mut v = Vec::new();
    for s in t.text.split(',') {
        let st = CtState::CT_ORDER
            .into_iter()
            .find(|c| c.name() == s)
            .filter(|c| conntrack || !matches!(c, CtState::Snat | CtState::Dnat))
            .ok_or_else(|| {
                err_at(t, format!("unknown state `{s}`")).with_help(if conntrack {
                    "expected INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED, SNAT or DNAT"
                } else {
                    "expected INVALID, NEW, RELATED, ESTABLISHED or UNTRACKED"
                })
            })?;
        if !v.contains(&st) {
            v.push(st);
        }
    }
    v.sort();
    Ok(v)
}

/// Prints ` OPT STATES` (with its `!`).
fn print(s: &mut String, opt: &str, n: &Neg<Vec<CtState>>) {
    list_opt(s, opt, n, &CtState::CT_ORDER, CtState::name);
}

#[inline]
fn holds(n: &Neg<Vec<CtState>>, p: &Packet) -> bool {
    n.value.iter().any(|s| s.holds(p)) != n.negated
}

impl MatchModule for Conntrack {
    const NAME: &'static str = "conntrack";
    const OPTIONS: &'static [&'static str] = &[
        "--ctstate",
        "--ctproto",
        "--ctorigsrc",
        "--ctorigdst",
        "--ctreplsrc",
        "--ctrepldst",
        "--ctorigsrcport",
        "--ctorigdstport",
        "--ctreplsrcport",
        "--ctrepldstport",
        "--ctstatus",
        "--ctexpire",
        "--ctdir",
    ];
    const ADDRESS_OPTIONS: &'static [&'static str] =
        &["--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"];
    const CONNTRACK: bool = true;
    const GEN_SLOT: u32 = 6;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        match o.name() {
            "--ctstate" => self.ctstate = Neg::new(o.negated(), parse_states(o.value()?, true)?),
            // Every other option takes one value that the model does not interpret.
            o if Self::OPTIONS.contains(&o) => return Ok(Take::Unmodelled(1)),
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if !cx.given("--ctstate") {
            return Err(cx.fail("match `conntrack` needs an option"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        print(s, "--ctstate", &self.ctstate);
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        Some(holds(&self.ctstate, p))
    }

    fn generate(g: &GenCx<'_>) -> Option<Conntrack> {
        Some(Conntrack {
            ctstate: Neg::new(g.v & 1 == 1, subset(&CtState::CT_ORDER, g.v >> 1)),
        })
    }
}

impl MatchModule for State {
    const NAME: &'static str = "state";
    const OPTIONS: &'static [&'static str] = &["--state"];
    const CONNTRACK: bool = true;
    const GEN_SLOT: u32 = 7;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        match o.name() {
            "--state" => self.0 = Neg::new(o.negated(), parse_states(o.value()?, false)?),
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, cx: &Finish<'_>) -> Res<()> {
        if !cx.given("--state") {
            return Err(cx.fail("match `state` needs `--state`"));
        }
        Ok(())
    }

    fn print(&self, s: &mut String) {
        print(s, "--state", &self.0);
    }

    #[inline]
    fn eval(&self, p: &Packet, _env: &Env<'_>) -> Option<bool> {
        Some(holds(&self.0, p))
    }

    fn generate(g: &GenCx<'_>) -> Option<State> {
        let untracked = CtState::CT_ORDER.get(..5).unwrap_or(&[]);
        Some(State(Neg::new(g.v & 1 == 1, subset(untracked, g.v >> 1))))
    }
}
