//! `-m socket`: whether an established or listening local socket takes the packet (which the
//! model cannot see: the match is undecided).

use serde::{Deserialize, Serialize};

use super::{Env, Finish, GenCx, MatchModule, OptArgs, Take};
use crate::ast::Hook;
use crate::eval::Packet;
use crate::parse::rule::Res;

/// `-m socket`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Socket {
    /// `--transparent`.
    pub transparent: bool,
    /// `--nowildcard`.
    pub nowildcard: bool,
    /// `--restore-skmark`.
    pub restore_skmark: bool,
}

impl MatchModule for Socket {
    const NAME: &'static str = "socket";
    const OPTIONS: &'static [&'static str] = &["--transparent", "--nowildcard", "--restore-skmark"];
    const HOOKS: Option<&'static [Hook]> = Some(&[Hook::Prerouting, Hook::Input]);
    const GEN_SLOT: u32 = 9;

    fn option(&mut self, o: &mut OptArgs<'_, '_>) -> Res<Take> {
        match o.name() {
            "--transparent" => self.transparent = true,
            "--nowildcard" => self.nowildcard = true,
            "--restore-skmark" => self.restore_skmark = true,
            _ => return Ok(Take::NotMine),
        }
        Ok(Take::Done)
    }

    fn finish(&self, _cx: &Finish<'_>) -> Res<()> {
        Ok(())
    }

    fn print(&self, s: &mut String) {
        for (on, opt) in [
            (self.transparent, " --transparent"),
            (self.nowildcard, " --nowildcard"),
            (self.restore_skmark, " --restore-skmark"),
        ] {
            if on {
                s.push_str(opt);
            }
        }
    }

    #[inline]
    fn eval(&self, _p: &Packet, _env: &Env<'_>) -> Option<bool> {
        None
    }

    fn generate(g: &GenCx<'_>) -> Option<Socket> {
        let v = g.v;
        matches!(g.hook, Some(Hook::Prerouting | Hook::Input)).then_some(Socket {
            transparent: v & 1 == 1,
            nowildcard: v & 2 == 2,
            restore_skmark: v & 4 == 4,
        })
    }
}
